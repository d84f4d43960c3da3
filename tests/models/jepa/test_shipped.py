"""The shipped Push checkpoint loads through the registry and its probe reads positions off fresh frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gedanken.models import CheckpointError, load_checkpoint, shipped_checkpoint
from gedanken.models.jepa import JepaWorldModel
from gedanken.worlds import make_world
from gedanken.worlds.state import PRESENT, X, Y


def _shipped() -> JepaWorldModel:
    try:
        m = load_checkpoint(shipped_checkpoint("jepa", "push"))
    except CheckpointError:
        pytest.skip("no shipped jepa_push checkpoint")
    assert isinstance(m, JepaWorldModel)
    return m.eval()


def test_shipped_probe_reads_positions_of_unseen_layouts() -> None:
    m = _shipped()
    assert bool(m.probe.fitted) and m.card.family == "jepa"
    world = make_world("push", split="train", render_size=(64, 64))
    errors = []
    for seed in range(1000, 1006):  # layouts the recorded dataset did not use
        frame, info = world.reset(seed=seed)
        s = info["state"]
        pred = m.probe(m.encode(torch.from_numpy(frame)[None, None]))[0, 0].numpy()  # (K, F)
        here = s[:, PRESENT] > 0.5
        errors.append(np.abs(pred[here][:, [X, Y]] - s[here][:, [X, Y]]).max())
    world.close()
    # Positions in world units (the frame is 64 units wide): within 3 units everywhere.
    assert max(errors) < 3.0, errors


def test_shipped_rollout_shapes() -> None:
    m = _shipped()
    frames = torch.zeros(1, 2, 64, 64, 3, dtype=torch.uint8)
    roll = m.rollout(m.repeat_context(m.observe(frames, torch.zeros(1, 2, 2)), 3), torch.zeros(3, 8, 2))
    assert roll.latents is not None and roll.latents.shape == (3, 8, m.cfg.encoder.latent_dim)
    assert roll.states is not None and roll.states.shape == (3, 8, m.cfg.max_objects, 10)
