"""Planners drive the JEPA family through the protocol: image goals go through its encoder, state goals
through its probe, and plans are reproducible."""

from __future__ import annotations

import torch

from gedanken.models.jepa import JepaWorldModel, tiny
from gedanken.planning import ActionBounds, CEMConfig, CEMPlanner, StateGoal
from gedanken.planning.objectives import ImageGoal, LatentGoal


def _model() -> JepaWorldModel:
    torch.manual_seed(0)
    m = JepaWorldModel(tiny()).eval()
    with torch.no_grad():
        m.predictor.out.weight.normal_(0, 0.1)  # actions must change the prediction
    d = m.cfg.encoder.latent_dim
    g = torch.Generator().manual_seed(1)
    m.probe.fit(torch.randn(256, d, generator=g), torch.randn(256, m.cfg.max_objects, 10, generator=g), 1e-2)
    return m


def _frames(t: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randint(0, 256, (t, 32, 32, 3), generator=g, dtype=torch.uint8)


def test_image_goal_is_the_latent_of_the_goal_picture() -> None:
    m = _model()
    goal = _frames(1)[0]
    ctx = m.repeat_context(m.observe(_frames()[None], torch.zeros(1, 2, 2)), 5)
    roll = m.rollout(ctx, torch.rand(5, 3, 2) * 2 - 1)
    img = ImageGoal(goal).cost(roll, m)
    lat = LatentGoal(m.encode(goal[None, None])[0, -1]).cost(roll, m)
    torch.testing.assert_close(img, lat)
    assert img.shape == (5,) and float(img.std()) > 0  # candidates are told apart


def test_cem_plans_on_the_jepa_model_reproducibly() -> None:
    m = _model()
    k = m.cfg.max_objects
    target, weights = torch.zeros(k, 10), torch.zeros(k, 10)
    target[1, 1:3], weights[1, 1:3] = torch.tensor([20.0, 10.0]), 1.0
    bounds = ActionBounds((-1.0, -1.0), (1.0, 1.0))
    cfg = CEMConfig(candidates=32, horizon=4, iterations=2, elites=4)
    frames, actions = _frames(), torch.zeros(2, 2)
    plans = []
    for _ in range(2):
        planner = CEMPlanner(m, StateGoal(target, weights), bounds, cfg)
        plans.append(planner.plan(frames, actions, seed=7))
    assert plans[0].actions.shape == (4, 2)
    assert float(plans[0].actions.abs().max()) <= 1.0
    torch.testing.assert_close(plans[0].actions, plans[1].actions)
    # The plan beats the typical random sequence under the model's own prediction and probe.
    objective = StateGoal(target, weights)
    ctx = m.observe(frames[None], actions[None])
    best = objective.cost(m.rollout(ctx, plans[0].actions[None]), m)
    rand = torch.rand(64, 4, 2, generator=torch.Generator().manual_seed(3)) * 2 - 1
    costs = objective.cost(m.rollout(m.repeat_context(ctx, 64), rand), m)
    assert float(best) <= float(costs.median())
