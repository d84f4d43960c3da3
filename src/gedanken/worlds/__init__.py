"""Ground-truth physics worlds (pymunk), as Gymnasium envs registered as ``gedanken/<Name>-v0``.

>>> from gedanken.worlds import make_world
>>> env = make_world("bounce", split="train")
>>> frame, info = env.reset(seed=0)   # frame (64, 64, 3) uint8; info["state"] (K, F) float32
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from gedanken.worlds.base import PhysicsWorld, WorldSnapshot
from gedanken.worlds.bounce import Bounce, BounceParams
from gedanken.worlds.grasp import Grasp, GraspParams
from gedanken.worlds.occlude import Occlude, OccludeParams
from gedanken.worlds.palette import PALETTE, palette_for
from gedanken.worlds.push import Push, PushParams
from gedanken.worlds.render import rasterize, render_state
from gedanken.worlds.splits import SPLITS


@dataclass(frozen=True)
class WorldEntry:
    """A registered world: its class, fixed constructor arguments and Gymnasium id."""

    cls: type[PhysicsWorld]
    gym_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)


WORLD_ENTRIES: dict[str, WorldEntry] = {
    "bounce": WorldEntry(Bounce, "gedanken/Bounce-v0"),
    "push": WorldEntry(Push, "gedanken/Push-v0"),
    "push_discrete": WorldEntry(Push, "gedanken/PushDiscrete-v0", {"discrete": True}),
    "occlude": WorldEntry(Occlude, "gedanken/Occlude-v0"),
    "grasp": WorldEntry(Grasp, "gedanken/Grasp-v0"),
}
WORLDS: dict[str, type[PhysicsWorld]] = {name: e.cls for name, e in WORLD_ENTRIES.items()}


def make_world(name: str, **kwargs: Any) -> PhysicsWorld:
    """Build the world ``name`` (see ``WORLDS``); keyword arguments go to its constructor."""
    if name not in WORLD_ENTRIES:
        raise ValueError(f"unknown world {name!r}; valid worlds: {', '.join(WORLD_ENTRIES)}")
    entry = WORLD_ENTRIES[name]
    return entry.cls(**{**entry.kwargs, **kwargs})


def world_name(world: str) -> str:
    """A built-in world's name for its Gymnasium id (``gedanken/Push-v0`` -> ``push``); anything else unchanged."""
    return next((name for name, e in WORLD_ENTRIES.items() if e.gym_id == world), world)


def gym_ids() -> list[str]:
    """Gymnasium ids of every built-in world."""
    return [e.gym_id for e in WORLD_ENTRIES.values()]


def _register() -> None:
    for entry in WORLD_ENTRIES.values():
        if entry.gym_id not in gym.registry:
            gym.register(
                id=entry.gym_id,
                entry_point=f"{entry.cls.__module__}:{entry.cls.__name__}",
                kwargs=dict(entry.kwargs),
            )


_register()

__all__ = [
    "PALETTE",
    "SPLITS",
    "WORLDS",
    "WORLD_ENTRIES",
    "Bounce",
    "BounceParams",
    "Grasp",
    "GraspParams",
    "Occlude",
    "OccludeParams",
    "PhysicsWorld",
    "Push",
    "PushParams",
    "WorldEntry",
    "WorldSnapshot",
    "gym_ids",
    "make_world",
    "palette_for",
    "rasterize",
    "render_state",
]
