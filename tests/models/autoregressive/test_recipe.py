import json
import logging
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from gedanken.data.store import EpisodeDataset
from gedanken.data.synthetic import synthetic_episode
from gedanken.models import load_checkpoint
from gedanken.models.autoregressive import ActionMode, AutoregressiveWorldModel
from gedanken.models.autoregressive.config import Stage
from gedanken.models.autoregressive.recipe import EpisodeData, tiny, train_autoregressive


def test_tiny_recipe_trains_every_stage_and_exports(episode_data, tmp_path, caplog) -> None:  # noqa: ANN001
    res = train_autoregressive(tiny(), episode_data(), tmp_path / "run", device="cpu")
    assert set(res.stages) == {"tokenizer", "lam", "dynamics", "adapter"}
    assert all(r.step == 4 for r in res.stages.values())
    assert 0 < res.labelled_steps <= tiny().labelled_steps
    assert res.action_map is not None and res.action_map.steps > 0 and res.action_map.mse >= 0
    assert 0 < res.codebook["usage"] <= 1 and res.tokenizer_psnr > 0
    assert res.fidelity == {}  # no palette: the judge is not run
    m = load_checkpoint(res.model_dir)
    assert isinstance(m, AutoregressiveWorldModel) and m.action_mode is ActionMode.ADAPTER and m.map_fitted
    roll = m.rollout(
        m.observe(torch.from_numpy(synthetic_episode(9, steps=3).frames)[None]), torch.zeros(1, 3, 2)
    )
    assert roll.frames is not None and roll.frames.shape == (1, 3, 64, 64, 3)
    # resuming a finished run trains nothing more and reproduces the same weights
    with caplog.at_level(logging.INFO, logger="gedanken"):
        again = train_autoregressive(tiny(), episode_data(), tmp_path / "run", device="cpu")
    assert all(r.resumed_from == 4 for r in again.stages.values())
    assert "stage dynamics: 4 steps, already trained" in caplog.text and "loss nan" not in caplog.text


def test_tokenizer_metrics_judge_with_a_palette() -> None:
    from gedanken.models.autoregressive import tiny as tiny_model
    from gedanken.models.autoregressive.recipe import tokenizer_metrics

    palette = ((0, 0, 0), (255, 0, 0))
    frames = torch.zeros(6, 64, 64, 3, dtype=torch.uint8)
    frames[:, 20:26, 30:36, 0] = 255  # one red object per frame
    torch.manual_seed(0)
    m = AutoregressiveWorldModel(tiny_model()).eval()
    p, usage, fid = tokenizer_metrics(m, [frames], max_frames=4, palette=palette)
    assert p > 0 and 0 < usage["usage"] <= 1
    assert set(fid) >= {"identity_accuracy", "objects_kept", "position_error_px", "psnr"}
    assert 0 <= fid["identity_accuracy"] <= 1 and fid["psnr"] == pytest.approx(p, abs=0.5)


def test_action_free_data_gives_a_latent_driven_model(episode_data, tmp_path) -> None:  # noqa: ANN001
    data = replace(episode_data(n=3), has_actions=False)
    res = train_autoregressive(tiny(), data, tmp_path / "run", device="cpu")
    assert "adapter" not in res.stages and res.action_map is None and res.labelled_steps == 0
    m = load_checkpoint(res.model_dir)
    assert m.action_mode is ActionMode.LATENT  # type: ignore[attr-defined]


def test_cli_smoke(tmp_path) -> None:  # noqa: ANN001
    from gedanken.cli import app

    EpisodeDataset.create(tmp_path / "data").extend([synthetic_episode(seed=i, steps=12) for i in range(2)])
    EpisodeDataset.create(tmp_path / "more").extend([synthetic_episode(seed=i, steps=12) for i in (2, 3)])
    result = CliRunner().invoke(
        app,
        [
            "train",
            "autoregressive",
            "--preset",
            "tiny",
            "--data",
            str(tmp_path / "data"),
            "--add-data",
            str(tmp_path / "more"),
            "--out",
            str(tmp_path / "run"),
            "--device",
            "cpu",
            "--export",
            str(tmp_path / "exported"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exported" / "checkpoint.json").is_file()
    meta = json.loads((tmp_path / "exported" / "checkpoint.json").read_text())
    assert meta["family"] == "autoregressive" and meta["card"]["preset"] == "tiny"
    assert meta["card"]["dataset"] == f"{tmp_path / 'data'}+{tmp_path / 'more'}"  # both datasets trained on
    # The summary is strict JSON: continuous actions report the map's error, not a NaN accuracy.
    summary = json.loads(" ".join(result.output[result.output.index("done") + 4 :].splitlines()))
    assert "NaN" not in result.output and "latent_to_real_accuracy" not in summary
    assert summary["latent_to_real_mse"] >= 0.0


def test_the_config_records_the_datas_palette(episode_data) -> None:  # noqa: ANN001
    from dataclasses import replace

    from gedanken.models.autoregressive.recipe import fit_config_to_data

    palette = ((0, 0, 0), (255, 0, 0))
    assert fit_config_to_data(tiny().model, replace(episode_data(), palette=palette)).palette == palette
    assert fit_config_to_data(tiny().model, episode_data()).palette == ()


def _palette_data(episode_data) -> EpisodeData:  # noqa: ANN001
    eps = [synthetic_episode(seed=i, steps=12) for i in range(4)]
    return replace(episode_data(), palette=tuple(tuple(int(v) for v in c) for c in eps[0].meta.palette))


def test_init_trains_the_dynamics_on_with_projected_context(episode_data, tmp_path) -> None:  # noqa: ANN001
    data = _palette_data(episode_data)
    t = tiny()
    t = replace(t, model=replace(t.model, sampler=replace(t.model.sampler, steps=3)))  # not the preset's 2
    first = train_autoregressive(t, data, tmp_path / "a", device="cpu")
    r = tiny()
    r = replace(
        r, model=replace(r.model, sampler=replace(r.model.sampler, keep_area=0.8)), projected_context=0.5
    )
    res = train_autoregressive(r, data, tmp_path / "b", device="cpu", init=first.model_dir)
    assert set(res.stages) == {"dynamics", "adapter"}  # tokenizer and latent actions are the checkpoint's
    a, b = load_checkpoint(first.model_dir), load_checkpoint(res.model_dir)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(("tokenizer.", "lam.")))
    assert any(not torch.equal(sa[k], sb[k]) for k in sa if k.startswith("dynamics."))
    assert b.cfg.sampler.keep_area == 0.8  # type: ignore[attr-defined]
    assert b.cfg.sampler.steps == 3  # type: ignore[attr-defined]  # only keep_area changed in its sampler
    assert "trained on from" in b.card.notes and "projected context 0.5" in b.card.notes
    assert b.card.notes.startswith(a.card.notes)  # the checkpoint's history is kept, this run's added
    assert b.card.steps == a.card.steps + sum(r.step for r in res.stages.values())
    with pytest.raises(ValueError, match="--init"):
        train_autoregressive(
            r, replace(data, world="other"), tmp_path / "c", device="cpu", init=first.model_dir
        )
    from gedanken.models import shipped_checkpoint

    diffusion = shipped_checkpoint("diffusion", "bounce")
    with pytest.raises(
        ValueError, match="DiffusionWorldModel checkpoint, this run trains AutoregressiveWorldModel"
    ):
        train_autoregressive(r, data, tmp_path / "d", device="cpu", init=diffusion)
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()  # nothing half-written


def test_init_takes_the_recipes_action_dropout_and_guidance(episode_data, tmp_path) -> None:  # noqa: ANN001
    data = episode_data(n=3)
    first = train_autoregressive(tiny(), data, tmp_path / "a", device="cpu")
    r = tiny()
    dyn = replace(r.model.dynamics, action_dropout=0.2)
    r = replace(
        r, model=replace(r.model, dynamics=dyn, sampler=replace(r.model.sampler, action_guidance=1.5))
    )
    res = train_autoregressive(r, data, tmp_path / "b", device="cpu", init=first.model_dir)
    b = load_checkpoint(res.model_dir)
    assert b.cfg.dynamics.action_dropout == 0.2  # type: ignore[attr-defined]
    assert b.cfg.sampler.action_guidance == 1.5  # type: ignore[attr-defined]
    assert b.cfg.sampler.keep_area == 0.0  # type: ignore[attr-defined]  # the rest of the checkpoint's sampler


def test_projected_context_needs_the_samplers_projection() -> None:
    with pytest.raises(ValueError, match="keep_area"):
        replace(tiny(), projected_context=0.5)
    with pytest.raises(ValueError, match="projected_context"):
        replace(tiny(), projected_context=1.5)


def test_token_batches_show_the_projected_tokens_at_the_given_share() -> None:
    from gedanken.models.autoregressive.batches import token_batches as _token_batches

    tokens = [torch.zeros(10, 4, dtype=torch.long)]
    latents = [torch.zeros(9, dtype=torch.long)]
    shown = [torch.ones(10, 4, dtype=torch.long)]
    plain = next(_token_batches(tokens, latents, None, 64, 5, 0)(0))
    assert plain.shown is None
    always = next(_token_batches(tokens, latents, None, 64, 5, 0, shown, 1.0)(0))
    assert always.shown is not None and bool((always.shown == 1).all()) and bool((always.tokens == 0).all())
    half = next(_token_batches(tokens, latents, None, 64, 5, 0, shown, 0.5)(0))
    assert half.shown is not None and bool((half.shown[:, 0] == 1).all())  # the first frame: context only
    share = float(half.shown[:, 1:].float().mean())
    assert 0.3 < share < 0.7


def test_cli_init_fine_tunes_on_projected_context(tmp_path, tiny_cli_run) -> None:  # noqa: ANN001
    app, common = tiny_cli_run
    args = [*common, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "a" / "model")]
    bad = CliRunner().invoke(app, [*args, "--projected-context", "0.5"])  # no --keep-area: nothing to project
    assert bad.exit_code != 0 and "keep_area" in bad.output
    assert not (tmp_path / "b").exists()
    for wrong in (["--action-dropout", "1.5"], ["--action-guidance", "2"]):  # guidance needs dropout
        bad = CliRunner().invoke(app, [*args, *wrong])
        assert bad.exit_code != 0 and "action_dropout" in bad.output
        assert not (tmp_path / "b").exists()
    flags = ["--keep-area", "0.8", "--projected-context", "0.5", "--lr", "1e-4", "--adapter-steps", "6"]
    flags += ["--keep-unchanged"]
    res = CliRunner().invoke(app, [*args, *flags, "--action-dropout", "0.2", "--action-guidance", "1.5"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "b" / "model" / "checkpoint.json").read_text())
    assert meta["model_config"]["sampler"]["keep_area"] == 0.8
    assert meta["model_config"]["dynamics"]["action_dropout"] == 0.2  # carried onto the --init checkpoint
    assert meta["model_config"]["sampler"]["action_guidance"] == 1.5
    assert meta["model_config"]["sampler"]["keep_unchanged"] is True
    assert "projected context 0.5" in meta["card"]["notes"]
    assert json.loads((tmp_path / "b" / "adapter" / "last" / "trainer.json").read_text())["step"] == 6


def test_init_takes_keep_unchanged_without_keep_area(tmp_path, tiny_cli_run) -> None:  # noqa: ANN001
    from dataclasses import replace

    from gedanken.models import load_checkpoint
    from gedanken.models.autoregressive.recipe import _initial_model

    path = tmp_path / "a" / "model"
    cfg = load_checkpoint(path).cfg
    assert not cfg.sampler.keep_unchanged and cfg.sampler.keep_area == 0
    m = _initial_model(path, replace(cfg, sampler=replace(cfg.sampler, keep_unchanged=True)))
    assert m.cfg.sampler.keep_unchanged and m.sampler.cfg.keep_unchanged
    assert not _initial_model(path, cfg).cfg.sampler.keep_unchanged


def test_contact_weight_reaches_the_dynamics_loss(episode_data, tmp_path) -> None:  # noqa: ANN001
    from gedanken.models.autoregressive.batches import contact_weights, token_batches

    data = _palette_data(episode_data)
    r = replace(tiny(), contact_weight=6.0, contact_band=3)
    tokens = [torch.zeros(len(f), 256, dtype=torch.long) for f in data.frames]  # a 16 x 16 grid of 4 px cells
    weights = contact_weights(r, data, tokens, [0, 1])
    assert weights is not None and len(weights) == 2 and weights[0].shape == tokens[0].shape
    assert set(torch.cat(weights).unique().tolist()) <= {1.0, 6.0}
    assert contact_weights(tiny(), data, tokens, [0, 1]) is None  # off by default
    with pytest.raises(ValueError, match="flat-coloured"):
        contact_weights(r, replace(data, palette=()), tokens, [0])
    with pytest.raises(ValueError, match="cannot place"):
        contact_weights(r, data, [torch.zeros(len(data.frames[0]), 100, dtype=torch.long)], [0])
    for bad in (0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="contact_weight"):
            replace(tiny(), contact_weight=bad)
    with pytest.raises(ValueError, match="flat-coloured"):  # refused before any stage writes anything
        train_autoregressive(r, replace(data, palette=()), tmp_path / "np", device="cpu")
    assert not (tmp_path / "np").exists()
    # the windows carry the weights cut as the tokens are
    lat = [torch.zeros(len(t) - 1, dtype=torch.long) for t in tokens[:2]]
    marked = [torch.arange(t.numel(), dtype=torch.float32).view(t.shape) for t in tokens[:2]]
    b = next(token_batches(tokens[:2], lat, None, 4, 3, 0, weights=marked)(0))
    assert b.weights is not None and b.weights.shape == b.tokens.shape
    assert bool((b.weights[:, 1, 0] - b.weights[:, 0, 0] == 256).all())  # consecutive frames of one window
    # a token weighed more moves the loss: the same batch, weights 1 vs 50 on one token of each masked frame
    model = AutoregressiveWorldModel(tiny().model)  # 8 px patches: 64 tokens a frame
    model.set_stage(Stage.DYNAMICS)
    grid = [torch.randint(0, 100, (6, 64))]
    tb = next(token_batches(grid, [torch.zeros(5, dtype=torch.long)], None, 2, 3, 0)(0))
    torch.manual_seed(0)
    plain, _ = model.loss(tb)
    heavy = torch.ones_like(tb.tokens, dtype=torch.float32)
    heavy[..., :32] = 50.0
    torch.manual_seed(0)
    weighed, _ = model.loss(replace(tb, weights=heavy))
    assert not torch.isclose(plain, weighed)
    with pytest.raises(ValueError, match="token weights"):
        model.loss(replace(tb, weights=heavy[..., :10]))
    # end to end: a fine-tune with the weight trains and records nothing broken
    first = train_autoregressive(tiny(), data, tmp_path / "a", device="cpu")
    res = train_autoregressive(r, data, tmp_path / "b", device="cpu", init=first.model_dir)
    assert res.stages["dynamics"].step == 4
    assert "contact weight 6" in load_checkpoint(res.model_dir).card.notes  # the checkpoint says it used one


def test_cli_contact_weight(tmp_path, tiny_cli_run) -> None:  # noqa: ANN001
    app, common = tiny_cli_run
    args = [*common, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "a" / "model")]
    for value in ("0.5", "inf"):
        bad = CliRunner().invoke(app, [*args, "--contact-weight", value])
        assert bad.exit_code == 2 and not (tmp_path / "b").exists(), bad.output
    res = CliRunner().invoke(app, [*args, "--contact-weight", "4"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "dynamics" / "last" / "trainer.json").read_text())["step"] == 4
