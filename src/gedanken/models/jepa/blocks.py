"""Transformer pieces of the JEPA family: a pre-norm block, 1-D rotary time embedding and a key/value cache.

Kept inside the family (the shared ``gedanken.nn`` blocks are written for spacetime patch tokens); everything
here is plain PyTorch on ``(B, N, D)`` token tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def rope_tables(positions: Tensor, head_dim: int, base: float = 10_000.0) -> tuple[Tensor, Tensor]:
    """Cos/sin tables ``(N, head_dim // 2)`` for integer ``positions`` ``(N,)`` (rotary embedding, RoFormer)."""
    if head_dim % 2:
        raise ValueError(f"rotary embedding needs an even head width, got {head_dim}")
    inv = 1.0 / base ** (
        torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )
    ang = positions.float()[:, None] * inv[None, :]  # (N, head_dim/2)
    return ang.cos(), ang.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` ``(B, heads, N, head_dim)`` pairwise by the angles of ``cos``/``sin`` ``(N, head_dim/2)``."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


@dataclass
class KVCache:
    """Keys and values of the tokens seen so far, per layer: ``(B, heads, N, head_dim)`` each."""

    keys: list[Tensor]
    values: list[Tensor]

    @property
    def length(self) -> int:
        return 0 if not self.keys else int(self.keys[0].shape[2])

    def repeat(self, n: int) -> KVCache:
        """The same cache broadcast to ``n`` copies of a batch of one (a view, no copy)."""
        return KVCache(
            [k.expand(n, -1, -1, -1) for k in self.keys], [v.expand(n, -1, -1, -1) for v in self.values]
        )

    def window(self, max_len: int) -> KVCache:
        """Only the last ``max_len`` tokens (a sliding window; valid because positions are relative)."""
        if self.length <= max_len:
            return self
        return KVCache([k[:, :, -max_len:] for k in self.keys], [v[:, :, -max_len:] for v in self.values])


class Attention(nn.Module):
    """Multi-head self-attention with optional rotary positions and an optional cache of past keys/values."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        *,
        rope: tuple[Tensor, Tensor] | None = None,
        mask: Tensor | None = None,
        past: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``x`` ``(B, N, D)``; ``mask`` ``(N, M)`` bool (True = may attend) over the ``M = past + N`` keys."""
        b, n, d = x.shape
        q, k, v = (
            self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        )  # (B, h, N, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if past is not None:
            k = torch.cat((past[0].expand(b, -1, -1, -1), k), dim=2)
            v = torch.cat((past[1].expand(b, -1, -1, -1), v), dim=2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.transpose(1, 2).reshape(b, n, d)  # (B, N, D)
        return self.proj(out), (k, v)


def attend_one(
    blk_attn: Attention, h: Tensor, rope: tuple[Tensor, Tensor], past: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Attention of a single new token ``h`` ``(B, D)`` over cached keys/values plus itself.

    Numerically the same as :meth:`Attention.forward` with ``N = 1``, written with elementwise products:
    for one query over a handful of keys, a batched matmul per (sample, head) costs far more in overhead.
    """
    b, d = h.shape
    heads = blk_attn.heads
    hd = d // heads
    qkv = blk_attn.qkv(h).view(b, 3, heads, hd)
    qk = apply_rope(qkv[:, :2], *rope)  # (B, 2, heads, hd); rope tables (1, hd/2) broadcast
    k_new, v_new = qk[:, 1, :, None], qkv[:, 2, :, None]  # (B, heads, 1, hd)
    if past is not None:
        k_all = torch.cat((past[0].expand(b, -1, -1, -1), k_new), dim=2)
        v_all = torch.cat((past[1].expand(b, -1, -1, -1), v_new), dim=2)
    else:
        k_all, v_all = k_new, v_new
    scores = (qk[:, 0, :, None, :] * k_all).sum(-1) * hd**-0.5  # (B, heads, M)
    out = (scores.softmax(-1)[..., None] * v_all).sum(-2)  # (B, heads, hd)
    return blk_attn.proj(out.reshape(b, d)), (k_all, v_all)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(
        self,
        x: Tensor,
        *,
        rope: tuple[Tensor, Tensor] | None = None,
        mask: Tensor | None = None,
        past: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        a, kv = self.attn(self.norm1(x), rope=rope, mask=mask, past=past)
        x = x + a
        x = x + self.mlp(self.norm2(x))
        return x, kv


def band_mask(n: int, window: int, device: torch.device | str = "cpu") -> Tensor:
    """Causal mask ``(n, n)`` (True = may attend) limited to the last ``window`` positions, the query included."""
    i = torch.arange(n, device=device)
    return (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)


def sincos_2d(grid_h: int, grid_w: int, dim: int) -> Tensor:
    """Fixed 2-D sine-cosine position embedding ``(grid_h * grid_w, dim)`` (MAE / ViT convention)."""
    if dim % 4:
        raise ValueError(f"2-D sincos embedding needs a width divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10_000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    out = []
    for pos in (ys.flatten().float(), xs.flatten().float()):
        ang = pos[:, None] * omega[None, :]
        out += [ang.sin(), ang.cos()]
    return torch.cat(out, dim=1)


def init_weights(module: nn.Module) -> None:
    """Truncated-normal linear weights (std 0.02), zero biases, unit LayerNorms (ViT/DiT convention)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.Conv3d)):
            w = m.weight
            nn.init.trunc_normal_(w.view(w.shape[0], -1), std=math.sqrt(1.0 / w[0].numel()))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
