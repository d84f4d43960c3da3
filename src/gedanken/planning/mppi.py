"""Model-predictive path integral (MPPI) planning against any :class:`~gedanken.models.protocol.WorldModel`.

Each iteration perturbs the current mean sequence with Gaussian noise, rolls every candidate out in one
batched call and moves the mean to the softmin-weighted average of the candidates
(``w_i ~ exp(-(c_i - c_min) / (temperature * (c_max - c_min)))``: the temperature is relative to the spread of
costs, so it needs no retuning per objective). Warm-started by the previous mean shifted one step, one
iteration per control step is the classic setting. Same ``seed`` -> same plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from gedanken.models.protocol import WorldModel
from gedanken.planning.base import ActionBounds, Plan, shared_context, single_context
from gedanken.planning.cem import shifted
from gedanken.planning.objectives import Objective


@dataclass(frozen=True)
class MPPIConfig:
    """MPPI settings (action units are ``[-1, 1]`` per dimension)."""

    horizon: int = 8  # steps planned ahead
    candidates: int = 300  # perturbed sequences per iteration (one batched rollout)
    iterations: int = 2  # mean updates per planning call
    noise_std: float = 0.6  # std of the perturbations
    temperature: float = 0.05  # softmin temperature relative to the cost spread of the iteration
    warm_start: bool = True  # start the next call from this call's mean shifted by one step

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.candidates < 2 or self.iterations < 1:
            raise ValueError("need horizon >= 1, candidates >= 2 and iterations >= 1")
        if self.temperature <= 0 or self.noise_std <= 0:
            raise ValueError("temperature and noise_std must be > 0")


class MPPIPlanner:
    """MPPI over a world model's rollouts, scored by an objective; see the module docstring."""

    def __init__(
        self, model: WorldModel, objective: Objective, bounds: ActionBounds, config: MPPIConfig
    ) -> None:
        self.model = model
        self.objective = objective
        self.bounds = bounds
        self.config = config
        self._warm: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the warm start (call at the start of an episode)."""
        self._warm = None

    def plan(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor | None = None,
        *,
        seed: int = 0,
        keep_rollout: bool = False,
    ) -> Plan:
        """Plan from context ``frames`` ``(T, H, W, 3)`` (and the ``(T, A)`` actions between them)."""
        cfg = self.config
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(int(seed))
        a_dim = self.bounds.dim
        mean = self._warm if (cfg.warm_start and self._warm is not None) else torch.zeros(cfg.horizon, a_dim)
        ctx = shared_context(self.model, frames, actions, cfg.candidates)
        history: list[float] = []
        cost_of_mean = float("inf")
        for it in range(cfg.iterations):
            noise = torch.randn(cfg.candidates, cfg.horizon, a_dim, generator=gen) * cfg.noise_std
            u = (mean + noise).clamp(-1.0, 1.0)  # (N, H, A)
            u[0] = mean
            cost = self.objective.cost(
                self.model.rollout(ctx, self.bounds.to_raw(u), seed=seed + it), self.model
            )
            cost = torch.nan_to_num(cost.detach().float().cpu(), nan=float("inf"), posinf=float("inf"))
            finite = torch.isfinite(cost)
            c = torch.where(finite, cost, cost[finite].max() if finite.any() else torch.zeros(()))
            spread = (c.max() - c.min()).clamp_min(1e-9)
            w = torch.softmax(-(c - c.min()) / (cfg.temperature * spread), dim=0)  # (N,)
            cost_of_mean = float(cost[0])
            mean = (w[:, None, None] * u).sum(0)
            history.append(float(cost.min()))
        self._warm = shifted(mean)
        raw = self.bounds.to_raw(mean)
        rollout = None
        if keep_rollout:
            rollout = self.model.rollout(single_context(self.model, frames, actions), raw[None], seed=seed)
        return Plan(
            actions=raw, cost=cost_of_mean, history=history, seconds=time.perf_counter() - t0, rollout=rollout
        )
