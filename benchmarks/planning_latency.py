"""Latency of one replanning step: 300 candidates x horizon 8 against the JEPA model (bar: <= 50 ms, 2 cores).

One replanning step is everything the controller does between two environment steps: encode the context
frames, then ``iterations`` rounds of (sample 300 sequences, roll all out 8 steps in latent space, read states
with the probe, score them). Measured for CEM and MPPI at 1-3 iterations, with 1 and 2 torch threads, as the
median over ``--repeats`` calls after warm-up.

    .venv/bin/python benchmarks/planning_latency.py --out benchmarks/results/planning_latency.json

Uses the shipped checkpoint when present (latency does not depend on the weights, only on the sizes).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from gedanken.models import CheckpointError, load_checkpoint, shipped_checkpoint
from gedanken.models.jepa import JepaWorldModel, default
from gedanken.planning import ActionBounds, CEMConfig, CEMPlanner, MPPIConfig, MPPIPlanner
from gedanken.planning.tasks import (
    GoalKind,
    PushTaskConfig,
    make_push_episode,
    make_push_world,
    push_objective,
)


def _model() -> tuple[JepaWorldModel, str]:
    try:
        m = load_checkpoint(shipped_checkpoint("jepa", "push"))
        return m, "shipped jepa_push"  # type: ignore[return-value]
    except CheckpointError:
        m = JepaWorldModel(default()).eval()
        d = m.cfg.encoder.latent_dim
        m.probe.fit(torch.randn(512, d), torch.randn(512, m.cfg.max_objects, 10), 1e-2)  # sizes only
        return m, "untrained default config"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/planning_latency.json"))
    args = ap.parse_args()
    model, source = _model()
    task = PushTaskConfig()
    world = make_push_world(task)
    ep, frame = make_push_episode(world, task, 0)
    frames = torch.from_numpy(frame)[None].repeat(2, 1, 1, 1)  # (2, H, W, 3) context
    actions = torch.zeros(2, 2)
    objective = push_objective(ep, GoalKind.STATE, task, model)
    bounds = ActionBounds((-1.0, -1.0), (1.0, 1.0))
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, iters in (("cem", 1), ("cem", 2), ("cem", 3), ("mppi", 1), ("mppi", 2)):
            if name == "cem":
                planner = CEMPlanner(
                    model, objective, bounds, CEMConfig(candidates=300, horizon=8, iterations=iters)
                )
            else:
                planner = MPPIPlanner(
                    model, objective, bounds, MPPIConfig(candidates=300, horizon=8, iterations=iters)
                )
            for s in range(3):
                planner.plan(frames, actions, seed=s)
            times = []
            for s in range(args.repeats):
                t0 = time.perf_counter()
                planner.plan(frames, actions, seed=s)
                times.append((time.perf_counter() - t0) * 1e3)
            row = {
                "planner": name,
                "iterations": iters,
                "threads": threads,
                "candidates": 300,
                "horizon": 8,
                "median_ms": round(statistics.median(times), 2),
                "min_ms": round(min(times), 2),
                "max_ms": round(max(times), 2),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = {
        "model": source,
        "latent_dim": model.cfg.encoder.latent_dim,
        "predictor": vars(model.cfg.predictor),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "note": "shared 2-core machine: other jobs may have run at the same time; min_ms is the least disturbed",
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
