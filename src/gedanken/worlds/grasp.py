"""Grasp: a two-finger gripper tries to lift a cup; a grip too weak for the cup's weight slips.

Side view with gravity. The hand is a kinematic body that only moves vertically; each finger is a dynamic
box that slides horizontally on a groove joint of the hand (rotation locked by a gear joint). Each
substep the fingers are pushed toward each other with ``grip * grip_force`` (or opened with a small
force). Nothing else holds the cup: pymunk's Coulomb friction at the two finger contacts can carry at most
``2 * mu * N`` with ``mu = friction`` (fingers have friction 1, so the pair's coefficient is the cup's), so
the cup is lifted only when ``2 * friction * grip * grip_force > cup_mass * (gravity + lift acceleration)``;
otherwise it slips out.

* Action ``Box(-1, 1, (2,))``: ``[vertical hand velocity (x hand_speed), grip]``; ``grip <= 0`` opens,
  ``grip in (0, 1]`` squeezes with ``grip * grip_force``.
* Slots: 0 left finger, 1 right finger (kind ``"finger"``, boxes), 2 the cup (kind ``"cup"``, a box).
* Reward: the cup's rise over the step (world units). Never terminates (truncation at ``max_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pymunk

from gedanken.data.episode import ActionSpec
from gedanken.worlds.base import PhysicsWorld, Sim, add_walls, blank_rows, new_space
from gedanken.worlds.splits import check_range, check_split, params_to_json, uniform, uniform_outside
from gedanken.worlds.state import MASS, PRESENT, WORLD_SIZE, H, Shape, W, X, Y

FINGER_W, FINGER_H, FINGER_MASS = 3.0, 10.0, 0.5
OPEN_FORCE = 20.0  # force that opens the fingers when grip <= 0
HAND_SPEED = 15.0  # hand speed at |action[0]| = 1 (world units / s)
FLOOR_CLEARANCE = 0.5  # the finger tips stop this far above the floor
CUP_SLOT = 2
# Train ranges (docs/worlds.md lists every split).
MASS_RANGE = (0.5, 2.5)
MASS_GAP = (1.2, 1.8)  # held out of train: the `gap` split
FRICTION = (0.4, 1.0)
HEAVY_MASS = 2.0  # `combo`: heavy (mass >= 2) ...
SLIPPERY = 0.55  # ... and slippery (friction <= 0.55) together never appear in train
GRAVITY = (25.0, 35.0)
CUP_SIZE = (8.0, 12.0)


@dataclass(frozen=True)
class GraspParams:
    """Physical parameters of one Grasp episode (world units, seconds)."""

    cup_mass: float = 1.0  # mass of the cup, > 0
    friction: float = 0.7  # friction coefficient of the cup (fingers have 1.0, so this is the pair's), >= 0
    cup_width: float = 10.0  # outer width of the cup, in [5, 16]
    cup_height: float = 10.0  # height of the cup, in [5, 16]
    gravity: float = 30.0  # downward acceleration, >= 0
    grip_force: float = 100.0  # squeezing force per finger at grip = 1, > 0

    def __post_init__(self) -> None:
        check_range("cup_mass", self.cup_mass, 1e-3, 1e3)
        check_range("friction", self.friction, 0.0, 10.0)
        check_range("cup_width", self.cup_width, 5.0, 16.0)
        check_range("cup_height", self.cup_height, 5.0, 16.0)
        check_range("gravity", self.gravity, 0.0, 500.0)
        check_range("grip_force", self.grip_force, 1e-3, 1e4)

    def min_grip(self) -> float:
        """Smallest grip in (0, 1] that holds the cup still against gravity (> 1: it always slips)."""
        return self.cup_mass * self.gravity / (2.0 * max(self.friction, 1e-9) * self.grip_force)

    def to_json(self) -> dict[str, Any]:
        return params_to_json(self)


def sample_grasp_params(split: str, rng: np.random.Generator) -> GraspParams:
    """Sample the parameters of one episode of ``split`` (ranges in docs/worlds.md)."""
    check_split(split)
    size = {"cup_width": uniform(rng, *CUP_SIZE), "cup_height": uniform(rng, *CUP_SIZE)}
    if split == "ood":
        return GraspParams(
            cup_mass=uniform(rng, 3.0, 4.5),
            friction=uniform(rng, *FRICTION),
            gravity=uniform(rng, 40.0, 50.0),
            **size,
        )
    if split == "combo":
        m, mu = uniform(rng, HEAVY_MASS, MASS_RANGE[1]), uniform(rng, FRICTION[0], SLIPPERY)
    elif split == "gap":
        m, mu = uniform(rng, *MASS_GAP), uniform(rng, *FRICTION)
    else:
        m, mu = uniform_outside(rng, *MASS_RANGE, *MASS_GAP), uniform(rng, *FRICTION)
        while m >= HEAVY_MASS and mu <= SLIPPERY:
            m, mu = uniform_outside(rng, *MASS_RANGE, *MASS_GAP), uniform(rng, *FRICTION)
    return GraspParams(cup_mass=m, friction=mu, gravity=uniform(rng, *GRAVITY), **size)


class Grasp(PhysicsWorld):
    """A gripper lifting a cup by friction; action ``[hand velocity, grip]`` in ``[-1, 1]^2``."""

    name = "grasp"
    slot_kinds = ("finger", "finger", "cup")
    slot_shapes = (Shape.BOX, Shape.BOX, Shape.BOX)
    params_type = GraspParams

    def _make_action_space(self) -> gym.Space:
        return gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action_spec(self) -> ActionSpec:
        return ActionSpec(kind="box", dim=2, low=(-1.0, -1.0), high=(1.0, 1.0))

    @staticmethod
    def sample_params(split: str, rng: np.random.Generator) -> GraspParams:
        return sample_grasp_params(split, rng)

    def _build(self, params: GraspParams, rng: np.random.Generator) -> Sim:
        space = new_space(gravity=params.gravity)
        add_walls(space, friction=1.0, elasticity=0.0)
        rows = blank_rows(self.max_objects)
        bodies: list[pymunk.Body | None] = [None] * self.max_objects
        cw, ch, m = params.cup_width, params.cup_height, params.cup_mass
        cx = uniform(rng, 24.0, 40.0)
        cup = pymunk.Body(m, pymunk.moment_for_box(m, (cw, ch)))
        cup.position = (cx, ch / 2)
        cup_shape = pymunk.Poly.create_box(cup, (cw, ch))
        cup_shape.friction, cup_shape.elasticity = params.friction, 0.0
        cup.slot = CUP_SLOT
        space.add(cup, cup_shape)
        bodies[CUP_SLOT] = cup
        rows[CUP_SLOT, [PRESENT, W, H, MASS]] = 1.0, cw, ch, m
        hand = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        hand.position = (cx + uniform(rng, -2.5, 2.5), ch + FINGER_H / 2 + uniform(rng, 2.0, 14.0))
        space.add(hand)
        reach = CUP_SIZE[1] / 2 + FINGER_W / 2 + 4.0  # finger centre offset when fully open
        for slot, side in ((0, -1.0), (1, 1.0)):
            f = pymunk.Body(FINGER_MASS, pymunk.moment_for_box(FINGER_MASS, (FINGER_W, FINGER_H)))
            f.position = (hand.position.x + side * reach, hand.position.y)
            shape = pymunk.Poly.create_box(f, (FINGER_W, FINGER_H))
            shape.friction, shape.elasticity = 1.0, 0.0
            groove = pymunk.GrooveJoint(hand, f, (side * reach, 0.0), (side * FINGER_W / 2, 0.0), (0.0, 0.0))
            lock = pymunk.GearJoint(hand, f, 0.0, 1.0)
            f.slot = slot
            space.add(f, shape, groove, lock)
            bodies[slot] = f
            rows[slot, [PRESENT, W, H, MASS]] = 1.0, FINGER_W, FINGER_H, FINGER_MASS
        extra = {"hand": hand, "grip": 0.0, "vy": 0.0, "cup_y": ch / 2}
        return Sim(space=space, bodies=bodies, rows=rows, extra=extra)

    def _apply_action(self, action: np.ndarray) -> None:
        assert self._sim is not None
        self._sim.extra["vy"] = float(action[0]) * HAND_SPEED
        self._sim.extra["grip"] = float(action[1])

    def _pre_substep(self) -> None:
        assert self._sim is not None
        ex = self._sim.extra
        hand: pymunk.Body = ex["hand"]
        h = 1.0 / (self.fps * self.substeps)
        lo = FINGER_H / 2 + FLOOR_CLEARANCE
        hi = WORLD_SIZE - FINGER_H / 2 - FLOOR_CLEARANCE
        y, vy = hand.position.y, ex["vy"]
        vy = min(max(vy, (lo - y) / h), (hi - y) / h)  # the hand stops at the floor and the ceiling
        hand.velocity = (0.0, vy)
        grip = ex["grip"]
        push = grip * self._params.grip_force if grip > 0 else -OPEN_FORCE
        left, right = self._sim.bodies[0], self._sim.bodies[1]
        assert left is not None and right is not None
        left.force = (push, 0.0)  # pymunk clears forces after every step
        right.force = (-push, 0.0)

    def _evaluate_reset(self, state: np.ndarray) -> None:
        assert self._sim is not None
        self._sim.extra["cup_y"] = float(state[CUP_SLOT, Y])

    def _evaluate(self, state: np.ndarray) -> tuple[float, bool]:
        assert self._sim is not None
        y = float(state[CUP_SLOT, Y])
        reward = y - self._sim.extra["cup_y"]
        self._sim.extra["cup_y"] = y
        return reward, False

    def _extra_info(self, state: np.ndarray) -> dict[str, Any]:
        assert self._sim is not None
        return {
            "hand_y": float(self._sim.extra["hand"].position.y),
            "cup_height_above_floor": float(state[CUP_SLOT, Y] - state[CUP_SLOT, H] / 2),
        }

    def expert_action(self) -> np.ndarray:
        """Lift attempt: descend open to the cup's base, squeeze fully, then lift."""
        s = self.state_array()
        cup_bottom = s[CUP_SLOT, Y] - s[CUP_SLOT, H] / 2
        finger_bottom = s[0, Y] - FINGER_H / 2
        inner_gap = (s[1, X] - s[0, X]) - FINGER_W
        closed = inner_gap <= s[CUP_SLOT, W] + 0.5
        if closed:
            return np.array([1.0, 1.0], dtype=np.float32)
        if finger_bottom > cup_bottom + FLOOR_CLEARANCE + 1.0:
            return np.array([-1.0, -1.0], dtype=np.float32)
        return np.array([0.0, 1.0], dtype=np.float32)
