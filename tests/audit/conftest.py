"""Fixtures for the audit tests."""

from __future__ import annotations

import pytest

from gedanken.audit.config import AuditConfig
from gedanken.audit.harness import TruthSet, collect_truth


@pytest.fixture(scope="session")
def bounce_truth() -> TruthSet:
    return collect_truth("bounce", "test", episodes=3, context=4, horizon=16)


@pytest.fixture(scope="session")
def push_truth() -> TruthSet:
    return collect_truth("push", "test", episodes=4, context=4, horizon=12)


@pytest.fixture
def cfg() -> AuditConfig:
    return AuditConfig(branches=2, branch_episodes=2, batch_size=4)
