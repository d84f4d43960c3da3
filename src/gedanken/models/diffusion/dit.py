"""The Diffusion Transformer: latent patches of clean context frames and noisy target frames in one sequence.

Training sequence (teacher forcing with a clean copy): the ``T`` frames of a window appear twice, once clean
(lightly noised, for drift robustness) and once noised to a random level. Frame-causal mask, at frame level:

* clean frame ``i`` attends to clean frames ``i - W .. i``;
* noisy frame ``j`` attends to clean frames ``j - W .. j - 1`` and to itself (noisy frame 0 sees only itself,
  so the model also learns to generate a first frame from text alone).

At rollout the clean frames' keys/values are cached per layer (the last ``W`` frames), so each new frame costs
``steps`` passes over its own ``N`` tokens against at most ``W * N`` cached keys, plus one pass that turns it
into context: a flat cost per frame however long the rollout.

With ``prev_frame`` on, each noisy token also adds an embedding of the previous clean frame's latent patch at
the same position (DIAMOND's channel-concatenated previous frame, in token form): the model then learns the
frame-to-frame change with a direct path from each patch's past, and attention only has to supply motion and
interactions. Noisy frame 0 (no previous frame) gets a learned null embedding instead. With ``prev_frames``
``= P > 1`` the frames ``j - 2 .. j - P`` are embedded too (DIAMOND stacks its last 4 frames): velocity and
acceleration become local sums at each patch. Their embedding starts at zero, so a trained model can take
them on (``add_older_frames``); a frame that does not exist gets a learned per-slot *missing* embedding.

Every token is conditioned (AdaLN-Zero) on its frame's diffusion time, the action that led to the frame
(``actions[:, j - 1]``; a learned null action where there is none or it was dropped) and the text.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from gedanken.models.diffusion.config import DiTConfig
from gedanken.nn import (
    KV,
    DiTBlock,
    FinalLayer,
    PatchGrid,
    RopeConfig,
    SpacetimePatchifier,
    SpacetimeRope,
    TimeEmbedder,
)


def frame_mask(allowed: Tensor, per_frame: int) -> Tensor:
    """Expand a frame-level boolean mask (Tq, Tk) to tokens (Tq * N, Tk * N)."""
    return allowed.repeat_interleave(per_frame, dim=0).repeat_interleave(per_frame, dim=1)


class DiT(nn.Module):
    """Velocity network over latent patches with frame-causal attention and a KV-cacheable clean stream."""

    def __init__(
        self, cfg: DiTConfig, latent_channels: int, action_dim: int, action_classes: int, text_dim: int
    ) -> None:
        super().__init__()
        if cfg.prev_frames < 1 or (cfg.prev_frames > 1 and not cfg.prev_frame):
            raise ValueError(f"prev_frames must be 1, or > 1 with prev_frame on; got {cfg.prev_frames}")
        self.cfg = cfg
        self.channels = latent_channels
        self.patchifier = SpacetimePatchifier(patch=cfg.patch)
        d, in_dim = cfg.width, self.patchifier.dim(latent_channels)
        self.embed = nn.Linear(in_dim, d)
        self.embed_prev = nn.Linear(in_dim, d) if cfg.prev_frame else None
        self.null_prev = nn.Parameter(torch.zeros(d)) if cfg.prev_frame else None
        self.embed_older: nn.Linear | None = None
        self.missing_older: nn.Parameter | None = None
        if cfg.prev_frame and cfg.prev_frames > 1:
            self.add_older_frames(cfg.prev_frames)
        self.edge: nn.Embedding | None = None
        if cfg.edge_embedding > 0:  # where the walls are: RoPE alone gives only relative positions
            self.add_edge_embedding(cfg.edge_embedding)
        self.time = TimeEmbedder(d)
        self.action = nn.Embedding(action_classes, d) if action_classes > 0 else nn.Linear(action_dim, d)
        self.null_action = nn.Parameter(torch.zeros(d))
        self.text = nn.Linear(text_dim, d) if text_dim > 0 else None
        self.null_text = nn.Parameter(torch.zeros(d))
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final = FinalLayer(d, in_dim)
        self.rope = SpacetimeRope(RopeConfig(head_dim=d // cfg.heads, theta=cfg.rope_theta))
        self.discrete = action_classes > 0

    # --------------------------------------------------------------------------------------- conditioning

    def action_embedding(self, actions: Tensor, keep: Tensor) -> Tensor:
        """``actions`` (B, T, A), ``keep`` (B, T) bool -> (B, T, D); dropped/absent actions -> null action."""
        if self.discrete:
            emb = self.action(actions[..., 0].round().long().clamp_min(0))
        else:
            emb = self.action(actions)
        return torch.where(keep[..., None], emb, self.null_action.to(emb.dtype))

    def text_embedding(self, text: Tensor | None, keep: Tensor | None, batch: int) -> Tensor:
        """``text`` (B, E) or None, ``keep`` (B,) bool -> (B, 1, D)."""
        null = self.null_text.view(1, 1, -1).expand(batch, 1, -1)
        if text is None or self.text is None:
            return null
        emb = self.text(text)[:, None, :]
        if keep is None:
            return emb
        return torch.where(keep[:, None, None], emb, null)

    def condition(self, sigma: Tensor, act: Tensor, txt: Tensor) -> Tensor:
        """(B, T) sigma, (B, T, D) action, (B, 1, D) text -> (B, T, D)."""
        return self.time(sigma) + act + txt

    # ------------------------------------------------------------------------------------------- helpers

    def _tokens(self, latents: Tensor) -> tuple[Tensor, PatchGrid]:
        tok, g = self.patchifier.patchify(latents)  # (B, T*N, D_in)
        x = self.embed(tok)
        if self.edge is not None:
            x = x + self._edge_embedding(g, x.device).repeat(g.t, 1)
        return x, g

    def add_edge_embedding(self, levels: int) -> None:
        """Give the network a border embedding of ``levels`` clamped distances, at zero: it computes what it
        did before, so a trained network can take one on."""
        self.cfg = replace(self.cfg, edge_embedding=levels)
        self.edge = nn.Embedding(4 * levels, self.cfg.width).to(self.embed.weight.device)
        nn.init.zeros_(self.edge.weight)

    def add_blocks(self, depth: int) -> None:
        """Grow the network to ``depth`` blocks. The new blocks go last; their AdaLN-Zero gates start at zero, so
        each passes its input through unchanged and a trained network computes what it did before."""
        have = len(self.blocks)
        if depth <= have:
            raise ValueError(f"add_blocks grows the DiT: it has {have} blocks, asked for {depth}")
        dev = self.embed.weight.device
        for _ in range(depth - have):
            self.blocks.append(DiTBlock(self.cfg.width, self.cfg.heads, self.cfg.mlp_ratio).to(dev))
        self.cfg = replace(self.cfg, depth=depth)

    @property
    def older_frames(self) -> int:
        """How many frames before the previous one each noisy token embeds (``prev_frames - 1``)."""
        return self.embed_older.in_features // self.embed.in_features if self.embed_older is not None else 0

    def add_older_frames(self, prev_frames: int) -> None:
        """Embed ``prev_frames`` past frames per noisy token instead of one; the new embedding starts at
        zero, so a trained network computes what it did before."""
        if not self.cfg.prev_frame or prev_frames < 2:
            raise ValueError(f"older frames need prev_frame on and prev_frames >= 2, got {prev_frames}")
        self.cfg = replace(self.cfg, prev_frames=prev_frames)
        m, dev = prev_frames - 1, self.embed.weight.device
        self.embed_older = nn.Linear(self.embed.in_features * m, self.cfg.width).to(dev)
        nn.init.zeros_(self.embed_older.weight)
        nn.init.zeros_(self.embed_older.bias)
        self.missing_older = nn.Parameter(torch.zeros(m, self.cfg.width, device=dev))

    def _older_embedding(self, older: Tensor, missing: Tensor, per_frame: int) -> Tensor:
        """``older`` (B, T, m, C, h, w): frames j-2 .. j-1-m of each noisy frame j (zeros where there is none),
        ``missing`` (T, m) bool -> tokens to add (B, T*N, D)."""
        assert self.embed_older is not None and self.missing_older is not None
        tok = torch.cat([self.patchifier.patchify(older[:, :, i])[0] for i in range(older.shape[2])], -1)
        miss = (missing.to(tok.dtype) @ self.missing_older).repeat_interleave(per_frame, dim=0)
        return self.embed_older(tok) + miss

    def _edge_embedding(self, g: PatchGrid, device: torch.device) -> Tensor:
        """(N, D) for one frame: the sum of embeddings of each token's clamped distance to the top, bottom,
        left and right border of the frame (any H, W: only distances to the nearest borders matter)."""
        assert self.edge is not None
        e = self.cfg.edge_embedding
        y, x = torch.meshgrid(
            torch.arange(g.h, device=device), torch.arange(g.w, device=device), indexing="ij"
        )
        dist = torch.stack([y, g.h - 1 - y, x, g.w - 1 - x], dim=-1).reshape(-1, 4).clamp_max(e - 1)
        return self.edge(dist + e * torch.arange(4, device=device)).sum(1)

    def _prev_embedding(self, prev: Tensor | None, batch: int, per_frame: int) -> Tensor:
        """Tokens to add for previous latents (B, k, C, h, w); None = no previous frame (one null frame)."""
        assert self.embed_prev is not None and self.null_prev is not None
        if prev is None:
            return self.null_prev.expand(batch, per_frame, -1)
        return self.embed_prev(self.patchifier.patchify(prev)[0])

    def _rope(self, g: PatchGrid, t0: int, device: torch.device) -> tuple[Tensor, Tensor]:
        return self.rope.tables(self.patchifier.positions(g, t0, device))

    # ------------------------------------------------------------------------------------------ training

    def forward_train(
        self, clean: Tensor, noisy: Tensor, c_clean: Tensor, c_noisy: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``clean``/``noisy`` (B, T, C, h, w) latents, conditions (B, T, D).

        Returns the velocity for the noisy frames (B, T, C, h, w) and the clean stream's last hidden states
        (B, T, N, D) for the heads.
        """
        b, t = clean.shape[:2]
        xc, g = self._tokens(clean)
        n = g.per_frame
        xn, _ = self._tokens(noisy)
        if self.embed_prev is not None:
            add = [self._prev_embedding(None, b, n)]  # noisy frame 0 has no previous frame
            if t > 1:
                add.append(self._prev_embedding(clean[:, :-1], b, n))
            xn = xn + torch.cat(add, dim=1)
        if self.embed_older is not None:
            m, j = self.older_frames, torch.arange(t, device=clean.device)
            older = torch.stack(
                [
                    torch.cat([torch.zeros_like(clean[:, : i + 2]), clean[:, : -i - 2]], 1)[:, :t]
                    for i in range(m)
                ],
                dim=2,
            )
            missing = j[:, None] < torch.arange(m, device=clean.device)[None, :] + 2
            xn = xn + self._older_embedding(older, missing, n)
        w = self.cfg.context
        dev = clean.device
        i = torch.arange(t, device=dev)
        cc = (i[None, :] <= i[:, None]) & (i[None, :] >= i[:, None] - w)  # clean -> clean
        nc = (i[None, :] < i[:, None]) & (i[None, :] >= i[:, None] - w)  # noisy -> clean
        nn_ = torch.eye(t, dtype=torch.bool, device=dev)  # noisy -> itself
        top = torch.cat([cc, torch.zeros_like(cc)], dim=1)
        bottom = torch.cat([nc, nn_], dim=1)
        mask = frame_mask(torch.cat([top, bottom], dim=0), n)  # (2TN, 2TN)
        cos, sin = self._rope(g, 0, dev)
        rope = (torch.cat([cos, cos]), torch.cat([sin, sin]))
        x = torch.cat([xc, xn], dim=1)  # (B, 2TN, D)
        c = torch.cat([c_clean, c_noisy], dim=1)  # (B, 2T, D): one condition per frame
        for blk in self.blocks:
            x, _ = blk(x, c, rope, mask=mask)
        hc, hn = x[:, : t * n], x[:, t * n :]
        v = self.final(hn, c_noisy)
        v = self.patchifier.unpatchify(v, g, self.channels)
        return v, hc.reshape(b, t, n, -1)

    # ------------------------------------------------------------------------------------------ rollout

    def clean_pass(
        self, latents: Tensor, c: Tensor, t0: int, cache: list[KV] | None
    ) -> tuple[list[KV], Tensor]:
        """Add ``k`` clean frames (B, k, C, h, w) at times ``t0..t0+k-1`` to the context.

        ``cache`` (per layer, at most ``W`` frames) must be None when ``k > 1``. Returns the updated cache
        (last ``W`` frames per layer) and the frames' last hidden states (B, k, N, D).
        """
        b, k = latents.shape[:2]
        if k > 1 and cache is not None:
            raise ValueError("several clean frames can only be added to an empty context")
        x, g = self._tokens(latents)
        n = g.per_frame
        rope = self._rope(g, t0, latents.device)
        mask = None
        if k > 1:
            i = torch.arange(k, device=latents.device)
            allowed = (i[None, :] <= i[:, None]) & (i[None, :] >= i[:, None] - self.cfg.context)
            mask = frame_mask(allowed, n)
        new: list[KV] = []
        keep = self.cfg.context * n
        for li, blk in enumerate(self.blocks):
            prefix = cache[li] if cache is not None else None
            x, own = blk(x, c, rope, mask=mask, prefix=prefix)
            if prefix is not None:
                own = KV(torch.cat([prefix.k, own.k], dim=2), torch.cat([prefix.v, own.v], dim=2))
            new.append(KV(own.k[:, :, -keep:], own.v[:, :, -keep:]))
        return new, x.reshape(b, k, n, -1)

    def noisy_pass(
        self,
        x_lat: Tensor,
        c: Tensor,
        t: int,
        cache: list[KV] | None,
        prev: Tensor | None = None,
        older: Tensor | None = None,
    ) -> Tensor:
        """Velocity for one noisy frame (B, C, h, w) at time ``t`` given the cached context; ``c`` (B, 1, D).

        ``prev`` (B, C, h, w) is the latent of the last context frame (used with ``prev_frame``), ``older``
        (B, P, C, h, w) the ones before it, nearest first (used with ``prev_frames > 1``; P may fall short).
        """
        x, g = self._tokens(x_lat[:, None])
        if self.embed_prev is not None:
            x = x + self._prev_embedding(None if prev is None else prev[:, None], x.shape[0], g.per_frame)
        if self.embed_older is not None:
            m, b = self.older_frames, x.shape[0]
            have = 0 if older is None or prev is None else min(older.shape[1], m)
            pad = torch.zeros(b, m - have, *x_lat.shape[1:], device=x_lat.device, dtype=x_lat.dtype)
            hist = torch.cat([older[:, :have], pad], 1) if have else pad
            missing = torch.arange(m, device=x_lat.device)[None, :] >= have
            x = x + self._older_embedding(hist[:, None], missing, g.per_frame)
        rope = self._rope(g, t, x_lat.device)
        for li, blk in enumerate(self.blocks):
            x, _ = blk(x, c, rope, prefix=cache[li] if cache is not None else None)
        v = self.final(x, c)
        return self.patchifier.unpatchify(v, g, self.channels)[:, 0]
