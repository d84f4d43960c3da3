import json

import pytest
from typer.testing import CliRunner

from gedanken.cli import app
from gedanken.models import load_checkpoint


@pytest.mark.slow
def test_train_rollout_generate_play_smoke(tmp_path):
    runner = CliRunner()
    data, out, exported = tmp_path / "data", tmp_path / "run", tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "train",
            "diffusion",
            "--world",
            "push",
            "--preset",
            "tiny",
            "--data",
            str(data),
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


def test_unknown_preset_and_model_are_clear_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "diffusion", "--preset", "huge", "--data", str(tmp_path)])
    assert res.exit_code != 0 and "unknown preset" in res.output
    res = runner.invoke(app, ["rollout", "--model", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "neither a checkpoint" in res.output


def test_dataset_for_records_a_policy_into_its_own_folder(tmp_path, monkeypatch):
    from gedanken.data.store import EpisodeDataset
    from gedanken.train.cli import dataset_for

    monkeypatch.chdir(tmp_path)
    path = dataset_for("push", None, 2, 6, policy="poke")
    assert path.as_posix() == "data/push_poke"
    ds = EpisodeDataset.open(path)
    assert len(ds) == 2 and ds.meta(0).policy == "poke"
    assert dataset_for("push", None, 2, 6).as_posix() == "data/push"  # the default policy keeps the old name
