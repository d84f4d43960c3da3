"""The diffusion world model: tokenizer + DiT + heads, speaking the WorldModel protocol.

``observe`` encodes context frames and runs them through the DiT's clean stream once, caching keys/values;
``step`` samples one frame latent with a few Euler steps against that cache, decodes it, and appends it
(lightly noised, as in training) to the cache, reading reward/termination/state heads on the way;
``rollout`` repeats ``step`` for a batch under given actions. An empty context (``observe`` with zero
frames, or :meth:`DiffusionWorldModel.start`) generates from text alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn

from gedanken.data.batch import Batch
from gedanken.models.actions import check_actions
from gedanken.models.diffusion.config import DiffusionConfig, FlowConfig, SamplerConfig, Target
from gedanken.models.diffusion.context import DiffusionContext
from gedanken.models.diffusion.dit import DiT
from gedanken.models.diffusion.sampling import FlowMatching, FlowSampler
from gedanken.models.diffusion.text import TextEncoder, make_text_encoder
from gedanken.models.heads import WorldHeads
from gedanken.models.projection import colour_areas, hold_areas, nearby_colours, snap_to_palette
from gedanken.models.protocol import Prediction, Rollout
from gedanken.models.verifier import least_penetrating, object_sizes, sampler_penalty
from gedanken.tokenizers.continuous import VideoAutoencoder


@dataclass
class LatentBatch:
    """A :class:`~gedanken.data.batch.Batch` whose frames were already encoded (training on cached latents)."""

    latents: Tensor  # (B, T, C, h, w)
    actions: Tensor  # (B, T, A)
    rewards: Tensor  # (B, T)
    terminated: Tensor  # (B, T) bool
    states: Tensor | None = None  # (B, T, K, F)
    text: Tensor | None = None  # (B, E) caption embeddings
    weights: Tensor | None = None  # (B, T, 1, h, w) loss weight per latent position (FlowConfig.size_weight)
    context: Tensor | None = None  # (B, T, C, h, w) the DiT's context instead (FlowConfig.breach_forcing)

    def to(self, device: torch.device | str) -> LatentBatch:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if getattr(self, f.name) is not None
        }
        return replace(self, **moved)

    def __len__(self) -> int:
        return int(self.latents.shape[0])


class DiffusionWorldModel(nn.Module):
    """Latent video diffusion world model (Sora/Cosmos lineage), frame-causal and cached for interactive use."""

    family = "diffusion"

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.name = f"diffusion-{cfg.world}" if cfg.world else "diffusion"
        self.tokenizer = VideoAutoencoder(cfg.tokenizer)
        self.dit = DiT(
            cfg.dit, cfg.tokenizer.latent_channels, cfg.action_dim, cfg.action_classes, cfg.text_dim
        )
        self.heads = WorldHeads(cfg.heads, cfg.dit.width)
        self.flow = FlowMatching(cfg.flow)
        self.check_sampler(cfg.sampler)
        self.sampler = FlowSampler(cfg.sampler)
        self.text_encoder: TextEncoder | None = make_text_encoder(cfg.text, cfg.text_dim)
        self.display: nn.Module | None = (
            copy.deepcopy(self.tokenizer.decoder) if cfg.display_decoder else None
        )

    # ----------------------------------------------------------------------------------------- utilities

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def set_flow(self, cfg: FlowConfig) -> None:
        """Change the training knobs (noise levels, dropouts, loss weights); the target must stay the same."""
        if cfg.target is not self.cfg.flow.target:
            raise ValueError(
                f"the flow target is part of the network ({self.cfg.flow.target.value}), got {cfg.target.value}"
            )
        self.cfg = replace(self.cfg, flow=cfg)
        self.flow = FlowMatching(cfg)

    def set_sampler(self, cfg: SamplerConfig) -> None:
        """Change steps / guidance / context noise for inference (the network is unchanged)."""
        self.check_sampler(cfg)
        self.sampler = FlowSampler(cfg)

    def check_sampler(self, cfg: SamplerConfig) -> None:
        """Raise ``ValueError`` if this model cannot sample with ``cfg`` (snap without a palette, ...)."""
        cfg.check(len(self.cfg.palette))

    def freeze_tokenizer(self) -> None:
        self.tokenizer.requires_grad_(False)
        if self.display is not None:
            self.display.requires_grad_(False)

    def add_display_decoder(self) -> nn.Module:
        """The decoder that draws the frames the model shows, created as a copy of the tokenizer's (so the
        model's frames are unchanged until it is trained; see :mod:`gedanken.models.diffusion.decoder`)."""
        if self.display is None:
            self.display = copy.deepcopy(self.tokenizer.decoder).to(self.device)
            self.cfg = replace(self.cfg, display_decoder=True)
        return self.display

    def embed_text(self, texts: list[str] | None) -> Tensor | None:
        if texts is None or self.text_encoder is None or all(t == "" for t in texts):
            return None
        return self.text_encoder.embed(list(texts)).to(self.device)

    @torch.no_grad()
    def encode_batch(self, batch: Batch) -> LatentBatch:
        """Encode a pixel batch with the (frozen) tokenizer and embed its captions."""
        return LatentBatch(
            latents=self.tokenizer.encode(batch.frames),
            actions=batch.actions,
            rewards=batch.rewards,
            terminated=batch.terminated,
            states=batch.states,
            text=self.embed_text(batch.captions),
        )

    def _actions(self, actions: Tensor, ndim: int) -> Tensor:
        """Accept ``ndim``-d (..., A) floats, or discrete indices without the A axis -> (..., A) float."""
        actions = torch.as_tensor(actions, device=self.device)
        if self.cfg.action_classes and actions.ndim == ndim - 1:
            actions = actions[..., None]
        return check_actions(actions.float(), self.cfg.action_dim, self.cfg.action_classes)

    # ------------------------------------------------------------------------------------------ training

    def loss(self, batch: Batch | LatentBatch) -> tuple[Tensor, dict[str, float]]:
        """Flow-matching loss on every frame of the window (+ weighted head losses)."""
        lb = self.encode_batch(batch) if isinstance(batch, Batch) else batch
        x = lb.latents  # (B, T, C, h, w)
        b, t = x.shape[:2]
        dev = x.device
        prev = torch.cat(
            [torch.zeros_like(lb.actions[:, :1]), lb.actions[:, :-1]], dim=1
        )  # action into frame j
        keep_act = (torch.rand(b, 1, device=dev) >= self.cfg.flow.action_dropout) & (
            torch.arange(t, device=dev)[None, :] > 0
        )
        keep_txt = torch.rand(b, device=dev) >= self.cfg.flow.text_dropout
        sigma = self.flow.sample_sigma((b, t), dev)
        ctx_sigma = self.flow.sample_context_sigma((b, t), dev)
        eps = torch.randn_like(x)
        xn = self.flow.noise(x, sigma, eps)
        act = self.dit.action_embedding(prev, keep_act)
        txt = self.dit.text_embedding(lb.text, keep_txt, b)
        c_ctx = self.dit.condition(ctx_sigma, act, txt)
        x_ctx = x if lb.context is None else lb.context  # the targets stay x
        if self.cfg.flow.target is Target.RESIDUAL:
            draw = float(torch.rand(()))
            if draw < self.cfg.flow.rollout_forcing:
                x_ctx = self._rollout_window(lb, prev)
            elif draw < self.cfg.flow.rollout_forcing + self.cfg.flow.self_forcing:
                x_ctx = self._one_step_predictions(x, ctx_sigma, c_ctx, act, txt)
        xc = self.flow.noise(x_ctx, ctx_sigma, torch.randn_like(x))
        out, hidden = self.dit.forward_train(xc, xn, c_ctx, self.dit.condition(sigma, act, txt))
        base = torch.cat([torch.zeros_like(x[:, :1]), x_ctx[:, :-1]], dim=1)  # each frame's previous latent
        diff = self.flow.loss(out, x, eps, base, lb.weights)
        head_loss, logs = self.heads.loss(self.heads(hidden), lb.rewards, lb.terminated, lb.states)
        logs["diffusion"] = float(diff.detach())
        return diff + self.cfg.flow.head_weight * head_loss, logs

    @torch.no_grad()
    def _one_step_predictions(
        self, x: Tensor, ctx_sigma: Tensor, c_ctx: Tensor, act: Tensor, txt: Tensor
    ) -> Tensor:
        """Every frame after the first as the model predicts it in one step from the true past (self-forcing).

        Training on these as context (the target stays the true frame) teaches the RESIDUAL model to correct
        its own one-step errors instead of compounding them.
        """
        b, t = x.shape[:2]
        ones = torch.ones(b, t, device=x.device)
        xc = self.flow.noise(x, ctx_sigma, torch.randn_like(x))
        out, _ = self.dit.forward_train(xc, torch.randn_like(x), c_ctx, self.dit.condition(ones, act, txt))
        pred = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1) + out
        pred[:, 0] = x[:, 0]
        return pred

    # ------------------------------------------------------------------------------------------- rollout

    def start(self, batch: int = 1, text: list[str] | None = None, *, seed: int = 0) -> DiffusionContext:
        """An empty context: the first step generates a frame from the text alone."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        return DiffusionContext(cache=None, t=0, text=self.embed_text(text), batch=batch, generator=gen)

    @torch.no_grad()
    def observe(
        self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None
    ) -> DiffusionContext:
        """Context from ``k`` frames (B, k, H, W, 3) uint8 and the (B, k[-1], A) actions between them."""
        frames = torch.as_tensor(frames)
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(
                f"frames must be (B, k, H, W, 3) uint8, got {tuple(frames.shape)} {frames.dtype}"
            )
        b, k = frames.shape[:2]
        ctx = self.start(b, text)
        if k == 0:
            return ctx
        lat = self.tokenizer.encode(frames.to(self.device))  # (B, k, C, h, w)
        prev = torch.zeros(b, k, max(self.cfg.action_dim, 1), device=self.device)
        keep = torch.zeros(b, k, dtype=torch.bool, device=self.device)
        if actions is not None and k > 1:
            a = self._actions(actions, 3)
            if a.shape[1] < k - 1:
                raise ValueError(f"need at least {k - 1} actions for {k} context frames, got {a.shape[1]}")
            prev[:, 1:], keep[:, 1:] = a[:, : k - 1], True
        ctx = self._append(ctx, lat, prev, keep)
        sc = self.sampler.cfg
        if sc.verifier == "solidity":
            ctx = replace(ctx, sizes=object_sizes(frames.to(self.device), torch.tensor(self.cfg.palette)))
        if sc.candidates > 1 or sc.snap_radius > 0:
            pal = torch.tensor(self.cfg.palette)
            last = snap_to_palette(frames[:, -1].to(self.device), pal, sc.snap_background)
            areas = colour_areas(last, pal) if sc.candidates > 1 or sc.keep_area > 0 else None
            ctx = replace(
                ctx,
                areas=areas if sc.candidates > 1 else None,
                seen=last if sc.snap_radius > 0 else None,
                reference=areas if sc.keep_area > 0 else None,
            )
        return ctx

    def _append(self, ctx: DiffusionContext, lat: Tensor, prev: Tensor, keep: Tensor) -> DiffusionContext:
        """Add clean latents (B, k, C, h, w) (led to by ``prev`` actions (B, k, A)) to the context."""
        b, k = lat.shape[:2]
        s = self.sampler.cfg.context_noise
        base = lat[:, -1]
        if s > 0:
            noise = torch.randn(lat.shape, generator=ctx.generator, device=lat.device)
            lat = (1 - s) * lat + s * noise
        sigma = torch.full((b, k), s, device=lat.device)
        c = self.dit.condition(
            sigma, self.dit.action_embedding(prev, keep), self.dit.text_embedding(ctx.text, None, b)
        )
        cache, hidden = self.dit.clean_pass(lat, c, ctx.t, ctx.cache)
        heads = self.heads(hidden[:, -1:])
        older = None
        if m := self.dit.older_frames:  # the frames before the new last one, nearest first
            parts = [lat.flip(1)[:, 1:]] + ([ctx.prev[:, None]] if ctx.prev is not None else [])
            parts += [ctx.older] if ctx.older is not None else []
            older = torch.cat(parts, 1)[:, :m]
        return replace(ctx, cache=cache, t=ctx.t + k, last=heads, prev=lat[:, -1], older=older, base=base)

    def _velocity(self, ctx: DiffusionContext, action: Tensor | None):  # noqa: ANN202
        b = ctx.batch
        dev = self.device
        a = torch.zeros(b, 1, max(self.cfg.action_dim, 1), device=dev) if action is None else action[:, None]
        keep = torch.full((b, 1), action is not None, device=dev)
        act = self.dit.action_embedding(a, keep)
        null_act = self.dit.action_embedding(a, torch.zeros_like(keep))
        txt = self.dit.text_embedding(ctx.text, None, b)
        null_txt = self.dit.text_embedding(None, None, b)
        ga = self.sampler.cfg.action_guidance if action is not None else 1.0
        gt = self.sampler.cfg.text_guidance if ctx.text is not None else 1.0

        def velocity(x: Tensor, sigma: float) -> Tensor:
            s = torch.full((b, 1), sigma, device=dev)

            def net(a_emb: Tensor, t_emb: Tensor) -> Tensor:
                c = self.dit.condition(s, a_emb, t_emb)
                out = self.dit.noisy_pass(x, c, ctx.t, ctx.cache, ctx.prev, ctx.older)
                return self.flow.velocity(out, x, sigma, ctx.base)

            v = net(act, txt)
            if ga != 1.0:
                v = v + (ga - 1.0) * (v - net(null_act, txt))
            if gt != 1.0:
                v = v + (gt - 1.0) * (v - net(act, null_txt))
            return v

        return velocity, a, keep

    def _advance(
        self, ctx: DiffusionContext, action: Tensor | None
    ) -> tuple[DiffusionContext, Tensor, Tensor]:
        """Sample the next latent under ``action``; the context with it appended, the latent and its frame.

        With ``sampler.candidates = N > 1`` (and the colour areas of the last frame known) it samples N frames
        and keeps, per batch element, the one whose palette colour areas differ least from the last frame's:
        objects keep their size and do not fade out or split off. While the last frame's areas are unknown
        (the first step of a rollout forcing window) it samples one. With ``sampler.verifier = "solidity"``
        it samples one frame, and only where that frame breaks solidity by more than
        ``sampler.verifier_tolerance`` px (:func:`~gedanken.models.verifier.solidity_penalty`) N - 1 more,
        keeping the least penetrating (then the least changed). With ``sampler.snap_radius`` the projection
        only allows colours that the last projected frame shows nearby, and with ``sampler.keep_area`` each
        colour's projected area is held near its area in the last observed frame (:func:`hold_areas`)."""
        sc, pal, b = self.sampler.cfg, torch.tensor(self.cfg.palette), ctx.batch
        verify = sc.verifier == "solidity" and ctx.sizes is not None  # no context seen: nothing to size by
        n = sc.candidates if ctx.areas is not None and sc.verifier == "none" else 1
        lat, frame, a, keep = self._draw(ctx, action, n)
        allowed = None
        if sc.snap_radius > 0 and ctx.seen is not None:
            allowed = nearby_colours(ctx.seen, pal, sc.snap_radius)
        if n > 1:
            rows = self._best(ctx, frame, allowed, n, torch.zeros(n, b, dtype=torch.float64))
            lat, frame = lat[rows], frame[rows]
        elif verify:  # the sampler's checks hold candidates >= 2 with the verifier
            lat, frame = self._verified(ctx, action, lat, frame, allowed)
        snap = (
            snap_to_palette(frame, pal, sc.snap_background, allowed)
            if sc.snap or sc.candidates > 1
            else frame
        )
        areas = colour_areas(snap, pal) if sc.candidates > 1 else None
        if sc.keep_area > 0 and ctx.reference is not None and allowed is not None:
            snap = hold_areas(snap, frame, pal, ctx.reference, allowed, sc.keep_area)
            areas = colour_areas(snap, pal) if sc.candidates > 1 else None
        if sc.reencode:
            ctx_lat = self.tokenizer.encode((snap if sc.snap else frame)[:, None])
        else:
            ctx_lat = lat[:, None]
        seen = snap if sc.snap_radius > 0 else None
        if sc.show_projected:  # it shows the frame it carries forward, not a second drawing of the latent
            frame = snap
        elif self.display is not None:  # what it shows; the context above came from the tokenizer's decoder
            frame = self._shown(lat, frame)
        return replace(self._append(ctx, ctx_lat, a, keep), areas=areas, seen=seen), lat, frame

    def _draw(
        self, ctx: DiffusionContext, action: Tensor | None, n: int
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``n`` samples per batch element, candidate-major: latents (n B, C, h, w), decoded frames, and the
        action and keep flag (B, ...) the context appends."""
        b = ctx.batch
        velocity, a, keep = self._velocity(
            ctx if n == 1 else ctx.tiled(n), None if action is None else action.repeat(n, 1)
        )
        c, h, w = self.tokenizer.latent_shape(self.cfg.height, self.cfg.width)
        noise = torch.randn((n * b, c, h, w), generator=ctx.generator, device=self.device)
        lat = self.sampler.sample(velocity, noise * self.sampler.cfg.temperature)  # (n B, C, h, w)
        frame = self.tokenizer.decode(lat[:, None], self.cfg.height, self.cfg.width)[:, 0]
        return lat, frame, a[:b], keep[:b]

    def _verified(
        self, ctx: DiffusionContext, action: Tensor | None, lat: Tensor, frame: Tensor, allowed: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """One sample per batch element (``lat``, ``frame``) checked by the solidity verifier; where it breaks
        solidity by more than the tolerance, ``candidates - 1`` more, and the best of all of them."""
        sc = self.sampler.cfg
        assert ctx.sizes is not None
        first = self._penalty(lat, frame, ctx.sizes)
        bad = torch.nonzero(first > sc.verifier_tolerance).flatten()
        if not len(bad):
            return lat, frame
        m = sc.candidates - 1
        sub = replace(ctx.rows(bad), areas=None if ctx.areas is None else ctx.areas[bad])
        more_lat, more_frame, _, _ = self._draw(sub, None if action is None else action[bad], m)
        more = self._penalty(more_lat, more_frame, ctx.sizes[bad].repeat(m, 1))
        all_lat = torch.cat([lat[bad], more_lat])  # ((m + 1) |bad|, ...), candidate-major
        all_frame = torch.cat([frame[bad], more_frame])
        pen = torch.cat([first[bad], more]).view(m + 1, len(bad)).cpu()
        rows = self._best(sub, all_frame, None if allowed is None else allowed[bad], m + 1, pen)
        lat, frame = lat.clone(), frame.clone()
        lat[bad], frame[bad] = all_lat[rows], all_frame[rows]
        return lat, frame

    def _shown(self, lat: Tensor, frame: Tensor) -> Tensor:
        """The frames the model shows for latents whose tokenizer-decoded frames are ``frame``."""
        if self.display is None:
            return frame
        return self.tokenizer.decode(lat[:, None], self.cfg.height, self.cfg.width, self.display)[:, 0]

    def _penalty(self, lat: Tensor, frame: Tensor, sizes: Tensor) -> Tensor:
        """The solidity verifier's penalty (B,) of the frames shown for ``lat`` / ``frame``."""
        return sampler_penalty(self._shown(lat, frame), self.cfg.palette, sizes, self.sampler.cfg)

    def _best(
        self, ctx: DiffusionContext, frame: Tensor, allowed: Tensor | None, n: int, pen: Tensor
    ) -> Tensor:
        """Row of the kept candidate per batch element of ``ctx``: among the candidates whose solidity penalty
        ``pen`` (n, B) lies in the lowest ``TIE_PX`` step, the one whose colour areas are nearest the last
        frame's (the first on ties)."""
        b, changed = ctx.batch, None
        if ctx.areas is not None:
            pal = torch.tensor(self.cfg.palette)
            many = None if allowed is None else allowed.repeat(n, 1, 1, 1)
            snap = snap_to_palette(frame, pal, self.sampler.cfg.snap_background, many)
            changed = (colour_areas(snap, pal).view(n, b, -1) - ctx.areas).abs().sum(-1).cpu()
        pick = least_penetrating(pen, changed).to(frame.device)  # (B,)
        return pick * b + torch.arange(b, device=frame.device)

    @torch.no_grad()
    def _rollout_window(self, lb: LatentBatch, prev: Tensor) -> Tensor:
        """The window as the model's own rollout makes it (rollout forcing).

        The first ``k`` latents (``k`` drawn from 1 .. W) stay true; each later one is sampled by the rollout
        sampler from the model's own earlier ones under the true actions ``prev`` (B, T, A) (action into frame
        j) and kept as the rollout keeps it (re-encoded with ``reencode``). Trained on as context, with the
        true frames as targets, these teach the model to pull a drifted multi-frame rollout back instead of
        compounding it; one-step predictions from the true past (``self_forcing``) never drift that far.
        """
        x = lb.latents
        b, t = x.shape[:2]
        k = int(torch.randint(1, min(self.cfg.dit.context, t - 1) + 1, ()))
        gen = torch.Generator(device=x.device).manual_seed(int(torch.randint(2**31 - 1, ())))
        ctx = DiffusionContext(cache=None, t=0, text=lb.text, batch=b, generator=gen)
        keep = (torch.arange(t, device=x.device) > 0)[None].expand(b, t)
        ctx = self._append(ctx, x[:, :k], prev[:, :k], keep[:, :k])
        out = [x[:, :k]]
        for j in range(k, t):
            ctx, _, _ = self._advance(ctx, prev[:, j])
            assert ctx.base is not None
            out.append(ctx.base[:, None])
        return torch.cat(out, 1)

    @torch.no_grad()
    def step(self, ctx: DiffusionContext, action: Tensor | None) -> tuple[DiffusionContext, Prediction]:
        """One frame under ``action`` (B, A) (None = no action, e.g. text-only generation)."""
        if action is not None:
            action = self._actions(action, 2)
            if action.ndim == 1:
                action = action[None].expand(ctx.batch, -1)
            if action.shape != (ctx.batch, max(self.cfg.action_dim, 1)):
                raise ValueError(
                    f"step needs one action per batch element, (B={ctx.batch}, A), got {tuple(action.shape)}"
                )
        new, lat, frame = self._advance(ctx, action)
        out = new.last
        assert out is not None
        return new, Prediction(
            frame=frame,
            latent=lat,
            reward=out.reward[:, 0] if out.reward is not None else None,
            terminated=(out.termination_logit[:, 0] > 0) if out.termination_logit is not None else None,
            state=out.state[:, 0] if out.state is not None else None,
        )

    @torch.no_grad()
    def rollout(
        self,
        ctx: DiffusionContext,
        actions: Tensor | None,
        *,
        seed: int = 0,
        horizon: int = 0,
        on_frame: Callable[[int], None] | None = None,
    ) -> Rollout:
        """``H`` frames under ``actions`` (B, H, A); ``actions=None`` with ``horizon`` for action-free generation;
        ``on_frame(h)`` after frame h (1-based: progress)."""
        ctx = replace(ctx, generator=torch.Generator(device=self.device).manual_seed(seed))
        steps = horizon if actions is None else int(torch.as_tensor(actions).shape[1])
        preds = []
        for i in range(steps):
            ctx, p = self.step(
                ctx, None if actions is None else torch.as_tensor(actions)[:, i]
            )  # (B, A) or (B,)
            preds.append(p)
            if on_frame is not None:
                on_frame(i + 1)

        def stack(name: str) -> Tensor | None:
            vals = [getattr(p, name) for p in preds]
            return torch.stack(vals, dim=1) if vals and vals[0] is not None else None

        return Rollout(
            frames=stack("frame"),
            latents=stack("latent"),
            rewards=stack("reward"),
            terminated=stack("terminated"),
            states=stack("state"),
        )
