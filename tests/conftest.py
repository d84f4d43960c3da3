"""Suite-wide test settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # rich wraps CLI output at the terminal width; long temporary paths would split the phrases tests look for.
    monkeypatch.setenv("COLUMNS", "200")
