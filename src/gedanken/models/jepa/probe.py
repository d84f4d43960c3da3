"""Linear probe from frame latents to the object state ``(K, F)``, fitted in closed form (ridge regression).

The probe is how the audit's state metrics reach a family that never predicts pixels: ``Rollout.states`` of a
JEPA model are the probe applied to predicted latents. Its weights are buffers, so they travel in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gedanken.worlds.state import PRESENT, STATE_FIELDS, F

PROBED_FIELDS: tuple[str, ...] = ("x", "y", "vx", "vy")  # the quantities whose R^2 is reported per identity


class LinearProbe(nn.Module):
    """``state = W (z - mean) + b`` with ``z`` ``(..., d_z)`` and state ``(..., K, F)``."""

    def __init__(self, latent_dim: int, max_objects: int) -> None:
        super().__init__()
        self.k = max_objects
        self.register_buffer("mean", torch.zeros(latent_dim))
        self.register_buffer("std", torch.ones(latent_dim))
        self.register_buffer("weight", torch.zeros(latent_dim, max_objects * F))
        self.register_buffer("bias", torch.zeros(max_objects * F))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, z: Tensor) -> Tensor:
        """Latents ``(..., d_z)`` -> states ``(..., K, F)``; ``present`` is rounded to 0/1."""
        y = self.raw(z)
        present = (y[..., PRESENT] > 0.5).to(y.dtype)
        return torch.cat((present[..., None], y[..., 1:]), dim=-1)

    @torch.no_grad()
    def fit(self, z: Tensor, states: Tensor, ridge: float) -> None:
        """Ridge regression on centred latents ``(N, d_z)`` -> states ``(N, K, F)``.

        The penalty is ``ridge * N * mean feature variance`` (scale-free). Latents are centred, not divided
        by their per-feature std: a feature constant in training must not explode on held-out data.

        ``present`` of every slot is fitted on all frames; the other fields of slot ``k`` only on the frames
        where ``k`` is present (absent slots are all zeros, which a linear map cannot mix with real values).
        """
        n, k = z.shape[0], self.k
        if z.ndim != 2 or states.shape != (n, k, F):
            raise ValueError(
                f"probe.fit needs z (N, d) and states (N, {k}, {F}); got {tuple(z.shape)}, "
                f"{tuple(states.shape)}"
            )
        z, y = z.double(), states.double()
        mean = z.mean(0)
        x = z - mean
        std = torch.ones_like(mean)
        scale = float(x.var(0).mean().clamp_min(1e-12))
        weight = torch.zeros(z.shape[1], k, F, dtype=torch.float64)
        bias = torch.zeros(k, F, dtype=torch.float64)
        eye = torch.eye(x.shape[1], dtype=x.dtype)

        def solve(rows: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
            xr = x[rows]
            tm = targets.mean(0)
            w = torch.linalg.solve(xr.T @ xr + ridge * scale * xr.shape[0] * eye, xr.T @ (targets - tm))
            return w, tm

        weight[:, :, PRESENT], bias[:, PRESENT] = solve(torch.ones(n, dtype=torch.bool), y[:, :, PRESENT])
        fields = [f for f in range(F) if f != PRESENT]
        for slot in range(k):
            rows = y[:, slot, PRESENT] > 0.5
            if int(rows.sum()) < 2:
                continue
            w, b = solve(rows, y[rows][:, slot, fields])
            weight[:, slot, fields], bias[slot, fields] = w, b
        self.mean.copy_(mean.float())
        self.std.copy_(std.float())
        self.weight.copy_(weight.reshape(z.shape[1], -1).float())
        self.bias.copy_(bias.reshape(-1).float())
        self.fitted.fill_(True)

    def raw(self, z: Tensor) -> Tensor:
        """Unrounded readout ``(..., K, F)`` (``present`` as a score)."""
        y = ((z - self.mean) / self.std) @ self.weight + self.bias
        return y.view(*z.shape[:-1], self.k, F)

    @torch.no_grad()
    def metric(self, states: Tensor) -> Tensor:
        """``(d_z, K * 4)``: latent differences ``@`` this = differences of every identity's x, y, vx, vy,
        each divided by that field's std over ``states`` ``(N, K, F)`` (present slots): the probe's metric."""
        if not bool(self.fitted):
            raise ValueError("the probe is not fitted; fit it before asking for its metric")
        fields = [STATE_FIELDS.index(f) for f in PROBED_FIELDS]
        here = states[..., PRESENT] > 0.5
        scale = torch.stack([states[..., f][here].float().std() for f in fields]).clamp_min(1e-6)
        w = self.weight.view(-1, self.k, F)[:, :, fields] / scale  # (d, K, 4)
        return (w / self.std[:, None, None]).reshape(w.shape[0], -1)


@dataclass(frozen=True)
class ProbeReport:
    """R^2 of a probe on held-out data, per identity and quantity (NaN where the quantity does not vary)."""

    r2: dict[
        str, dict[str, float]
    ]  # {"id0": {"x": .., "y": .., "vx": .., "vy": ..}, ...} present identities only
    position_r2: float  # mean of x and y over identities
    velocity_r2: float  # mean of vx and vy over identities
    samples: int

    def to_json(self) -> dict[str, object]:
        return {
            "r2": self.r2,
            "position_r2": self.position_r2,
            "velocity_r2": self.velocity_r2,
            "samples": self.samples,
        }


def r2_score(pred: Tensor, true: Tensor) -> Tensor:
    """Coefficient of determination per column of ``(N, M)`` arrays; NaN for columns with zero variance."""
    pred, true = pred.double(), true.double()
    ss_res = ((true - pred) ** 2).sum(0)
    ss_tot = ((true - true.mean(0)) ** 2).sum(0)
    out = 1.0 - ss_res / ss_tot.clamp_min(1e-300)
    return torch.where(ss_tot > 1e-12 * true.shape[0], out, torch.full_like(out, float("nan")))


def probe_report(pred: Tensor, true: Tensor) -> ProbeReport:
    """R^2 per identity and probed field of predicted vs true states ``(N, K, F)`` (frames where present)."""
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(
            f"pred and true must both be (N, K, F), got {tuple(pred.shape)} and {tuple(true.shape)}"
        )
    out: dict[str, dict[str, float]] = {}
    pos, vel = [], []
    for k in range(true.shape[1]):
        here = true[:, k, PRESENT] > 0.5
        if int(here.sum()) < 2:
            continue
        cols = [STATE_FIELDS.index(f) for f in PROBED_FIELDS]
        r2 = r2_score(pred[here][:, k, cols], true[here][:, k, cols])
        row = {f: float(v) for f, v in zip(PROBED_FIELDS, r2, strict=True)}
        out[f"id{k}"] = row
        pos += [row["x"], row["y"]]
        vel += [row["vx"], row["vy"]]

    def mean(v: list[float]) -> float:
        v = [x for x in v if x == x]
        return float(sum(v) / len(v)) if v else float("nan")

    return ProbeReport(out, mean(pos), mean(vel), int(true.shape[0]))
