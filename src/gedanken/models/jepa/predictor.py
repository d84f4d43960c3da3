"""Action-conditioned predictor: a frame-causal transformer over frame latents and actions (V-JEPA 2-AC, LeWM).

One token per frame: ``token_t = in(z_t) + act(a_t)``; causal attention over the last ``max_frames`` tokens with
rotary time positions; ``z_{t+1} = z_t + out(h_t)``. Training runs all tokens in parallel under a causal mask;
planning steps one token at a time against a key/value cache, which gives the same numbers (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gedanken.models.jepa.blocks import Block, KVCache, attend_one, band_mask, init_weights, rope_tables
from gedanken.models.jepa.config import PredictorConfig
from gedanken.models.jepa.interaction import KeypointInteraction


@dataclass
class PredictorState:
    """What the predictor carries between steps: the cache of past tokens and the latest frame latent."""

    cache: KVCache
    latent: Tensor  # (B, d_z) latent of the newest frame (its token is built when its action is known)
    position: int  # time index of the newest frame (RoPE positions are relative; only differences matter)

    def repeat(self, n: int) -> PredictorState:
        if self.latent.shape[0] != 1:
            raise ValueError(f"can only repeat a batch of one, got batch {self.latent.shape[0]}")
        return PredictorState(self.cache.repeat(n), self.latent.expand(n, -1), self.position)


class ActionPredictor(nn.Module):
    """``(z_{<=t}, a_{<=t}) -> z_{t+1}`` in latent space."""

    def __init__(self, cfg: PredictorConfig, latent_dim: int, action_dim: int, keypoints: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Linear(latent_dim, cfg.dim)
        self.act = nn.Sequential(nn.Linear(action_dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.out = nn.Linear(cfg.dim, latent_dim)
        init_weights(self)
        nn.init.zeros_(self.out.weight)  # start as the identity dynamics z_{t+1} = z_t
        self.interaction: KeypointInteraction | None = None
        if cfg.interaction:
            if keypoints * 5 != latent_dim:
                raise ValueError(
                    "PredictorConfig.interaction needs the keypoint encoder's latent (5 values per keypoint); "
                    f"got latent_dim={latent_dim} with keypoints={keypoints}"
                )
            self.interaction = KeypointInteraction(keypoints, action_dim, cfg.interaction)

    def _next(self, z: Tensor, h: Tensor, action: Tensor) -> Tensor:
        """``z_{t+1}`` from ``z_t``, the transformer's output ``h_t`` and the (normalised) action ``a_t``."""
        nxt = z + self.out(self.norm(h))
        return nxt if self.interaction is None else nxt + self.interaction(z, action)

    def _rope(self, start: int, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        return rope_tables(torch.arange(start, start + n, device=device), self.cfg.dim // self.cfg.heads)

    def forward(self, latents: Tensor, actions: Tensor) -> Tensor:
        """Teacher-forced: latents ``(B, T, d_z)``, actions ``(B, T, A)`` -> predicted next latents ``(B, T, d_z)``.

        Output ``t`` predicts ``z_{t+1}`` from ``z_{<=t}`` and ``a_{<=t}``, attending to at most ``max_frames``
        frames (a banded causal mask, the same window the cached path keeps).
        """
        t = latents.shape[1]
        x = self.inp(latents) + self.act(actions)  # (B, T, D)
        rope = self._rope(0, t, latents.device)
        mask = band_mask(t, self.cfg.max_frames, latents.device)
        for blk in self.blocks:
            x, _ = blk(x, rope=rope, mask=mask)
        return self._next(latents, x, actions)

    def start(self, latents: Tensor, actions: Tensor | None) -> PredictorState:
        """Cache the context: latents ``(B, T, d_z)``, actions ``(B, T, A)`` (the last one is ignored)."""
        b, t, _ = latents.shape
        cache = KVCache([], [])
        if t > 1:
            if actions is None:
                raise ValueError(
                    "a context of more than one frame needs the actions taken between its frames"
                )
            x = self.inp(latents[:, :-1]) + self.act(actions[:, : t - 1])  # (B, T-1, D)
            rope = self._rope(0, t - 1, latents.device)
            mask = band_mask(t - 1, self.cfg.max_frames, latents.device)
            for blk in self.blocks:
                x, (k, v) = blk(x, rope=rope, mask=mask)
                cache.keys.append(k)
                cache.values.append(v)
            cache = cache.window(self.cfg.max_frames - 1)
        return PredictorState(cache, latents[:, -1], t - 1)

    def step(
        self, state: PredictorState, action: Tensor, action_token: Tensor | None = None
    ) -> tuple[PredictorState, Tensor]:
        """One step under ``action`` ``(B, A)`` (or its precomputed embedding ``(B, D)``): the new state and
        the predicted latent ``(B, d_z)``."""
        z = state.latent
        x = self.inp(z) + (self.act(action) if action_token is None else action_token)  # (B, D)
        rope = self._rope(state.position, 1, z.device)
        keys, values = [], []
        has_past = state.cache.length > 0
        for i, blk in enumerate(self.blocks):
            past = (state.cache.keys[i], state.cache.values[i]) if has_past else None
            a, (k, v) = attend_one(blk.attn, blk.norm1(x), rope, past)
            x = x + a
            x = x + blk.mlp(blk.norm2(x))
            keys.append(k)
            values.append(v)
        nxt = self._next(z, x, action)
        cache = KVCache(keys, values).window(self.cfg.max_frames - 1)
        return PredictorState(cache, nxt, state.position + 1), nxt

    def rollout(self, state: PredictorState, actions: Tensor) -> Tensor:
        """Autoregressive latents ``(B, H, d_z)`` under actions ``(B, H, A)``."""
        tokens = self.act(actions)  # (B, H, D): every action embedded in one call
        out = []
        for h in range(actions.shape[1]):
            state, z = self.step(state, actions[:, h], tokens[:, h])
            out.append(z)
        return torch.stack(out, dim=1)
