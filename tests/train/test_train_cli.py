import json
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from gedanken.cli import app
from gedanken.models import load_checkpoint


@pytest.mark.slow
def _tiny_push(data):
    return ["train", "diffusion", "--world", "push", "--preset", "tiny", "--data", str(data)]


def test_train_rollout_generate_play_smoke(tmp_path):
    runner = CliRunner()
    data, out, exported = tmp_path / "data", tmp_path / "run", tmp_path / "model"
    from gedanken.data.collect import collect

    collect("push", tmp_path / "walls", 2, steps=12, seed=99, workers=1, policy="poke_into_walls")
    res = runner.invoke(
        app,
        [
            *_tiny_push(data),
            "--add-data",
            str(tmp_path / "walls"),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--export",
            str(exported),
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (data / "zarr.json").is_file()
    model = load_checkpoint(exported)
    assert model.card.world == "push" and model.card.preset == "tiny" and model.card.steps == 6
    assert model.card.dataset == f"{data}+{tmp_path / 'walls'}"  # --add-data's episodes were trained on
    assert "objects kept" in res.output  # the judge ran on held-out reconstructions
    assert "reconstruction objects_kept" in model.card.notes

    clip = tmp_path / "clip.mp4"
    res = runner.invoke(
        app,
        [
            "rollout",
            "--model",
            str(exported),
            "--steps",
            "3",
            "--context",
            "2",
            "--out",
            str(clip),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert clip.stat().st_size > 0

    gen = tmp_path / "gen.mp4"
    res = runner.invoke(
        app,
        [
            "generate",
            "--model",
            str(exported),
            "--prompt",
            "the pusher pushes the block",
            "--steps",
            "2",
            "--out",
            str(gen),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert gen.stat().st_size > 0

    res = runner.invoke(app, ["play", "--model", str(exported), "--frames", "5", "--device", "cpu"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert json.loads(res.output.strip().splitlines()[-1])["fps"] > 0

    # --init: train the exported model on; the tokenizer (and its latent scale) is kept, the DiT moves
    longer = tmp_path / "longer"
    args = _tiny_push(data)
    args += ["--device", "cpu", "--steps", "3", "--lr", "5e-3", "--out", str(tmp_path / "run2")]
    res = runner.invoke(
        app,
        [
            *args,
            "--init",
            str(exported),
            "--export",
            str(longer),
            "--self-forcing",
            "0.25",
            "--rollout-forcing",
            "0.5",
            "--edge-embedding",
            "2",
            "--change-weight",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert not (tmp_path / "run2" / "tokenizer").exists()  # no tokenizer stage
    before, after = model.state_dict(), load_checkpoint(longer).state_dict()
    tok = [k for k in before if k.startswith("tokenizer.")]
    dit = [k for k in before if k.startswith("dit.") and before[k].is_floating_point()]
    assert tok and all(torch.equal(before[k], after[k]) for k in tok)
    assert any(not torch.equal(before[k], after[k]) for k in dit)
    card = load_checkpoint(longer).card
    cfg = load_checkpoint(longer).cfg
    assert (
        cfg.flow.self_forcing == 0.25 and cfg.flow.rollout_forcing == 0.5
    )  # the recipe's, not the checkpoint's
    assert cfg.dit.edge_embedding == 2  # added at zero, then trained
    assert cfg.flow.change_weight == 3 and cfg.flow.target == model.cfg.flow.target  # the target is kept
    # the checkpoint's history stays on the card, this run's is added
    prior = model.card
    assert card.steps == prior.steps + 3 and card.notes.startswith(prior.notes)
    assert card.notes.endswith(f"then the DiT trained 3 steps more from {exported}")  # tokenizer as before
    assert card.notes.count("tokenizer PSNR") == 1
    assert card.train_seconds >= prior.train_seconds

    # --init with --tokenizer-steps: the checkpoint's tokenizer is fine-tuned first (its latent scale kept),
    # with the given hard-pixel weight, then the DiT trains on its new latents
    tuned = tmp_path / "tuned"
    args = [*_tiny_push(data), "--device", "cpu"]
    args += ["--steps", "2", "--tokenizer-steps", "3", "--tokenizer-lr", "1e-2", "--hard-weight", "4"]
    res = runner.invoke(
        app, [*args, "--init", str(exported), "--out", str(tmp_path / "run3"), "--export", str(tuned)]
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (tmp_path / "run3" / "tokenizer").is_dir()
    after = load_checkpoint(tuned)
    moved = [k for k in tok if not k.endswith(("latent_mean", "latent_std"))]
    assert any(not torch.equal(before[k], after.state_dict()[k]) for k in moved)
    assert all(
        torch.equal(before[k], after.state_dict()[k])
        for k in tok
        if k.endswith(("latent_mean", "latent_std"))
    )
    assert after.cfg.tokenizer.hard_weight == 4


def test_init_from_a_checkpoint_of_other_data_is_refused(tmp_path):
    from gedanken.data.collect import collect
    from gedanken.models import shipped_checkpoint
    from gedanken.models.diffusion.recipe import tiny, train_diffusion

    collect("push", tmp_path / "push", 2, steps=12, seed=0, workers=1)
    with pytest.raises(ValueError, match=r"checkpoint \(height, width, action_dim.*'bounce'.*'push'"):
        train_diffusion(
            tiny(), tmp_path / "push", tmp_path / "run", init=shipped_checkpoint("diffusion", "bounce")
        )
    with pytest.raises(ValueError, match="JepaWorldModel checkpoint, this run trains DiffusionWorldModel"):
        train_diffusion(tiny(), tmp_path / "push", tmp_path / "run", init=shipped_checkpoint("jepa", "push"))
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_unknown_preset_and_model_are_clear_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "diffusion", "--preset", "huge", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "unknown preset" in res.output
    res = runner.invoke(app, ["rollout", "--model", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "neither a checkpoint" in res.output
    res = runner.invoke(app, ["train", "diffusion", "--self-forcing", "1.5", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--self-forcing must be in [0, 1]" in res.output
    bad = ["--self-forcing", "0.5", "--rollout-forcing", "0.75"]  # the two shares add up to more than 1
    res = runner.invoke(app, ["train", "diffusion", *bad, "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--rollout-forcing must be in [0, 1 - --self-forcing]" in res.output
    res = runner.invoke(app, ["train", "diffusion", "--edge-embedding", "-2", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--edge-embedding must be >= 0" in res.output
    res = runner.invoke(app, ["train", "diffusion", "--prev-frames", "-1", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--prev-frames must be >= 1" in res.output
    res = runner.invoke(app, ["train", "diffusion", "--dit-depth", "-1", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--dit-depth must be >= 1" in res.output
    res = runner.invoke(app, ["train", "diffusion", "--hard-weight", "-3", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--hard-weight must be >= 0" in res.output
    args = ["train", "diffusion", "--preset", "tiny", "--prev-frames", "2", "--data", str(tmp_path / "d")]
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and "needs the previous-frame embedding" in res.output
    assert not (tmp_path / "d").exists()  # refused before any data is collected
    from gedanken.data.collect import collect

    collect("push", tmp_path / "push", 1, steps=8, seed=0, size=32, workers=1)
    collect("bounce", tmp_path / "bounce", 1, steps=8, seed=0, size=32, workers=1)
    args = ["train", "diffusion", "--data", str(tmp_path / "push"), "--add-data", str(tmp_path / "bounce")]
    res = runner.invoke(app, [*args, "--preset", "tiny", "--out", str(tmp_path / "mixed")])
    assert res.exit_code != 0 and "does not match" in str(res.exception)  # `gedanken` prints it, exit 1
    assert not (tmp_path / "mixed").exists()  # refused before anything is written
    res = runner.invoke(app, ["train", "diffusion", "--lr", "-1", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "--lr must be positive" in res.output
    # --world typed with --data of another world: refused by every family before anything is written
    # (without --world, the data decides)
    for family in ("diffusion", "autoregressive", "jepa"):
        out = tmp_path / f"wrong_{family}"
        res = runner.invoke(
            app,
            ["train", family, "--preset", "tiny", "--world", "push"]
            + ["--data", str(tmp_path / "bounce"), "--out", str(out)],
        )
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "--world push, but" in said and "recorded from bounce" in said, said
        assert not out.exists()


def test_the_default_run_folder_is_named_after_the_datas_world(tmp_path):
    from gedanken.data.collect import collect
    from gedanken.train.cli import run_dir

    collect("bounce", tmp_path / "mine", 1, steps=4, seed=0, size=32, workers=1)
    assert run_dir("jepa", "push", tmp_path / "mine", None) == Path("runs") / "jepa_bounce"
    assert run_dir("jepa", "push", tmp_path / "mine", tmp_path / "o") == tmp_path / "o"  # --out wins
    # no dataset there (yet): the --world it will be recorded from
    assert (
        run_dir("diffusion", "ALE/Pong-v5", tmp_path / "none", None) == Path("runs") / "diffusion_ALE_Pong-v5"
    )


def test_a_worlds_gymnasium_id_names_the_same_world(tmp_path):
    from gedanken.data.collect import collect
    from gedanken.train.cli import dataset_for

    collect("push", tmp_path / "push", 1, steps=4, seed=0, size=32, workers=1)
    given = dict(collect_given=False, world_given=True)
    assert dataset_for("gedanken/Push-v0", tmp_path / "push", 1, 4, **given) == tmp_path / "push"
    with pytest.raises(typer.BadParameter, match="recorded from push"):
        dataset_for("gedanken/Bounce-v0", tmp_path / "push", 1, 4, **given)


def test_dataset_for_records_a_policy_into_its_own_folder(tmp_path, monkeypatch):
    from gedanken.data.store import EpisodeDataset
    from gedanken.train.cli import dataset_for

    monkeypatch.chdir(tmp_path)
    path = dataset_for("push", None, 2, 6, policy="poke")
    assert path.as_posix() == "data/push_poke"
    ds = EpisodeDataset.open(path)
    assert len(ds) == 2 and ds.meta(0).policy == "poke"
    assert dataset_for("push", None, 2, 6).as_posix() == "data/push"  # the default policy keeps the old name


def test_play_rollout_generate_refuse_empty_requests_and_play_drives_discrete_models_by_index(tmp_path):
    runner = CliRunner()
    clip = tmp_path / "clip.mp4"
    for args in (
        ["play", "--model", "diffusion_bounce", "--frames", "0", "--out", str(clip)],
        [
            "generate",
            "--model",
            "diffusion_bounce",
            "--prompt",
            "two balls",
            "--steps",
            "0",
            "--out",
            str(clip),
        ],
        ["rollout", "--model", "diffusion_bounce", "--context", "0", "--out", str(clip)],
        ["rollout", "--model", "diffusion_bounce", "--steps", "0", "--out", str(clip)],
    ):
        res = runner.invoke(app, [*args, "--device", "cpu"])
        assert res.exit_code == 2, (args, res.output)
        assert "greater than or equal to 1" in res.output
    res = runner.invoke(app, ["generate", "--model", "diffusion_bounce", "--prompt", " ", "--out", str(clip)])
    assert res.exit_code == 2 and "--prompt is empty" in res.output
    assert not clip.exists()
    res = runner.invoke(app, ["play", "--model", "jepa_push", "--frames", "2", "--device", "cpu"])
    assert res.exit_code == 2 and "predicts latents, not frames" in res.output
    # push_discrete takes whole action indices: a uniform float would be refused by the model
    res = runner.invoke(
        app, ["play", "--model", "autoregressive_push_discrete", "--frames", "3", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert json.loads(res.output.strip().splitlines()[-1])["frames"] == 3
    # autoregressive_bounce runs on its latent actions: play draws indices of those, not floats
    before = torch.get_num_threads()
    try:
        args = [
            "play",
            "--model",
            "autoregressive_bounce",
            "--frames",
            "3",
            "--device",
            "cpu",
            "--threads",
            "1",
        ]
        res = runner.invoke(app, args)
        assert torch.get_num_threads() == 1  # --threads reached torch
    finally:
        torch.set_num_threads(before)
    assert res.exit_code == 0, res.output + repr(res.exception)
    line = res.output.strip().splitlines()[-1]
    assert json.loads(line)["frames"] == 3 and line.startswith("{")  # one JSON line, never wrapped


def test_train_diffusion_on_data_without_object_states_finishes_cleanly(tmp_path):
    import dataclasses

    import numpy as np

    from gedanken.data.store import EpisodeDataset
    from gedanken.data.synthetic import synthetic_episode

    rng = np.random.default_rng(0)

    def camera_like(seed: int):  # noqa: ANN202 - no object states, and noisy frames: no flat palette either
        ep = synthetic_episode(seed=seed, steps=12, with_states=False)
        noisy = ep.frames.astype(np.int16) + rng.integers(-12, 13, ep.frames.shape)
        meta = dataclasses.replace(ep.meta, palette=())
        return dataclasses.replace(ep, frames=noisy.clip(0, 255).astype(np.uint8), meta=meta)

    data = tmp_path / "data"
    EpisodeDataset.create(data).extend([camera_like(i) for i in range(3)])
    args = ["train", "diffusion", "--preset", "tiny", "--data", str(data), "--device", "cpu"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "done" in res.output and "objects kept" not in res.output
    assert (tmp_path / "run" / "model" / "checkpoint.json").is_file()


def test_export_never_replaces_other_files_nor_the_run(tmp_path):
    from gedanken.data.collect import collect

    collect("push", tmp_path / "push", 1, steps=8, seed=0, size=32, workers=1)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file.txt").write_text("precious")
    for family in ("diffusion", "autoregressive", "jepa"):
        base = ["train", family, "--preset", "tiny", "--data", str(tmp_path / "push"), "--device", "cpu"]
        out = tmp_path / f"run_{family}"
        res = CliRunner().invoke(app, [*base, "--out", str(out), "--export", str(keep)])
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "holds other files (file.txt)" in said, said
        assert (keep / "file.txt").read_text() == "precious" and not out.exists()
        for export in (out, out / "model"):  # the run folder itself, or inside it
            res = CliRunner().invoke(app, [*base, "--out", str(out), "--export", str(export)])
            said = " ".join(res.output.split())
            assert res.exit_code == 2 and "overlaps the run folder" in said, said
            assert not out.exists()
        res = CliRunner().invoke(app, [*base, "--out", str(out), "--add-data", str(tmp_path / "push")])
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "is given twice" in said and not out.exists(), said


def test_a_refused_export_records_no_dataset_first(tmp_path):
    data, out = tmp_path / "new", tmp_path / "run"
    args = [
        "train",
        "diffusion",
        "--preset",
        "tiny",
        "--world",
        "push",
        "--data",
        str(data),
        "--device",
        "cpu",
    ]
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--export", str(out / "model")])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "overlaps the run folder" in said, said
    assert not data.exists() and not out.exists()  # it used to record the dataset, then refuse


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["train", "diffusion", "--lr", "nan"], "--lr: must be a finite number"),
        (["train", "diffusion", "--hard-weight", "nan"], "--hard-weight: must be a finite number"),
        (["train", "diffusion", "--edge-weight", "inf"], "--edge-weight: must be a finite number"),
        (["train", "diffusion", "--episodes", "-3"], "'--episodes'"),
        (["train", "autoregressive", "--lr", "-1"], "--lr must be >= 0"),
        (["train", "autoregressive", "--labelled-steps", "-7"], "'--labelled-steps'"),
        (["train", "autoregressive", "--adapter-steps", "-3"], "'--adapter-steps'"),
        (["train", "jepa", "--interaction", "-5"], "'--interaction'"),
        (["train", "jepa", "--predictor-steps", "-2"], "'--predictor-steps'"),
    ],
)
def test_nonsense_numbers_are_refused_before_any_stage(tmp_path, args, said):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app, [*args, "--preset", "tiny", "--data", str(tmp_path / "d"), "--out", str(out)]
    )
    assert res.exit_code == 2 and said in " ".join(res.output.split()), res.output
    assert not out.exists() and not (tmp_path / "d").exists()


def test_diffusion_resume_on_other_data_is_refused_at_the_tokenizer(tmp_path):
    from gedanken.data.collect import collect

    for name, seed in (("a", 0), ("b", 5)):
        collect("bounce", tmp_path / name, 2, steps=8, seed=seed, size=32, workers=1)
    base = ["train", "diffusion", "--preset", "tiny", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(app, [*base, "--data", str(tmp_path / "a")]).exit_code == 0
    state = tmp_path / "run" / "tokenizer" / "last" / "trainer.json"
    before = state.read_text()
    res = CliRunner().invoke(app, [*base, "--data", str(tmp_path / "b"), "--tokenizer-steps", "12"])
    assert res.exit_code != 0 and "tokenizer/last is a run on" in str(res.exception)  # `gedanken`: exit 2
    assert state.read_text() == before  # the finished tokenizer was not trained on the other data


def test_a_data_path_that_names_nothing_is_refused_unless_world_says_what_to_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for family in ("diffusion", "autoregressive", "jepa"):
        base = ["train", family, "--preset", "tiny", "--data", "data/psuh", "--out", "run"]  # a typo
        res = CliRunner().invoke(app, base)
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "no dataset at data/psuh" in said, said
        assert ("type --world too" in said) == (family != "jepa")
        assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()
