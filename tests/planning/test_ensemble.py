"""Ensembles behind the protocol and the risk-averse cost: means, members, disagreement, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gedanken.cli import app
from gedanken.models.protocol import Prediction, Rollout
from gedanken.planning import ActionBounds, CEMConfig, CEMPlanner
from gedanken.planning.ensemble import Ensemble, EnsembleRollout, RiskAverse, disagreement
from gedanken.worlds.state import PRESENT, F, X, Y

FRAMES = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
BOUNDS = ActionBounds((-1.0,), (1.0,))


class Line:
    """A point on a line moving by ``gain * action`` per step (state x = position)."""

    def __init__(self, gain: float) -> None:
        self.gain, self.name = gain, f"line{gain}"

    def observe(self, frames, actions=None, text=None):  # noqa: ANN001, ANN201
        return torch.zeros(frames.shape[0])

    def repeat_context(self, ctx: torch.Tensor, n: int) -> torch.Tensor:
        return ctx.expand(n)

    def step(self, ctx: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, Prediction]:
        nxt = ctx + self.gain * action[:, 0]
        state = torch.zeros(ctx.shape[0], 1, F)
        state[:, 0, X] = nxt
        return nxt, Prediction(frame=None, state=state)

    def rollout(self, ctx: torch.Tensor, actions: torch.Tensor, *, seed: int = 0) -> Rollout:
        pos = ctx[:, None] + self.gain * actions[..., 0].cumsum(1)  # (B, H)
        states = torch.zeros(*pos.shape, 1, F)
        states[..., 0, PRESENT], states[..., 0, X] = 1.0, pos
        return Rollout(frames=None, latents=pos[..., None], states=states)


class EndAt:
    """Squared distance of the last state's x from ``target``."""

    def __init__(self, target: float) -> None:
        self.target = target

    def cost(self, rollout: Rollout, model: object) -> torch.Tensor:
        assert rollout.states is not None
        return (rollout.states[:, -1, 0, X] - self.target) ** 2


def test_ensemble_rollout_is_the_members_mean_and_keeps_each_member() -> None:
    ens = Ensemble([Line(1.0), Line(3.0)])
    ctx = ens.repeat_context(ens.observe(FRAMES[None]), 2)
    r = ens.rollout(ctx, torch.tensor([[[1.0], [1.0]], [[0.5], [0.0]]]))
    assert isinstance(r, EnsembleRollout) and len(r.members) == 2
    assert r.states is not None and r.latents is None
    assert torch.allclose(r.states[:, -1, 0, X], torch.tensor([4.0, 1.0]))  # mean of (2, 6) and (0.5, 1.5)
    assert r.states[..., 0, Y].abs().max() == 0
    nxt, pred = ens.step(ens.observe(FRAMES[None]), torch.tensor([[1.0]]))
    assert pred.state is not None and float(pred.state[0, 0, X]) == pytest.approx(2.0)
    assert [float(c[0]) for c in nxt] == [1.0, 3.0]


def test_risk_averse_cost_is_mean_cost_plus_spread_times_state_disagreement() -> None:
    ens = Ensemble([Line(1.0), Line(3.0)])
    ctx = ens.repeat_context(ens.observe(FRAMES[None]), 1)
    r = ens.rollout(ctx, torch.tensor([[[1.0], [1.0]]]))  # members at (1, 2) and (3, 6): std 1 then 2
    assert float(disagreement(r.members)[0]) == pytest.approx(1.5)
    far = EndAt(0.0)  # member costs 4 and 36
    assert float(RiskAverse(far, spread=0.0).cost(r, ens)[0]) == pytest.approx(20.0)
    assert float(RiskAverse(far, spread=2.0).cost(r, ens)[0]) == pytest.approx(23.0)
    mid = EndAt(4.0)  # member costs 4 and 4: equal costs, yet the members disagree on where the point is
    assert float(RiskAverse(mid, spread=2.0).cost(r, ens)[0]) == pytest.approx(7.0)
    single = Line(1.0)  # a plain model: the objective's own cost
    r1 = single.rollout(single.observe(FRAMES[None]), torch.tensor([[[1.0]]]))
    assert float(RiskAverse(far, spread=0.5).cost(r1, single)[0]) == pytest.approx(1.0)


def test_risk_averse_planning_prefers_what_the_members_agree_on() -> None:
    """Members disagree on how far the point moves: the risk-averse plan moves less than the mean's plan."""
    ens = Ensemble([Line(0.5), Line(1.5)])
    cfg = CEMConfig(horizon=1, candidates=200, iterations=5, elites=20)
    target = EndAt(1.0)
    neutral = CEMPlanner(ens, RiskAverse(target, 0.0), BOUNDS, cfg).plan(FRAMES, seed=0)
    averse = CEMPlanner(ens, RiskAverse(target, 2.0), BOUNDS, cfg).plan(FRAMES, seed=0)
    a_neutral, a_averse = float(neutral.actions[0, 0]), float(averse.actions[0, 0])
    assert a_neutral == pytest.approx(0.8, abs=0.05)  # argmin of mean((g a - 1)^2) = 1 / mean(g^2) * mean(g)
    assert 0.2 < a_averse < a_neutral - 0.2  # mean cost + 2 * 0.5 a: argmin 0.4


def test_ensemble_and_risk_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        Ensemble([Line(1.0)])
    with pytest.raises(ValueError, match="spread"):
        RiskAverse(EndAt(0.0), spread=-1.0)
    res = CliRunner().invoke(app, ["plan", "--model", "random", "--risk", "-1", "--out", "unused"])
    assert res.exit_code != 0 and ">= 0" in res.output
    for spec in ("jepa_push+", "simulator+jepa_push"):
        res = CliRunner().invoke(app, ["plan", "--model", spec, "--out", "unused"])
        assert res.exit_code != 0 and "cannot be members" in res.output, spec


def test_plan_cli_plans_with_an_ensemble(tmp_path) -> None:
    out = tmp_path / "plan"
    args = ["plan", "--model", "jepa_push+jepa_push", "--episodes", "1", "--max-steps", "2"]
    args += ["--candidates", "8", "--iterations", "1", "--clips", "0", "--risk", "0.5", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "plan.json").read_text())
    assert report["results"][0]["model"] == "jepa_push+jepa_push"
    assert report["config"]["risk"] == 0.5
    assert report["results"][0]["per_episode"][0]["steps"] == 2
