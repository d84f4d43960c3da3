"""Suite-wide test settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # rich wraps CLI output at the terminal width; long temporary paths would split the phrases tests look for.
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # caches (e.g. the projected context) go to a per-test folder, never to the user's ~/.cache
    monkeypatch.setenv("GEDANKEN_CACHE", str(tmp_path_factory.mktemp("cache")))
