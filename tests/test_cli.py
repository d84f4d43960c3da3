"""Smoke tests for the assembled ``gedanken`` command."""

from __future__ import annotations

from typer.testing import CliRunner

from gedanken.cli import app

runner = CliRunner()


def test_help_lists_every_command_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("worlds", "collect", "data"):
        assert command in result.output


def test_worlds_lists_every_builtin_world() -> None:
    result = runner.invoke(app, ["worlds"])
    assert result.exit_code == 0, result.output
    for name in ("bounce", "push", "push_discrete", "occlude", "grasp"):
        assert name in result.output


def test_user_errors_exit_2_with_one_line(monkeypatch, capsys, tmp_path) -> None:  # noqa: ANN001
    import pytest

    from gedanken.cli import main

    monkeypatch.setattr(
        "sys.argv", ["gedanken", "train", "diffusion", "--world", "nope", "--data", str(tmp_path / "d")]
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown environment id 'nope'" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_a_request_too_large_for_memory_exits_2_with_one_line(monkeypatch, capsys) -> None:  # noqa: ANN001
    import pytest

    import gedanken.cli as cli

    def too_big() -> None:
        raise MemoryError("Unable to allocate 1.12 TiB for an array with shape (100000004, 64, 64, 3)")

    monkeypatch.setattr(cli, "app", too_big)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        "not enough memory" in err and "1.12 TiB" in err and "fewer steps" in err and "Traceback" not in err
    )
