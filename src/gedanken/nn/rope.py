"""Rotary position embedding over space and time (RoPE on ``(t, y, x)`` token coordinates).

The head dimension is split into three groups of rotation pairs, one per axis; a token's query and key are
rotated by angles proportional to its coordinates, so attention scores depend only on *relative* offsets.
That is what lets a model trained on short windows attend across a sliding context at frame 256: only the
offsets inside the window matter, not the absolute frame index.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class RopeConfig:
    """How the rotation pairs of one head are shared among the axes."""

    head_dim: int  # per-head width; must be even
    theta: float = 100.0  # base wavelength; small grids (<= 64 positions per axis) need no more
    time_share: float = 0.34  # fraction of the pairs given to the time axis; the rest split between y and x


class SpacetimeRope:
    """Computes ``cos``/``sin`` tables for ``(N, 3)`` positions and applies them to ``(B, h, N, dh)`` tensors."""

    def __init__(self, cfg: RopeConfig) -> None:
        if cfg.head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {cfg.head_dim}")
        pairs = cfg.head_dim // 2
        nt = max(1, round(pairs * cfg.time_share))
        ny = (pairs - nt) // 2
        nx = pairs - nt - ny
        self.cfg = cfg
        self.split = (nt, ny, nx)
        self.inv_freq = [cfg.theta ** (-torch.arange(n, dtype=torch.float32) / max(n, 1)) for n in self.split]

    def tables(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        """``pos`` (N, 3) float (t, y, x) -> ``cos``, ``sin`` of shape (N, dh/2)."""
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ValueError(f"positions must be (N, 3) (t, y, x), got {tuple(pos.shape)}")
        pos = pos.float()
        ang = torch.cat([pos[:, i : i + 1] * f.to(pos.device) for i, f in enumerate(self.inv_freq)], dim=1)
        return ang.cos(), ang.sin()

    @staticmethod
    def apply(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Rotate ``x`` (B, h, N, dh) by the tables (N, dh/2)."""
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
