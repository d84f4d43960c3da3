"""Shared option checks (``gedanken.cli_options``): a bad --device or --out is refused before any work, with a
one-line reason and exit 2, and nothing is written."""

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gedanken.cli import app
from gedanken.train.trainer import resolve_device


def _run(*args: str):  # noqa: ANN202
    return CliRunner().invoke(app, list(args))


def test_resolve_device_names_what_is_wrong() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device 'bogus'"):
        resolve_device("bogus")
    with pytest.raises(ValueError, match="cpu or cuda"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda:0")


@pytest.mark.parametrize(
    "command",
    [
        ["rollout", "--model", "autoregressive_push", "--steps", "2"],
        ["train", "diffusion", "--preset", "tiny", "--world", "push"],
        ["train", "autoregressive", "--preset", "tiny", "--world", "push"],
        ["train", "jepa", "--preset", "tiny", "--world", "push"],
        ["plan", "--model", "jepa_push", "--episodes", "1"],
    ],
)
def test_a_bad_device_is_refused_first(tmp_path: Path, command: list[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)  # where train would collect data/<world> and write runs/
    out = ["--out", str(tmp_path / ("o.mp4" if command[0] == "rollout" else "o"))]
    res = _run(*command, *out, "--device", "bogus")
    assert res.exit_code == 2 and "unknown device 'bogus'" in res.output
    assert not any(tmp_path.iterdir())  # nothing collected, trained or written


def test_out_paths_that_cannot_be_written_are_refused_first(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = [
        (
            ["collect", "--world", "push", "--episodes", "1", "--steps", "4", "--out", f"{afile}/d"],
            "is a file",
        ),
        (["collect", "--world", "push", "--episodes", "1", "--steps", "4", "--out", str(afile)], "is a file"),
        (
            ["rollout", "--model", "autoregressive_push", "--steps", "2", "--out", f"{afile}/r.mp4"],
            "is a file",
        ),
        (["rollout", "--model", "autoregressive_push", "--steps", "2", "--out", str(folder)], "is a folder"),
        (["rollout", "--model", "autoregressive_push", "--steps", "2", "--out", f"{folder}/r.gif"], ".mp4"),
        (
            ["generate", "--model", "diffusion_bounce", "--prompt", "a ball", "--out", str(folder)],
            "is a folder",
        ),
        (
            ["audit", "--model", "copy_last", "--world", "push", "--episodes", "1", "--out", f"{afile}/a"],
            "is a file",
        ),
        (["plan", "--model", "random", "--episodes", "1", "--out", f"{afile}/p"], "is a file"),
        (["train", "diffusion", "--preset", "tiny", "--world", "push", "--out", str(afile)], "is a file"),
    ]
    for args, reason in cases:
        res = _run(*args)
        assert res.exit_code == 2 and reason in res.output, (args, res.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder"] and not any(folder.iterdir())


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_takes_no_files_is_refused_first(tmp_path: Path) -> None:
    # /proc passes os.access for root, but no file can be made there: tried, not assumed
    res = _run("collect", "--world", "push", "--episodes", "1", "--steps", "4", "--out", "/proc/gedanken_x")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "/proc is not writable" in said, res.output
    res = _run("rollout", "--model", "autoregressive_push", "--steps", "2", "--out", "/proc/x.mp4")
    assert res.exit_code == 2 and "not writable" in " ".join(res.output.split())


def test_a_name_the_os_cannot_take_is_a_usage_error(tmp_path: Path) -> None:
    long = tmp_path / ("a" * 300)
    for args in (
        ["collect", "--world", "push", "--episodes", "1", "--out", str(long)],
        ["rollout", "--model", "autoregressive_push", "--out", f"{long}.mp4"],
    ):
        res = _run(*args)
        said = " ".join(res.output.split())  # the 300-character name wraps the box whatever its width
        assert res.exit_code == 2 and "cannot write" in said and "too" in said and "long" in said, res.output
    assert list(tmp_path.iterdir()) == []


def test_reports_do_not_write_into_a_folder_of_other_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    for args in (
        ["plan", "--model", "random", "--episodes", "1", "--out", str(tmp_path)],
        ["audit", "--model", "copy_last", "--world", "push", "--episodes", "1", "--out", str(tmp_path)],
    ):
        res = _run(*args)
        assert res.exit_code == 2 and "non-empty" in res.output, res.output
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--model", "random", "--episodes", "0"],
        ["plan", "--model", "random", "--max-steps", "0"],
        ["plan", "--model", "random", "--clips", "-1"],
        ["audit", "--model", "copy_last", "--world", "push", "--branches", "-1"],
        ["audit", "--model", "copy_last", "--world", "push", "--workers", "-3"],
        ["train", "diffusion", "--preset", "tiny", "--world", "push", "--steps", "-5"],
        ["train", "autoregressive", "--preset", "tiny", "--world", "push", "--steps", "-5"],
        ["train", "diffusion", "--preset", "tiny", "--world", "push", "--threads", "-3"],
    ],
)
def test_negative_counts_are_refused_before_any_work(tmp_path: Path, args: list[str], monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    res = _run(*args, "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "Invalid value" in res.output, res.output
    assert not any(tmp_path.iterdir())


def test_plan_lists_the_valid_planners_and_goals(tmp_path: Path) -> None:
    res = _run("plan", "--model", "random", "--planner", "bogus", "--out", str(tmp_path / "p"))
    assert res.exit_code == 2 and "cem, mppi" in res.output
    res = _run("plan", "--model", "random", "--goal", "bogus", "--out", str(tmp_path / "p"))
    assert res.exit_code == 2 and "state, image, latent" in res.output
