"""Planning objectives: the cost of each predicted trajectory of a :class:`~gedanken.models.protocol.Rollout`.

An objective scores ``B`` candidate rollouts ``(B, H, ...)`` with one number each (lower is better). Per-step
costs ``c_h`` are combined as ``terminal_weight * c_H + running_weight * mean_h c_h``, so the plan is pulled
towards the goal early (running) and judged at the end of the horizon (terminal).

* :class:`LatentGoal`: distance between predicted latents and a goal latent (V-JEPA 2-AC's energy).
* :class:`ImageGoal`: a goal picture; encoded by the model when it can (``model.encode``), otherwise compared
  with the rollout's pictures in pixel space.
* :class:`StateGoal`: per-identity Euclidean distance between predicted object states (``Rollout.states``:
  a state head, a probe, the true simulator, or the colour judge on pictures) and a goal state.
* :class:`SumObjective`: a weighted sum of objectives (e.g. a goal plus a task's shaping term).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from gedanken.models.protocol import Rollout, WorldModel


class PlanningError(Exception):
    """A model and an objective that cannot work together (e.g. a state goal for a model without states)."""


@runtime_checkable
class Objective(Protocol):
    """``cost(rollout, model) -> (B,)``; ``model`` is the world model that produced ``rollout``."""

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor: ...


@runtime_checkable
class LatentEncoder(Protocol):
    """Models that can map pictures into their latent space (``(B, T, H, W, 3)`` -> ``(B, T, ...)``)."""

    def encode(self, frames: Tensor) -> Tensor: ...


class Distance(str, Enum):
    """How two latents are compared."""

    L1 = "l1"  # mean absolute difference (V-JEPA 2-AC)
    L2 = "l2"  # Euclidean norm


def _combine(per_step: Tensor, terminal_weight: float, running_weight: float) -> Tensor:
    """Per-step costs ``(B, H)`` -> ``(B,)``."""
    return terminal_weight * per_step[:, -1] + running_weight * per_step.mean(dim=1)


@dataclass
class LatentGoal:
    """Reach a goal latent ``(...)`` (the shape of one step of ``Rollout.latents``)."""

    latent: Tensor
    distance: Distance = Distance.L1
    terminal_weight: float = 1.0
    running_weight: float = 0.5

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor:
        if rollout.latents is None:
            raise PlanningError(
                f"{getattr(model, 'name', model)!r} returns no latents; use a StateGoal or ImageGoal"
            )
        z = rollout.latents.flatten(2).float()  # (B, H, d)
        g = self.latent.to(z.device).reshape(-1).float()
        if g.shape[0] != z.shape[2]:
            raise PlanningError(f"goal latent has {g.shape[0]} values, the model's latents have {z.shape[2]}")
        diff = z - g
        per_step = diff.abs().mean(-1) if self.distance is Distance.L1 else diff.norm(dim=-1)
        return _combine(per_step, self.terminal_weight, self.running_weight)


@dataclass
class ImageGoal:
    """Reach the scene of a goal picture ``(H, W, 3)`` uint8."""

    frame: Tensor
    distance: Distance = Distance.L1
    terminal_weight: float = 1.0
    running_weight: float = 0.5
    _latents: dict[int, LatentGoal] = field(default_factory=dict, repr=False)

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor:
        if isinstance(model, LatentEncoder) and rollout.latents is not None:
            key = id(model)
            if key not in self._latents:
                z = model.encode(self.frame[None, None])[0, -1]
                self._latents[key] = LatentGoal(z, self.distance, self.terminal_weight, self.running_weight)
            return self._latents[key].cost(rollout, model)
        if rollout.frames is None:
            raise PlanningError(
                f"{getattr(model, 'name', model)!r} neither encodes pictures nor returns frames"
            )
        f = rollout.frames.float().div(255.0).flatten(2)  # (B, H, P)
        g = self.frame.to(f.device).float().div(255.0).reshape(-1)
        diff = f - g
        per_step = diff.abs().mean(-1) if self.distance is Distance.L1 else diff.norm(dim=-1)
        return _combine(per_step, self.terminal_weight, self.running_weight)


StateReader = Callable[[Tensor], Tensor]  # uint8 frames (B, H, ...) -> states (B, H, K, F)


@dataclass
class StateGoal:
    """Bring chosen identities' fields to a goal state.

    ``target`` ``(K, F)`` holds the goal values, ``weights`` ``(K, F)`` says which fields of which identity
    count (0 = ignored). Per step the cost is ``sum_k ||sqrt(w_k) * (s_k - target_k)||_2`` (a distance per
    identity, in world units for positions). ``reader`` turns pictures into states for models whose rollouts
    carry frames but no states (e.g. the audit's colour judge).
    """

    target: Tensor
    weights: Tensor
    terminal_weight: float = 1.0
    running_weight: float = 0.5
    reader: StateReader | None = None

    def __post_init__(self) -> None:
        self.target = torch.as_tensor(self.target, dtype=torch.float32)
        self.weights = torch.as_tensor(self.weights, dtype=torch.float32)
        if self.target.shape != self.weights.shape or self.target.ndim != 2:
            raise ValueError(
                f"target and weights must both be (K, F), got {tuple(self.target.shape)} and "
                f"{tuple(self.weights.shape)}"
            )

    def states(self, rollout: Rollout, model: WorldModel) -> Tensor:
        """``(B, H, K, F)`` states of a rollout (read from frames when the model gives none)."""
        if rollout.states is not None:
            return rollout.states.float()
        if rollout.frames is not None and self.reader is not None:
            return self.reader(rollout.frames).float()
        raise PlanningError(
            f"{getattr(model, 'name', model)!r} returns no states (no state head or probe) and "
            "no reader for its frames was given; use a LatentGoal or ImageGoal"
        )

    def per_step(self, states: Tensor) -> Tensor:
        """``(B, H, K, F)`` -> per-step cost ``(B, H)``."""
        if states.shape[-2:] != self.target.shape:
            raise PlanningError(
                f"states are {tuple(states.shape[-2:])} per step, the goal is {tuple(self.target.shape)}"
            )
        w = self.weights.to(states.device).sqrt()
        d = ((states - self.target.to(states.device)) * w).norm(dim=-1)  # (B, H, K)
        return d.sum(-1)

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor:
        return _combine(self.per_step(self.states(rollout, model)), self.terminal_weight, self.running_weight)


@dataclass
class SumObjective:
    """``sum_i weight_i * objective_i.cost``."""

    terms: Sequence[tuple[float, Any]]  # (weight, Objective) pairs

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor:
        total: Tensor | None = None
        for w, obj in self.terms:
            c = w * obj.cost(rollout, model)
            total = c if total is None else total + c
        if total is None:
            raise ValueError("SumObjective needs at least one term")
        return total
