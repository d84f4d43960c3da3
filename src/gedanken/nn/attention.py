"""Multi-head self-attention with spacetime RoPE, an optional mask, and an external key/value prefix (cache)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.nn.rope import SpacetimeRope


@dataclass
class KV:
    """Rotated keys and values of some tokens, shape (B, h, N, dh) each; what a cache stores per layer."""

    k: Tensor
    v: Tensor


class Attention(nn.Module):
    """Self-attention over ``x`` whose keys/values may be prefixed by cached ones (``prefix``)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor],
        *,
        mask: Tensor | None = None,
        prefix: KV | None = None,
    ) -> tuple[Tensor, KV]:
        """``x`` (B, N, D); ``rope`` cos/sin (N, dh/2); ``mask`` (N, M + N) bool, True = may attend.

        Returns the output (B, N, D) and the rotated keys/values of ``x`` itself (for caching).
        """
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, h, N, dh)
        cos, sin = rope
        q, k = SpacetimeRope.apply(q, cos, sin), SpacetimeRope.apply(k, cos, sin)
        own = KV(k, v)
        if prefix is not None:
            k = torch.cat([prefix.k, k], dim=2)
            v = torch.cat([prefix.v, v], dim=2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, N, dh)
        return self.proj(out.transpose(1, 2).reshape(b, n, d)), own
