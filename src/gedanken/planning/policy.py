"""A planner as a behaviour policy: record data where a model-predictive controller actually goes.

``gedanken collect --world push --policy plan:jepa_push`` drives each Push episode toward its own goal square
with CEM on the named checkpoint (the same objective as ``gedanken plan``), adding Gaussian noise of std
``noise`` to every executed action. Recording a model's own closed-loop behaviour and training on it is the
classic cure for a planner exploiting its model's errors (data aggregation, Ross & Bagnell 2012): the poke
policy's data never show the pusher brushing past a block the way CEM drives it (docs/jepa.md).

The policy keeps its own last two frames and actions (the MPC context), so it fits the
``policy(env, rng) -> action`` interface of :mod:`gedanken.worlds.policies`; loaded models are cached per
process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gedanken.worlds.policies import PLANNER_PREFIX as PREFIX


@lru_cache(maxsize=2)
def _load(spec: str) -> Any:
    from gedanken.models import load_checkpoint
    from gedanken.train.cli import resolve_model_path

    return load_checkpoint(resolve_model_path(spec))


@dataclass
class PlannerPolicy:
    """CEM toward the episode's own goal (Push), plus exploration noise; see the module docstring."""

    model: str  # checkpoint directory or shipped name
    noise: float = 0.3  # std of the Gaussian noise added to each planned action (action units [-1, 1])
    candidates: int = 300
    iterations: int = 2
    _planner: Any = field(default=None, repr=False)
    _frames: list[np.ndarray] = field(default_factory=list, repr=False)
    _actions: list[np.ndarray] = field(default_factory=list, repr=False)

    def reset(self) -> None:
        self._planner, self._frames, self._actions = None, [], []

    def _start(self, env: Any) -> None:
        from gedanken.planning.base import ActionBounds
        from gedanken.planning.cem import CEMConfig, CEMPlanner
        from gedanken.planning.evaluate import world_reader
        from gedanken.planning.tasks import GoalKind, PushTaskConfig, push_episode_of, push_objective

        if getattr(env, "world_name", "") != "push":
            raise ValueError(
                f"the planner policy drives Push episodes only, got {getattr(env, 'world_name', env)!r}"
            )
        model = _load(self.model)
        episode = push_episode_of(env, 0)
        objective = push_objective(episode, GoalKind.STATE, PushTaskConfig(), model, world_reader(env))
        cfg = dataclasses.replace(CEMConfig(), candidates=self.candidates, iterations=self.iterations)
        self._planner = CEMPlanner(model, objective, ActionBounds.from_spec(env.action_spec()), cfg)

    def __call__(self, env: Any, rng: np.random.Generator) -> np.ndarray:
        if self._planner is None:
            self._start(env)
        self._frames = [*self._frames[-1:], env.render_state(env.state_array())]
        frames = torch.from_numpy(np.stack(self._frames))
        past = self._actions[-(len(self._frames) - 1) :] if len(self._frames) > 1 else []
        actions = torch.from_numpy(np.stack([*past, np.zeros(self._planner.bounds.dim, np.float32)]))
        seed = int(rng.integers(2**31))
        plan = self._planner.plan(frames, actions, seed=seed)
        a = plan.actions[0].detach().cpu().numpy().astype(np.float32)
        a = np.clip(a + rng.normal(0.0, self.noise, size=a.shape), -1.0, 1.0).astype(np.float32)
        self._actions = [*self._actions[-1:], a]
        return a


def is_planner_policy(name: str) -> bool:
    return name.startswith(PREFIX) and len(name) > len(PREFIX)


def check_planner_policy(name: str, world: str) -> None:
    """Raise ValueError unless ``name`` is ``plan:<an existing checkpoint>`` and ``world`` has goals (Push)."""
    if not is_planner_policy(name):
        raise ValueError(f"a planner policy is named 'plan:<checkpoint>', got {name!r}")
    if world != "push":
        raise ValueError(f"the planner policy drives Push episodes only, got world {world!r}")
    from gedanken.models import CHECKPOINT_ROOT

    spec = name[len(PREFIX) :]
    if not (Path(spec).is_dir() or (CHECKPOINT_ROOT / spec).is_dir()):
        raise ValueError(
            f"planner policy {name!r}: {spec!r} is neither a checkpoint directory nor a shipped model"
        )


def make_planner_policy(name: str) -> PlannerPolicy:
    """``plan:<checkpoint>`` -> a :class:`PlannerPolicy` on that checkpoint."""
    if not is_planner_policy(name):
        raise ValueError(f"a planner policy is named 'plan:<checkpoint>', got {name!r}")
    return PlannerPolicy(name[len(PREFIX) :])
