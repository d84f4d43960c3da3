"""Goal-reaching evaluation: model-predictive control on Push episodes, one model at a time.

For each episode the planner replans at every step from the last ``context`` frames (receding horizon, warm
started), the first planned action is executed in the real world, and the episode ends when the world says
the blocks are in the goal (success) or after ``max_steps``. Recorded: success, steps to success, final
distance, planning latency per step, and for a few episodes the executed frames next to what the model
imagined (its predicted pictures, or its predicted object states drawn with the true shapes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gedanken.models.protocol import WorldModel
from gedanken.planning.base import ActionBounds, Plan
from gedanken.planning.cem import CEMConfig, CEMPlanner
from gedanken.planning.ensemble import Ensemble, RiskAverse
from gedanken.planning.mppi import MPPIConfig, MPPIPlanner
from gedanken.planning.simulator import RandomPlanner, SimulatorModel
from gedanken.planning.tasks import (
    GoalKind,
    PushTaskConfig,
    make_push_episode,
    make_push_world,
    push_objective,
    push_solved,
)
from gedanken.worlds.base import PhysicsWorld
from gedanken.worlds.state import ANGLE, MASS, PRESENT, F, H, W, X, Y

log = logging.getLogger(__name__)


class PlannerKind(str, Enum):
    CEM = "cem"
    MPPI = "mppi"


@dataclass(frozen=True)
class EvalConfig:
    """How a model is driven toward Push goals."""

    episodes: int = 50  # episodes (start/goal pairs) per model
    planner: PlannerKind = PlannerKind.CEM  # sampling planner
    goal: GoalKind = GoalKind.STATE  # how the goal is handed to the planner
    cem: CEMConfig = field(default_factory=CEMConfig)  # used when planner is CEM
    mppi: MPPIConfig = field(default_factory=MPPIConfig)  # used when planner is MPPI
    context: int = 2  # frames (and actions between them) the model observes at each replanning step
    clips: int = 3  # episodes whose executed/imagined clips are kept
    seed: int = 0  # planner seeds: episode i, step t uses seed * 1_000_003 + i * 1000 + t
    risk: float = 1.0  # ensembles only: members' mean cost + risk * their disagreement (RiskAverse)


@dataclass
class EpisodeResult:
    """One planned episode."""

    index: int
    world_seed: int
    success: bool
    steps: int  # steps taken (= steps to success when success)
    final_distance: (
        float  # max over blocks of the Chebyshev distance block centre -> goal centre (world units)
    )
    tolerance: float  # goal_size / 2: success needs final_distance <= tolerance
    plan_ms: list[float]  # wall time of every planning call
    executed: np.ndarray | None = None  # (T, H, W, 3) uint8 real frames (clip episodes only)
    imagined: np.ndarray | None = None  # (T, H, W, 3) uint8 model's picture of the end of each plan
    goal_frame: np.ndarray | None = None  # (H, W, 3) uint8 picture of the solved scene (clip episodes only)


@dataclass
class ModelResult:
    """All episodes of one model."""

    model: str
    family: str
    planner: str
    goal: str
    episodes: list[EpisodeResult]

    @property
    def success_rate(self) -> float:
        return float(np.mean([e.success for e in self.episodes])) if self.episodes else float("nan")

    def summary(self) -> dict[str, Any]:
        ok = [e.steps for e in self.episodes if e.success]
        ms = np.concatenate([np.asarray(e.plan_ms) for e in self.episodes]) if self.episodes else np.zeros(0)
        return {
            "model": self.model,
            "family": self.family,
            "planner": self.planner,
            "goal": self.goal,
            "episodes": len(self.episodes),
            "successes": len(ok),
            "success_rate": self.success_rate,
            "steps_to_success_mean": float(np.mean(ok)) if ok else None,
            "steps_to_success_median": float(np.median(ok)) if ok else None,
            "final_distance_mean": float(np.mean([e.final_distance for e in self.episodes]))
            if self.episodes
            else None,
            "plan_ms_mean": float(ms.mean()) if ms.size else None,
            "plan_ms_p50": float(np.percentile(ms, 50)) if ms.size else None,
            "plan_ms_p95": float(np.percentile(ms, 95)) if ms.size else None,
            "per_episode": [
                {
                    "index": e.index,
                    "world_seed": e.world_seed,
                    "success": e.success,
                    "steps": e.steps,
                    "final_distance": round(e.final_distance, 3),
                }
                for e in self.episodes
            ],
        }


def judge_reader(palette: tuple[tuple[int, int, int], ...], k: int) -> Callable[[Tensor], Tensor]:
    """States ``(B, H, K, F)`` (present, x, y) read from pictures ``(B, H, h, w, 3)`` by the audit's colour judge."""
    from gedanken.audit.judge import judge_frames

    def read(frames: Tensor) -> Tensor:
        j = judge_frames(np.ascontiguousarray(frames.cpu().numpy()), palette)
        xy = np.nan_to_num(j.xy_world(), nan=0.0)  # (B, H, K, 2)
        out = np.zeros((*xy.shape[:-2], k, F), dtype=np.float32)
        out[..., PRESENT] = j.visible
        out[..., X], out[..., Y] = xy[..., 0], xy[..., 1]
        return torch.from_numpy(out)

    return read


def world_reader(world: PhysicsWorld) -> Callable[[Tensor], Tensor]:
    """:func:`judge_reader` for ``world``'s palette and identity slots."""
    return judge_reader(tuple(tuple(int(c) for c in p) for p in world.palette), world.max_objects)


def _imagined_picture(world: PhysicsWorld, plan: Plan, truth: np.ndarray) -> np.ndarray | None:
    """The model's picture of the end of a plan: its decoded frame, or its predicted poses drawn exactly."""
    r = plan.rollout
    if r is None:
        return None
    if r.frames is not None:
        return r.frames[0, -1].cpu().numpy()
    if r.states is None:
        return None
    s = r.states[0, -1].cpu().numpy().copy()
    keep = [PRESENT, W, H, MASS]
    s[:, keep] = truth[:, keep]  # shapes are known; only the predicted poses are the model's
    s[:, ANGLE] = np.nan_to_num(s[:, ANGLE])
    return world.render_state(s)


def _distance(world: PhysicsWorld, goal_xy: np.ndarray, n_blocks: int) -> float:
    s = world.state_array()
    return float(np.abs(s[1 : 1 + n_blocks, [X, Y]] - goal_xy).max())


def run_push(
    model: WorldModel | str,
    task: PushTaskConfig,
    cfg: EvalConfig,
    *,
    progress: Callable[[int, EpisodeResult], None] | None = None,
    name: str | None = None,
) -> ModelResult:
    """Plan toward Push goals with ``model`` (a WorldModel, ``"simulator"`` or ``"random"``)."""
    world = make_push_world(task)
    bounds = ActionBounds.from_spec(world.action_spec())
    if isinstance(model, str):
        if model == "simulator":
            wm: WorldModel | None = SimulatorModel(world)  # type: ignore[assignment]
        elif model == "random":
            wm = None
        else:
            raise ValueError(f"model must be a WorldModel, 'simulator' or 'random'; got {model!r}")
    else:
        wm = model
    if name is None:
        name = "random" if wm is None else str(getattr(wm, "name", type(wm).__name__))
    family = (
        "baseline"
        if wm is None or isinstance(wm, SimulatorModel)
        else getattr(getattr(wm, "card", None), "family", "")
    )
    reader = world_reader(world)
    results: list[EpisodeResult] = []
    for i in range(cfg.episodes):
        ep, frame = make_push_episode(world, task, i)
        if wm is None:
            planner: Any = RandomPlanner(bounds)
        else:
            objective = push_objective(ep, cfg.goal, task, wm, reader=reader)
            if isinstance(wm, Ensemble):
                objective = RiskAverse(objective, cfg.risk)
            planner = (
                CEMPlanner(wm, objective, bounds, cfg.cem)
                if cfg.planner is PlannerKind.CEM
                else MPPIPlanner(wm, objective, bounds, cfg.mppi)
            )
        planner.reset()
        keep = i < cfg.clips
        frames = [frame]
        actions: list[np.ndarray] = []
        executed, imagined, plan_ms = [frame], [], []
        success, steps = push_solved(world), 0
        while not success and steps < task.max_steps:
            ctx_frames = torch.from_numpy(np.stack(frames[-cfg.context :]))
            n = ctx_frames.shape[0]
            past = actions[-(n - 1) :] if n > 1 else []
            ctx_actions = torch.from_numpy(
                np.stack([*past, np.zeros(bounds.dim, np.float32)]).astype(np.float32)
            )
            t0 = time.perf_counter()
            plan = planner.plan(
                ctx_frames, ctx_actions, seed=cfg.seed * 1_000_003 + i * 1000 + steps, keep_rollout=keep
            )
            plan_ms.append((time.perf_counter() - t0) * 1e3)
            a = plan.actions[0].detach().cpu().numpy().astype(np.float32)
            if keep:
                pic = _imagined_picture(world, plan, world.state_array())
                imagined.append(pic if pic is not None else np.zeros_like(frame))
            frame, _, _, _, _ = world.step(a)
            frames = frames[-cfg.context :] + [frame]
            actions = actions[-cfg.context :] + [a]
            steps += 1
            success = push_solved(world)
            if keep:
                executed.append(frame)
        res = EpisodeResult(
            index=i,
            world_seed=ep.seed,
            success=success,
            steps=steps,
            final_distance=_distance(world, ep.goal_xy, ep.params.n_blocks),
            tolerance=ep.params.goal_size / 2,
            plan_ms=plan_ms,
            executed=np.stack(executed) if keep else None,
            imagined=np.stack([imagined[0], *imagined]) if keep and imagined else None,
            goal_frame=ep.goal_frame if keep else None,
        )
        results.append(res)
        if progress is not None:
            progress(i, res)
        log.debug("%s episode %d: success=%s steps=%d", name, i, success, steps)
    return ModelResult(name, family, "random" if wm is None else cfg.planner.value, cfg.goal.value, results)
