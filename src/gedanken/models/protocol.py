"""The one protocol every world model speaks; planners, the audit, the Gym wrapper and the server use only this.

Shapes: ``B`` batch, ``T`` time, ``H``/``W`` pixels, ``A`` action width, ``K`` identity slots,
``F`` state fields (see :mod:`gedanken.worlds.state`). Frames cross the boundary as uint8 tensors in
channel-last layout ``(B, T, H, W, 3)``, exactly as episodes store them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from torch import Tensor


@dataclass
class Prediction:
    """One predicted step for a batch."""

    frame: Tensor | None  # (B, H, W, 3) uint8, None for families that do not decode pixels
    latent: Tensor | None = None  # (B, ...) the family's own representation of the step
    reward: Tensor | None = None  # (B,)
    terminated: Tensor | None = None  # (B,) bool
    state: Tensor | None = None  # (B, K, F) object-state head / probe readout


@dataclass
class Rollout:
    """``H`` predicted steps for a batch; ``frames[:, h]`` follows the ``h``-th action."""

    frames: Tensor | None  # (B, H, H_px, W_px, 3) uint8
    latents: Tensor | None = None  # (B, H, ...)
    rewards: Tensor | None = None  # (B, H)
    terminated: Tensor | None = None  # (B, H) bool
    states: Tensor | None = None  # (B, H, K, F)


@runtime_checkable
class WorldModel(Protocol):
    """A learned (or baseline) simulator.

    ``observe`` encodes ``k`` context frames (and the actions taken between them, ``actions[:, t]`` leading
    from frame ``t`` to ``t + 1``; the last context action is ignored or absent) into an opaque context.
    ``step`` advances one frame under one action (interactive play, cached), ``rollout`` advances ``H``
    frames under ``(B, H, A)`` actions; the first action applies to the last context frame.
    """

    name: str

    def observe(
        self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None
    ) -> Any: ...

    def step(self, ctx: Any, action: Tensor) -> tuple[Any, Prediction]: ...

    def rollout(self, ctx: Any, actions: Tensor, *, seed: int = 0) -> Rollout: ...


@dataclass(frozen=True)
class ModelCard:
    """What a model was trained on and for how long; shown in audit reports."""

    name: str
    family: str  # diffusion | autoregressive | jepa | baseline
    world: str = ""
    dataset: str = ""
    preset: str = ""
    steps: int = 0
    train_seconds: float = 0.0
    params: int = 0
    notes: str = ""

    def continued_from(self, prior: ModelCard | None, how: str) -> ModelCard:
        """This run's card for a model trained on from the checkpoint whose card is ``prior``: the prior steps
        and seconds added to this run's, its notes first, then ``how`` this run went on and this run's notes.
        Unchanged when there is no ``prior``."""
        if prior is None:
            return self
        return replace(
            self,
            steps=self.steps + prior.steps,
            train_seconds=round(self.train_seconds + prior.train_seconds, 1),
            notes=f"{prior.notes}; {how}" + (f": {self.notes}" if self.notes else ""),
        )
