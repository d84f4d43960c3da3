"""The autoregressive world model: FSQ tokenizer + latent action model + MaskGIT dynamics, behind the protocol.

Pre-training needs frames only: the tokenizer turns frames into tokens, the latent action model (LAM) turns
consecutive frames into one of ``|A|`` latent actions, and the dynamics transformer learns to predict the
tokens of frame ``t + 1`` from the past tokens and the latent action ``a_t``. Post-training on a few labelled
steps connects real actions to it, two ways (see :class:`ActionMode`): a fitted latent <-> real action map,
and an adapter that embeds real actions directly. The protocol's ``observe`` / ``step`` / ``rollout`` read
real actions through whichever :attr:`action_mode` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.data.batch import Batch
from gedanken.models.actions import check_actions
from gedanken.models.autoregressive.config import ActionMode, AutoregressiveConfig, Stage
from gedanken.models.autoregressive.dynamics import DynamicsCache, DynamicsTransformer
from gedanken.models.autoregressive.lam import LatentActionModel
from gedanken.models.autoregressive.maskgit import MaskGITConfig, MaskGITSampler, random_mask
from gedanken.models.projection import colour_areas, hold_areas, nearby_colours, snap_to_palette
from gedanken.models.protocol import ModelCard, Prediction, Rollout
from gedanken.models.verifier import check_verifier, object_sizes
from gedanken.tokenizers.discrete import DiscreteTokenizer


@dataclass
class TokenBatch:
    """Pre-encoded training windows: tokens, latent actions and (optionally) real actions."""

    tokens: Tensor  # (B, T, N) int64
    latent_actions: Tensor  # (B, T - 1) int64, latent action from frame t to t + 1
    actions: Tensor | None = None  # (B, T, A) float32 real actions (adapter stage)
    shown: Tensor | None = None  # (B, T, N) the tokens the dynamics sees where unmasked (default: tokens)
    weights: Tensor | None = (
        None  # (B, T, N) float per-token loss weights (e.g. objects in contact; default 1)
    )

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(
            self.tokens.to(device),
            self.latent_actions.to(device),
            None if self.actions is None else self.actions.to(device),
            None if self.shown is None else self.shown.to(device),
            None if self.weights is None else self.weights.to(device),
        )

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


@dataclass
class ARContext:
    """What ``observe`` returns and ``step`` advances: the dynamics cache of the recent frames."""

    cache: DynamicsCache  # keys/values of the last window - 1 frames
    batch: int  # B
    generator: torch.Generator  # sampling noise source (used when the sampler temperature > 0)
    seen: Tensor | None = None  # (B, H, W, 3) the last frame projected onto the palette (sampler.keep_area)
    reference: Tensor | None = None  # (B, P - 1) colour areas of the last observed frame (sampler.keep_area)
    shown: Tensor | None = None  # (B, H, W, 3) uint8 the last frame observed or shown (keep_unchanged)
    last_tokens: Tensor | None = None  # (B, N) the tokens of the last context frame (sampler.keep_unchanged)
    sizes: Tensor | None = None  # (B, P - 1) each colour's largest observed area (sampler.verifier)


class AutoregressiveWorldModel(nn.Module):
    """Genie-style world model; see the module docstring. ``stage`` selects what :meth:`loss` trains."""

    def __init__(self, cfg: AutoregressiveConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.name = f"autoregressive-{cfg.world}" if cfg.world else "autoregressive"
        self.card = ModelCard(name=self.name, family="autoregressive", world=cfg.world)
        self.tokenizer = DiscreteTokenizer(cfg.tokenizer)
        self.lam = LatentActionModel(cfg.lam)
        self.grid = self.tokenizer.grid(cfg.height, cfg.width)
        self.dynamics = DynamicsTransformer(
            cfg.dynamics, self.tokenizer.vocab_size, self.grid, cfg.tokenizer.fsq.levels
        )
        d, na = cfg.dynamics.dim, cfg.lam.num_actions
        self.latent_embed = nn.Embedding(na, d)  # latent action -> dynamics action embedding
        if cfg.action_classes:
            self.adapter: nn.Module = nn.Embedding(cfg.action_classes, d)
        else:
            self.adapter = nn.Sequential(
                nn.Linear(cfg.action_dim, cfg.adapter_hidden), nn.SiLU(), nn.Linear(cfg.adapter_hidden, d)
            )
        # The latent <-> real action map fitted on labelled steps (see posttrain.fit_action_map).
        self.register_buffer("latent_to_real", torch.zeros(na, cfg.action_dim))  # (|A|, A) mean real action
        self.register_buffer("latent_counts", torch.zeros(na))  # labelled steps seen per latent action
        self.register_buffer("real_to_latent", torch.zeros(max(cfg.action_classes, 1), dtype=torch.long))
        self.check_sampler(cfg.sampler)
        self.sampler = MaskGITSampler(cfg.sampler)
        self.action_mode = cfg.action_mode
        self.stage = Stage.DYNAMICS
        # share of the dynamics' training windows whose past the model rolls out itself (own_context.py; the
        # recipe sets it for the dynamics stage)
        self.rollout_context = 0.0
        self.rollout_frames = 0  # at most this many of them (0: as many as the window allows)

    # ------------------------------------------------------------------------------------------ helpers

    @property
    def device(self) -> torch.device:
        return self.latent_embed.weight.device

    @property
    def map_fitted(self) -> bool:
        """Whether a latent <-> real action map has been fitted."""
        return bool(self.latent_counts.sum() > 0)

    def set_stage(self, stage: Stage) -> None:
        """Train only the part ``stage`` names; every other parameter is frozen."""
        self.stage = stage
        trainable = {
            Stage.TOKENIZER: [self.tokenizer],
            Stage.LAM: [self.lam],
            Stage.DYNAMICS: [self.dynamics, self.latent_embed],
            Stage.ADAPTER: [self.adapter],
        }[stage]
        for p in self.parameters():
            p.requires_grad_(False)
        for m in trainable:
            for p in m.parameters():
                p.requires_grad_(True)

    def set_sampler(self, cfg: MaskGITConfig) -> None:
        """Change the MaskGIT steps / temperature / context projection used by ``step`` and ``rollout``."""
        self.check_sampler(cfg)
        self.cfg = replace(self.cfg, sampler=cfg)
        self.sampler = MaskGITSampler(cfg)

    def check_sampler(self, cfg: MaskGITConfig) -> None:
        """Raise ``ValueError`` if this model cannot sample with ``cfg`` (keep_area without a palette, ...)."""
        if cfg.keep_area > 0 and not self.cfg.palette:
            raise ValueError(
                "sampler.keep_area projects the context onto the model's palette, and this model has none "
                "(trained before palettes were recorded, or on data that is not flat-coloured)"
            )
        check_verifier(cfg, len(self.cfg.palette))

    def _project(self, frame: Tensor, ctx: ARContext) -> Tensor:
        """The decoded frame as the context keeps it (``sampler.keep_area``): projected onto the palette near
        where each colour was, each colour's area held near the observed one."""
        sc, pal = self.cfg.sampler, torch.tensor(self.cfg.palette)
        assert ctx.seen is not None and ctx.reference is not None
        allowed = nearby_colours(ctx.seen, pal, sc.snap_radius)
        snap = snap_to_palette(frame, pal, sc.snap_background, allowed)
        return hold_areas(snap, frame, pal, ctx.reference, allowed, sc.keep_area)

    @torch.no_grad()
    def projected_frames(self, frames: Tensor, tokens: Tensor) -> Tensor:
        """An episode's frames ``(T, H, W, 3)`` as a rollout's context would hold them under
        ``sampler.keep_area``: its tokens ``(T, N)`` decoded, projected onto the palette near where each colour
        was in the previous frame, each colour's area held near its area in the first frame."""
        sc = self.cfg.sampler
        if sc.keep_area <= 0 or not self.cfg.palette:
            raise ValueError("projected frames need sampler.keep_area > 0 and a palette")
        pal = torch.tensor(self.cfg.palette)
        frames, tokens = frames.to(self.device), tokens.to(self.device)
        decoded = self.tokenizer.decode(tokens.view(len(tokens), *self.grid))  # (T, H, W, 3)
        true = snap_to_palette(frames, pal, sc.snap_background)
        allowed = nearby_colours(torch.cat([true[:1], true[:-1]]), pal, sc.snap_radius)
        snap = snap_to_palette(decoded, pal, sc.snap_background, allowed)
        reference = colour_areas(true[:1], pal).expand(len(frames), -1)
        return hold_areas(snap, decoded, pal, reference, allowed, sc.keep_area)

    @torch.no_grad()
    def projected_tokens(self, frames: Tensor, tokens: Tensor) -> Tensor:
        """The tokens ``(T, N)`` of :meth:`projected_frames`. Training the dynamics on these as context
        (``AutoregressiveRecipe.projected_context``) puts what the sampler hands back in distribution."""
        return self.tokenizer.encode(self.projected_frames(frames, tokens)).flatten(-2)

    @torch.no_grad()
    def encode(self, frames: Tensor) -> TokenBatch:
        """uint8 frames ``(B, T, H, W, 3)`` -> tokens ``(B, T, N)`` and LAM latent actions ``(B, T - 1)``."""
        tokens = self.tokenizer.encode(frames.to(self.device)).flatten(-2)
        lat = (
            self.lam.infer(frames.to(self.device))
            if frames.shape[1] > 1
            else tokens.new_zeros(len(frames), 0)
        )
        return TokenBatch(tokens=tokens, latent_actions=lat)

    def real_action_embedding(self, actions: Tensor, mode: ActionMode | None = None) -> Tensor:
        """Real (or, in LATENT mode, latent) actions ``(..., A)`` -> dynamics embeddings ``(..., D)``."""
        mode = self.action_mode if mode is None else mode
        actions = torch.as_tensor(actions, device=self.device, dtype=torch.float32)
        if mode is ActionMode.LATENT:
            check_actions(actions, 1, self.cfg.lam.num_actions)
            return self.latent_emb(actions[..., 0].long())
        if mode is ActionMode.ADAPTER:
            check_actions(actions, self.cfg.action_dim, self.cfg.action_classes)
            if self.cfg.dynamics.unconditional:
                return self.dynamics.no_action.expand(*actions.shape[:-1], -1)
            if self.cfg.action_classes:
                return self.adapter(actions[..., 0].long())  # whole indices in range: checked above
            return self.adapter(actions)
        return self.latent_emb(self.map_to_latent(actions))  # checks the actions itself

    def latent_emb(self, latents: Tensor) -> Tensor:
        """Latent action indices ``(...)`` -> dynamics embeddings ``(..., D)``; an unconditional dynamics
        (``dynamics.action_dropout == 1``) embeds every one as its learned "no action"."""
        emb = self.latent_embed(latents)
        if self.cfg.dynamics.unconditional:
            return self.dynamics.no_action.to(emb.dtype).expand_as(emb)
        return emb

    def map_to_latent(self, actions: Tensor) -> Tensor:
        """Real actions ``(..., A)`` -> latent action indices ``(...)`` through the fitted map."""
        if not self.map_fitted:
            raise RuntimeError("no latent<->real action map fitted yet; run posttrain.fit_action_map first")
        check_actions(actions, self.cfg.action_dim, self.cfg.action_classes)
        if self.cfg.action_classes:
            return self.real_to_latent[actions[..., 0].long()]
        dist = torch.cdist(actions.reshape(-1, actions.shape[-1]), self.latent_to_real)  # (M, |A|)
        dist = dist.masked_fill(self.latent_counts[None] <= 0, float("inf"))
        return dist.argmin(-1).view(actions.shape[:-1])

    def _clip_action_emb(self, step_emb: Tensor) -> Tensor:
        """Per-transition embeddings ``(B, T - 1, D)`` -> per-frame ``(B, T, D)`` (frame 0 gets no action)."""
        first = self.dynamics.no_action.expand(step_emb.shape[0], 1, -1)
        return torch.cat([first, step_emb], dim=1)

    # ------------------------------------------------------------------------------------------ training

    def loss(self, batch: Batch | TokenBatch) -> tuple[Tensor, dict[str, float]]:
        """The loss of the current :attr:`stage` on one batch (pixels for tokenizer/LAM, tokens otherwise)."""
        if self.stage is Stage.TOKENIZER:
            out = self.tokenizer(_frames(batch))
            return out.loss, {}
        if self.stage is Stage.LAM:
            out_lam = self.lam(_frames(batch))
            return out_lam.loss, {}
        if isinstance(batch, Batch):
            tb = self.encode(batch.frames)
            tb.actions = batch.actions.to(self.device)
        else:
            tb = batch
        if self.stage is Stage.DYNAMICS:
            step_emb = self.latent_emb(tb.latent_actions)  # (B, T-1, D)
            p = self.cfg.dynamics.action_dropout
            if 0 < p < 1 and self.training:  # "no action" in place of a share of them, for action guidance
                drop = torch.rand(step_emb.shape[:2], device=step_emb.device) < p
                step_emb = torch.where(drop[..., None], self.dynamics.no_action.to(step_emb.dtype), step_emb)
        else:
            if tb.actions is None:
                raise ValueError("the adapter stage needs real actions in the batch")
            step_emb = self.real_action_embedding(tb.actions[:, :-1], ActionMode.ADAPTER)  # (B, T-1, D)
        emb, shown, last_only = self._clip_action_emb(step_emb), tb.shown, None
        if self.rollout_context > 0 and self.training and self.stage is Stage.DYNAMICS:
            last_only = torch.rand(len(tb.tokens), device=self.device) < self.rollout_context
            if last_only.any():
                from gedanken.models.autoregressive.own_context import own_past

                past = tb.tokens if shown is None else shown
                shown = own_past(self, past, emb, last_only, most=self.rollout_frames)
        return self._token_loss(tb.tokens, emb, shown, tb.weights, last_only)

    def _token_loss(
        self,
        tokens: Tensor,
        action_emb: Tensor,
        shown: Tensor | None = None,
        token_weights: Tensor | None = None,
        last_only: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """MaskGIT loss: predict the masked ``tokens`` from the unmasked ones, which are read from ``shown``
        (the same shape; e.g. the frames as the sampler's projection hands them back) when given. A masked
        token's loss is multiplied by its entry of ``token_weights`` (the same shape) when given. Windows
        flagged in ``last_only`` (B,) are masked in their last frame only: their past is all shown."""
        b, t, n = tokens.shape
        if t > self.cfg.dynamics.window:
            raise ValueError(
                f"clip of {t} frames is longer than the dynamics window {self.cfg.dynamics.window}"
            )
        mask = random_mask((b, t, n), device=tokens.device)
        mask[:, 0] = False  # the first frame is context: it has no action to follow
        if last_only is not None:
            mask[last_only, :-1] = False
        inp = torch.where(mask, torch.full_like(tokens, -1), tokens if shown is None else shown)
        h = self.dynamics.features(inp, action_emb)[mask]  # (M, D) features of the masked tokens
        target = tokens[mask]
        # Tokens that differ from the previous frame's (what moved) can be up-weighted: copy-last is
        # otherwise right for ~90 % of tokens and the model settles there.
        prev = torch.cat([tokens[:, :1], tokens[:, :-1]], dim=1)[mask]
        changed = target != prev
        weight = torch.where(changed, self.cfg.dynamics.change_weight, 1.0)
        if token_weights is not None:
            if token_weights.shape != tokens.shape:
                raise ValueError(
                    f"token weights {tuple(token_weights.shape)} must match the tokens {tuple(tokens.shape)}"
                )
            weight = weight * token_weights.to(weight.device, weight.dtype)[mask]
        loss = (self.dynamics.token_loss(h, target) * weight).sum() / weight.sum()
        with torch.no_grad():
            hit = self.dynamics.predict(h) == target
            acc, acc_changed = (
                hit.float().mean(),
                hit[changed].float().mean() if changed.any() else hit.new_zeros(()),
            )
        return loss, {"token_acc": float(acc), "changed_acc": float(acc_changed)}

    # ------------------------------------------------------------------------------------------ protocol

    def observe(
        self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None
    ) -> ARContext:
        """Encode ``k`` context frames ``(B, k, H, W, 3)``; their transitions use the LAM's latent actions,
        or the real ``actions`` (B, k, A) through the current action mode when given and the mode is ADAPTER."""
        frames = torch.as_tensor(frames, device=self.device)
        if frames.ndim != 5 or frames.dtype != torch.uint8:
            raise ValueError(
                f"frames must be uint8 (B, k, H, W, 3), got {tuple(frames.shape)} {frames.dtype}"
            )
        if tuple(frames.shape[2:4]) != (self.cfg.height, self.cfg.width):
            raise ValueError(
                f"frames are {tuple(frames.shape[2:4])}, the model works at "
                f"{(self.cfg.height, self.cfg.width)}"
            )
        tb = self.encode(frames)
        step_emb = self.latent_emb(tb.latent_actions)  # (B, k-1, D)
        if actions is not None and self.action_mode is ActionMode.ADAPTER and frames.shape[1] > 1:
            step_emb = self.real_action_embedding(torch.as_tensor(actions)[:, : frames.shape[1] - 1])
        emb = self._clip_action_emb(step_emb)  # (B, k, D)
        cache = self.dynamics.empty_cache()
        for i in range(frames.shape[1]):
            cache = self.dynamics.commit(tb.tokens[:, i], emb[:, i], cache)
        gen = torch.Generator(device=self.device).manual_seed(0)
        ctx = ARContext(cache=cache, batch=frames.shape[0], generator=gen)
        if self.cfg.sampler.keep_area > 0:
            pal = torch.tensor(self.cfg.palette)
            last = snap_to_palette(frames[:, -1], pal, self.cfg.sampler.snap_background)
            ctx = replace(ctx, seen=last, reference=colour_areas(last, pal))
        if self.cfg.sampler.keep_unchanged:
            ctx = replace(ctx, shown=frames[:, -1], last_tokens=tb.tokens[:, -1])
        if self.cfg.sampler.verifier == "solidity":
            ctx = replace(ctx, sizes=object_sizes(frames, torch.tensor(self.cfg.palette)))
        return ctx

    def _keep_unchanged(self, frame: Tensor, tokens: Tensor, ctx: ARContext) -> Tensor:
        """``frame`` (B, H, W, 3) with every patch whose predicted token, and its 8 neighbours' tokens, equal
        the last context frame's shown as the last shown frame's pixels (``sampler.keep_unchanged``)."""
        assert ctx.shown is not None and ctx.last_tokens is not None
        same = (tokens == ctx.last_tokens).float().view(-1, 1, *self.grid)  # (B, 1, h, w)
        # a patch's decoded pixels also depend on its neighbours' tokens (the refine stage), so erode by one
        stable = -F.max_pool2d(-same, 3, stride=1, padding=1)  # (B, 1, h, w); the frame's edge does not erode
        p = self.cfg.tokenizer.patch
        keep = (
            stable.repeat_interleave(p, -2).repeat_interleave(p, -1)[:, 0, :, :, None] > 0.5
        )  # (B, H, W, 1)
        return torch.where(keep, ctx.shown, frame)

    def step(self, ctx: ARContext, action: Tensor) -> tuple[ARContext, Prediction]:
        """Advance one frame under ``action`` (B, A) (or (B,) discrete indices)."""
        action = torch.as_tensor(action, device=self.device, dtype=torch.float32)
        if action.ndim == 1:
            action = action[:, None]
        ctx, _, pred = self.advance(ctx, self.real_action_embedding(action))  # (B, D) embeddings
        return ctx, pred

    def advance(self, ctx: ARContext, emb: Tensor) -> tuple[ARContext, Tensor, Prediction]:
        """One frame under action embeddings ``emb`` (B, D): the context after it, the tokens (B, N) it holds
        for the frame (the sampler's projection, under ``keep_area``) and the prediction."""
        tokens, frame = self.decode_frame(ctx, emb, self.sampler)
        if self.cfg.sampler.verifier == "solidity" and ctx.sizes is not None:
            from gedanken.models.autoregressive.verified import verified_frame

            tokens, frame = verified_frame(self, ctx, emb, tokens, frame)
        grid = tokens.view(ctx.batch, *self.grid)
        keep = self.cfg.sampler.keep_unchanged and ctx.shown is not None
        seen = None
        if self.cfg.sampler.keep_area > 0 and ctx.seen is not None:
            seen = self._project(frame, ctx)
            tokens = self.tokenizer.encode(seen).flatten(-2)  # the context holds the projected frame
        cache = self.dynamics.commit(tokens, emb, ctx.cache)
        ctx = replace(ctx, cache=cache, seen=seen)
        if keep:
            ctx = replace(ctx, shown=frame, last_tokens=tokens)
        if self.cfg.sampler.show_projected and seen is not None:
            frame = seen  # it shows the frame it carries forward
        return ctx, tokens, Prediction(frame=frame, latent=grid)

    def decode_frame(self, ctx: ARContext, emb: Tensor, sampler: MaskGITSampler) -> tuple[Tensor, Tensor]:
        """One frame's tokens (B, N) under action embeddings ``emb`` (B, D), sampled by ``sampler``, and the
        frame shown for them (B, H, W, 3) (with ``keep_unchanged``, the unchanged patches' last pixels)."""
        greedy, draw, g = None, None, self.cfg.sampler.action_guidance
        if self.dynamics.cfg.factorized:  # one channel at a time, without the (B, N, vocab) logits
            greedy = lambda tok: self.dynamics.step_greedy(tok, emb, ctx.cache, g)  # noqa: E731
            temp = sampler.cfg.temperature
            draw = lambda tok: self.dynamics.step_sample(tok, emb, ctx.cache, temp, ctx.generator, g)  # noqa: E731
        tokens = sampler.sample(
            lambda tok: self.dynamics.step_logits(tok, emb, ctx.cache, g),
            ctx.batch,
            self.grid[0] * self.grid[1],
            generator=ctx.generator,
            device=self.device,
            greedy_fn=greedy,
            sample_fn=draw,
        )  # (B, N)
        frame = self.tokenizer.decode(tokens.view(ctx.batch, *self.grid))  # (B, H, W, 3)
        if self.cfg.sampler.keep_unchanged and ctx.shown is not None:
            frame = self._keep_unchanged(frame, tokens, ctx)
        return tokens, frame

    def rollout(
        self, ctx: ARContext, actions: Tensor, *, seed: int = 0, on_frame: Callable[[int], None] | None = None
    ) -> Rollout:
        """``H`` frames under actions ``(B, H, A)``; deterministic given ``seed``; ``on_frame(h)`` after frame h
        (1-based: progress)."""
        actions = torch.as_tensor(actions, device=self.device, dtype=torch.float32)
        if actions.ndim == 2:
            actions = actions[..., None]
        ctx = replace(ctx, generator=torch.Generator(self.device).manual_seed(seed))
        frames, latents = [], []
        for h in range(actions.shape[1]):
            ctx, pred = self.step(ctx, actions[:, h])
            frames.append(pred.frame)
            latents.append(pred.latent)
            if on_frame is not None:
                on_frame(h + 1)
        return Rollout(frames=torch.stack(frames, 1), latents=torch.stack(latents, 1))


def _frames(batch: Batch | TokenBatch) -> Tensor:
    if not isinstance(batch, Batch):
        raise TypeError(f"the tokenizer and LAM stages train on pixel Batches, got {type(batch).__name__}")
    return batch.frames
