"""Smoke runs of `gedanken collect` and `gedanken data ...` on tiny budgets."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gedanken.data.cli import register
from gedanken.data.video import read_mp4

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _main() -> None:  # a callback keeps sub-commands as sub-commands
        pass

    register(app)
    return app


def test_collect_info_export(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "push"
    args = [
        "collect",
        "--world",
        "push",
        "--episodes",
        "2",
        "--out",
        str(out),
        "--steps",
        "8",
        "--size",
        "32",
        "--workers",
        "1",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "2 episodes" in " ".join(res.output.split())  # rich may wrap long paths
    other = [a if a != "push" else "bounce" for a in args]  # the same folder, another world: refused
    res = runner.invoke(app, other)
    assert res.exit_code == 2 and "different settings" in res.output
    assert "0/2" not in res.output and "→" not in res.output  # no progress bar for a refused run

    res = runner.invoke(app, ["data", "info", str(out)])
    assert res.exit_code == 0, res.output
    assert "push (2)" in res.output and "32×32" in res.output and "box[2]" in res.output
    assert "chunks were not read" in " ".join(res.output.split())  # info does not claim to have checked them

    clip = tmp_path / "clip.mp4"
    res = runner.invoke(
        app, ["data", "export-mp4", str(out), "--episode", "1", "--out", str(clip), "--scale", "2"]
    )
    assert res.exit_code == 0, res.output
    frames = read_mp4(clip)
    assert frames.shape[1:] == (64, 64, 3) and 2 <= len(frames) <= 8

    # a target folder we may not write to (root passes os.access, so the failure is simulated): the error
    # names the file asked for, not our temporary one, and nothing is left behind
    import tempfile

    def refuse(*_a: object, **_k: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / ".locked.mp4.x.tmp"))

    locked = tmp_path / "locked.mp4"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "mkstemp", refuse)
        res = runner.invoke(app, ["data", "export-mp4", str(out), "--out", str(locked)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "cannot write" in said and "Permission denied" in said, res.output
    assert ".tmp" not in said and not locked.exists()
    # a failure while encoding (a full disk, a size limit) names the target too
    from gedanken.data import video

    def too_large(*_a: object, **_k: object) -> None:
        raise OSError(27, "File too large")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(video.av, "open", too_large)
        res = runner.invoke(app, ["data", "export-mp4", str(out), "--out", str(locked)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "cannot write" in said and "File too large" in said, res.output
    assert not locked.exists() and not list(tmp_path.glob(".locked.mp4.*"))

    res = runner.invoke(app, ["data", "verify", str(out)])
    assert res.exit_code == 0 and "intact" in res.output


def test_collect_external_env(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "cartpole"
    res = runner.invoke(
        app,
        [
            "collect",
            "--env",
            "CartPole-v1",
            "--episodes",
            "1",
            "--out",
            str(out),
            "--steps",
            "6",
            "--workers",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["data", "info", str(out)])
    assert "CartPole-v1 (1)" in res.output and "discrete(2)" in res.output and "external" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--world", "pushy"], "valid worlds: bounce"),
        (["--env", "NoSuchEnv-v9"], "CartPole-v1"),
        (["--world", "push", "--env", "CartPole-v1"], "exactly one of"),
        (["--world", "push", "--steps", "1"], "steps must be >= 2"),
        (["--world", "push", "--split", "nope"], "valid splits"),
        (["--world", "push", "--workers", "0"], "--workers must be >= 1"),
    ],
)
def test_collect_bad_input(app: typer.Typer, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "bad"
    res = runner.invoke(app, ["collect", "--episodes", "2", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not out.exists()


def test_missing_or_corrupt_dataset_is_reported_with_its_path(app: typer.Typer, tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "info", str(tmp_path / "none")])
    assert res.exit_code == 2 and "none" in res.output
    out = tmp_path / "push"
    assert (
        runner.invoke(
            app,
            [
                "collect",
                "--world",
                "bounce",
                "--episodes",
                "1",
                "--out",
                str(out),
                "--steps",
                "8",
                "--size",
                "32",
                "--workers",
                "1",
            ],
        ).exit_code
        == 0
    )
    chunk = next(p for p in sorted((out / "frames" / "c").rglob("*")) if p.is_file())
    chunk.write_bytes(b"garbage")
    res = runner.invoke(app, ["data", "export-mp4", str(out), "--out", str(tmp_path / "x.mp4")])
    assert res.exit_code == 2 and "corrupt" in res.output
    assert not (tmp_path / "x.mp4").exists()
    res = runner.invoke(
        app, ["data", "export-mp4", str(out), "--episode", "5", "--out", str(tmp_path / "x.mp4")]
    )
    assert res.exit_code == 2 and "out of range" in res.output


def test_collect_refuses_a_folder_of_other_files(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    res = runner.invoke(
        app, ["collect", "--world", "push", "--episodes", "1", "--steps", "4", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "holds no gedanken dataset" in res.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_envs_says_when_nothing_matches(app: typer.Typer) -> None:
    res = runner.invoke(app, ["data", "envs", "zzzzqq"])
    assert res.exit_code == 2 and "no world or Gymnasium id contains 'zzzzqq'" in res.output
    res = runner.invoke(app, ["data", "envs", "push"])
    assert res.exit_code == 0 and "push_discrete" in res.output
