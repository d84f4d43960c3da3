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
