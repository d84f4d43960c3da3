"""The true simulator as a world model (the planning ceiling) and random actions (the floor).

:class:`SimulatorModel` speaks the :class:`~gedanken.models.protocol.WorldModel` protocol by branching the
pymunk world it is attached to: ``observe`` snapshots the attached env with ``get_state`` (the frames are
ignored: this model *cheats* by reading the exact state), ``rollout`` continues that snapshot under every
candidate's actions on a private branch and returns exact object states (and pictures when asked).

Branching cost: ``set_state`` deep-copies the pymunk space (milliseconds), too slow for 300 candidates per
planning iteration. So a rollout call restores the snapshot once with ``set_state`` and then, per candidate,
resets only the dynamic body state (pose, velocities) of that branch. Pymunk's cached contact impulses are
not part of that reset, so candidates that start in contact can differ from an exact ``set_state`` branch by
solver warm-starting, typically 1e-3 world units over 8 steps (measured in tests/planning).
``exact=True`` uses ``set_state`` per candidate instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gedanken.models.protocol import Prediction, Rollout
from gedanken.planning.base import ActionBounds, Plan
from gedanken.worlds.base import PhysicsWorld, WorldSnapshot


@dataclass
class SimContext:
    """A snapshot of the attached world."""

    snapshot: WorldSnapshot


def _body_states(world: PhysicsWorld) -> list[tuple[object, tuple[float, ...]]]:
    sim = world._sim  # noqa: SLF001 - the branch is private to this model
    assert sim is not None
    bodies = [b for b in sim.bodies if b is not None] + [
        v for v in sim.extra.values() if hasattr(v, "velocity")
    ]
    return [(b, (*b.position, *b.velocity, b.angle, b.angular_velocity)) for b in bodies]


def _restore(world: PhysicsWorld, saved: list[tuple[object, tuple[float, ...]]]) -> None:
    sim = world._sim  # noqa: SLF001
    assert sim is not None
    for body, (x, y, vx, vy, ang, w) in saved:
        body.position = (x, y)  # type: ignore[attr-defined]
        body.velocity = (vx, vy)  # type: ignore[attr-defined]
        body.angle = ang  # type: ignore[attr-defined]
        body.angular_velocity = w  # type: ignore[attr-defined]
        body.force = (0.0, 0.0)  # type: ignore[attr-defined]
        body.torque = 0.0  # type: ignore[attr-defined]
        sim.space.reindex_shapes_for_body(body)


def physics_step(world: PhysicsWorld, action: np.ndarray) -> None:
    """``world.step`` without rendering, reward or contact bookkeeping (the physics only, bit-identical)."""
    sim = world._sim  # noqa: SLF001
    assert sim is not None
    world._apply_action(world._check_action(action))  # noqa: SLF001
    h = 1.0 / (world.fps * world.substeps)
    for _ in range(world.substeps):
        world._pre_substep()  # noqa: SLF001
        sim.space.step(h)
    world._t += 1  # noqa: SLF001


class SimulatorModel:
    """The exact simulator behind the protocol; see the module docstring."""

    def __init__(self, world: PhysicsWorld, *, render: bool = False, exact: bool = False) -> None:
        self.name = "simulator"
        self.world = world  # the env being controlled; observe() reads its state
        self.render = render  # also return pictures (slower)
        self.exact = exact  # set_state per candidate (slow, bit-exact) instead of body-state resets
        self._branch = type(world)(**_ctor_kwargs(world))

    def observe(
        self, frames: Tensor | None = None, actions: Tensor | None = None, text: list[str] | None = None
    ) -> SimContext:
        """Snapshot the attached world (``frames`` are ignored: the simulator reads the true state)."""
        return SimContext(self.world.get_state())

    def repeat_context(self, ctx: SimContext, n: int) -> SimContext:
        return ctx  # one snapshot serves any number of candidates

    def rollout(self, ctx: SimContext, actions: Tensor, *, seed: int = 0) -> Rollout:
        """Exact states ``(B, H, K, F)`` (and frames when ``render``) under actions ``(B, H, A)``."""
        if actions.ndim != 3:
            raise ValueError(f"actions must be (B, H, A), got {tuple(actions.shape)}")
        acts = actions.detach().cpu().numpy().astype(np.float32)
        b, h = acts.shape[:2]
        br = self._branch
        br.set_state(ctx.snapshot)
        saved = _body_states(br)
        k = br.max_objects
        states = np.zeros((b, h, k, br.state_array().shape[-1]), dtype=np.float32)
        frames = np.zeros((b, h, *br.render_size, 3), dtype=np.uint8) if self.render else None
        for i in range(b):
            if i > 0:
                if self.exact:
                    br.set_state(ctx.snapshot)
                else:
                    _restore(br, saved)
            for j in range(h):
                physics_step(br, acts[i, j])
                states[i, j] = br.state_array()
                if frames is not None:
                    frames[i, j] = br.render_state(states[i, j])
        return Rollout(
            frames=None if frames is None else torch.from_numpy(frames), states=torch.from_numpy(states)
        )

    def step(self, ctx: SimContext, action: Tensor) -> tuple[SimContext, Prediction]:
        """One exact step of a batch of one (the simulator does not batch contexts)."""
        if action.ndim != 2 or action.shape[0] != 1:
            raise ValueError(
                f"the simulator steps one context at a time: action must be (1, A), got {tuple(action.shape)}"
            )
        br = self._branch
        br.set_state(ctx.snapshot)
        physics_step(br, action[0].detach().cpu().numpy().astype(np.float32))
        state = br.state_array()
        frame = torch.from_numpy(br.render_state(state))[None] if self.render else None
        return SimContext(br.get_state()), Prediction(frame=frame, state=torch.from_numpy(state)[None])


def _ctor_kwargs(world: PhysicsWorld) -> dict[str, object]:
    kw: dict[str, object] = {
        "split": world.split,
        "render_size": world.render_size,
        "fps": world.fps,
        "substeps": world.substeps,
        "antialias": world.antialias,
        "max_steps": 10**9,
    }
    if hasattr(world, "discrete"):
        kw["discrete"] = world.discrete
    return kw


class RandomPlanner:
    """The floor: uniformly random actions, ignoring the model and the goal (same seed -> same actions)."""

    def __init__(self, bounds: ActionBounds, horizon: int = 1) -> None:
        self.name = "random"
        self.bounds = bounds
        self.horizon = horizon

    def reset(self) -> None:
        pass

    def plan(
        self,
        frames: Tensor | None = None,
        actions: Tensor | None = None,
        *,
        seed: int = 0,
        keep_rollout: bool = False,
    ) -> Plan:
        gen = torch.Generator().manual_seed(int(seed))
        u = torch.rand(self.horizon, self.bounds.dim, generator=gen) * 2 - 1
        return Plan(actions=self.bounds.to_raw(u), cost=float("nan"), history=[], seconds=0.0)
