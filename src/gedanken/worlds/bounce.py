"""Bounce: 1-6 balls of different sizes, masses and colours under gravity, bouncing off walls and each other.

Passive: the action is one ignored float. Parameters and splits: :class:`BounceParams`,
:func:`sample_bounce_params`, docs/worlds.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pymunk

from gedanken.worlds.base import PhysicsWorld, Sim, add_walls, blank_rows, new_space
from gedanken.worlds.splits import (
    as_float_tuple,
    check_range,
    check_split,
    params_to_json,
    uniform,
    uniform_outside,
)
from gedanken.worlds.state import MASS, PRESENT, WORLD_SIZE, H, Shape, W

MAX_BALLS = 6
# Train ranges (see docs/worlds.md for every split).
RADIUS = (2.5, 5.5)
MASS_RANGE = (0.5, 2.0)
SPEED = (0.0, 30.0)
SPEED_GAP = (15.0, 20.0)  # held out of train: the `gap` split
BIG_RADIUS = 4.0  # `combo`: big (radius >= 4) ...
FAST_SPEED = 22.0  # ... and fast (speed >= 22) together never appear in train
GRAVITY = (20.0, 50.0)
RESTITUTION = (0.6, 0.95)
FRICTION = (0.1, 0.6)


@dataclass(frozen=True)
class BounceParams:
    """Physical parameters of one Bounce episode (world units, seconds)."""

    radii: tuple[float, ...]  # radius of each ball, in [2.5, 8]; its length is the number of balls (1..6)
    masses: tuple[float, ...]  # mass of each ball, > 0
    speeds: tuple[float, ...]  # initial speed of each ball (random direction), >= 0
    gravity: float = 35.0  # downward acceleration, >= 0
    restitution: float = (
        0.8  # elasticity of the balls in [0, 1]; walls have 1, so ball-wall bounces keep this
    )
    friction: float = 0.3  # friction coefficient of balls and walls, >= 0

    def __post_init__(self) -> None:
        radii = as_float_tuple("radii", self.radii)
        if not 1 <= len(radii) <= MAX_BALLS:
            raise ValueError(f"Bounce needs 1..{MAX_BALLS} balls, got {len(radii)} radii")
        object.__setattr__(self, "radii", radii)
        object.__setattr__(self, "masses", as_float_tuple("masses", self.masses, len(radii)))
        object.__setattr__(self, "speeds", as_float_tuple("speeds", self.speeds, len(radii)))
        for r in self.radii:
            check_range("radius", r, 2.5, 8.0)
        for m in self.masses:
            check_range("mass", m, 1e-3, 1e3)
        for v in self.speeds:
            check_range("speed", v, 0.0, 200.0)
        check_range("gravity", self.gravity, 0.0, 500.0)
        check_range("restitution", self.restitution, 0.0, 1.0)
        check_range("friction", self.friction, 0.0, 10.0)
        if sum((2 * r + 1) ** 2 for r in self.radii) > 0.5 * WORLD_SIZE**2:
            raise ValueError(f"balls of radii {self.radii} do not fit the {WORLD_SIZE:g}-unit world")

    @property
    def n_balls(self) -> int:
        return len(self.radii)

    def to_json(self) -> dict[str, Any]:
        return params_to_json(self)


def sample_bounce_params(split: str, rng: np.random.Generator) -> BounceParams:
    """Sample the parameters of one episode of ``split`` (ranges in docs/worlds.md)."""
    check_split(split)
    if split == "ood":
        n = int(rng.integers(5, MAX_BALLS + 1))
        radii = [uniform(rng, 2.5, 4.0) for _ in range(n)]
        masses = [uniform(rng, 2.5, 4.0) for _ in range(n)]
        speeds = [uniform(rng, 35.0, 50.0) for _ in range(n)]
        gravity = uniform(rng, 60.0, 80.0)
    else:
        n = int(rng.integers(1, 5))
        radii, masses, speeds = [], [], []
        for _ in range(n):
            masses.append(uniform(rng, *MASS_RANGE))
            if split == "combo":
                radii.append(uniform(rng, BIG_RADIUS, RADIUS[1]))
                speeds.append(uniform(rng, FAST_SPEED, SPEED[1]))
                continue
            r = uniform(rng, *RADIUS)
            if split == "gap":
                v = uniform(rng, *SPEED_GAP)
            else:  # train / test: outside the gap band, and never big and fast together
                v = uniform_outside(rng, *SPEED, *SPEED_GAP)
                while r >= BIG_RADIUS and v >= FAST_SPEED:
                    r, v = uniform(rng, *RADIUS), uniform_outside(rng, *SPEED, *SPEED_GAP)
            radii.append(r)
            speeds.append(v)
        gravity = uniform(rng, *GRAVITY)
    return BounceParams(
        radii=tuple(radii),
        masses=tuple(masses),
        speeds=tuple(speeds),
        gravity=gravity,
        restitution=uniform(rng, *RESTITUTION),
        friction=uniform(rng, *FRICTION),
    )


def place_circles(
    rng: np.random.Generator, radii: tuple[float, ...], margin: float = 1.0
) -> list[tuple[float, float]]:
    """Non-overlapping centres for circles of ``radii`` inside the world (rejection sampling)."""
    out: list[tuple[float, float]] = []
    for r in radii:
        for _ in range(10_000):
            x = uniform(rng, r + margin, WORLD_SIZE - r - margin)
            y = uniform(rng, r + margin, WORLD_SIZE - r - margin)
            if all(
                (x - px) ** 2 + (y - py) ** 2 > (r + pr + margin) ** 2
                for (px, py), pr in zip(out, radii, strict=False)
            ):
                out.append((x, y))
                break
        else:
            raise ValueError(f"could not place balls of radii {radii} without overlap")
    return out


class Bounce(PhysicsWorld):
    """Balls under gravity in a closed box. Passive (``Box(-1, 1, (1,))`` action, ignored)."""

    name = "bounce"
    slot_kinds = ("ball",) * MAX_BALLS
    slot_shapes = (Shape.CIRCLE,) * MAX_BALLS
    params_type = BounceParams

    @staticmethod
    def sample_params(split: str, rng: np.random.Generator) -> BounceParams:
        return sample_bounce_params(split, rng)

    def _build(self, params: BounceParams, rng: np.random.Generator) -> Sim:
        space = new_space(gravity=params.gravity)
        add_walls(space, friction=1.0, elasticity=1.0)
        rows = blank_rows(self.max_objects)
        bodies: list[pymunk.Body | None] = [None] * self.max_objects
        centres = place_circles(rng, params.radii)
        for i, ((x, y), r, m, v) in enumerate(
            zip(centres, params.radii, params.masses, params.speeds, strict=True)
        ):
            body = pymunk.Body(m, pymunk.moment_for_circle(m, 0.0, r))
            body.slot = i
            body.position = (x, y)
            theta = uniform(rng, 0.0, 2 * np.pi)
            body.velocity = (v * np.cos(theta), v * np.sin(theta))
            shape = pymunk.Circle(body, r)
            shape.elasticity = params.restitution
            shape.friction = params.friction
            space.add(body, shape)
            bodies[i] = body
            rows[i, PRESENT], rows[i, W], rows[i, H], rows[i, MASS] = 1.0, 2 * r, 2 * r, m
        return Sim(space=space, bodies=bodies, rows=rows)
