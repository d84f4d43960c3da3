"""Behaviour policies used to collect episodes: ``policy(env, rng) -> action``.

Controllable worlds expose ``env.expert_action() -> np.ndarray`` (a goal-seeking continuous action in
``[-1, 1]``, or a discrete index); the policies here only add noise, randomness and switching. Passive
worlds (Bounce, Occlude) have no expert, every policy returns the no-op there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from gedanken.worlds.base import PhysicsWorld
from gedanken.worlds.push import discrete_action
from gedanken.worlds.state import WORLD_SIZE, W, X, Y


def noop_action(env: PhysicsWorld) -> np.ndarray | int:
    """The action that does nothing (zeros, or index 0 for a discrete space)."""
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return 0
    return np.zeros(space.shape, dtype=np.float32)


def _has_expert(env: PhysicsWorld) -> bool:
    return callable(getattr(env, "expert_action", None))


@dataclass
class NoOpPolicy:
    """Always the no-op."""

    def reset(self) -> None:
        pass

    def __call__(self, env: PhysicsWorld, rng: np.random.Generator) -> np.ndarray | int:
        return noop_action(env)


@dataclass
class RandomPolicy:
    """Uniform random actions, each held for ``hold`` steps so motions are long enough to matter."""

    hold: int = 4  # steps each sampled action is repeated
    _left: int = field(default=0, repr=False)
    _action: np.ndarray | int | None = field(default=None, repr=False)

    def reset(self) -> None:
        self._left, self._action = 0, None

    def __call__(self, env: PhysicsWorld, rng: np.random.Generator) -> np.ndarray | int:
        if not _has_expert(env):
            return noop_action(env)
        if self._left <= 0 or self._action is None:
            space = env.action_space
            if isinstance(space, gym.spaces.Discrete):
                self._action = int(rng.integers(space.n))
            else:
                self._action = rng.uniform(space.low, space.high).astype(np.float32)
            self._left = self.hold
        self._left -= 1
        return self._action


@dataclass
class NoisyExpertPolicy:
    """The world's expert plus Gaussian noise (Box), or a random action with prob ``noise`` (Discrete)."""

    noise: float = 0.2  # std of the added noise (continuous) / probability of a random action (discrete)

    def reset(self) -> None:
        pass

    def __call__(self, env: PhysicsWorld, rng: np.random.Generator) -> np.ndarray | int:
        if not _has_expert(env):
            return noop_action(env)
        return _add_noise(env, env.expert_action(), self.noise, rng)  # type: ignore[attr-defined]


def _add_noise(
    env: PhysicsWorld, a: np.ndarray | int, noise: float, rng: np.random.Generator
) -> np.ndarray | int:
    """Gaussian noise of std ``noise`` on a Box action, or a random action with probability ``noise``."""
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return int(rng.integers(space.n)) if rng.random() < noise else int(a)
    assert isinstance(space, gym.spaces.Box)
    noisy = np.asarray(a, dtype=np.float32) + noise * rng.standard_normal(space.shape).astype(np.float32)
    return np.clip(noisy, space.low, space.high).astype(np.float32)


@dataclass
class MixedPolicy:
    """Every ``segment`` steps, switch between random and noisy-expert behaviour (noise drawn per segment)."""

    segment: int = 16  # steps per segment
    p_expert: float = 0.6  # probability that a segment is expert-driven
    max_noise: float = 0.6  # expert noise is drawn uniformly in [0, max_noise] per segment
    _t: int = field(default=0, repr=False)
    _current: RandomPolicy | NoisyExpertPolicy | None = field(default=None, repr=False)

    def reset(self) -> None:
        self._t, self._current = 0, None

    def __call__(self, env: PhysicsWorld, rng: np.random.Generator) -> np.ndarray | int:
        if self._current is None or self._t % self.segment == 0:
            if rng.random() < self.p_expert:
                self._current = NoisyExpertPolicy(noise=float(rng.uniform(0.0, self.max_noise)))
            else:
                self._current = RandomPolicy(hold=int(rng.integers(1, 8)))
        self._t += 1
        return self._current(env, rng)


@dataclass
class PokePolicy:
    """Contact-rich behaviour: each segment pushes the nearest block toward a random point of the world.

    The goal-seeking expert pushes a block along one line, and the ``mixed`` policy moves a Push block in
    only ~14 % of its steps; a model of contact dynamics (the planners' need, docs/planning.md) wants pushes
    from every side. Segments last ``segment`` steps; a share ``p_random`` of them are random actions
    instead, and each poke segment draws its noise in ``[0, max_noise]``. Worlds whose expert takes no
    ``target`` get the plain noisy expert.
    """

    segment: int = 24  # steps per segment (12 and 40 moved a block in fewer steps: 25 %, 23 % vs 29 %)
    p_random: float = 0.2  # probability that a segment is random actions
    max_noise: float = 0.3  # noise of a poke segment is drawn uniformly in [0, max_noise]
    margin: float = 6.0  # targets are drawn at least this far (world units) from the walls
    _t: int = field(default=0, repr=False)
    _target: np.ndarray | None = field(default=None, repr=False)
    _noise: float = field(default=0.0, repr=False)
    _random: RandomPolicy | None = field(default=None, repr=False)

    def reset(self) -> None:
        self._t, self._target, self._random = 0, None, None

    def __call__(self, env: PhysicsWorld, rng: np.random.Generator) -> np.ndarray | int:
        if not _has_expert(env):
            return noop_action(env)
        if self._t % self.segment == 0:
            self._random = (
                RandomPolicy(hold=int(rng.integers(1, 8))) if rng.random() < self.p_random else None
            )
            self._target = rng.uniform(self.margin, WORLD_SIZE - self.margin, size=2)
            self._noise = float(rng.uniform(0.0, self.max_noise))
        self._t += 1
        if self._random is not None:
            return self._random(env, rng)
        if "target" not in inspect.signature(env.expert_action).parameters:  # type: ignore[attr-defined]
            return NoisyExpertPolicy(self._noise)(env, rng)
        a = env.expert_action(target=self._target)  # type: ignore[attr-defined]
        return _add_noise(env, a, self._noise, rng)


@dataclass
class CrossGoalPolicy:
    """The pusher driven to waypoints, most of them on or just around the goal square, so it crosses the goal.

    The other policies put the Push pusher over the goal in 4-8 % of frames, where the diffusion models lose it
    (drawn over the goal, it differs from it in one colour channel; docs/history/diffusion.md "Session 14"). Each
    segment of ``segment`` steps heads for a new waypoint: with probability ``p_goal`` inside the goal square
    grown by ``margin`` on every side, else anywhere. Worlds without a goal slot get random actions.
    """

    segment: int = 12  # steps per waypoint
    p_goal: float = 0.7  # share of waypoints on or around the goal
    margin: float = 4.0  # world units the goal square is grown by for the waypoints
    noise: float = 0.2  # noise added to each action (as the noisy expert adds it)
    _t: int = field(default=0, repr=False)
    _target: np.ndarray | None = field(default=None, repr=False)
    _random: RandomPolicy = field(default_factory=RandomPolicy, repr=False)

    def reset(self) -> None:
        self._t, self._target = 0, None
        self._random.reset()

    def __call__(self, env: PhysicsWorld, rng: np.random.Generator) -> np.ndarray | int:
        kinds = tuple(getattr(env, "slot_kinds", ()))
        if "goal" not in kinds or "pusher" not in kinds:
            return self._random(env, rng)
        s = env.state_array().astype(np.float64)
        goal, pusher = s[kinds.index("goal")], s[kinds.index("pusher")]
        if self._t % self.segment == 0:
            if rng.random() < self.p_goal:
                half = goal[W] / 2 + self.margin
                self._target = goal[[X, Y]] + rng.uniform(-half, half, size=2)
            else:
                self._target = rng.uniform(0.0, WORLD_SIZE, size=2)
        self._t += 1
        assert self._target is not None
        d = self._target - pusher[[X, Y]]
        v = d / max(float(np.hypot(*d)), 4.0)  # full speed far away, slowing within 4 units
        if isinstance(env.action_space, gym.spaces.Discrete):  # the Push discrete directions, as its expert
            return discrete_action(v)
        return _add_noise(env, v.astype(np.float32), self.noise, rng)


POLICIES: dict[
    str,
    Callable[[], NoOpPolicy | RandomPolicy | NoisyExpertPolicy | MixedPolicy | PokePolicy | CrossGoalPolicy],
] = {
    "mixed": MixedPolicy,
    "poke": PokePolicy,
    # Targets anywhere, walls included: blocks pushed against and along walls, the pusher squeezing past them
    # (where the planners' learned models err, docs/planning.md "Predictor seeds, ensembles and wall data").
    "poke_walls": lambda: PokePolicy(margin=0.0),
    "poke_into_walls": lambda: PokePolicy(margin=-8.0),
    "cross_goal": CrossGoalPolicy,
    "random": RandomPolicy,
    "expert": lambda: NoisyExpertPolicy(noise=0.0),
    "noisy_expert": NoisyExpertPolicy,
    "noop": NoOpPolicy,
}


PLANNER_PREFIX = "plan:"  # ``plan:<checkpoint>``: a planner on that model (gedanken.planning.policy)


def make_policy(
    name: str,
) -> NoOpPolicy | RandomPolicy | NoisyExpertPolicy | MixedPolicy | PokePolicy | CrossGoalPolicy:
    """A fresh policy by name (see ``POLICIES``), or ``plan:<checkpoint>`` (a planner, gedanken.planning.policy)."""
    if name.startswith(PLANNER_PREFIX):
        from gedanken.planning.policy import make_planner_policy

        return make_planner_policy(name)  # type: ignore[return-value]
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid policies: {', '.join(POLICIES)}")
    return POLICIES[name]()
