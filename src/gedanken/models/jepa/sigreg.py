"""SIGReg (sketched isotropic Gaussian regulariser, LeJEPA) and the collapse diagnostics reported in docs/jepa.md."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def sigreg(z: Tensor, slices: int, generator: torch.Generator | None = None, knots: int = 17) -> Tensor:
    """Epps-Pulley test statistic of ``slices`` random 1-D projections of ``z`` ``(N, d)`` against N(0, 1).

    Zero exactly when every projection's empirical characteristic function matches the standard normal one
    on ``t in [-5, 5]``; minimising it pushes the embedding distribution towards N(0, I), which rules out both
    complete collapse (all std 0) and dimensional collapse (rank < d) without targets, EMA or stop-gradient.
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"sigreg needs (N >= 2, d) embeddings, got {tuple(z.shape)}")
    a = torch.randn(z.shape[1], slices, generator=generator, device="cpu").to(z)
    a = a / a.norm(dim=0, keepdim=True)
    t = torch.linspace(-5.0, 5.0, knots, device=z.device, dtype=z.dtype)
    phi = torch.exp(-0.5 * t**2)  # characteristic function of N(0, 1), also the weight
    xt = (z @ a)[..., None] * t  # (N, slices, knots)
    re, im = xt.cos().mean(0), xt.sin().mean(0)  # (slices, knots)
    err = ((re - phi) ** 2 + im**2) * phi
    return torch.trapezoid(err, t, dim=-1).mean() * z.shape[0]


@dataclass(frozen=True)
class CollapseStats:
    """How spread out a set of embeddings is."""

    mean_std: float  # average over dimensions of the per-dimension std across samples (0 = complete collapse)
    effective_rank: (
        float  # exp(entropy of the normalised singular values) of the centred embeddings (Roy 2007)
    )
    dims: int  # embedding width d (the largest possible effective rank, with N >= d samples)
    samples: int  # N


def collapse_stats(z: Tensor) -> CollapseStats:
    """:class:`CollapseStats` of embeddings ``(N, d)``."""
    if z.ndim != 2:
        raise ValueError(f"expected (N, d) embeddings, got {tuple(z.shape)}")
    z = z.detach().double()
    zc = z - z.mean(0, keepdim=True)
    s = torch.linalg.svdvals(zc)
    p = s / s.sum().clamp_min(1e-12)
    erank = float(torch.exp(-(p * p.clamp_min(1e-30).log()).sum())) if float(s.sum()) > 1e-9 else 0.0
    return CollapseStats(
        mean_std=float(z.std(0).mean()), effective_rank=erank, dims=int(z.shape[1]), samples=int(z.shape[0])
    )
