"""Stage 3: the decoder fine-tuned on the DiT's one-step predictions (models/diffusion/decoder.py)."""

from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.models.diffusion.config import tiny as tiny_config
from gedanken.models.diffusion.decoder import (
    DecoderTuneConfig,
    DecoderTuner,
    LatentPairs,
    one_step_pairs,
    pair_batches,
)
from gedanken.models.diffusion.model import DiffusionWorldModel


def _model() -> DiffusionWorldModel:
    torch.manual_seed(0)
    return DiffusionWorldModel(replace(tiny_config(), height=16, width=16, action_dim=2)).eval()


def _episodes(n: int = 3, t: int = 9) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    frames = [torch.zeros(t, 16, 16, 3, dtype=torch.uint8) for _ in range(n)]
    for f in frames:  # a red square moving right on black
        y = int(torch.randint(0, 12, (), generator=g))
        for j in range(t):
            f[j, y : y + 4, j : j + 4, 0] = 255
    return frames, [torch.randn(t, 2, generator=g) for _ in range(n)]


def test_pairs_are_the_models_one_step_predictions_of_the_true_frames() -> None:
    model = _model()
    frames, actions = _episodes()
    cfg = DecoderTuneConfig(stride=2, context=4)
    pairs = one_step_pairs(
        model, frames + [frames[0][:4]], actions + [actions[0][:4]], cfg
    )  # last: too short
    assert len(pairs) == 3 * 3  # frames 4, 6, 8 of each long episode
    torch.testing.assert_close(pairs.frames[0], frames[0][4])
    torch.testing.assert_close(pairs.frames[1], frames[1][4])  # batched over episodes, frame-major
    ctx = model.observe(torch.stack(frames)[:, 0:4], torch.stack(actions)[:, 0:3])  # the batch it predicts in
    _, p = model.step(ctx, torch.stack(actions)[:, 3])
    torch.testing.assert_close(pairs.latents[:3], p.latent)
    with pytest.raises(ValueError, match="frames a one-step prediction needs"):
        one_step_pairs(model, [frames[0][:4]], [actions[0][:4]], cfg)


def test_only_the_display_decoder_learns_and_its_loss_on_the_pairs_falls() -> None:
    model = _model()
    frames, actions = _episodes()
    pairs = one_step_pairs(model, frames, actions, DecoderTuneConfig(stride=1))
    tok = model.tokenizer
    display = model.add_display_decoder()
    assert model.cfg.display_decoder and model.add_display_decoder() is display  # one, created once
    tuner = DecoderTuner(tok, display, DecoderTuneConfig(mix=0.75))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam([p for p in tuner.parameters() if p.requires_grad], lr=3e-3)
    assert all(not p.requires_grad for p in tok.parameters())
    first, logs = tuner.loss(pairs)
    assert set(logs) == {"predicted", "true"}
    for _ in range(40):
        loss, _ = tuner.loss(pairs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(tuner.loss(pairs)[0].detach()) < 0.5 * float(first.detach())
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("display.") for k in changed)


def test_by_default_the_tokenizers_own_decoder_learns() -> None:
    model = _model()
    frames, actions = _episodes()
    pairs = one_step_pairs(model, frames, actions, DecoderTuneConfig(stride=1))
    tuner = DecoderTuner(model.tokenizer, model.tokenizer.decoder, DecoderTuneConfig())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam([p for p in tuner.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(3):
        loss, _ = tuner.loss(pairs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("tokenizer.decoder.") for k in changed)


def test_the_display_decoder_draws_the_frames_and_leaves_the_context_alone(tmp_path) -> None:  # noqa: ANN001
    from gedanken.models import load_checkpoint
    from gedanken.models.checkpoint import save_checkpoint
    from gedanken.models.protocol import ModelCard

    model = _model()
    frames, actions = _episodes()
    f, a = torch.stack(frames), torch.stack(actions)

    def roll(m: DiffusionWorldModel):  # noqa: ANN202
        return m.rollout(m.observe(f[:, :4], a[:, :3]), a[:, 3:8], seed=0)

    plain = roll(model)
    display = model.add_display_decoder()
    same = roll(model)
    assert torch.equal(same.frames, plain.frames)  # a copy of the tokenizer's decoder draws the same frames
    with torch.no_grad():
        for p in display.parameters():
            p.add_(0.05 * torch.randn_like(p))
    moved = roll(model)
    assert torch.equal(moved.latents, plain.latents)  # the context came from the tokenizer's decoder
    assert not torch.equal(moved.frames, plain.frames)  # what it shows came from the display decoder
    save_checkpoint(
        tmp_path / "m",
        model,
        family="diffusion",
        model_config=model.cfg,
        card=ModelCard(name="t", family="diffusion"),
    )
    back = load_checkpoint(tmp_path / "m").eval()
    assert back.cfg.display_decoder and torch.equal(roll(back).frames, moved.frames)


def test_mix_one_trains_on_the_predictions_alone_and_batches_replay() -> None:
    pairs = LatentPairs(
        torch.randn(10, 4, 4, 4), torch.zeros(10, 16, 16, 3, dtype=torch.uint8), torch.randn(10, 4, 4, 4)
    )
    a = next(pair_batches(pairs, 4, seed=0)(7))
    b = next(pair_batches(pairs, 4, seed=0)(7))
    assert torch.equal(a.latents, b.latents) and len(a) == 4  # resume sees the same batches
    model = _model()
    tuner = DecoderTuner(model.tokenizer, model.add_display_decoder(), DecoderTuneConfig(mix=1.0))
    assert set(tuner.loss(a)[1]) == {"predicted"}
    with pytest.raises(ValueError, match="mix"):
        DecoderTuneConfig(mix=0.0)
    with pytest.raises(ValueError, match="episodes"):
        DecoderTuneConfig(episodes=0)


def test_edge_weight_falls_on_objects_near_the_border_only() -> None:
    fg = torch.zeros(1, 1, 32, 32)
    fg[0, 0, 26:32, 10:16] = 1.0  # an object resting on the bottom edge, its top row 6 px above it
    fg[0, 0, 12:18, 12:18] = 1.0  # one in the middle
    w = DecoderTuneConfig(foreground_weight=4.0, edge_weight=10.0, edge_band=8).pixel_weight(fg)
    assert w[0, 0, 26, 12] == 15.0 and w[0, 0, 31, 12] == 15.0  # the whole edge object, far side included
    assert w[0, 0, 14, 14] == 5.0 and w[0, 0, 0, 0] == 1.0  # mid-frame object, background
    assert torch.equal(
        DecoderTuneConfig(foreground_weight=4.0).pixel_weight(fg), 1.0 + 4.0 * fg
    )  # off by default
    with pytest.raises(ValueError, match="edge"):
        DecoderTuneConfig(edge_weight=-1.0)
    with pytest.raises(ValueError, match="edge"):
        DecoderTuneConfig(edge_band=0)


def _train(tmp_path, *extra: str):  # noqa: ANN001, ANN202
    from gedanken.cli import app

    args = ["train", "diffusion", "--preset", "tiny", "--world", "push", "--data", str(tmp_path / "d")]
    return CliRunner().invoke(app, args + list(extra))


def test_cli_fine_tunes_a_trained_models_decoder_alone(tmp_path) -> None:  # noqa: ANN001
    from gedanken.models import load_checkpoint
    from gedanken.models.checkpoint import read_checkpoint

    res = _train(tmp_path, "--out", str(tmp_path / "a"))
    assert res.exit_code == 0, res.output
    before = read_checkpoint(tmp_path / "a" / "model")
    res = _train(
        tmp_path,
        "--init",
        str(tmp_path / "a" / "model"),
        "--decoder-steps",
        "3",
        "--decoder-only",
        "--out",
        str(tmp_path / "b"),
    )
    assert res.exit_code == 0, res.output
    assert "decoder loss" in res.output and "DiT loss" not in res.output
    after = read_checkpoint(tmp_path / "b" / "model")
    assert not (tmp_path / "b" / "dit").exists() and (tmp_path / "b" / "decoder" / "last").is_dir()
    assert "; decoder fine-tuned 3 steps" in after.card.notes and after.step == before.step
    assert set(after.tensors) == set(before.tensors) and not after.model_config["display_decoder"]
    changed = [k for k in before.tensors if not torch.equal(before.tensors[k], after.tensors[k])]
    assert changed and all(k.startswith("tokenizer.decoder.") for k in changed)  # the tokenizer's own decoder
    load_checkpoint(tmp_path / "b" / "model")
    args = [
        "--init",
        str(tmp_path / "a" / "model"),
        "--decoder-steps",
        "3",
        "--decoder-only",
        "--decoder-display",
    ]
    res = _train(tmp_path, *args, "--out", str(tmp_path / "c"))
    assert res.exit_code == 0, res.output
    after = read_checkpoint(tmp_path / "c" / "model")
    assert "display decoder fine-tuned 3 steps" in after.card.notes
    assert all(torch.equal(v, after.tensors[k]) for k, v in before.tensors.items())  # all it had, unchanged
    added = set(after.tensors) - set(before.tensors)
    assert added and all(k.startswith("display.") for k in added)
    assert after.model_config["display_decoder"] and not before.model_config["display_decoder"]
    load_checkpoint(tmp_path / "c" / "model")


def test_cli_refuses_decoder_only_without_a_model(tmp_path) -> None:  # noqa: ANN001
    res = _train(tmp_path, "--out", str(tmp_path / "r"), "--decoder-steps", "3", "--decoder-only")
    assert res.exit_code != 0 and "--decoder-only needs --init" in res.output
    res = _train(tmp_path, "--out", str(tmp_path / "r"), "--decoder-steps", "-1")
    assert res.exit_code != 0 and "--decoder-steps" in res.output
    res = _train(tmp_path, "--out", str(tmp_path / "r"), "--decoder-steps", "3", "--decoder-episodes", "0")
    assert res.exit_code != 0 and "--decoder-episodes >= 1" in res.output
    res = _train(
        tmp_path, "--out", str(tmp_path / "r"), "--decoder-steps", "3", "--decoder-edge-weight", "-1"
    )
    assert res.exit_code != 0 and "--decoder-edge-weight" in res.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()  # nothing collected or written
