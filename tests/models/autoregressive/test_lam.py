import numpy as np
import pytest
import torch

from gedanken.models.autoregressive import AutoregressiveWorldModel, tiny
from gedanken.models.autoregressive.lam import LAMArchitecture, LAMConfig, LatentActionModel
from gedanken.models.autoregressive.posttrain import evaluate_action_map, fit_action_map, labelled_segments
from gedanken.tokenizers.discrete import frames_to_float


def _toy(n: int, g: torch.Generator, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A square that steps 3 px left (action 0) or right (action 1) each frame; 3 frames per clip."""
    frames = torch.full((n, 3, size, size, 3), 20, dtype=torch.uint8)
    act = torch.randint(0, 2, (n, 2), generator=g)
    for i in range(n):
        x = int(torch.randint(8, size - 8, (1,), generator=g))
        y = int(torch.randint(4, size - 4, (1,), generator=g))
        for t in range(3):
            frames[i, t, y - 2 : y + 2, x - 2 : x + 2] = torch.tensor([230, 60, 60], dtype=torch.uint8)
            if t < 2:
                x += 3 if act[i, t] else -3
    return frames, act


def test_levels_multiply_to_num_actions() -> None:
    for n in range(2, 9):
        assert int(np.prod(LAMConfig(num_actions=n).levels)) == n
    with pytest.raises(ValueError, match="num_actions"):
        LAMConfig(num_actions=1)


def _fit_toy(lam: LatentActionModel, g: torch.Generator, steps: int = 300) -> None:
    """Train on batches of 32 toy clips, then switch to eval mode."""
    opt = torch.optim.Adam(lam.parameters(), 3e-3)
    for _ in range(steps):
        frames, _ = _toy(32, g)
        loss = lam(frames).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    lam.eval()


def _train_toy(lam: LatentActionModel, g: torch.Generator, steps: int = 300) -> float:
    """Train on the toy and return the majority purity of latent actions on fresh clips."""
    _fit_toy(lam, g, steps)
    frames, act = _toy(200, g)
    z, a = lam.infer(frames).flatten(), act.flatten()
    return sum(int(torch.bincount(a[z == k], minlength=2).max()) for k in z.unique()) / len(z)


def test_patch_lam_separates_two_action_types() -> None:
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    cfg = LAMConfig(
        num_actions=4,
        embed=8,
        decoder_past=False,
        architecture=LAMArchitecture.PATCH,
        patch=2,
        width=16,
        blocks=1,
    )
    lam = LatentActionModel(cfg)
    assert lam.infer(torch.zeros(2, 3, 32, 32, 3, dtype=torch.uint8)).shape == (2, 2)
    assert _train_toy(lam, g, steps=200) > 0.9
    with pytest.raises(ValueError, match="patch"):
        LAMConfig(architecture=LAMArchitecture.PATCH, patch=0)


def test_lam_separates_two_action_types() -> None:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    lam = LatentActionModel(LAMConfig(num_actions=4, channels=(8, 16, 16), embed=8))
    _fit_toy(lam, g, 300)
    frames, act = _toy(200, g)
    z = lam.infer(frames)  # (200, 2)
    assert z.shape == (200, 2)
    z, a = z.flatten(), act.flatten()
    # each true action is carried by its own latent action: majority purity close to 1
    purity = sum(int(torch.bincount(a[z == k], minlength=2).max()) for k in z.unique()) / len(z)
    assert purity > 0.9

    # post-training: the latent->real map fitted on a few labelled clips reads held-out actions off frames
    model = AutoregressiveWorldModel(
        tiny(
            height=32,
            width=32,
            action_classes=2,
            lam=lam.cfg,
            tokenizer=tiny().tokenizer.__class__(patch=4, channels=(8, 8), res_blocks=0),
        )
    )
    model.lam.load_state_dict(lam.state_dict())
    model.eval()
    fr, ac = _toy(40, g)
    acts = torch.cat([ac.float(), torch.zeros(40, 1)], 1)[..., None]  # (40, 3, 1), last action a no-op
    seg_f, seg_a = labelled_segments(list(fr), list(acts), budget=30, segment=3)
    assert sum(len(s) - 1 for s in seg_a) == 30
    res = fit_action_map(model, seg_f, seg_a)
    assert res.steps == 30 and res.train_accuracy > 0.9
    fr, ac = _toy(100, g)
    ev = evaluate_action_map(
        model, list(fr), list(torch.cat([ac.float(), torch.zeros(100, 1)], 1)[..., None])
    )
    assert ev.steps == 200 and ev.accuracy > 0.9 and ev.confusion.sum() == 200
    # and the map drives the model: each real action goes to the latent that carries it
    assert model.real_to_latent[0] != model.real_to_latent[1]


def test_old_lam_config_loads_as_conv() -> None:
    from gedanken.models.checkpoint import config_from_json, config_to_json

    old = config_to_json(LAMConfig(num_actions=4, channels=(8, 8, 16), embed=8))
    for k in ("architecture", "patch", "width", "blocks"):
        old.pop(k)
    cfg = config_from_json(LAMConfig, old)
    assert cfg.architecture is LAMArchitecture.CONV
    lam = LatentActionModel(cfg)
    assert isinstance(lam.encoder[0][0], torch.nn.Conv2d)  # the strided conv stages, as before
    assert lam.infer(torch.zeros(1, 3, 32, 32, 3, dtype=torch.uint8)).shape == (1, 2)


def test_encoder_past_reads_the_frame_before_each_transition() -> None:
    """infer() over a clip must give each transition t -> t+1 the frame t-1 as its past (frame 0 for the first)."""
    torch.manual_seed(0)
    cfg = LAMConfig(num_actions=8, embed=8, encoder_past=True, architecture=LAMArchitecture.PATCH, width=8)
    lam = LatentActionModel(cfg).eval()
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 5, 32, 32, 3), dtype=torch.uint8, generator=g)
    z = lam.infer(frames)
    assert z.shape == (2, 4)
    x = frames_to_float(frames)
    with torch.no_grad():
        for t in range(4):
            past = x[:, max(t - 1, 0)]
            assert torch.equal(lam.quantized(x[:, t], x[:, t + 1], past=past).indices, z[:, t])
        # the past really enters the encoder: a different past changes its continuous output
        h_true = lam.encoder(torch.cat([x[:, 1], x[:, 2], x[:, 2] - x[:, 1], x[:, 0], x[:, 1] - x[:, 0]], 1))
        h_none = lam.encoder(torch.cat([x[:, 1], x[:, 2], x[:, 2] - x[:, 1], x[:, 1], x[:, 1] * 0], 1))
    assert not torch.allclose(h_true, h_none)
    assert lam(frames).loss.isfinite()
