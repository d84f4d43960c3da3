"""Smoke run of the whole JEPA recipe (tiny preset) through the shared trainer, and the registry round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from gedanken.data.collect import collect
from gedanken.models import load_checkpoint
from gedanken.models.jepa import JepaWorldModel
from gedanken.models.jepa.train import tiny, train_jepa


def test_tiny_recipe_end_to_end(tmp_path) -> None:
    data = tmp_path / "push"
    collect("push", data, 3, steps=12, seed=0, size=32, workers=1)
    res = train_jepa(tiny(), data, tmp_path / "run", device="cpu", progress=False)
    assert res.encoder.step == 4 and res.predictor.step == 4
    assert (tmp_path / "run" / "encoder" / "last").is_dir() and (
        tmp_path / "run" / "predictor" / "last"
    ).is_dir()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["probe_heldout"]) >= {"position_r2", "velocity_r2", "r2"}
    m = load_checkpoint(res.model_dir)
    assert isinstance(m, JepaWorldModel) and m.card.family == "jepa" and bool(m.probe.fitted)
    frames = torch.zeros(1, 2, 32, 32, 3, dtype=torch.uint8)
    roll = m.rollout(m.observe(frames, torch.zeros(1, 2, 2)), torch.zeros(1, 3, 2))
    assert roll.states is not None and roll.states.shape == (1, 3, 5, 10)
    m.decode = True
    assert m.rollout(m.observe(frames), torch.zeros(1, 2, 2)).frames.shape == (1, 2, 32, 32, 3)


def test_encoder_from_reuses_a_trained_encoder_and_refuses_a_different_one(tmp_path, caplog) -> None:
    import logging

    from gedanken.models.jepa.train import load_encoder

    data = tmp_path / "push"
    collect("push", data, 3, steps=12, seed=0, size=32, workers=1)
    first = train_jepa(tiny(), data, tmp_path / "a", device="cpu", progress=False)
    with caplog.at_level(logging.WARNING, logger="gedanken"):
        load_encoder(load_checkpoint(first.model_dir), first.model_dir, "push")
        assert not caplog.text
        load_encoder(load_checkpoint(first.model_dir), first.model_dir, "bounce")  # transfer: allowed, said
    assert "was trained on push; this run's data is bounce" in caplog.text
    pred = dataclasses.replace(tiny().model.predictor, interaction=8)
    recipe = dataclasses.replace(tiny(), model=dataclasses.replace(tiny().model, predictor=pred))
    second = train_jepa(
        recipe, data, tmp_path / "b", device="cpu", progress=False, encoder_from=first.model_dir
    )
    assert second.encoder is None and not (tmp_path / "b" / "encoder").exists()
    a, b = load_checkpoint(first.model_dir), load_checkpoint(second.model_dir)
    for (name, pa), (_, pb) in zip(
        a.encoder.state_dict().items(), b.encoder.state_dict().items(), strict=True
    ):
        assert torch.equal(pa, pb), name
    assert b.predictor.interaction is not None and second.probe.position_r2 == first.probe.position_r2
    enc = dataclasses.replace(tiny().model.encoder, keypoints=3)
    other = dataclasses.replace(tiny(), model=dataclasses.replace(tiny().model, encoder=enc))
    with pytest.raises(ValueError, match="keypoints: 4 there, 3 here"):
        train_jepa(other, data, tmp_path / "c", device="cpu", progress=False, encoder_from=first.model_dir)
    assert not (tmp_path / "c").exists()


def test_more_data_is_appended_and_must_match(tmp_path) -> None:
    from gedanken.models.jepa.train import load_data

    collect("push", tmp_path / "a", 2, steps=8, seed=0, size=32, workers=1)
    collect("push", tmp_path / "b", 3, steps=8, seed=5, size=32, workers=1)
    collect("bounce", tmp_path / "c", 1, steps=8, seed=0, size=32, workers=1)
    a, b = load_data(tmp_path / "a"), load_data(tmp_path / "b")
    both = load_data(tmp_path / "a", tmp_path / "b")
    assert len(both.frames) == 5 and len(both.states) == 5 and len(both.actions) == 5
    assert torch.equal(both.frames[2], b.frames[0]) and torch.equal(both.frames[0], a.frames[0])
    with pytest.raises(ValueError, match="does not match"):
        load_data(tmp_path / "a", tmp_path / "c")
    run = train_jepa(
        tiny(), tmp_path / "a", tmp_path / "run", device="cpu", progress=False, more_data=(tmp_path / "b",)
    )
    card = load_checkpoint(run.model_dir).card
    assert card.dataset == f"{tmp_path / 'a'}+{tmp_path / 'b'}"  # the card names every dataset it saw
