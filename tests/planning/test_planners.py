"""CEM / MPPI against a toy model: optimum found, determinism under seed, objectives."""

from __future__ import annotations

import pytest
import torch

from gedanken.models.protocol import Prediction, Rollout
from gedanken.planning import (
    ActionBounds,
    CEMConfig,
    CEMPlanner,
    ImageGoal,
    LatentGoal,
    MPPIConfig,
    MPPIPlanner,
    PlanningError,
    StateGoal,
    SumObjective,
)
from gedanken.worlds.state import F, X, Y

GOAL = torch.tensor([1.5, -2.0])


class ToyModel:
    """A point that moves by ``0.5 * action`` per step; its latent and state are its position."""

    name = "toy"

    def observe(
        self, frames: torch.Tensor, actions: torch.Tensor | None = None, text: list[str] | None = None
    ):
        return torch.zeros(frames.shape[0], 2)

    def step(self, ctx: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, Prediction]:
        nxt = ctx + 0.5 * action
        return nxt, Prediction(frame=None, latent=nxt)

    def rollout(self, ctx: torch.Tensor, actions: torch.Tensor, *, seed: int = 0) -> Rollout:
        pos = ctx[:, None] + 0.5 * actions.cumsum(1)  # (B, H, 2)
        states = torch.zeros(*pos.shape[:2], 1, F)
        states[..., 0, X], states[..., 0, Y] = pos[..., 0], pos[..., 1]
        return Rollout(frames=None, latents=pos, states=states)


class Quadratic:
    def cost(self, rollout: Rollout, model: object) -> torch.Tensor:
        assert rollout.latents is not None
        return ((rollout.latents[:, -1] - GOAL) ** 2).sum(-1)


BOUNDS = ActionBounds((-1.0, -1.0), (1.0, 1.0))
FRAMES = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)


def test_cem_finds_the_optimum_of_a_quadratic() -> None:
    cfg = CEMConfig(horizon=6, candidates=200, iterations=6, elites=20)
    plan = CEMPlanner(ToyModel(), Quadratic(), BOUNDS, cfg).plan(FRAMES, seed=0)
    assert plan.cost < 1e-2
    end = 0.5 * plan.actions.sum(0)
    assert torch.allclose(end, GOAL, atol=0.1)
    assert all(
        b <= a + 1e-9 for a, b in zip(plan.history, plan.history[1:], strict=False)
    )  # best never worsens
    assert plan.actions.shape == (6, 2) and plan.actions.abs().max() <= 1.0


def test_mppi_moves_toward_the_optimum() -> None:
    cfg = MPPIConfig(horizon=6, candidates=200, iterations=6)
    planner = MPPIPlanner(ToyModel(), Quadratic(), BOUNDS, cfg)
    plan = planner.plan(FRAMES, seed=0)
    start_cost = float(((0 - GOAL) ** 2).sum())
    assert float(((0.5 * plan.actions.sum(0) - GOAL) ** 2).sum()) < 0.05 * start_cost


@pytest.mark.parametrize("kind", ["cem", "mppi"])
def test_same_seed_same_plan(kind: str) -> None:
    def make():
        if kind == "cem":
            return CEMPlanner(ToyModel(), Quadratic(), BOUNDS, CEMConfig(horizon=4, candidates=32, elites=4))
        return MPPIPlanner(ToyModel(), Quadratic(), BOUNDS, MPPIConfig(horizon=4, candidates=32))

    a, b = make().plan(FRAMES, seed=3), make().plan(FRAMES, seed=3)
    c = make().plan(FRAMES, seed=4)
    assert torch.equal(a.actions, b.actions)
    assert not torch.equal(a.actions, c.actions)


def test_warm_start_shifts_and_reset_forgets() -> None:
    p = CEMPlanner(ToyModel(), Quadratic(), BOUNDS, CEMConfig(horizon=4, candidates=32, elites=4))
    first = p.plan(FRAMES, seed=1)
    assert p._warm is not None and torch.allclose(p._warm[:-1], BOUNDS.to_unit(first.actions)[1:])
    p.reset()
    assert torch.equal(p.plan(FRAMES, seed=1).actions, first.actions)


def test_state_and_latent_goals() -> None:
    model = ToyModel()
    ro = model.rollout(
        torch.zeros(2, 2), torch.tensor([[[1.0, 0.0]] * 2, [[0.0, 0.0]] * 2])
    )  # ends (1, 0), (0, 0)
    target = torch.zeros(1, F)
    target[0, X] = 1.0
    weights = torch.zeros(1, F)
    weights[0, [X, Y]] = 1.0
    sg = StateGoal(target, weights, terminal_weight=1.0, running_weight=0.0)
    torch.testing.assert_close(sg.cost(ro, model), torch.tensor([0.0, 1.0]))
    lg = LatentGoal(torch.tensor([1.0, 0.0]), terminal_weight=1.0, running_weight=0.0)
    torch.testing.assert_close(lg.cost(ro, model), torch.tensor([0.0, 0.5]))  # mean |diff|
    both = SumObjective([(2.0, sg), (1.0, lg)])
    torch.testing.assert_close(both.cost(ro, model), torch.tensor([0.0, 2.5]))
    with pytest.raises(PlanningError, match="values"):
        LatentGoal(torch.zeros(3)).cost(ro, model)


def test_state_goal_needs_states_or_a_reader() -> None:
    target, weights = torch.zeros(1, F), torch.ones(1, F)
    frames_only = Rollout(frames=torch.zeros(2, 3, 4, 4, 3, dtype=torch.uint8))
    with pytest.raises(PlanningError, match="no states"):
        StateGoal(target, weights).cost(frames_only, ToyModel())
    reader_calls = []

    def reader(frames: torch.Tensor) -> torch.Tensor:
        reader_calls.append(frames.shape)
        return torch.zeros(*frames.shape[:2], 1, F)

    c = StateGoal(target, weights, reader=reader).cost(frames_only, ToyModel())
    assert c.shape == (2,) and reader_calls == [(2, 3, 4, 4, 3)]


def test_image_goal_falls_back_to_pixels() -> None:
    goal = torch.full((4, 4, 3), 255, dtype=torch.uint8)
    frames = torch.zeros(2, 1, 4, 4, 3, dtype=torch.uint8)
    frames[0] = 255
    c = ImageGoal(goal, terminal_weight=1.0, running_weight=0.0).cost(Rollout(frames=frames), ToyModel())
    torch.testing.assert_close(c, torch.tensor([0.0, 1.0]))


def test_bounds_map_and_reject_discrete() -> None:
    b = ActionBounds((0.0,), (2.0,))
    torch.testing.assert_close(
        b.to_raw(torch.tensor([-1.0, 0.0, 1.0, 3.0])), torch.tensor([0.0, 1.0, 2.0, 2.0])
    )
    from gedanken.data.episode import ActionSpec

    with pytest.raises(ValueError, match="discrete"):
        ActionBounds.from_spec(ActionSpec(kind="discrete", dim=1, n=5))


def test_push_shaping_aims_behind_the_block_but_inside_the_arena() -> None:
    from gedanken.planning.tasks import PushShaping

    goal = StateGoal(torch.zeros(2, F), torch.ones(2, F), terminal_weight=1.0, running_weight=0.0)
    shaping = PushShaping(torch.tensor([32.0, 40.0]), (1,), (6.0,), goal)

    def cost(pusher: tuple[float, float], block: tuple[float, float]) -> float:
        s = torch.zeros(1, 1, 2, F)
        s[0, 0, 0, [X, Y]] = torch.tensor(pusher)
        s[0, 0, 1, [X, Y]] = torch.tensor(block)
        return float(shaping.cost(Rollout(frames=None, states=s), None)[0])

    # open floor: the point 6 units behind the block, on the line from the goal through it
    assert cost((32.0, 14.0), (32.0, 20.0)) == pytest.approx(0.0, abs=1e-5)
    assert cost((32.0, 26.0), (32.0, 20.0)) == pytest.approx(12.0, abs=1e-4)
    # block against the bottom wall: "behind" is y = -1, beyond the wall; the pusher's lowest centre (its radius)
    # is where the term bottoms out
    assert cost((32.0, 3.0), (32.0, 5.0)) == pytest.approx(0.0, abs=1e-5)
    assert cost((32.0, 3.0), (32.0, 5.0)) < cost((32.0, 8.0), (32.0, 5.0))


def test_push_keepout_charges_the_front_and_sides_of_a_block_not_its_back() -> None:
    from gedanken.planning.tasks import PushKeepOut

    goal = StateGoal(torch.zeros(2, F), torch.ones(2, F))
    keepout = PushKeepOut(torch.tensor([32.0, 40.0]), (1,), (10.0,), goal)

    def cost(pusher: tuple[float, float], block: tuple[float, float] = (32.0, 20.0)) -> float:
        s = torch.zeros(1, 1, 2, F)
        s[0, 0, 0, [X, Y]] = torch.tensor(pusher)
        s[0, 0, 1, [X, Y]] = torch.tensor(block)
        return float(keepout.cost(Rollout(frames=None, states=s), None)[0])

    # goal above the block: the back is below it
    assert cost((32.0, 14.0)) == pytest.approx(0.0, abs=1e-5)  # directly behind, in reach
    assert cost((32.0, 26.0)) == pytest.approx(4.0, abs=1e-4)  # directly in front: the full gap 10 - 6
    assert cost((26.0, 20.0)) == pytest.approx(2.0, abs=1e-4)  # beside it: half the gap
    assert cost((32.0, 31.0)) == pytest.approx(0.0, abs=1e-5)  # in front but out of reach


def test_push_objective_adds_the_keepout_term_only_when_weighted() -> None:
    from gedanken.planning.tasks import (
        GoalKind,
        PushKeepOut,
        PushTaskConfig,
        make_push_episode,
        make_push_world,
        push_objective,
    )

    cfg = PushTaskConfig(keepout=0.0)
    ep, _ = make_push_episode(make_push_world(cfg), cfg, 0)
    plain = push_objective(ep, GoalKind.STATE, cfg, None)  # type: ignore[arg-type]
    weighted = push_objective(ep, GoalKind.STATE, PushTaskConfig(keepout=16.0), None)  # type: ignore[arg-type]
    assert not any(isinstance(t, PushKeepOut) for _, t in plain.terms)
    assert [w for w, t in weighted.terms if isinstance(t, PushKeepOut)] == [16.0]
    # a pusher parked just in front of the block (between it and the goal) costs more with the term
    g = torch.from_numpy(ep.goal_xy).float()
    inward = torch.tensor([32.0, 32.0]) - g
    inward = inward / inward.norm().clamp_min(1e-6)
    b = g + 15.0 * inward  # the block 15 units from the goal, toward the middle
    s = torch.zeros(1, 1, 5, F)
    s[0, 0, 1, [X, Y]] = b
    s[0, 0, 0, [X, Y]] = b - 6.0 * inward
    r = Rollout(frames=None, states=s)
    assert float(weighted.cost(r, None)[0]) > float(plain.cost(r, None)[0]) + 1.0


def test_push_terms_are_independent_and_negative_weights_are_refused() -> None:
    from gedanken.planning.tasks import (
        GoalKind,
        PushKeepOut,
        PushShaping,
        PushTaskConfig,
        make_push_episode,
        make_push_world,
        push_objective,
    )

    cfg = PushTaskConfig(shaping=0.0, keepout=16.0)
    ep, _ = make_push_episode(make_push_world(cfg), cfg, 0)
    obj = push_objective(ep, GoalKind.STATE, cfg, None)  # type: ignore[arg-type]
    kinds = [type(t) for _, t in obj.terms]
    assert PushKeepOut in kinds and PushShaping not in kinds  # keep-out stays on without shaping
    plain = push_objective(ep, GoalKind.STATE, PushTaskConfig(shaping=0.0, keepout=0.0), None)  # type: ignore[arg-type]
    assert isinstance(plain, StateGoal)
    with pytest.raises(ValueError, match="keepout"):
        PushTaskConfig(keepout=-1.0)
