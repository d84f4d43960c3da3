"""Finite Scalar Quantization (Mentzer et al., 2023): a codebook with no codebook.

Each of ``d`` channels is bounded and rounded to one of ``levels[i]`` values, so the implicit codebook is the
product ``prod(levels)`` and every code is used as long as the encoder spreads its outputs; there is nothing
to collapse, no commitment loss and no codebook update. Gradients pass straight through the rounding.

Codes live in ``[-1, 1]`` per channel (``levels[i]`` evenly spaced values); indices are the mixed-radix
number of the per-channel level indices, in ``[0, prod(levels))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class FSQConfig:
    """Levels per channel; the codebook size is their product."""

    levels: tuple[int, ...] = (8, 5, 5, 5)  # levels per channel (each >= 2); (8, 5, 5, 5) -> 1000 codes


@dataclass
class Quantized:
    """The output of :meth:`FSQ.forward` for latents of shape ``(*S, d)``."""

    codes: Tensor  # (*S, d) quantized values in [-1, 1], straight-through gradient to the input
    indices: Tensor  # (*S,) int64 code index in [0, codebook_size)


class FSQ(nn.Module):
    """Bound, round and index ``d = len(levels)`` channels; no learned parameters."""

    def __init__(self, cfg: FSQConfig = FSQConfig()) -> None:
        super().__init__()
        if not cfg.levels or any(int(lv) < 2 for lv in cfg.levels):
            raise ValueError(f"FSQ levels must be a non-empty tuple of ints >= 2, got {cfg.levels}")
        self.cfg = cfg
        levels = torch.tensor(cfg.levels, dtype=torch.int64)
        basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.int64), levels[:-1]]), 0)
        # Buffers are not persistent: they are a pure function of the config, not state to checkpoint.
        self.register_buffer("_levels", levels, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        """Number of channels ``d``."""
        return len(self.cfg.levels)

    @property
    def codebook_size(self) -> int:
        """``prod(levels)``."""
        return int(torch.prod(torch.tensor(self.cfg.levels)).item())

    def bound(self, z: Tensor) -> Tensor:
        """Squash ``z`` to ``[0, levels - 1]`` per channel (continuous, differentiable)."""
        half = (self._levels - 1).to(z.dtype) / 2
        return (torch.tanh(z) + 1) * half  # (*S, d) in [0, L-1]

    def forward(self, z: Tensor, *, noise: float = 0.0) -> Quantized:
        """Quantize latents ``z`` (``(*S, d)``, any real values).

        With ``noise > 0`` (training only), that share of the rows get additive uniform noise of one
        quantization step instead of rounding (Ballé et al.'s proxy), which gives the encoder a true gradient
        while carrying the same amount of information; ``indices`` always come from rounding.
        """
        if z.shape[-1] != self.dim:
            raise ValueError(
                f"FSQ expects latents with {self.dim} channels (levels {self.cfg.levels}), "
                f"got shape {tuple(z.shape)}"
            )
        b = self.bound(z)
        q = b + (torch.round(b) - b).detach()  # straight-through rounding, (*S, d) in {0..L-1}
        if noise > 0:
            use = (torch.rand(b.shape[:-1] + (1,), device=b.device) < noise).to(b.dtype)
            q = use * (b + torch.rand_like(b) - 0.5) + (1 - use) * q
        idx = (torch.round(b.detach()).long() * self._basis).sum(-1)  # (*S,)
        return Quantized(codes=self._to_unit(q), indices=idx)

    def _to_unit(self, q: Tensor) -> Tensor:
        half = (self._levels - 1).to(q.dtype) / 2
        return q / half - 1  # {0..L-1} -> [-1, 1]

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """``(*S,)`` int64 indices -> ``(*S, d)`` codes in ``[-1, 1]``."""
        if indices.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f"indices must lie in [0, {self.codebook_size}), got "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        return self._to_unit(self.digits(indices).float())

    def digits(self, indices: Tensor) -> Tensor:
        """``(*S,)`` indices -> ``(*S, d)`` per-channel level indices in ``[0, levels[i])`` (no range check)."""
        return (indices.long().unsqueeze(-1) // self._basis) % self._levels

    def digits_to_indices(self, digits: Tensor) -> Tensor:
        """``(*S, d)`` per-channel level indices -> ``(*S,)`` code indices (the inverse of :meth:`digits`)."""
        return (digits.long() * self._basis).sum(-1)

    def codes_to_indices(self, codes: Tensor) -> Tensor:
        """``(*S, d)`` codes in ``[-1, 1]`` (as produced by :meth:`forward`) -> ``(*S,)`` indices."""
        half = (self._levels - 1).to(codes.dtype) / 2
        per = torch.round((codes + 1) * half).long().clamp(min=0)
        per = torch.minimum(per, self._levels - 1)
        return (per * self._basis).sum(-1)


def codebook_usage(indices: Tensor, codebook_size: int) -> dict[str, float]:
    """Share of the codebook used by ``indices`` and the perplexity of their distribution."""
    counts = torch.bincount(indices.reshape(-1).long(), minlength=codebook_size).float()
    p = counts / counts.sum().clamp(min=1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"usage": float((counts > 0).float().mean()), "perplexity": float(entropy.exp())}
