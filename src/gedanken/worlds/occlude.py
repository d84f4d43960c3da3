"""Occlude: objects glide left and right behind a fixed occluder and re-emerge (object permanence).

No gravity, no friction: each object moves horizontally in its own lane and bounces elastically off the
side walls, so it passes behind the occluder again and again. The occluder is identity slot 4 (kind
``"occluder"``, a full-height static box that nothing collides with), drawn in front of everything. Passive.

``info["visible_fraction"]`` (every world has it) gives the visible share of each object's pixels;
``info["occluded"]`` says which objects are at least partly hidden, ``info["hidden"]`` which are fully.
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
from gedanken.worlds.state import MASS, PRESENT, WORLD_SIZE, H, Shape, W, X, Y

MAX_OBJECTS = 4
OCCLUDER_SLOT = MAX_OBJECTS
# Train ranges (docs/worlds.md lists every split).
SIZE = (5.0, 8.0)
SPEED = (8.0, 25.0)
WIDTH = (8.0, 20.0)
WIDTH_GAP = (12.0, 16.0)  # held out of train: the `gap` split
SMALL_SIZE = 6.0  # `combo`: small (size <= 6) ...
FAST_SPEED = 18.0  # ... and fast (speed >= 18) together never appear in train


@dataclass(frozen=True)
class OccludeParams:
    """Physical parameters of one Occlude episode (world units, seconds)."""

    sizes: tuple[float, ...]  # diameter (slots 0, 2: balls) or side (slots 1, 3: boxes), in [5, 12]; 1..4
    speeds: tuple[float, ...]  # horizontal speed of each object, >= 0 (direction random)
    masses: tuple[float, ...] = ()  # mass of each object (> 0; () means 1.0 each); reported, never felt
    occluder_width: float = 12.0  # width of the full-height occluder, in [4, 40]

    def __post_init__(self) -> None:
        sizes = as_float_tuple("sizes", self.sizes)
        if not 1 <= len(sizes) <= MAX_OBJECTS:
            raise ValueError(f"Occlude needs 1..{MAX_OBJECTS} objects, got {len(sizes)} sizes")
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "speeds", as_float_tuple("speeds", self.speeds, len(sizes)))
        masses = (1.0,) * len(sizes) if len(self.masses) == 0 else self.masses
        object.__setattr__(self, "masses", as_float_tuple("masses", masses, len(sizes)))
        for s in self.sizes:
            check_range("object size", s, 5.0, 12.0)
        for v in self.speeds:
            check_range("speed", v, 0.0, 200.0)
        for m in self.masses:
            check_range("mass", m, 1e-3, 1e3)
        check_range("occluder_width", self.occluder_width, 4.0, 40.0)

    @property
    def n_objects(self) -> int:
        return len(self.sizes)

    def to_json(self) -> dict[str, Any]:
        return params_to_json(self)


def sample_occlude_params(split: str, rng: np.random.Generator) -> OccludeParams:
    """Sample the parameters of one episode of ``split`` (ranges in docs/worlds.md)."""
    check_split(split)
    if split == "ood":
        n = MAX_OBJECTS
        return OccludeParams(
            sizes=tuple(uniform(rng, *SIZE) for _ in range(n)),
            speeds=tuple(uniform(rng, 30.0, 45.0) for _ in range(n)),
            masses=tuple(uniform(rng, 0.5, 2.0) for _ in range(n)),
            occluder_width=uniform(rng, 22.0, 28.0),
        )
    n = int(rng.integers(1, MAX_OBJECTS))  # 1..3
    sizes, speeds = [], []
    for _ in range(n):
        if split == "combo":
            sizes.append(uniform(rng, SIZE[0], SMALL_SIZE))
            speeds.append(uniform(rng, FAST_SPEED, SPEED[1]))
            continue
        s, v = uniform(rng, *SIZE), uniform(rng, *SPEED)
        while s <= SMALL_SIZE and v >= FAST_SPEED:
            s, v = uniform(rng, *SIZE), uniform(rng, *SPEED)
        sizes.append(s)
        speeds.append(v)
    width = uniform(rng, *WIDTH_GAP) if split == "gap" else uniform_outside(rng, *WIDTH, *WIDTH_GAP)
    return OccludeParams(
        sizes=tuple(sizes),
        speeds=tuple(speeds),
        masses=tuple(uniform(rng, 0.5, 2.0) for _ in range(n)),
        occluder_width=width,
    )


class Occlude(PhysicsWorld):
    """Objects crossing behind a fixed occluder. Passive (``Box(-1, 1, (1,))`` action, ignored)."""

    name = "occlude"
    slot_kinds = ("object",) * MAX_OBJECTS + ("occluder",)
    slot_shapes = (Shape.CIRCLE, Shape.BOX, Shape.CIRCLE, Shape.BOX, Shape.BOX)
    params_type = OccludeParams

    @staticmethod
    def sample_params(split: str, rng: np.random.Generator) -> OccludeParams:
        return sample_occlude_params(split, rng)

    def _build(self, params: OccludeParams, rng: np.random.Generator) -> Sim:
        space = new_space(gravity=0.0)
        add_walls(space, friction=0.0, elasticity=1.0)
        rows = blank_rows(self.max_objects)
        bodies: list[pymunk.Body | None] = [None] * self.max_objects
        ow = params.occluder_width
        ox = uniform(rng, 26.0, 38.0)
        rows[OCCLUDER_SLOT, [PRESENT, X, Y, W, H]] = 1.0, ox, WORLD_SIZE / 2, ow, WORLD_SIZE
        n = params.n_objects
        lane = WORLD_SIZE / n  # one horizontal lane per object, in random order
        lanes = rng.permutation(n)
        for i in range(n):
            size, m, v = params.sizes[i], params.masses[i], params.speeds[i]
            body = pymunk.Body(m, float("inf"))  # no rotation: lanes stay clean
            if self.slot_shapes[i] is Shape.CIRCLE:
                shape: pymunk.Shape = pymunk.Circle(body, size / 2)
            else:
                shape = pymunk.Poly.create_box(body, (size, size))
            shape.elasticity, shape.friction = 1.0, 0.0
            y = (lanes[i] + 0.5) * lane + uniform(rng, -0.15, 0.15) * max(lane - size, 0.0)
            # start visible, on either side of the occluder
            left = (size / 2 + 1.0, ox - ow / 2 - size / 2 - 1.0)
            right = (ox + ow / 2 + size / 2 + 1.0, WORLD_SIZE - size / 2 - 1.0)
            lo, hi = left if rng.random() < 0.5 else right
            x = uniform(rng, lo, hi) if hi > lo else uniform(rng, size / 2 + 1.0, WORLD_SIZE - size / 2 - 1.0)
            body.slot = i
            body.position = (x, y)
            body.velocity = (v if rng.random() < 0.5 else -v, 0.0)
            space.add(body, shape)
            bodies[i] = body
            rows[i, [PRESENT, W, H, MASS]] = 1.0, size, size, m
        return Sim(space=space, bodies=bodies, rows=rows)

    def _extra_info(self, state: np.ndarray) -> dict[str, Any]:
        vis = self.visible_fraction()
        objects = (state[:, PRESENT] > 0) & (np.arange(self.max_objects) != OCCLUDER_SLOT)
        return {"occluded": objects & (vis < 1.0), "hidden": objects & (vis == 0.0)}
