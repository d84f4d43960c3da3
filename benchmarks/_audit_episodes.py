"""Shared by the benchmarks that replay the audit: its held-out episodes, its judge, and a model to roll out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def held_out(world: str, episodes: int, horizon: int, seed: int = 0) -> tuple[Any, Any, Any]:
    """``(AuditConfig, truth, judged truth)`` for the audit's own ``test`` episodes (4 context frames); ``seed``
    is the audit's ``--seed`` (another set of held-out episodes)."""
    from gedanken.audit.config import AuditConfig
    from gedanken.audit.evaluate import judge_truth
    from gedanken.audit.harness import collect_truth
    from gedanken.audit.registry import check_world
    from gedanken.audit.run import _split_seed

    check_world(world)
    cfg = AuditConfig()
    truth = collect_truth(world, "test", episodes, 4, horizon, seed=_split_seed("test", seed))
    tj = judge_truth(truth, cfg, seed)
    if tj.judged is None or truth.contacts is None:
        raise SystemExit(f"{world}: no object states to judge identities against")
    return cfg, truth, tj


def load(ap: argparse.ArgumentParser, spec: str, world: str) -> Any:
    """The model at ``spec`` (a checkpoint directory or a shipped name); a bad one is ``ap.error``."""
    from gedanken.audit.registry import load_model
    from gedanken.models import CHECKPOINT_ROOT

    if not Path(spec).exists() and (CHECKPOINT_ROOT / spec).is_dir():
        spec = str(CHECKPOINT_ROOT / spec)  # a shipped name
    try:
        return load_model(spec, world)
    except ValueError as e:
        ap.error(str(e))
