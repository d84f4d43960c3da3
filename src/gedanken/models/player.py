"""Interactive play loop over any :class:`~gedanken.models.protocol.WorldModel` that decodes frames.

>>> player = Player.from_world(load_checkpoint(shipped_checkpoint("diffusion", "push")), "push")  # doctest: +SKIP
>>> frame = player.step([0.5, 0.0])  # (H, W, 3) uint8, the world after pushing right
>>> player.fps  # measured frames per second of step()

The player keeps the model's context between calls (``step`` is the model's cached one-frame step), so its
cost per frame is what an interactive user experiences.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gedanken.models.protocol import Prediction, WorldModel


class NoFramesError(TypeError):
    """The model predicts latents (and its probe's object states), not frames: there is nothing to show."""


@dataclass
class PlayStats:
    """Timings of the ``step`` calls so far."""

    frames: int = 0
    seconds: float = 0.0
    per_frame: list[float] = field(default_factory=list)  # seconds of each step

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Player:
    """``player.step(action) -> frame`` on top of a world model, one batch element."""

    def __init__(
        self,
        model: WorldModel,
        frames: np.ndarray | torch.Tensor,
        actions: np.ndarray | torch.Tensor | None = None,
        text: str | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.text = text
        self.seed = seed
        self.reset(frames, actions)

    @staticmethod
    def from_world(
        model: WorldModel, world: str, *, split: str = "test", seed: int = 0, context: int = 4
    ) -> Player:
        """Start from the first ``context`` frames of a freshly recorded episode of a built-in world."""
        from gedanken.worlds.record import record_episode

        ep = record_episode(world, split, seed, context)
        return Player(model, ep.frames, ep.actions, ep.caption or None, seed=seed)

    def reset(
        self, frames: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor | None = None
    ) -> None:
        """Restart from context frames (k, H, W, 3) uint8 and the (k[-1], A) actions between them."""
        f = torch.as_tensor(np.asarray(frames))
        if f.ndim == 4:
            f = f[None]
        a = None if actions is None else torch.as_tensor(np.asarray(actions, dtype=np.float32))
        if a is not None and a.ndim == 2:
            a = a[None]
        with torch.inference_mode():
            self.ctx: Any = self.model.observe(f, a, [self.text] if self.text else None)
        gen = getattr(self.ctx, "generator", None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(self.seed)
        self.stats = PlayStats()
        self.last: Prediction | None = None

    def step(self, action: Sequence[float] | np.ndarray | torch.Tensor | int) -> np.ndarray:
        """Advance one frame under ``action`` (A,) (or a discrete index); returns the frame (H, W, 3) uint8."""
        a = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1)
        t0 = time.perf_counter()
        with torch.inference_mode():
            self.ctx, pred = self.model.step(self.ctx, a)
        dt = time.perf_counter() - t0
        self.stats.frames += 1
        self.stats.seconds += dt
        self.stats.per_frame.append(dt)
        self.last = pred
        if pred.frame is None:
            raise NoFramesError(
                f"model {self.model.name!r} does not decode frames; read player.last.state instead"
            )
        return pred.frame[0].cpu().numpy()

    @property
    def fps(self) -> float:
        """Measured frames per second of :meth:`step` so far."""
        return self.stats.fps
