"""The common machinery of every built-in world: a pymunk space behind a Gymnasium env.

A world subclass supplies its parameters dataclass, a split sampler, a scene builder and, for controllable
worlds, how an action drives the scene and what it earns. :class:`PhysicsWorld` does the rest: seeding,
stepping with substeps, exact object state, contacts, rendering, and counterfactual snapshots.

Snapshots (:meth:`PhysicsWorld.get_state` / :meth:`PhysicsWorld.set_state`) are bit-exact: ``get_state``
keeps the live simulation as the snapshot and continues on a deep copy of it, ``set_state`` continues on
another deep copy, so every future starts from an identical copy (pymunk's contact cache included).
Taking a snapshot therefore changes nothing about the snapshot's own futures, but a trajectory on which
``get_state`` was called may differ in the last bits from one on which it was not.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pymunk

from gedanken.data.episode import ActionSpec
from gedanken.worlds.palette import palette_for
from gedanken.worlds.render import Raster, colourize, rasterize, render_state
from gedanken.worlds.splits import SPLIT_INDEX, check_split
from gedanken.worlds.state import (
    ANGLE,
    ANGVEL,
    PRESENT,
    VX,
    VY,
    WORLD_SIZE,
    F,
    ObjectState,
    Shape,
    X,
    Y,
    objects_from_array,
)

WALL_THICKNESS = 20.0  # static boxes just outside the 64 x 64 world, thick enough that nothing tunnels


@dataclass
class Sim:
    """Everything that changes while a world runs; deep-copied as one object so references stay consistent."""

    space: pymunk.Space
    bodies: list[pymunk.Body | None]  # per identity slot; None for absent or static (goal, occluder) slots
    rows: np.ndarray  # (K, F) template: present, size, mass and the pose of static slots
    extra: dict[str, Any] = field(default_factory=dict)  # world-specific live state (control bodies, ...)


@dataclass(frozen=True)
class WorldSnapshot:
    """A moment of a world, enough to continue it bit-exactly any number of times."""

    world: str  # the world's registry name, checked by set_state
    sim: Sim  # never stepped; set_state continues on a deep copy
    rng_state: dict[str, Any]  # the env's np_random bit-generator state
    rng_type: type  # the bit generator class
    step: int  # steps since reset
    params: Any  # the world's params dataclass
    contacts: np.ndarray  # (K,) int32 contacts of the current frame


def add_walls(space: pymunk.Space, friction: float, elasticity: float) -> None:
    """Four static boxes bordering the ``WORLD_SIZE`` square from outside."""
    s, t = WORLD_SIZE, WALL_THICKNESS
    body = space.static_body
    boxes = [(-t, -t, s + t, 0.0), (-t, s, s + t, s + t), (-t, -t, 0.0, s + t), (s, -t, s + t, s + t)]
    for x0, y0, x1, y1 in boxes:
        wall = pymunk.Poly(body, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        wall.friction = friction
        wall.elasticity = elasticity
        space.add(wall)


def coerce_params(cls: type, params: Any) -> Any:
    """``params`` as an instance of the dataclass ``cls`` (from an instance or a JSON dict)."""
    if isinstance(params, cls):
        return params
    if isinstance(params, dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(params) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; valid: {sorted(names)}")
        try:
            return cls(**params)
        except TypeError as e:
            raise ValueError(f"bad {cls.__name__}: {e}") from None
    raise ValueError(f"params must be a {cls.__name__} or a dict, got {type(params).__name__}")


class PhysicsWorld(gym.Env[np.ndarray, np.ndarray]):
    """Base of the built-in worlds (observations are rendered frames; exact state rides along in ``info``).

    Subclasses set the class attributes and implement ``_build``; controllable ones override
    ``_apply_action``, ``_pre_substep`` and ``_evaluate``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 15}
    name: ClassVar[str] = ""  # registry name, e.g. "bounce"
    slot_kinds: ClassVar[tuple[str, ...]] = ()  # kind of each identity slot
    slot_shapes: ClassVar[tuple[Shape, ...]] = ()  # shape of each identity slot
    params_type: ClassVar[type] = object  # the world's frozen params dataclass

    def __init__(
        self,
        *,
        split: str = "train",
        params: Any = None,
        render_mode: str | None = "rgb_array",
        render_size: tuple[int, int] = (64, 64),
        fps: float = 15.0,
        substeps: int = 8,
        antialias: bool = False,
        max_steps: int = 1000,
    ) -> None:
        self.split = check_split(split)
        self.fixed_params = None if params is None else coerce_params(self.params_type, params)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        if len(render_size) != 2 or min(int(render_size[0]), int(render_size[1])) <= 0:
            raise ValueError(f"render_size must be (H, W) with positive entries, got {render_size}")
        if not (fps > 0 and substeps >= 1 and max_steps >= 1):
            raise ValueError(
                f"need fps > 0, substeps >= 1, max_steps >= 1; got {fps}, {substeps}, {max_steps}"
            )
        self.render_mode = render_mode
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.fps = float(fps)
        self.substeps = int(substeps)
        self.antialias = bool(antialias)
        self.max_steps = int(max_steps)
        self.world_name = self.name
        k = len(self.slot_kinds)
        self.max_objects = k
        self.palette = palette_for(k)  # (K + 1, 3) uint8
        self.metadata = {
            **type(self).metadata,
            "render_fps": self.fps,
            "palette": self.palette,
            "kinds": self.slot_kinds,
            "shapes": tuple(s.value for s in self.slot_shapes),
        }
        h, w = self.render_size
        self.observation_space = gym.spaces.Box(0, 255, (h, w, 3), np.uint8)
        self.action_space = self._make_action_space()
        self._sim: Sim | None = None
        self._params: Any = None
        self._t = 0
        self._contacts = np.zeros(k, dtype=np.int32)
        self._raster: Raster | None = None
        self._frame: np.ndarray | None = None  # (H, W, 3) uint8, the current observation

    # ----------------------------------------------------------------- to implement in subclasses
    def _make_action_space(self) -> gym.Space:
        return gym.spaces.Box(-1.0, 1.0, (1,), np.float32)  # passive worlds: one ignored value

    def action_spec(self) -> ActionSpec:
        """How actions of this world are stored in an episode."""
        return ActionSpec(kind="none", dim=1, low=(-1.0,), high=(1.0,))

    @staticmethod
    def sample_params(split: str, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def _build(self, params: Any, rng: np.random.Generator) -> Sim:
        raise NotImplementedError

    def _apply_action(self, action: np.ndarray) -> None:
        """Turn one validated action into control targets held in ``self._sim.extra``."""

    def _pre_substep(self) -> None:
        """Called before every physics substep (e.g. to apply forces, which pymunk clears each step)."""

    def _evaluate(self, state: np.ndarray) -> tuple[float, bool]:
        """Reward and termination of the transition that led to ``state``."""
        return 0.0, False

    def _extra_info(self, state: np.ndarray) -> dict[str, Any]:
        return {}

    # ----------------------------------------------------------------------------- Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        super().reset(seed=seed)
        opts = dict(options or {})
        seeds = self.np_random.integers(0, 2**32, size=2)
        s = SPLIT_INDEX[self.split]
        if "params" in opts:
            params = coerce_params(self.params_type, opts.pop("params"))
        elif self.fixed_params is not None:
            params = self.fixed_params
        else:
            params = self.sample_params(self.split, np.random.default_rng([int(seeds[0]), s, 0]))
        if opts:
            raise ValueError(f"unknown reset options {sorted(opts)}; valid: ['params']")
        self._params = params
        self._sim = self._build(params, np.random.default_rng([int(seeds[1]), s, 1]))
        self._t = 0
        self._contacts = np.zeros(self.max_objects, dtype=np.int32)
        state = self.state_array()
        self._evaluate_reset(state)
        return self._observe(state), self._info(state)

    def _evaluate_reset(self, state: np.ndarray) -> None:
        """Hook to initialise reward bookkeeping after a reset (default: nothing)."""

    def step(self, action: Any):  # type: ignore[override]
        if self._sim is None:
            raise RuntimeError(f"{type(self).__name__}.step called before reset()")
        self._apply_action(self._check_action(action))
        space = self._sim.space
        h = 1.0 / (self.fps * self.substeps)
        contacts = np.zeros(self.max_objects, dtype=np.int32)
        for _ in range(self.substeps):
            self._pre_substep()
            space.step(h)
            self._collect_contacts(contacts)
        self._contacts = contacts
        self._t += 1
        state = self.state_array()
        reward, terminated = self._evaluate(state)
        truncated = self._t >= self.max_steps and not terminated
        return self._observe(state), float(reward), bool(terminated), bool(truncated), self._info(state)

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self.render_mode != "rgb_array" or self._frame is None:
            return None
        return self._frame.copy()

    # ------------------------------------------------------------------------------- exact state
    @property
    def params(self) -> Any:
        """The parameters of the current episode."""
        return self._params

    @property
    def step_count(self) -> int:
        return self._t

    def state_array(self) -> np.ndarray:
        """Exact object state of the current frame, ``(K, F)`` float32 (layout of gedanken.worlds.state)."""
        if self._sim is None:
            raise RuntimeError("no state before reset()")
        rows = self._sim.rows.astype(np.float64)
        for i, b in enumerate(self._sim.bodies):
            if b is None:
                continue
            p, v = b.position, b.velocity
            rows[i, X], rows[i, Y], rows[i, VX], rows[i, VY] = p.x, p.y, v.x, v.y
            rows[i, ANGLE], rows[i, ANGVEL] = b.angle, b.angular_velocity
        return rows.astype(np.float32)

    def contacts_array(self) -> np.ndarray:
        """Contact bitmask per slot, ``(K,)`` int32, accumulated over the substeps that led to this frame."""
        return self._contacts.copy()

    def objects(self) -> list[ObjectState]:
        """Readable view of the present objects."""
        return objects_from_array(self.state_array(), self._contacts, self.slot_kinds, self.slot_shapes)

    def episode_kinds(self) -> tuple[str, ...]:
        """Per slot kind, ``""`` for slots absent in this episode."""
        present = self._sim.rows[:, PRESENT] > 0 if self._sim is not None else np.ones(self.max_objects, bool)
        return tuple(k if p else "" for k, p in zip(self.slot_kinds, present, strict=True))

    def episode_shapes(self) -> tuple[str, ...]:
        kinds = self.episode_kinds()
        return tuple(s.value if k else "" for s, k in zip(self.slot_shapes, kinds, strict=True))

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Render any ``(K, F)`` state of this world exactly as the world renders its own."""
        return render_state(
            state, self.slot_shapes, self.palette, self.render_size, self.slot_kinds, self.antialias
        )

    # -------------------------------------------------------------------------- counterfactuals
    def get_state(self) -> WorldSnapshot:
        """Snapshot this moment; the env continues on a copy, so the snapshot is independent of it."""
        if self._sim is None:
            raise RuntimeError("get_state called before reset()")
        bg = self.np_random.bit_generator
        snap = WorldSnapshot(
            world=self.world_name,
            sim=self._sim,
            rng_state=copy.deepcopy(bg.state),
            rng_type=type(bg),
            step=self._t,
            params=self._params,
            contacts=self._contacts.copy(),
        )
        self._sim = copy.deepcopy(snap.sim)
        return snap

    def set_state(self, snapshot: WorldSnapshot) -> None:
        """Continue from ``snapshot`` (reusable any number of times)."""
        if not isinstance(snapshot, WorldSnapshot) or snapshot.world != self.world_name:
            got = getattr(snapshot, "world", type(snapshot).__name__)
            raise ValueError(f"set_state needs a WorldSnapshot of {self.world_name!r}, got {got!r}")
        self._sim = copy.deepcopy(snapshot.sim)
        bg = snapshot.rng_type()
        bg.state = copy.deepcopy(snapshot.rng_state)
        self._np_random = np.random.Generator(bg)
        self._t = snapshot.step
        self._params = snapshot.params
        self._contacts = snapshot.contacts.copy()
        self._observe(self.state_array())

    # ---------------------------------------------------------------------------------- helpers
    def _check_action(self, action: Any) -> np.ndarray:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            a = np.asarray(action).reshape(-1)
            if a.size != 1 or not float(a[0]).is_integer() or not space.contains(int(a[0])):
                raise ValueError(f"action must be an integer in [0, {space.n}), got {action!r}")
            return np.array([int(a[0])], dtype=np.float32)
        assert isinstance(space, gym.spaces.Box)
        a = np.asarray(action, dtype=np.float32).reshape(-1)
        if a.shape != space.shape or not np.isfinite(a).all():
            raise ValueError(f"action must be {space.shape} finite floats in [-1, 1], got {action!r}")
        return np.clip(a, space.low, space.high)

    def _collect_contacts(self, out: np.ndarray) -> None:
        assert self._sim is not None
        for i, b in enumerate(self._sim.bodies):
            if b is not None:
                b.each_arbiter(_record_contact, out, i)

    def _observe(self, state: np.ndarray) -> np.ndarray:
        self._raster = rasterize(state, self.slot_shapes, self.render_size, self.slot_kinds)
        if self.antialias:
            self._frame = self.render_state(state)
        else:
            self._frame = colourize(self._raster.labels, self.palette)
        return self._frame.copy()

    def visible_fraction(self) -> np.ndarray:
        """Share of each object's pixels visible in the current frame, ``(K,)`` float32."""
        if self._raster is None:
            raise RuntimeError("no frame before reset()")
        return self._raster.visible_fraction()

    def _info(self, state: np.ndarray) -> dict[str, Any]:
        info = {
            "state": state,
            "contacts": self._contacts.copy(),
            "visible_fraction": self.visible_fraction(),
            "step": self._t,
        }
        info.update(self._extra_info(state))
        return info


def _record_contact(arbiter: pymunk.Arbiter, out: np.ndarray, i: int) -> None:
    """each_arbiter callback: set the contact bit of the body on the other side of ``arbiter``."""
    if not arbiter.contact_point_set.points:
        return
    a, b = arbiter.shapes
    other = b.body if getattr(a.body, "slot", -1) == i else a.body
    if other.body_type == pymunk.Body.STATIC:
        out[i] |= 1
    else:
        j = getattr(other, "slot", -1)
        if j >= 0:
            out[i] |= 1 << (j + 1)


def new_space(gravity: float = 0.0, damping: float = 1.0, iterations: int = 10) -> pymunk.Space:
    """A pymunk space with the settings every world shares."""
    space = pymunk.Space()
    space.gravity = (0.0, -float(gravity))
    space.damping = float(damping)
    space.iterations = int(iterations)
    return space


def blank_rows(k: int) -> np.ndarray:
    return np.zeros((k, F), dtype=np.float32)
