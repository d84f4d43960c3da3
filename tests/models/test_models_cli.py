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
