import numpy as np
import torch

from gedanken.data.synthetic import synthetic_episode
from gedanken.models.diffusion import DiffusionWorldModel, tiny_config
from gedanken.models.player import Player


def test_player_steps_frames_and_measures_fps():
    torch.manual_seed(0)
    model = DiffusionWorldModel(tiny_config()).eval()
    ep = synthetic_episode(0, steps=3)
    player = Player(model, ep.frames, ep.actions, "squares", seed=1)
    frames = [player.step([0.1, -0.2]) for _ in range(3)]
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert player.stats.frames == 3 and player.fps > 0
    assert player.last is not None and player.last.reward is not None
    replay = Player(model, ep.frames, ep.actions, "squares", seed=1)
    assert np.array_equal(replay.step([0.1, -0.2]), frames[0])
