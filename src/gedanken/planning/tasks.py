"""Goal-reaching tasks for the planners: Push (bring the block into the goal square).

A Push goal episode takes the world's own start layout (seeded) with ``blocks`` blocks drawn from the split's
parameter ranges; the goal is the world's goal square (identity slot 4, drawn in every frame). Success is the
world's own test: every block centre within ``goal_size / 2`` of the goal centre along both axes, within
``max_steps`` steps. The goal can be handed to a planner as a state (:class:`StateGoal` on the blocks'
positions, plus a term pulling the pusher behind the block and one keeping it off the block's front and
sides), a picture of the solved scene (:class:`ImageGoal`), or a latent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np
import torch
from torch import Tensor

from gedanken.models.protocol import Rollout, WorldModel
from gedanken.planning.objectives import (
    ImageGoal,
    LatentEncoder,
    LatentGoal,
    Objective,
    StateGoal,
    SumObjective,
)
from gedanken.worlds import make_world
from gedanken.worlds.base import PhysicsWorld
from gedanken.worlds.push import GOAL_SLOT, PUSHER_RADIUS, PushParams, sample_push_params
from gedanken.worlds.state import VX, VY, WORLD_SIZE, F, X, Y


class GoalKind(str, Enum):
    """How the goal is given to the planner."""

    STATE = "state"  # goal positions of the blocks (+ pusher shaping), compared with predicted states
    IMAGE = "image"  # a picture of the solved scene, compared in the model's latent space (or pixels)
    LATENT = "latent"  # the model's latent of that picture, given directly


@dataclass(frozen=True)
class PushTaskConfig:
    """Which Push episodes to plan on and when they count as solved."""

    split: str = "train"  # parameter split of the episodes
    blocks: int = 1  # blocks per episode (the world samples 1-2 in train; planning uses a fixed count)
    max_steps: int = 100  # N: steps allowed to bring every block into the goal
    # Weight of the pusher-behind-the-block term of the state objective. 0.5 -> 4 took jepa_push from 4 to 10
    # of the first 20 episodes and the simulator from 18 to 20 (docs/planning.md, "Objective").
    shaping: float = 4.0
    seed: int = 0  # episode i uses world seed ``seed + i``
    # Weight of the term keeping the pusher off a block's front and sides (PushKeepOut). 0 -> 16 took jepa_push
    # from 23 to 41 of the first 50 episodes (simulator 46 -> 44) and from 21 to 34 of 50 held-out ones
    # (simulator 44 -> 42); docs/planning.md, "Keep-out".
    keepout: float = 16.0
    keepout_margin: float = 3.0  # its reach beyond the shaping standoff (world units)

    def __post_init__(self) -> None:
        if not all(0 <= v < math.inf for v in (self.shaping, self.keepout, self.keepout_margin)):  # NaN too
            raise ValueError(
                "shaping, keepout and keepout_margin must be finite and >= 0 (0 turns a term off), got "
                f"{self.shaping}, {self.keepout}, {self.keepout_margin}"
            )


@dataclass
class PushEpisode:
    """One sampled start/goal pair."""

    seed: int
    params: PushParams
    goal_xy: np.ndarray  # (2,) centre of the goal square (world units)
    goal_state: np.ndarray  # (K, F) the solved scene: blocks on the goal, pusher behind the last block
    goal_frame: np.ndarray  # (H, W, 3) uint8 picture of goal_state


def _single_split_params(split: str, seed: int, blocks: int) -> PushParams:
    rng = np.random.default_rng([seed, 4242])
    p = sample_push_params(split, rng)
    while p.n_blocks < blocks:
        p = sample_push_params(split, rng)
    return replace(p, sides=p.sides[:blocks], masses=p.masses[:blocks])


def make_push_episode(world: PhysicsWorld, cfg: PushTaskConfig, index: int) -> tuple[PushEpisode, np.ndarray]:
    """Reset ``world`` to episode ``index`` of the task; returns the episode and the first frame."""
    seed = cfg.seed + index
    params = _single_split_params(cfg.split, seed, cfg.blocks)
    frame, _ = world.reset(seed=seed, options={"params": params})
    return push_episode_of(world, seed), frame


def push_episode_of(world: PhysicsWorld, seed: int) -> PushEpisode:
    """The goal of the Push episode ``world`` is in now (its own goal square), seen from its current state."""
    params = world.params
    s = world.state_array()
    goal_xy = s[GOAL_SLOT, [X, Y]].astype(np.float64)
    goal = s.copy()
    goal[:, [VX, VY]] = 0.0
    n = params.n_blocks
    offsets = [(0.0, 0.0), (-1.0, 1.0), (1.0, -1.0)]
    for i in range(n):
        side = float(params.sides[i])
        goal[1 + i, [X, Y]] = goal_xy + np.array(offsets[i]) * side * 0.6
    # Pusher behind the last block, on the side it came from (what a solved push looks like).
    b0 = s[1, [X, Y]].astype(np.float64)
    u = goal_xy - b0
    u = u / max(float(np.hypot(*u)), 1e-6)
    goal[0, [X, Y]] = goal[1, [X, Y]] - u * (params.sides[0] * 0.7072 + PUSHER_RADIUS + 0.5)
    goal_frame = world.render_state(goal)
    return PushEpisode(seed, params, goal_xy, goal, goal_frame)


def push_solved(world: PhysicsWorld) -> bool:
    """The world's own success test (every block centre inside the goal square)."""
    return bool(world.blocks_in_goal().all())  # type: ignore[attr-defined]


def _pusher_and_blocks(
    states: Tensor, goal_xy: Tensor, slots: tuple[int, ...]
) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """The pusher's positions ``(B, H, 2)`` and, per block slot, its positions and the unit vector from it to
    the goal (both ``(B, H, 2)``), from predicted states ``(B, H, K, F)``."""
    g = goal_xy.to(states)
    out = []
    for slot in slots:
        b = states[..., slot, [X, Y]]
        u = g - b
        out.append((b, u / u.norm(dim=-1, keepdim=True).clamp_min(1e-6)))
    return states[..., 0, [X, Y]], out


@dataclass
class PushShaping:
    """Pusher distance to the point behind each block, on the line from the goal through the block.

    Without it a short horizon sees no difference between candidates until the pusher touches the block.
    The point is kept inside the arena (where the pusher's centre can be): for a block against a wall the
    point behind it lies beyond the wall, and chasing it pins the pusher to the wall.
    """

    goal_xy: Tensor  # (2,)
    blocks: tuple[int, ...]  # identity slots of the blocks
    standoff: tuple[float, ...]  # block circumradius + pusher radius, per block
    state_goal: StateGoal  # reads states (probe, head, simulator or judge) the same way as the goal term

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor:
        p, blocks = _pusher_and_blocks(self.state_goal.states(rollout, model), self.goal_xy, self.blocks)
        total = torch.zeros(p.shape[:2], device=p.device)
        for (b, u), off in zip(blocks, self.standoff, strict=True):
            behind = (b - u * off).clamp(PUSHER_RADIUS, WORLD_SIZE - PUSHER_RADIUS)
            total = total + (p - behind).norm(dim=-1)
        return self.state_goal.terminal_weight * total[:, -1] + self.state_goal.running_weight * total.mean(1)


@dataclass
class PushKeepOut:
    """Pusher near a block anywhere but behind it: a margin around the contact a learned model gets wrong.

    A model whose contact is off by a unit or two (the predicted pusher slides past a block the real one
    hits) lets the planner route the pusher close around a block's front or sides, and the real push sends
    the block away from the goal. This term charges predicted pusher positions within ``reach`` of a block,
    weighted by how far round from the block's back (the side away from the goal) they are: nothing
    directly behind, the full gap in front.
    """

    goal_xy: Tensor  # (2,)
    blocks: tuple[int, ...]
    reach: tuple[float, ...]  # block circumradius + pusher radius + margin, per block
    state_goal: StateGoal

    def cost(self, rollout: Rollout, model: WorldModel) -> Tensor:
        p, blocks = _pusher_and_blocks(self.state_goal.states(rollout, model), self.goal_xy, self.blocks)
        total = torch.zeros(p.shape[:2], device=p.device)
        for (b, u), reach in zip(blocks, self.reach, strict=True):
            d = p - b
            r = d.norm(dim=-1)
            front = 0.5 * (1.0 + (d * u).sum(-1) / r.clamp_min(1e-6))  # 0 behind the block, 1 in front
            total = total + (reach - r).clamp_min(0.0) * front
        return total.mean(1)


def push_objective(
    ep: PushEpisode, kind: GoalKind, cfg: PushTaskConfig, model: WorldModel, reader: object | None = None
) -> Objective:
    """The objective handed to the planner for one Push episode."""
    k = ep.goal_state.shape[0]
    if kind is GoalKind.STATE:
        weights = np.zeros((k, F), dtype=np.float32)
        n = ep.params.n_blocks
        weights[1 : 1 + n, [X, Y]] = 1.0
        target = np.zeros((k, F), dtype=np.float32)
        target[1 : 1 + n, [X, Y]] = ep.goal_xy
        goal = StateGoal(torch.from_numpy(target), torch.from_numpy(weights), reader=reader)  # type: ignore[arg-type]
        g = torch.tensor(ep.goal_xy, dtype=torch.float32)
        blocks = tuple(range(1, 1 + n))
        standoff = tuple(float(sd) * 0.7072 + PUSHER_RADIUS + 0.5 for sd in ep.params.sides)
        terms: list[tuple[float, Objective]] = [(1.0, goal)]
        if cfg.shaping > 0:
            terms.append((cfg.shaping, PushShaping(g, blocks, standoff, goal)))
        if cfg.keepout > 0:
            reach = tuple(o + cfg.keepout_margin for o in standoff)
            terms.append((cfg.keepout, PushKeepOut(g, blocks, reach, goal)))
        if len(terms) == 1:
            return goal
        return SumObjective(terms)
    frame = torch.from_numpy(ep.goal_frame)
    if kind is GoalKind.IMAGE:
        return ImageGoal(frame)
    if not isinstance(model, LatentEncoder):
        raise ValueError(
            f"a latent goal needs a model that encodes pictures; {getattr(model, 'name', model)!r} does not"
        )
    return LatentGoal(model.encode(frame[None, None])[0, -1])


def make_push_world(cfg: PushTaskConfig, render_size: tuple[int, int] = (64, 64)) -> PhysicsWorld:
    """The Push env the task runs in (no step limit of its own: the task counts steps)."""
    return make_world("push", split=cfg.split, render_size=render_size, max_steps=10**6)
