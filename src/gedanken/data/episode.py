"""One recorded episode: the unit that worlds produce, datasets store and the audit replays.

Time alignment (every per-step array has the same length ``T``):

* ``frames[t]`` is the observation at step ``t``;
* ``actions[t]`` is the action applied *after* seeing ``frames[t]``, producing ``frames[t + 1]``;
  the last action has no successor frame and is stored as a no-op (zeros);
* ``rewards[t]`` / ``terminated[t]`` belong to the transition that *led to* ``frames[t]``
  (``rewards[0] == 0``, ``terminated[0] == False``);
* ``states[t]`` / ``contacts[t]`` are the exact object states at ``frames[t]`` (None for external envs).

Actions are float32 ``(T, A)``. For a ``Discrete(n)`` space ``A == 1`` and the value is the integer index;
``meta.action_space`` says which (see :class:`ActionSpec`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ActionSpec:
    """The action space of an episode, enough to rebuild it and to embed actions in a model."""

    kind: str  # "box" | "discrete" | "none"
    dim: int  # A: width of the stored action vector (1 for discrete, 0 treated as 1 for "none")
    n: int = 0  # number of choices for "discrete"
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> ActionSpec:
        return ActionSpec(
            kind=str(d["kind"]),
            dim=int(d["dim"]),
            n=int(d.get("n", 0)),
            low=tuple(float(v) for v in d.get("low", ())),
            high=tuple(float(v) for v in d.get("high", ())),
        )


@dataclass(frozen=True)
class EpisodeMeta:
    """Everything needed to know where an episode came from and to re-simulate it."""

    world: str  # built-in world name ("bounce") or external Gymnasium id ("ALE/Pong-v5")
    split: str  # train | test | ood | gap | combo | external
    seed: int
    fps: float
    params: dict[str, Any]  # the physical parameters sampled for this episode (JSON-able)
    action_space: ActionSpec
    kinds: tuple[str, ...] = ()  # per identity slot, "" for unused slots (built-in worlds only)
    shapes: tuple[str, ...] = ()  # per identity slot: "circle" | "box" | ""
    palette: tuple[tuple[int, int, int], ...] = ()  # palette[0] background, palette[i + 1] identity i
    policy: str = ""  # which behaviour policy recorded it
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["action_space"] = self.action_space.to_json()
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> EpisodeMeta:
        return EpisodeMeta(
            world=str(d["world"]),
            split=str(d["split"]),
            seed=int(d["seed"]),
            fps=float(d["fps"]),
            params=dict(d["params"]),
            action_space=ActionSpec.from_json(d["action_space"]),
            kinds=tuple(d.get("kinds", ())),
            shapes=tuple(d.get("shapes", ())),
            palette=tuple(tuple(int(c) for c in p) for p in d.get("palette", ())),  # type: ignore[misc]
            policy=str(d.get("policy", "")),
            schema_version=int(d["schema_version"]),
        )


@dataclass
class Episode:
    frames: np.ndarray  # (T, H, W, 3) uint8
    actions: np.ndarray  # (T, A) float32
    rewards: np.ndarray  # (T,) float32
    terminated: np.ndarray  # (T,) bool
    meta: EpisodeMeta
    states: np.ndarray | None = None  # (T, K, F) float32, see gedanken.worlds.state
    contacts: np.ndarray | None = None  # (T, K) int32 bitmask
    caption: str = ""
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def validate(self) -> None:
        """Raise ValueError naming the first array whose shape, dtype or values break the schema."""
        t = len(self)
        f = self.frames
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frames must be (T, H, W, 3) uint8, got {f.shape} {f.dtype}")
        checks: list[tuple[str, np.ndarray | None, tuple[int, ...], Any]] = [
            ("actions", self.actions, (t, -1), np.float32),
            ("rewards", self.rewards, (t,), np.float32),
            ("terminated", self.terminated, (t,), np.bool_),
            ("states", self.states, (t, -1, -1), np.float32),
            ("contacts", self.contacts, (t, -1), np.int32),
        ]
        for name, arr, shape, dtype in checks:
            if arr is None:
                continue
            if arr.ndim != len(shape) or any(s not in (-1, a) for s, a in zip(shape, arr.shape, strict=True)):
                raise ValueError(f"{name} must have shape {shape} (T={t}), got {arr.shape}")
            if arr.dtype != dtype:
                raise ValueError(f"{name} must be {np.dtype(dtype)}, got {arr.dtype}")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or inf")
        if self.actions.shape[1] != max(self.meta.action_space.dim, 1):
            raise ValueError(
                f"actions have width {self.actions.shape[1]}, action space says {self.meta.action_space.dim}"
            )
        if (self.states is None) != (self.contacts is None):
            raise ValueError("states and contacts must be both present or both absent")
