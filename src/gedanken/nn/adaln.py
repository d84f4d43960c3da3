"""AdaLN-Zero transformer blocks (DiT) with *per-token* conditioning, and the sinusoidal time embedding."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gedanken.nn.attention import KV, Attention


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of (any shape) ``t`` in [0, 1] -> (*t.shape, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[..., None] * freqs  # (..., half)
    return torch.cat([args.cos(), args.sin()], dim=-1)


class TimeEmbedder(nn.Module):
    """Diffusion time (sigma in [0, 1]) -> a width-``D`` conditioning vector."""

    def __init__(self, dim: int, freq_dim: int = 128) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))  # (..., D)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    """Pre-norm attention + MLP, each modulated (shift, scale, gate) by the conditioning, gates zero-initialised."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(
        self,
        x: Tensor,
        c: Tensor,
        rope: tuple[Tensor, Tensor],
        *,
        mask: Tensor | None = None,
        prefix: KV | None = None,
    ) -> tuple[Tensor, KV]:
        """``x`` (B, L, D) tokens of ``G`` groups (frames) of ``L / G`` tokens, ``c`` (B, G, D) per-group condition.

        Returns the tokens and their own rotated keys/values.
        """
        b, l, d = x.shape
        g = c.shape[1]
        s1, g1, a1, s2, g2, a2 = self.ada(c)[:, :, None, :].chunk(6, dim=-1)  # (B, G, 1, D) each
        h = modulate(self.norm1(x).view(b, g, l // g, d), s1, g1).view(b, l, d)
        h, kv = self.attn(h, rope, mask=mask, prefix=prefix)
        x = (x.view(b, g, l // g, d) + a1 * h.view(b, g, l // g, d)).view(b, l, d)
        h = modulate(self.norm2(x).view(b, g, l // g, d), s2, g2).view(b, l, d)
        x = (x.view(b, g, l // g, d) + a2 * self.mlp(h).view(b, g, l // g, d)).view(b, l, d)
        return x, kv


class FinalLayer(nn.Module):
    """AdaLN-modulated norm and a zero-initialised projection to the output channels."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.proj = nn.Linear(dim, out)
        for m in (self.ada[1], self.proj):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """``x`` (B, L, D) in groups as in :class:`DiTBlock`, ``c`` (B, G, D) -> (B, L, out)."""
        b, l, d = x.shape
        g = c.shape[1]
        shift, scale = self.ada(c)[:, :, None, :].chunk(2, dim=-1)
        return self.proj(modulate(self.norm(x).view(b, g, l // g, d), shift, scale).view(b, l, d))
