"""``gedanken plan`` smoke run on a tiny budget: report JSON, HTML and clips."""

from __future__ import annotations

import json

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
    assert (out / "index.html").read_text().count("<video") == 2
    assert len(list((out / "clips").glob("*.mp4"))) == 2


def test_plan_cli_rejects_unknown_world(tmp_path) -> None:
    res = CliRunner().invoke(app, ["plan", "--model", "random", "--world", "bounce", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "push" in res.output


def test_plan_cli_rejects_a_negative_term_weight(tmp_path) -> None:
    res = CliRunner().invoke(
        app, ["plan", "--model", "random", "--keepout", "-1", "--out", str(tmp_path / "plan")]
    )
    assert res.exit_code != 0 and ">= 0" in res.output
    assert not (tmp_path / "plan").exists()
