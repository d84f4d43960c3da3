"""``gedanken rollout``, ``generate`` and ``play``: refusals before any work (the runs: tests/train)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gedanken.cli import app


@pytest.mark.parametrize(
    "args",
    [
        ["rollout", "--model", "diffusion_push", "--steps", "100000000"],
        ["rollout", "--model", "diffusion_push", "--context", "100000"],
        ["generate", "--model", "diffusion_bounce", "--prompt", "x", "--sampler-steps", "100000"],
        ["play", "--model", "autoregressive_push", "--frames", "100000000"],
        ["rollout", "--model", "diffusion_push", "--seed", "-1"],
    ],
)
def test_huge_or_negative_counts_are_refused_up_front(tmp_path, args):
    out = tmp_path / "clip.mp4"
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 2 and "Invalid value for '--" in " ".join(res.output.split()), res.output
    assert not out.exists()


def test_sampler_steps_for_a_model_without_a_sampler_are_refused(tmp_path):
    out = tmp_path / "clip.mp4"
    res = CliRunner().invoke(
        app, ["rollout", "--model", "jepa_push", "--sampler-steps", "3", "--out", str(out)]
    )
    assert res.exit_code == 2 and "has no sampler" in " ".join(res.output.split()), res.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollout", "--model", "jepa_push", "--verify", "4"], "'jepa_push' has no solidity verifier"),
        (["rollout", "--model", "diffusion_bounce", "--verify", "1"], "at least 2"),
        (["play", "--model", "diffusion_bounce", "--verify", "1000"], "Invalid value for '--verify'"),
    ],
)
def test_verify_is_refused_where_it_cannot_work(tmp_path, args, message):
    out = tmp_path / "clip.mp4"
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
    assert not out.exists()


def test_play_with_the_solidity_verifier(tmp_path):
    import json

    res = CliRunner().invoke(app, ["play", "--model", "diffusion_push", "--frames", "3", "--verify", "4"])
    assert res.exit_code == 0, res.output
    line = res.output[res.output.rindex('{"frames"') :]  # the runner mixes in stderr's loading bars
    assert json.loads(line)["frames"] == 3


def test_a_model_without_frames_is_refused_before_its_rollout(tmp_path):
    out = tmp_path / "clip.mp4"
    res = CliRunner().invoke(app, ["rollout", "--model", "jepa_push", "--steps", "4", "--out", str(out)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "predicts latents, not frames" in said, said
    assert "rolling" not in said and not out.exists()


def test_rollout_says_its_frames_as_it_goes(tmp_path):
    out = tmp_path / "clip.mp4"
    res = CliRunner().invoke(
        app, ["rollout", "--model", "diffusion_bounce", "--steps", "6", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "rolling diffusion-bounce out: 6/6 frames" in res.output and out.is_file()
