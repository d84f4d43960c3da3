"""Breach forcing for the autoregressive family (AutoregressiveRecipe.breach_forcing): a share of the dynamics'
training windows show tokens of frames redrawn with objects pressed into what they touch (models/breach.py)."""

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.models import load_checkpoint
from gedanken.models.autoregressive import AutoregressiveWorldModel
from gedanken.models.autoregressive.batches import token_batches
from gedanken.models.autoregressive.recipe import (
    fit_config_to_data,
    load_episodes,
    tiny,
    train_autoregressive,
)
from gedanken.models.breach import breach_context


@pytest.fixture(scope="module")
def bounce(tmp_path_factory):  # noqa: ANN001, ANN201
    """``(path, EpisodeData)``: 3 recorded Bounce episodes of 40 steps (balls reach the floor and each other)."""
    from gedanken.data.collect import collect

    path = tmp_path_factory.mktemp("bounce") / "data"
    collect("bounce", path, 3, steps=40, seed=0, workers=1)
    return path, load_episodes(path)


def _windows(data, share: float):  # noqa: ANN001, ANN202
    """A tiny model's tokens of ``data`` and a token_batches source with breach forcing at ``share``."""
    model = AutoregressiveWorldModel(fit_config_to_data(tiny().model, data)).eval()
    with torch.no_grad():
        tokens = [model.tokenizer.encode(f).flatten(-2) for f in data.frames]
    redraw = breach_context(
        share, 1.5, data.states, data.shapes, data.kinds, model.cfg.palette,
        lambda f: model.tokenizer.encode(f).flatten(-2), 0,
    )  # fmt: skip
    lat = [torch.zeros(len(t) - 1, dtype=torch.long) for t in tokens]
    return tokens, redraw, token_batches(tokens, lat, None, 8, 6, 0, redraw=redraw)


def test_the_recording_loads_with_states_shapes_and_kinds(bounce) -> None:  # noqa: ANN001
    _, data = bounce
    assert data.states is not None and len(data.states) == len(data.frames) == 3
    assert data.states[0].shape[0] == len(data.frames[0]) and "circle" in data.shapes[0]
    assert len(data.kinds) == 3 and data.palette


def test_an_unpressed_redraw_gives_back_the_recordings_tokens(bounce, monkeypatch) -> None:  # noqa: ANN001
    """With the press turned into the identity the redrawn windows are the recorded ones, token for token (the
    states, frames and token windows line up), and the batches are left as they were."""
    import gedanken.models.breach as breach

    monkeypatch.setattr(breach, "pressed_states", lambda states, *a, **k: states)
    _, data = bounce
    tokens, redraw, source = _windows(data, 1.0)
    pairs = [(0, 0), (1, 7), (2, 30)]
    windows = torch.stack([tokens[e][s : s + 6] for e, s in pairs])
    assert redraw is not None and torch.equal(redraw(pairs, windows, 0), windows)
    b = next(source(0))
    assert b.shown is None and b.weights is None


def test_pressed_windows_learn_the_true_last_frame_from_a_pressed_past(bounce) -> None:  # noqa: ANN001
    _, data = bounce
    tokens, _, source = _windows(data, 1.0)
    lat = [torch.zeros(len(t) - 1, dtype=torch.long) for t in tokens]
    pressed = 0
    for step, b in zip(range(6), source(0), strict=False):
        plain = next(token_batches(tokens, lat, None, 8, 6, 0)(step))
        assert torch.equal(plain.tokens, b.tokens)  # the same windows; only what is shown and learned changes
        if b.shown is None:
            continue
        assert b.weights is not None and b.shown.shape == b.weights.shape == b.tokens.shape
        drawn = (b.shown != b.tokens).flatten(1).any(1)
        pressed += int(drawn.sum())
        assert torch.equal(b.shown[:, -1], b.tokens[:, -1])  # the last frame is shown as recorded
        assert bool((b.weights[drawn, 1:-1] == 0).all()) and bool((b.weights[drawn][:, [0, -1]] == 1).all())
        assert bool((b.weights[~drawn] == 1).all()) and torch.equal(b.shown[~drawn], b.tokens[~drawn])
    assert pressed > 0  # some window had an object at a contact, pressed in
    _, off, source0 = _windows(data, 0.0)
    assert off is None and next(source0(0)).shown is None


def test_the_recipe_refuses_bad_settings_and_data_without_states(bounce, episode_data, tmp_path) -> None:  # noqa: ANN001
    for kw in ({"breach_forcing": 1.5}, {"breach_forcing": -0.1}, {"breach_forcing": 0.5, "breach_px": 0.0}):
        with pytest.raises(ValueError, match="breach_forcing"):
            replace(tiny(), **kw)
    with pytest.raises(ValueError, match="breach_walls_only"):
        replace(tiny(), breach_walls_only=True)
    with pytest.raises(ValueError, match="no states"):  # synthetic data records no states
        train_autoregressive(
            replace(tiny(), breach_forcing=0.5), episode_data(), tmp_path / "x", device="cpu"
        )


def test_a_fine_tune_with_breach_forcing_trains_and_says_so(bounce, tmp_path) -> None:  # noqa: ANN001
    _, data = bounce
    first = train_autoregressive(tiny(), data, tmp_path / "a", device="cpu")
    r = replace(tiny(), breach_forcing=1.0, breach_px=2.0, breach_walls_only=True)
    res = train_autoregressive(r, data, tmp_path / "b", device="cpu", init=first.model_dir)
    assert res.stages["dynamics"].step == 4
    assert "breach forcing 1, breach_px 2, walls only" in load_checkpoint(res.model_dir).card.notes


def test_cli_breach_forcing(bounce, tmp_path) -> None:  # noqa: ANN001
    from gedanken.cli import app

    path, _ = bounce
    common = ["train", "autoregressive", "--preset", "tiny", "--data", str(path), "--device", "cpu"]
    assert CliRunner().invoke(app, [*common, "--out", str(tmp_path / "a")]).exit_code == 0
    args = [*common, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "a" / "model")]
    for bad in (
        ["--breach-forcing", "2"],
        ["--breach-walls-only"],
        ["--breach-forcing", "0.5", "--breach-px", "-1"],
        ["--breach-px", "20"],
    ):
        res = CliRunner().invoke(app, [*args, *bad])
        assert res.exit_code == 2 and not (tmp_path / "b").exists(), res.output
    res = CliRunner().invoke(app, [*args, "--breach-forcing", "0.5"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "dynamics" / "last" / "trainer.json").read_text())["step"] == 4
    assert "breach forcing 0.5" in load_checkpoint(tmp_path / "b" / "model").card.notes
