"""Cross-entropy method (CEM) planning against any :class:`~gedanken.models.protocol.WorldModel`.

Each iteration samples ``candidates`` action sequences around a Gaussian (``mean``, ``std``) over
``horizon x A`` (in ``[-1, 1]`` units), rolls all of them out in one batched call, keeps the ``elites``
cheapest and refits the Gaussian to them. The plan is the cheapest sequence seen. For receding-horizon
control the final mean, shifted by one step, warm-starts the next call. Same ``seed`` -> same plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from gedanken.models.protocol import WorldModel
from gedanken.planning.base import ActionBounds, Plan, shared_context, single_context
from gedanken.planning.objectives import Objective


@dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy method settings (action units are ``[-1, 1]`` per dimension)."""

    horizon: int = 8  # steps planned ahead
    candidates: int = 300  # action sequences evaluated per iteration (one batched rollout)
    iterations: int = 3  # refits of the sampling distribution per planning call
    elites: int = 30  # cheapest candidates the distribution is refitted to
    init_std: float = 0.7  # initial std of the sampling Gaussian
    min_std: float = 0.05  # floor on the std, keeps exploring
    momentum: float = 0.1  # new = momentum * old + (1 - momentum) * elite statistics
    warm_start: bool = True  # start the next call from this call's mean shifted by one step

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.candidates < 2 or self.iterations < 1:
            raise ValueError("need horizon >= 1, candidates >= 2 and iterations >= 1")
        if not 1 <= self.elites <= self.candidates:
            raise ValueError(f"elites must be in [1, candidates={self.candidates}], got {self.elites}")


def shifted(mean: Tensor) -> Tensor:
    """Warm start: drop the executed first step, repeat the last one."""
    return torch.cat((mean[1:], mean[-1:]), dim=0)


class CEMPlanner:
    """CEM over a world model's rollouts, scored by an objective; see the module docstring."""

    def __init__(
        self, model: WorldModel, objective: Objective, bounds: ActionBounds, config: CEMConfig
    ) -> None:
        self.model = model
        self.objective = objective
        self.bounds = bounds
        self.config = config
        self._warm: Tensor | None = None

    def reset(self) -> None:
        """Forget the warm start (call at the start of an episode)."""
        self._warm = None

    def plan(
        self, frames: Tensor, actions: Tensor | None = None, *, seed: int = 0, keep_rollout: bool = False
    ) -> Plan:
        """Plan from context ``frames`` ``(T, H, W, 3)`` (and the ``(T, A)`` actions between them)."""
        cfg = self.config
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(int(seed))
        a_dim = self.bounds.dim
        mean = self._warm if (cfg.warm_start and self._warm is not None) else torch.zeros(cfg.horizon, a_dim)
        std = torch.full((cfg.horizon, a_dim), cfg.init_std)
        ctx = shared_context(self.model, frames, actions, cfg.candidates)
        best_u, best_c = mean.clone(), float("inf")
        history: list[float] = []
        for it in range(cfg.iterations):
            noise = torch.randn(cfg.candidates, cfg.horizon, a_dim, generator=gen)
            u = (mean + std * noise).clamp(-1.0, 1.0)  # (N, H, A)
            u[0] = mean
            u[1] = best_u
            cost = self.objective.cost(
                self.model.rollout(ctx, self.bounds.to_raw(u), seed=seed + it), self.model
            )
            cost = torch.nan_to_num(cost.detach().float().cpu(), nan=float("inf"))
            order = torch.argsort(cost, stable=True)
            if float(cost[order[0]]) < best_c:
                best_c, best_u = float(cost[order[0]]), u[order[0]].clone()
            elite = u[order[: cfg.elites]]
            mean = cfg.momentum * mean + (1 - cfg.momentum) * elite.mean(0)
            std = (cfg.momentum * std + (1 - cfg.momentum) * elite.std(0, unbiased=False)).clamp_min(
                cfg.min_std
            )
            history.append(best_c)
        self._warm = shifted(best_u)
        raw = self.bounds.to_raw(best_u)
        rollout = None
        if keep_rollout:
            rollout = self.model.rollout(single_context(self.model, frames, actions), raw[None], seed=seed)
        return Plan(
            actions=raw, cost=best_c, history=history, seconds=time.perf_counter() - t0, rollout=rollout
        )
