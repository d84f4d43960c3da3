"""Every family refuses actions a model cannot take: wrong width, NaN or infinite values, bad discrete indices."""

from __future__ import annotations

import pytest
import torch

from gedanken.models.actions import check_actions
from gedanken.models.autoregressive import AutoregressiveWorldModel
from gedanken.models.autoregressive import tiny as ar_tiny
from gedanken.models.diffusion import DiffusionWorldModel, tiny_config
from gedanken.models.heads import HeadsConfig
from gedanken.models.jepa import JepaWorldModel
from gedanken.models.jepa import tiny as jepa_tiny


def test_check_actions_passes_good_actions_through_and_names_what_is_wrong() -> None:
    ok = torch.tensor([[0.5, -1.0]])
    assert check_actions(ok, 2, 0) is ok
    assert torch.equal(check_actions(torch.tensor([[0.0], [4.0]]), 1, 5), torch.tensor([[0.0], [4.0]]))
    with pytest.raises(ValueError, match="A=2"):
        check_actions(torch.zeros(1, 3), 2, 0)
    with pytest.raises(ValueError, match="NaN"):
        check_actions(torch.tensor([[float("nan"), 0.0]]), 2, 0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_actions(torch.tensor([[float("inf"), 0.0]]), 2, 0)
    for bad in (5.0, -1.0, 2.5):
        with pytest.raises(ValueError, match=r"whole indices in \[0, 5\)"):
            check_actions(torch.tensor([[1.0], [bad]]), 1, 5)


def _frames(b: int, t: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (b, t, size, size, 3), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("family", ["diffusion", "autoregressive"])
def test_a_discrete_pixel_model_refuses_an_index_out_of_range_or_a_nan(family: str) -> None:
    torch.manual_seed(0)
    if family == "diffusion":
        m = DiffusionWorldModel(tiny_config(heads=HeadsConfig(slots=4), action_dim=1, action_classes=5))
    else:
        m = AutoregressiveWorldModel(ar_tiny(action_classes=5))
    m.eval()
    ctx = m.observe(_frames(1, 2, 64), torch.zeros(1, 2, 1))
    m.step(ctx, torch.tensor([[4.0]]))  # the last valid index
    for bad in (5.0, -1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="indices|NaN"):
            m.step(ctx, torch.tensor([[bad]]))
    with pytest.raises(ValueError, match="indices"):
        m.rollout(ctx, torch.tensor([[[1.0], [7.0]]]), seed=0)


def test_continuous_models_refuse_a_nan_action() -> None:
    torch.manual_seed(0)
    dm = DiffusionWorldModel(tiny_config(heads=HeadsConfig(slots=4))).eval()
    ctx = dm.observe(_frames(1, 2, 64), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        dm.step(ctx, torch.tensor([[float("nan"), 0.0]]))
    jm = JepaWorldModel(jepa_tiny()).eval()
    jctx = jm.observe(_frames(1, 2, 32), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        jm.step(jctx, torch.tensor([[0.0, float("inf")]]))
    with pytest.raises(ValueError, match="A=2"):
        jm.step(jctx, torch.zeros(1, 3))


def test_a_model_is_refused_on_a_world_whose_actions_cannot_drive_it(caplog) -> None:  # noqa: ANN001
    import logging
    from types import SimpleNamespace

    from gedanken.models.actions import check_model_world

    def model(dim: int, classes: int | None, world: str) -> SimpleNamespace:
        cfg = (
            SimpleNamespace(action_dim=dim)
            if classes is None
            else SimpleNamespace(action_dim=dim, action_classes=classes)
        )
        return SimpleNamespace(cfg=cfg, card=SimpleNamespace(world=world), name="m")

    with caplog.at_level(logging.WARNING, logger="gedanken"):
        check_model_world(model(2, 0, "push"), "push")
        assert not caplog.text
        check_model_world(model(1, 0, "bounce"), "occlude")  # another passive world: same actions, allowed
    assert "m was trained on bounce and now runs on occlude" in caplog.text  # but said
    check_model_world(model(1, 5, "push_discrete"), "push_discrete")
    check_model_world(model(2, None, "push"), "push")  # a JEPA model: no action classes
    check_model_world(SimpleNamespace(name="copy_last"), "push")  # baselines take any actions
    check_model_world(model(2, 0, "push"), "CartPole-v1")  # Gymnasium ids are checked when actions arrive
    with pytest.raises(ValueError, match="trained on bounce .1-wide continuous.*push gives 2-wide"):
        check_model_world(model(1, 0, "bounce"), "push")
    with pytest.raises(ValueError, match="push gives 2-wide continuous actions"):
        check_model_world(model(1, 5, "push_discrete"), "push")
    with pytest.raises(ValueError, match="push_discrete gives 5 discrete actions"):
        check_model_world(model(2, 0, "push"), "push_discrete")


def test_commands_refuse_a_model_off_its_action_space(tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from gedanken.cli import app

    res = CliRunner().invoke(
        app,
        ["rollout", "--model", "autoregressive_push", "--world", "bounce", "--out", str(tmp_path / "r.mp4")],
    )
    assert res.exit_code != 0 and "cannot drive this model" in str(res.exception or res.output)
    assert not any(tmp_path.iterdir())


def test_driving_actions_follow_the_autoregressive_mode() -> None:
    from gedanken.models.actions import driving_actions
    from gedanken.models.autoregressive import ActionMode

    model = AutoregressiveWorldModel(ar_tiny())
    model.action_mode = ActionMode.LATENT
    assert driving_actions(model) == (1, model.cfg.lam.num_actions)
    model.action_mode = ActionMode.ADAPTER
    assert driving_actions(model) == (max(model.cfg.action_dim, 1), model.cfg.action_classes)
