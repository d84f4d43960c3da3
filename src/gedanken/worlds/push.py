"""Push: a top-down pusher moves 1-3 blocks across a floor with friction toward a goal region.

* Top-down, no gravity. Ground (Coulomb) friction is a pivot joint plus a gear joint from every block to
  the static body with ``max_bias = 0`` and ``max_force = friction * mass * GROUND_G`` (and a matching
  torque), pymunk's usual top-down friction.
* The pusher is a dynamic disc dragged by a kinematic control body through a force-limited pivot joint, so
  it follows the commanded velocity but cannot pass through walls or blocks.
* Action: continuous ``Box(-1, 1, (2,))`` velocity ``(vx, vy) * pusher_speed``, or with ``discrete=True``
  ``Discrete(5)``: 0 none, 1 up, 2 down, 3 left, 4 right (registered as ``gedanken/PushDiscrete-v0``).
* The goal is identity slot 4 (kind ``"goal"``, a static box drawn behind everything).
* Reward: decrease of the summed block-centre to goal-centre distance (world units). Terminates when every
  block centre is inside the goal square.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pymunk

from gedanken.data.episode import ActionSpec
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

MAX_BLOCKS = 3
GOAL_SLOT = 1 + MAX_BLOCKS
PUSHER_RADIUS = 3.0
PUSHER_MASS = 4.0
PUSHER_MAX_FORCE = 3000.0  # how hard the control joint may drag the pusher
GROUND_G = 30.0  # "gravity" that turns ground friction coefficients into forces (world units / s^2)
# Discrete actions: none, up, down, left, right.
DISCRETE_DIRS = np.array([[0, 0], [0, 1], [0, -1], [-1, 0], [1, 0]], dtype=np.float32)
# Train ranges (docs/worlds.md lists every split).
SIDE = (5.0, 9.0)
MASS_RANGE = (0.5, 2.0)
FRICTION = (0.2, 0.8)
FRICTION_GAP = (0.4, 0.6)  # held out of train: the `gap` split
BIG_SIDE = 7.5  # `combo`: big (side >= 7.5) ...
HEAVY_MASS = 1.4  # ... and heavy (mass >= 1.4) together never appear in train
SPEED = (15.0, 25.0)
GOAL = (14.0, 18.0)


@dataclass(frozen=True)
class PushParams:
    """Physical parameters of one Push episode (world units, seconds)."""

    sides: tuple[float, ...]  # side of each square block in [5, 12]; its length is the block count (1..3)
    masses: tuple[float, ...]  # mass of each block, > 0
    friction: float = 0.5  # ground friction coefficient of the blocks, >= 0
    pusher_speed: float = 20.0  # pusher speed at |action| = 1 (world units / s), > 0
    goal_size: float = 16.0  # side of the square goal region, in [8, 30]

    def __post_init__(self) -> None:
        sides = as_float_tuple("sides", self.sides)
        if not 1 <= len(sides) <= MAX_BLOCKS:
            raise ValueError(f"Push needs 1..{MAX_BLOCKS} blocks, got {len(sides)} sides")
        object.__setattr__(self, "sides", sides)
        object.__setattr__(self, "masses", as_float_tuple("masses", self.masses, len(sides)))
        for s in self.sides:
            check_range("block side", s, 5.0, 12.0)
        for m in self.masses:
            check_range("block mass", m, 1e-3, 1e3)
        check_range("friction", self.friction, 0.0, 10.0)
        check_range("pusher_speed", self.pusher_speed, 1e-3, 200.0)
        check_range("goal_size", self.goal_size, 8.0, 30.0)

    @property
    def n_blocks(self) -> int:
        return len(self.sides)

    def to_json(self) -> dict[str, Any]:
        return params_to_json(self)


def sample_push_params(split: str, rng: np.random.Generator) -> PushParams:
    """Sample the parameters of one episode of ``split`` (ranges in docs/worlds.md)."""
    check_split(split)
    if split == "ood":
        n = MAX_BLOCKS
        sides = [uniform(rng, *SIDE) for _ in range(n)]
        masses = [uniform(rng, 2.5, 4.0) for _ in range(n)]
        return PushParams(
            sides=tuple(sides),
            masses=tuple(masses),
            friction=uniform(rng, 0.9, 1.2),
            pusher_speed=uniform(rng, 30.0, 40.0),
            goal_size=uniform(rng, *GOAL),
        )
    n = int(rng.integers(1, MAX_BLOCKS))  # 1 or 2
    sides, masses = [], []
    for _ in range(n):
        if split == "combo":
            sides.append(uniform(rng, BIG_SIDE, SIDE[1]))
            masses.append(uniform(rng, HEAVY_MASS, MASS_RANGE[1]))
            continue
        s, m = uniform(rng, *SIDE), uniform(rng, *MASS_RANGE)
        while s >= BIG_SIDE and m >= HEAVY_MASS:
            s, m = uniform(rng, *SIDE), uniform(rng, *MASS_RANGE)
        sides.append(s)
        masses.append(m)
    friction = (
        uniform(rng, *FRICTION_GAP) if split == "gap" else uniform_outside(rng, *FRICTION, *FRICTION_GAP)
    )
    return PushParams(
        sides=tuple(sides),
        masses=tuple(masses),
        friction=friction,
        pusher_speed=uniform(rng, *SPEED),
        goal_size=uniform(rng, *GOAL),
    )


def _ground_friction(space: pymunk.Space, body: pymunk.Body, friction: float, size: float) -> None:
    """Coulomb friction against the floor of a top-down world (linear and rotational)."""
    pivot = pymunk.PivotJoint(space.static_body, body, (0.0, 0.0), (0.0, 0.0))
    pivot.max_bias = 0.0
    pivot.max_force = friction * body.mass * GROUND_G
    gear = pymunk.GearJoint(space.static_body, body, 0.0, 1.0)
    gear.max_bias = 0.0
    gear.max_force = friction * body.mass * GROUND_G * size / 3.0
    space.add(pivot, gear)


class Push(PhysicsWorld):
    """Top-down pushing of blocks into a goal; continuous or discrete (``discrete=True``) pusher control."""

    name = "push"
    slot_kinds = ("pusher",) + ("block",) * MAX_BLOCKS + ("goal",)
    slot_shapes = (Shape.CIRCLE,) + (Shape.BOX,) * MAX_BLOCKS + (Shape.BOX,)
    params_type = PushParams

    def __init__(self, *, discrete: bool = False, **kwargs: Any) -> None:
        self.discrete = bool(discrete)
        super().__init__(**kwargs)
        self.world_name = "push_discrete" if self.discrete else "push"

    def _make_action_space(self) -> gym.Space:
        if self.discrete:
            return gym.spaces.Discrete(len(DISCRETE_DIRS))
        return gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action_spec(self) -> ActionSpec:
        if self.discrete:
            return ActionSpec(kind="discrete", dim=1, n=len(DISCRETE_DIRS))
        return ActionSpec(kind="box", dim=2, low=(-1.0, -1.0), high=(1.0, 1.0))

    @staticmethod
    def sample_params(split: str, rng: np.random.Generator) -> PushParams:
        return sample_push_params(split, rng)

    def _build(self, params: PushParams, rng: np.random.Generator) -> Sim:
        space = new_space(gravity=0.0)
        add_walls(space, friction=0.5, elasticity=0.0)
        rows = blank_rows(self.max_objects)
        bodies: list[pymunk.Body | None] = [None] * self.max_objects
        g = params.goal_size
        gx, gy = (
            uniform(rng, g / 2 + 2, WORLD_SIZE - g / 2 - 2),
            uniform(rng, g / 2 + 2, WORLD_SIZE - g / 2 - 2),
        )
        rows[GOAL_SLOT, [PRESENT, X, Y, W, H]] = 1.0, gx, gy, g, g
        radii = [PUSHER_RADIUS] + [s * 0.7072 for s in params.sides]  # circumscribed radius of each square
        centres = _place_outside_goal(rng, radii, (gx, gy, g))
        for i, ((x, y), r) in enumerate(zip(centres, radii, strict=True)):
            if i == 0:
                m = PUSHER_MASS
                body = pymunk.Body(m, pymunk.moment_for_circle(m, 0.0, r))
                shape: pymunk.Shape = pymunk.Circle(body, r)
                rows[0, [PRESENT, W, H, MASS]] = 1.0, 2 * r, 2 * r, m
            else:
                s, m = params.sides[i - 1], params.masses[i - 1]
                body = pymunk.Body(m, pymunk.moment_for_box(m, (s, s)))
                shape = pymunk.Poly.create_box(body, (s, s))
                rows[i, [PRESENT, W, H, MASS]] = 1.0, s, s, m
            body.slot = i
            body.position = (x, y)
            shape.friction = 0.5
            shape.elasticity = 0.0
            space.add(body, shape)
            bodies[i] = body
            if i > 0:
                _ground_friction(space, body, params.friction, params.sides[i - 1])
        control = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        control.position = bodies[0].position  # type: ignore[union-attr]
        drag = pymunk.PivotJoint(control, bodies[0], (0.0, 0.0), (0.0, 0.0))
        drag.max_bias = 0.0
        drag.max_force = PUSHER_MAX_FORCE
        spin = pymunk.GearJoint(control, bodies[0], 0.0, 1.0)
        spin.max_bias = 0.0
        spin.max_force = PUSHER_MAX_FORCE
        space.add(control, drag, spin)
        return Sim(space=space, bodies=bodies, rows=rows, extra={"control": control, "dist": np.zeros(0)})

    def _apply_action(self, action: np.ndarray) -> None:
        assert self._sim is not None
        v = DISCRETE_DIRS[int(action[0])] if self.discrete else action
        speed = self._params.pusher_speed
        control: pymunk.Body = self._sim.extra["control"]
        control.velocity = (float(v[0]) * speed, float(v[1]) * speed)
        control.position = self._sim.bodies[0].position  # type: ignore[union-attr]

    def _block_distances(self, state: np.ndarray) -> np.ndarray:
        n = self._params.n_blocks
        d = state[1 : 1 + n, [X, Y]].astype(np.float64) - state[GOAL_SLOT, [X, Y]].astype(np.float64)
        return np.hypot(d[:, 0], d[:, 1])  # (n,)

    def blocks_in_goal(self, state: np.ndarray | None = None) -> np.ndarray:
        """(n_blocks,) bool: is each block centre inside the goal square."""
        s = self.state_array() if state is None else state
        n = self._params.n_blocks
        d = np.abs(s[1 : 1 + n, [X, Y]] - s[GOAL_SLOT, [X, Y]])
        return (d <= s[GOAL_SLOT, W] / 2).all(axis=1)

    def _evaluate_reset(self, state: np.ndarray) -> None:
        assert self._sim is not None
        self._sim.extra["dist"] = self._block_distances(state)

    def _evaluate(self, state: np.ndarray) -> tuple[float, bool]:
        assert self._sim is not None
        d = self._block_distances(state)
        reward = float((self._sim.extra["dist"] - d).sum())
        self._sim.extra["dist"] = d
        return reward, bool(self.blocks_in_goal(state).all())

    def _extra_info(self, state: np.ndarray) -> dict[str, Any]:
        return {"blocks_in_goal": self.blocks_in_goal(state)}

    def expert_action(self, target: np.ndarray | None = None) -> np.ndarray | int:
        """A goal-seeking action: get behind the nearest block outside the goal and push it to the goal.

        With ``target`` (world units, shape (2,)) it pushes the nearest block toward that point instead
        (the ``poke`` behaviour policy uses it to record contact from every side)."""
        s = self.state_array().astype(np.float64)
        inside = self.blocks_in_goal(s.astype(np.float32))
        p = s[0, [X, Y]]
        goal = s[GOAL_SLOT, [X, Y]] if target is None else np.asarray(target, dtype=np.float64)
        todo = [i + 1 for i in range(self._params.n_blocks) if target is not None or not inside[i]]
        if not todo:
            v = np.zeros(2)
        else:
            b_i = min(todo, key=lambda i: (float(np.hypot(*(s[i, [X, Y]] - p))), i))
            v = _push_direction(p, s[b_i, [X, Y]], goal, s[b_i, W] * 0.7072)
        if self.discrete:
            return discrete_action(v)
        return np.clip(v, -1.0, 1.0).astype(np.float32)


def discrete_action(v: np.ndarray) -> int:
    """The ``DISCRETE_DIRS`` index nearest a pusher velocity ``v`` (norm <= 1): none below 0.2, else its main axis."""
    if np.hypot(*v) < 0.2:
        return 0
    return (1 if v[1] > 0 else 2) if abs(v[1]) >= abs(v[0]) else (4 if v[0] > 0 else 3)


def _push_direction(p: np.ndarray, b: np.ndarray, goal: np.ndarray, block_r: float) -> np.ndarray:
    """Velocity (norm <= 1) taking the pusher at ``p`` behind block ``b``, then pushing it to ``goal``."""
    to_goal = goal - b
    dist = float(np.hypot(*to_goal))
    if dist < 1e-6:
        return np.zeros(2)
    u = to_goal / dist
    standoff = block_r + PUSHER_RADIUS + 0.5
    target = b - u * standoff
    rel = p - b
    along = float(rel @ u)
    to_target = target - p
    gap = float(np.hypot(*to_target))
    if gap < 2.0:  # in position: push through the block toward the goal, steering back onto the line
        off_line = to_target - float(to_target @ u) * u
        v = u + 0.8 * off_line
    elif along > -0.5 * standoff and float(np.hypot(*rel)) < standoff + 3.0:
        perp = np.array([-u[1], u[0]])  # go around the block on the side the pusher is already on
        side = 1.0 if float(rel @ perp) >= 0 else -1.0
        v = side * perp - 0.7 * u
    else:
        v = to_target / gap * min(1.0, gap / 3.0 + 0.3)
    n = float(np.hypot(*v))
    return v / n if n > 1.0 else v


def _place_outside_goal(
    rng: np.random.Generator, radii: list[float], goal: tuple[float, float, float]
) -> list[tuple[float, float]]:
    """Non-overlapping centres for discs of ``radii``, each fully outside the goal square."""
    gx, gy, g = goal
    out: list[tuple[float, float]] = []
    for r in radii:
        for _ in range(20_000):
            x = uniform(rng, r + 1.0, WORLD_SIZE - r - 1.0)
            y = uniform(rng, r + 1.0, WORLD_SIZE - r - 1.0)
            if max(abs(x - gx), abs(y - gy)) < g / 2 + r + 1.0:
                continue
            if all(
                (x - px) ** 2 + (y - py) ** 2 > (r + pr + 1.0) ** 2
                for (px, py), pr in zip(out, radii, strict=False)
            ):
                out.append((x, y))
                break
        else:
            raise ValueError(f"could not place objects of radii {radii} outside the goal {goal}")
    return out
