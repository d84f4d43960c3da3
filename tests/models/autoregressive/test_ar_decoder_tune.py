"""Stage 5: the tokenizer's decoder fine-tuned on the dynamics' one-step predictions
(models/autoregressive/decoder.py, train/decoder_tune.py)."""

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.data.synthetic import synthetic_episode
from gedanken.models import load_checkpoint
from gedanken.models.autoregressive import AutoregressiveWorldModel
from gedanken.models.autoregressive.decoder import TokenDecoderTuner, decoder_train_config
from gedanken.models.autoregressive.recipe import tiny, train_autoregressive
from gedanken.train.decoder_tune import DecoderTuneConfig, LatentPairs, predicted_pairs


def _recipe(steps: int = 6):  # noqa: ANN202
    r = tiny()
    return replace(r, decoder_train=replace(decoder_train_config(steps, progress=False), batch_size=4))


def test_pairs_are_the_dynamics_one_step_predictions_of_the_true_frames(episode_data, tmp_path) -> None:  # noqa: ANN001
    data = episode_data()
    model = load_checkpoint(train_autoregressive(tiny(), data, tmp_path / "run", device="cpu").model_dir)
    assert isinstance(model, AutoregressiveWorldModel)
    cfg = DecoderTuneConfig(stride=3, context=4)
    short = data.frames[0][:4]  # too short for one prediction: skipped
    pairs = predicted_pairs(
        model, [*data.frames, short], [*data.actions, data.actions[0][:4]], cfg, model.tokenizer.encode
    )
    per_episode = len(range(4, 12, 3))
    assert len(pairs) == 4 * per_episode and pairs.latents.shape == (len(pairs), *model.grid)
    assert torch.equal(pairs.frames[0], data.frames[0][4])  # the true frame each prediction is paired with
    assert torch.equal(pairs.truth, model.tokenizer.encode(pairs.frames))
    ctx = model.observe(data.frames[0][None, :4], data.actions[0][None, :3])
    _, pred = model.step(ctx, data.actions[0][None, 3])
    assert torch.equal(pairs.latents[0], pred.latent[0])
    with pytest.raises(ValueError, match="5 frames"):
        predicted_pairs(model, [short], [data.actions[0][:4]], cfg, model.tokenizer.encode)


def test_the_tuner_trains_the_decoder_alone_and_refuses_a_display_decoder() -> None:
    torch.manual_seed(0)
    model = AutoregressiveWorldModel(replace(tiny().model, action_dim=2))
    tok = model.tokenizer
    frames = torch.from_numpy(synthetic_episode(seed=0, steps=7).frames)  # (8, 64, 64, 3)
    truth = tok.encode(frames)
    pairs = LatentPairs(latents=torch.roll(truth, 1, dims=-1), frames=frames, truth=truth)  # "wrong" tokens
    tuner = TokenDecoderTuner(tok, DecoderTuneConfig(foreground_weight=4.0, mix=0.5))
    enc = {k: v.clone() for k, v in tok.encoder.state_dict().items()}
    opt = torch.optim.Adam([p for p in tuner.parameters() if p.requires_grad], lr=3e-3)
    first, logs = tuner.loss(pairs)
    assert set(logs) == {"predicted", "true"}
    for _ in range(30):
        loss, _ = tuner.loss(pairs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(tuner.loss(pairs)[0].detach()) < 0.8 * float(
        first.detach()
    )  # it learns to draw these tokens as these frames
    assert all(torch.equal(v, tok.encoder.state_dict()[k]) for k, v in enc.items())  # encoder untouched
    assert set(TokenDecoderTuner(tok, DecoderTuneConfig(mix=1.0)).loss(pairs)[1]) == {"predicted"}
    with pytest.raises(ValueError, match="display"):
        TokenDecoderTuner(tok, DecoderTuneConfig(display=True))


def test_the_stage_trains_last_and_decoder_only_keeps_everything_else(episode_data, tmp_path) -> None:  # noqa: ANN001
    data = episode_data()
    r = _recipe()
    guided = replace(  # a checkpoint whose config the decoder-only run must keep as it is
        r.model,
        dynamics=replace(r.model.dynamics, action_dropout=0.2),
        sampler=replace(r.model.sampler, action_guidance=1.5),
    )
    res = train_autoregressive(replace(r, model=guided), data, tmp_path / "a", device="cpu")
    assert set(res.stages) == {"tokenizer", "lam", "dynamics", "adapter", "decoder"}
    assert res.stages["decoder"].step == 6
    a = load_checkpoint(res.model_dir)
    assert "decoder fine-tuned 6 steps" in a.card.notes
    only = train_autoregressive(
        _recipe(4), data, tmp_path / "b", device="cpu", init=res.model_dir, train_dynamics=False
    )
    assert set(only.stages) == {"decoder"}
    b = load_checkpoint(only.model_dir)
    assert b.cfg == a.cfg and b.cfg.sampler.action_guidance == 1.5  # type: ignore[attr-defined]
    sa, sb = a.state_dict(), b.state_dict()
    changed = {k for k in sa if not torch.equal(sa[k], sb[k])}
    assert changed and all(k.startswith("tokenizer.decoder.") for k in changed)
    meta_a = json.loads((res.model_dir / "checkpoint.json").read_text())
    meta_b = json.loads((only.model_dir / "checkpoint.json").read_text())
    assert meta_b["step"] == meta_a["step"]  # the checkpoint's step and card, with the stage noted
    assert b.card.notes.startswith(a.card.notes) and b.card.notes.count("decoder fine-tuned") == 2
    with pytest.raises(ValueError, match="needs init"):
        train_autoregressive(_recipe(), data, tmp_path / "c", device="cpu", train_dynamics=False)
    assert not (tmp_path / "c").exists()


def test_cli_decoder_only(tmp_path, tiny_cli_run) -> None:  # noqa: ANN001
    app, common = tiny_cli_run
    for wrong, says in (
        (["--decoder-only", "--decoder-steps", "3"], "--init"),
        (["--decoder-only", "--init", str(tmp_path / "a" / "model")], "--decoder-steps"),
        (["--decoder-steps", "-1"], ">= 0"),
        (["--decoder-steps", "3", "--decoder-episodes", "0"], "--decoder-episodes"),
    ):
        bad = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "b"), *wrong])
        assert bad.exit_code != 0 and says in bad.output, bad.output
        assert not (tmp_path / "b").exists()
    args = ["--out", str(tmp_path / "b"), "--init", str(tmp_path / "a" / "model"), "--decoder-only"]
    res = CliRunner().invoke(app, [*common, *args, "--decoder-steps", "3", "--decoder-weight", "2"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "b" / "model" / "checkpoint.json").read_text())
    assert (
        "decoder fine-tuned 3 steps" in meta["card"]["notes"]
        and "foreground weight 2" in meta["card"]["notes"]
    )
    assert json.loads((tmp_path / "b" / "decoder" / "last" / "trainer.json").read_text())["step"] == 3
    assert not (tmp_path / "b" / "dynamics").exists()  # the dynamics did not train
