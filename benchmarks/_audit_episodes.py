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


def replay_parser(doc: str | None, episodes: int) -> argparse.ArgumentParser:
    """The arguments of a benchmark that replays the audit's rollouts of one model (see :func:`replay`)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint directory or shipped name")
    ap.add_argument("--world", default="push")
    ap.add_argument("--episodes", type=int, default=episodes)
    ap.add_argument("--horizon", type=int, default=64)
    ap.add_argument(
        "--seed", type=int, default=0, help="the audit's --seed: another set of held-out episodes"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    return ap


def replay(ap: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """``(AuditConfig, truth, judged truth, judged rollout)``: the model rolled out on the audit's held-out
    episodes exactly as the audit does (same seed, same batches) and judged."""
    if args.episodes < 1 or args.horizon < 2:
        ap.error("--episodes must be >= 1 and --horizon >= 2")
    import torch

    from gedanken.audit.evaluate import _judge_output, rollout

    torch.set_num_threads(args.threads)
    cfg, truth, tj = held_out(args.world, args.episodes, args.horizon, args.seed)
    model = load(ap, args.model, args.world)
    out = rollout(model, truth, truth.actions, args.seed, cfg.batch_size)
    return cfg, truth, tj, _judge_output(out, truth, cfg)
