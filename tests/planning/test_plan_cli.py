"""``gedanken plan`` smoke run on a tiny budget: report JSON, HTML and clips."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gedanken.cli import app


def test_plan_cli_writes_a_report(tmp_path) -> None:
    out = tmp_path / "plan"
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "--model",
            "random",
            "--model",
            "simulator",
            "--episodes",
            "2",
            "--max-steps",
            "3",
            "--candidates",
            "8",
            "--iterations",
            "1",
            "--clips",
            "1",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((out / "plan.json").read_text())
    rows = {r["model"]: r for r in report["results"]}
    assert set(rows) == {"random", "simulator"}
    assert rows["simulator"]["episodes"] == 2 and rows["simulator"]["plan_ms_p50"] > 0
    assert report["config"]["cem"]["elites"] == 1  # a tenth of 8 candidates (at least one), not all of them
    assert (out / "index.html").read_text().count("<video") == 2
    assert len(list((out / "clips").glob("*.mp4"))) == 2
    # the same folder again with one model: the first run's clips do not linger beside the new report
    again = [
        "plan",
        "--model",
        "random",
        "--episodes",
        "1",
        "--max-steps",
        "2",
        "--clips",
        "1",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(app, again)
    assert res.exit_code == 0, res.output
    assert [p.name for p in (out / "clips").glob("*.mp4")] == ["random_random_0.mp4"]


def test_plan_cli_rejects_unknown_world(tmp_path) -> None:
    res = CliRunner().invoke(app, ["plan", "--model", "random", "--world", "bounce", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "push" in res.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--model", "random", "--keepout", "-1"], ">= 0"),
        (["--model", "random", "--shaping", "nan"], "finite"),
        (["--model", "random", "--keepout", "inf"], "finite"),
        (["--model", "random", "--risk", "nan"], "--risk must be finite"),
        (["--model", "random", "--model", "random"], "named twice"),
        # the second model cannot take a latent goal: refused before the first one plans
        (["--model", "random", "--model", "simulator", "--goal", "latent"], "encodes pictures"),
    ],
)
def test_plan_cli_refuses_bad_settings_before_planning(tmp_path, args, said) -> None:
    res = CliRunner().invoke(app, ["plan", *args, "--episodes", "1", "--out", str(tmp_path / "plan")])
    assert res.exit_code != 0 and said in " ".join(res.output.split()), res.output
    assert "plan random" not in res.output  # no progress bar was started
    assert not (tmp_path / "plan").exists()
