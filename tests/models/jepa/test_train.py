"""Smoke run of the whole JEPA recipe (tiny preset) through the shared trainer, and the registry round trip."""

from __future__ import annotations

import json

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
