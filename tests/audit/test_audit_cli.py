"""``gedanken audit``: a smoke run on a tiny budget and clear errors for bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gedanken.cli import app

runner = CliRunner()


def test_smoke_run_with_baselines(tmp_path) -> None:
    out = tmp_path / "reports" / "bounce"
    res = runner.invoke(
        app,
        [
            "audit",
            "--model",
            "constant_velocity",
            "--model",
            "copy_last",
            "--no-baselines",
            "--world",
            "bounce",
            "--split",
            "test",
            "--split",
            "ood,gap",  # repeated and comma-separated: all three are audited
            "--episodes",
            "2",
            "--horizon",
            "8",
            "--edge-rule",
            "far_side",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "audit.json").read_text())
    assert data["config"]["edge_rule"] == "far_side"  # recorded with the results it produced
    assert [m["name"] for m in data["models"]] == ["constant_velocity", "copy_last"]
    assert data["splits"] == ["test", "ood", "gap"] and data["horizon"] == 8 and data["episodes"] == 2
    assert (out / "index.html").stat().st_size > 1000
    assert "constant_velocity:" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nonsense"], "ground_truth, copy_last, constant_velocity, noise"),
        (["--model", "copy_last", "--world", "mars"], "valid worlds"),
        (["--model", "copy_last", "--split", "test,moon"], "valid splits"),
        (["--model", "copy_last", "--split", "test", "--split", "moon"], "valid splits"),
        (["--model", "copy_last", "--split", ""], "no split named"),
        (["--model", "copy_last", "--split", " , "], "no split named"),
        (["--model", "copy_last", "--horizon", "0"], "horizon"),
        (["--model", "copy_last", "--edge-rule", "middle"], "not one of centroid, far_side"),
        (["--model", "copy_last", "--seed", "-1"], "'--seed'"),
        (["--model", "copy_last", "--horizon", "100000000"], "'--horizon'"),  # refused, not a MemoryError
        (["--model", "copy_last", "--branches", "100000"], "'--branches'"),
    ],
)
def test_bad_input_fails_cleanly(tmp_path, args, message) -> None:
    out = tmp_path / "rep"
    res = runner.invoke(app, ["audit", *args, "--episodes", "1", "--out", str(out)])
    assert res.exit_code != 0
    assert message in " ".join(res.output.split())
    assert not out.exists() and list(tmp_path.iterdir()) == []
    if message in ("valid worlds", "valid splits"):
        assert "auditing" not in res.output  # refused before any progress line


def test_threads_option_sets_torchs_threads(tmp_path) -> None:
    import torch

    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    try:
        res = runner.invoke(
            app,
            [
                "audit",
                "--model",
                "copy_last",
                "--no-baselines",
                "--world",
                "bounce",
                "--episodes",
                "1",
                "--horizon",
                "4",
                "--workers",
                "1",
                "--threads",
                str(target),
                "--out",
                str(tmp_path / "r"),
            ],
        )
        assert res.exit_code == 0, res.output
        assert torch.get_num_threads() == target
    finally:
        torch.set_num_threads(before)
    res = runner.invoke(
        app, ["audit", "--model", "copy_last", "--threads", "-1", "--out", str(tmp_path / "bad")]
    )
    assert res.exit_code != 0 and "--threads" in " ".join(res.output.split())
    assert not (tmp_path / "bad").exists()


def test_a_learned_model_gets_its_bars_printed(tmp_path) -> None:
    from audit_helpers import TinyDrift

    from gedanken.models import ModelCard, register_family, save_checkpoint

    register_family("audit_test_drift", lambda cfg: TinyDrift(**cfg))
    card = ModelCard(name="tiny_drift", family="audit_test_drift", world="bounce")
    ckpt = save_checkpoint(
        tmp_path / "ckpt", TinyDrift(), family="audit_test_drift", model_config={"shift": 1}, card=card
    )
    args = ["audit", "--model", str(ckpt), "--world", "bounce", "--episodes", "2", "--horizon", "4"]
    res = runner.invoke(app, [*args, "--context", "2", "--branches", "0", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "tiny_drift: bars on test (2 episodes)" in res.output
    for bar in ("below copy-last at h1-32", "below constant-velocity from h8", "identity >= 0.98"):
        assert bar in res.output
    assert "copy_last: bars" not in res.output  # baselines are what the bars compare against
    page = (tmp_path / "r" / "index.html").read_text()
    # two position bars, identity and solidity (Bounce is passive: no control bar) ...
    assert "<h2>Bars</h2>" in page and page.count("data-bar-met=") == 4
    assert 'data-bar-met="null">-' in page  # ... one of which a 4-frame horizon cannot judge (from h8)


def test_a_builtin_worlds_gymnasium_id_gets_the_full_audit(tmp_path) -> None:
    out = tmp_path / "rep"
    args = ["audit", "--model", "copy_last", "--no-baselines", "--world", "gedanken/Bounce-v0"]
    res = runner.invoke(
        app, [*args, "--episodes", "1", "--horizon", "4", "--workers", "1", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "audit.json").read_text())
    assert data["world"] == "bounce"  # the world itself, with its object states: not a pixel-only audit
    assert "identity_persistence" in data["models"][0]["splits"]["test"]["scalars"]


def test_verify_audits_each_learned_model_beside_its_verified_copy(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import gedanken.models

    loads: list[str] = []
    load = gedanken.models.load_checkpoint
    monkeypatch.setattr(
        gedanken.models,
        "load_checkpoint",
        lambda path, *a, **k: loads.append(str(path)) or load(path, *a, **k),
    )
    args = ["audit", "--model", "diffusion_bounce", "--no-baselines", "--episodes", "2", "--horizon", "4"]
    res = runner.invoke(
        app, [*args, "--context", "2", "--branches", "0", "--verify", "3", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    assert len(loads) == 1 and loads[0].endswith(
        "diffusion_bounce"
    )  # the checkpoint is read once; the verified model is a copy
    data = json.loads((tmp_path / "r" / "audit.json").read_text())
    names = [m["name"] for m in data["models"]]
    assert names == ["diffusion-bounce", "diffusion-bounce+verify3"]
    assert "solidity verifier" in data["models"][1]["card"]["notes"]
    assert (
        "solidity verifier" not in data["models"][0]["card"]["notes"]
    )  # the copy's sampler, not the model's
    bad = runner.invoke(
        app,
        ["audit", "--model", "jepa_push", "--world", "push", "--verify", "3", "--out", str(tmp_path / "j")],
    )
    said = " ".join(bad.output.split())
    assert bad.exit_code == 2 and "no model here can sample with the verifier" in said, said
    assert "'jepa_push' has no solidity verifier" in said  # named as the user typed it
    assert not (tmp_path / "j").exists()


def test_verify_audits_a_model_without_a_verifier_as_it_is(tmp_path) -> None:
    args = ["audit", "--model", "jepa_push", "--model", "diffusion_push", "--world", "push", "--no-baselines"]
    res = runner.invoke(
        app,
        [
            *args,
            "--episodes",
            "2",
            "--horizon",
            "4",
            "--context",
            "2",
            "--branches",
            "0",
            "--verify",
            "2",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "'jepa_push' has no solidity verifier" in " ".join(res.output.split())
    names = [m["name"] for m in json.loads((tmp_path / "r" / "audit.json").read_text())["models"]]
    assert names == ["jepa", "diffusion-push", "diffusion-push+verify2"]
