import numpy as np
import pytest
import torch

from gedanken.audit.judge import judge_frames
from gedanken.models import CHECKPOINT_ROOT, load_checkpoint
from gedanken.worlds.record import record_episode


@pytest.mark.parametrize("world", ["bounce", "push"])
def test_shipped_checkpoint_keeps_objects_for_a_few_frames(world):
    """The shipped models load, and their first predicted frames still show every object the truth shows."""
    m = load_checkpoint(CHECKPOINT_ROOT / f"diffusion_{world}").eval()
    assert m.card.world == world and m.sampler.cfg.reencode
    ep = record_episode(world, "test", 123, 8)
    f = torch.from_numpy(ep.frames)[None]
    a = torch.from_numpy(ep.actions)[None].float()
    roll = m.rollout(m.observe(f[:, :4], a[:, :4]), a[:, 3:6], seed=0)
    pal = ep.meta.palette
    truth, pred = judge_frames(ep.frames[4:7], pal), judge_frames(roll.frames[0].numpy(), pal)
    assert np.array_equal(truth.visible, pred.visible)
