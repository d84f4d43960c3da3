"""The true-simulator model (ceiling), random floor, and simulator-MPC on an easy Push episode."""

from __future__ import annotations

import numpy as np
import torch

from gedanken.models.protocol import WorldModel
from gedanken.planning import ActionBounds, CEMConfig, CEMPlanner, RandomPlanner, SimulatorModel
from gedanken.planning.simulator import physics_step
from gedanken.planning.tasks import (
    GoalKind,
    PushTaskConfig,
    make_push_episode,
    make_push_world,
    push_objective,
    push_solved,
)
from gedanken.worlds.state import X, Y

EASY = 9  # episode index of PushTaskConfig(seed=0): the block starts 8 units from the goal square


def _pushing_world():
    cfg = PushTaskConfig()
    world = make_push_world(cfg)
    make_push_episode(world, cfg, 0)
    for _ in range(12):  # drive the pusher with the expert until it touches a block
        world.step(world.expert_action())
    return world


def test_simulator_rollout_matches_the_world() -> None:
    world = _pushing_world()
    sim = SimulatorModel(world)
    assert isinstance(sim, WorldModel)
    rng = np.random.default_rng(0)
    acts = torch.from_numpy(rng.uniform(-1, 1, size=(3, 6, 2)).astype(np.float32))
    ctx = sim.observe(None)
    roll = sim.rollout(ctx, acts)
    exact = SimulatorModel(world, exact=True).rollout(ctx, acts)
    assert roll.states is not None and exact.states is not None and roll.states.shape == (3, 6, 5, 10)
    # candidate 0 starts from set_state itself: bit-identical to stepping the real world
    snap = world.get_state()
    for j in range(6):
        world.step(acts[0, j].numpy())
        np.testing.assert_array_equal(roll.states[0, j].numpy(), world.state_array())
    world.set_state(snap)
    # later candidates reset body state only: equal up to pymunk's cached contact impulses
    dev = (roll.states[..., [X, Y]] - exact.states[..., [X, Y]]).abs().max()
    assert float(dev) < 0.5


def test_physics_step_equals_env_step() -> None:
    world = _pushing_world()
    branch = make_push_world(PushTaskConfig())
    snap = world.get_state()
    branch.set_state(snap)
    a = np.array([0.3, -0.7], np.float32)
    world.step(a)
    physics_step(branch, a)
    np.testing.assert_array_equal(world.state_array(), branch.state_array())


def test_random_planner_is_seeded_and_bounded() -> None:
    p = RandomPlanner(ActionBounds((-1.0, -1.0), (1.0, 1.0)), horizon=4)
    a, b, c = p.plan(seed=1).actions, p.plan(seed=1).actions, p.plan(seed=2).actions
    assert torch.equal(a, b) and not torch.equal(a, c) and a.abs().max() <= 1.0


def test_simulator_mpc_solves_an_easy_push_episode() -> None:
    cfg = PushTaskConfig(max_steps=20)
    world = make_push_world(cfg)
    ep, frame = make_push_episode(world, cfg, EASY)
    assert not push_solved(world)
    sim = SimulatorModel(world)
    planner = CEMPlanner(
        sim,
        push_objective(ep, GoalKind.STATE, cfg, sim),
        ActionBounds((-1.0, -1.0), (1.0, 1.0)),
        CEMConfig(candidates=48, iterations=2, elites=8),
    )
    for t in range(cfg.max_steps):
        frame, *_ = world.step(planner.plan(torch.from_numpy(frame)[None], seed=t).actions[0].numpy())
        if push_solved(world):
            break
    assert push_solved(world), f"block still {ep.goal_xy} away after {cfg.max_steps} steps"
