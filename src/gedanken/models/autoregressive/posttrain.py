"""Post-training on a few labelled steps: connect real actions to a model pre-trained on frames alone.

Two ways, both reported:

* :func:`fit_action_map` runs the frozen latent action model over labelled transitions and counts which
  latent action each real action produced. Discrete spaces get a latent -> real table (majority vote, used
  to *read* actions off video) and a real -> latent table (the most frequent latent action of each real
  action, used to *drive* the model); continuous spaces get the mean real action of each latent action and
  drive the model by the nearest one.
* The adapter (an embedding table for discrete actions, a small MLP for continuous ones) maps real actions
  straight into the dynamics' action-embedding space. It is initialised from the map (discrete) and trained
  with the dynamics frozen on the same labelled windows, by the dynamics' own masked-token loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gedanken.models.autoregressive.model import AutoregressiveWorldModel

log = logging.getLogger(__name__)


@dataclass
class ActionMapResult:
    """What :func:`fit_action_map` fitted, and how well the latent actions explain the real ones."""

    steps: int  # labelled transitions used
    counts: (
        np.ndarray
    )  # (|A|, n) for discrete spaces: labelled steps per (latent, real) pair; (|A|,) otherwise
    train_accuracy: (
        float  # latent -> real accuracy on the labelled steps themselves (discrete; NaN otherwise)
    )


@dataclass
class ActionMapEval:
    """Latent -> real action accuracy (discrete) or error (continuous) on held-out transitions."""

    steps: int  # transitions evaluated
    accuracy: (
        float  # share of transitions whose real action is the one the latent maps to (NaN if continuous)
    )
    mse: float  # mean squared error of the mapped real action (continuous; NaN if discrete)
    confusion: np.ndarray  # (n, n) true x predicted counts for discrete spaces, empty otherwise


def _latents(model: AutoregressiveWorldModel, frames: list[Tensor]) -> Tensor:
    out = []
    with torch.no_grad():
        for f in frames:
            out.append(model.lam.infer(f[None].to(model.device))[0].cpu())  # (T-1,)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def fit_action_map(
    model: AutoregressiveWorldModel, frames: list[Tensor], actions: list[Tensor]
) -> ActionMapResult:
    """Fit the latent <-> real map on labelled segments (``frames[i]`` (T_i, H, W, 3), ``actions[i]`` (T_i, A)).

    ``actions[i][t]`` leads from ``frames[i][t]`` to ``frames[i][t + 1]``; the last row is not used.
    """
    if len(frames) != len(actions) or not frames:
        raise ValueError(
            f"need matching, non-empty lists of frame and action segments, got {len(frames)} and "
            f"{len(actions)}"
        )
    lat = _latents(model, frames)  # (M,)
    real = torch.cat([a[:-1] for a in actions]).float()  # (M, A)
    na, cfg = model.cfg.lam.num_actions, model.cfg
    dev = model.latent_counts.device
    if cfg.action_classes:
        n = cfg.action_classes
        idx = real[:, 0].round().long().clamp(0, n - 1)
        counts = torch.zeros(na, n)
        counts.index_put_((lat, idx), torch.ones(len(lat)), accumulate=True)
        model.latent_counts.copy_(counts.sum(1).to(dev))
        model.latent_to_real.copy_(counts.argmax(1, keepdim=True).float().to(dev))
        # Drive each real action by its most frequent latent; unseen real actions fall back to latent 0.
        model.real_to_latent.copy_(counts.argmax(0).to(dev))
        pred = counts.argmax(1)[lat]
        acc = float((pred == idx).float().mean()) if len(lat) else float("nan")
        return ActionMapResult(steps=len(lat), counts=counts.numpy(), train_accuracy=acc)
    sums = torch.zeros(na, cfg.action_dim)
    sums.index_add_(0, lat, real)
    cnt = torch.bincount(lat, minlength=na).float()
    model.latent_counts.copy_(cnt.to(dev))
    model.latent_to_real.copy_((sums / cnt.clamp(min=1)[:, None]).to(dev))
    return ActionMapResult(steps=len(lat), counts=cnt.numpy(), train_accuracy=float("nan"))


def evaluate_action_map(
    model: AutoregressiveWorldModel, frames: list[Tensor], actions: list[Tensor]
) -> ActionMapEval:
    """How well ``latent -> real`` (the fitted map) recovers held-out real actions from frames alone."""
    lat = _latents(model, frames)
    real = torch.cat([a[:-1] for a in actions]).float()
    mapped = model.latent_to_real.cpu()[lat]  # (M, A)
    if model.cfg.action_classes:
        n = model.cfg.action_classes
        t, p = real[:, 0].round().long().clamp(0, n - 1), mapped[:, 0].long()
        conf = np.zeros((n, n), dtype=np.int64)
        np.add.at(conf, (t.numpy(), p.numpy()), 1)
        return ActionMapEval(
            steps=len(lat), accuracy=float((t == p).float().mean()), mse=float("nan"), confusion=conf
        )
    return ActionMapEval(
        steps=len(lat),
        accuracy=float("nan"),
        mse=float(((mapped - real) ** 2).mean()),
        confusion=np.zeros((0, 0), dtype=np.int64),
    )


def init_adapter_from_map(model: AutoregressiveWorldModel) -> None:
    """Start a discrete adapter at the latent embedding its real action maps to (a no-op for continuous)."""
    if model.cfg.action_classes and model.map_fitted:
        with torch.no_grad():
            model.adapter.weight.copy_(model.latent_embed.weight[model.real_to_latent])  # type: ignore[union-attr]


def labelled_segments(
    frames: list[Tensor], actions: list[Tensor], budget: int, segment: int
) -> tuple[list[Tensor], list[Tensor]]:
    """Cut segments of ``segment`` frames (``segment - 1`` labelled transitions) from the start of successive
    episodes until ``budget`` labelled transitions are used; the last segment is shortened to fit."""
    if budget < 1 or segment < 2:
        raise ValueError(f"need budget >= 1 and segment >= 2, got {budget}, {segment}")
    fs, as_ = [], []
    used = 0
    for f, a in zip(frames, actions, strict=True):
        take = min(segment, len(f), budget - used + 1)
        if take < 2:
            break
        fs.append(f[:take])
        a = a[:take].clone()
        a[-1] = 0  # the last frame's action leads nowhere inside the segment: not a labelled step
        as_.append(a)
        used += take - 1
        if used >= budget:
            break
    log.info("labelled set: %d segments, %d labelled transitions", len(fs), used)
    return fs, as_
