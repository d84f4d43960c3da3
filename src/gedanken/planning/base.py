"""What every planner shares: action bounds, the plan it returns, and how candidates share one context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from gedanken.data.episode import ActionSpec
from gedanken.models.protocol import Rollout, WorldModel


@dataclass(frozen=True)
class ActionBounds:
    """Box bounds of a continuous action space; planners search in ``[-1, 1]^A`` and map to ``[low, high]``."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or not self.low:
            raise ValueError(
                f"low and high must be non-empty and equally long, got {self.low} and {self.high}"
            )
        if any(h <= lo for lo, h in zip(self.low, self.high, strict=True)):
            raise ValueError(f"every high must exceed its low, got low={self.low} high={self.high}")

    @property
    def dim(self) -> int:
        return len(self.low)

    @staticmethod
    def from_spec(spec: ActionSpec) -> ActionBounds:
        """Bounds of a ``box`` action space (discrete spaces are not supported by sampling planners)."""
        if spec.kind != "box":
            raise ValueError(f"CEM/MPPI plan continuous ('box') actions; this action space is {spec.kind!r}")
        return ActionBounds(tuple(spec.low), tuple(spec.high))

    def to_raw(self, u: Tensor) -> Tensor:
        """``[-1, 1]`` -> raw actions (same shape)."""
        lo = torch.tensor(self.low, dtype=u.dtype, device=u.device)
        hi = torch.tensor(self.high, dtype=u.dtype, device=u.device)
        return lo + (u.clamp(-1, 1) + 1) * 0.5 * (hi - lo)

    def to_unit(self, a: Tensor) -> Tensor:
        """Raw actions -> ``[-1, 1]``."""
        lo = torch.tensor(self.low, dtype=a.dtype, device=a.device)
        hi = torch.tensor(self.high, dtype=a.dtype, device=a.device)
        return ((a - lo) / (hi - lo) * 2 - 1).clamp(-1, 1)


@dataclass
class Plan:
    """The result of one planning call."""

    actions: Tensor  # (H, A) raw actions, the first one to execute now
    cost: float  # predicted cost of ``actions``
    history: list[float]  # best cost found after each iteration (non-increasing for CEM)
    seconds: float  # wall time of the call
    rollout: Rollout | None = None  # the model's prediction for ``actions`` (batch of one), when asked for


@runtime_checkable
class RepeatableContext(Protocol):
    """Models that can broadcast a batch-of-one context to ``n`` rollouts without re-observing."""

    def repeat_context(self, ctx: Any, n: int) -> Any: ...


def shared_context(model: WorldModel, frames: Tensor, actions: Tensor | None, n: int) -> Any:
    """Observe ``frames`` ``(T, H, W, 3)`` once and make the context serve ``n`` candidate rollouts.

    Models with ``repeat_context`` encode once; any other model observes ``n`` (expanded, not copied) copies,
    which is correct for every model that speaks the protocol, only slower.
    """
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3), got {tuple(frames.shape)}")
    acts = None if actions is None else actions[None]
    if isinstance(model, RepeatableContext):
        return model.repeat_context(model.observe(frames[None], acts), n)
    many = None if acts is None else acts.expand(n, *acts.shape[1:])
    return model.observe(frames[None].expand(n, *frames.shape), many)


def single_context(model: WorldModel, frames: Tensor, actions: Tensor | None) -> Any:
    """A batch-of-one context of ``frames`` ``(T, H, W, 3)``."""
    return model.observe(frames[None], None if actions is None else actions[None])
