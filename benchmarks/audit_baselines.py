"""Audit speed: every built-in baseline on 100 held-out episodes x 64 predicted frames of one world.

Target (issue): <= 60 s on 2 cores for ground_truth, copy_last, constant_velocity and noise together, including
recording the held-out episodes and writing the report.

    .venv/bin/python benchmarks/audit_baselines.py          # writes benchmarks/results/audit_baselines.json

Wall time depends on what else runs on the machine, so the JSON also records the CPU time of the main process and
of the forked workers, and the load average before and after; on a shared machine, (main + workers) / workers
estimates the wall time of an idle run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gedanken.audit import run_audit, write_report


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the forked workers)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", default="bounce")
    parser.add_argument("--split", default="test")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="processes (the target is for 2 cores)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "audit_baselines.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    models = ["ground_truth", "copy_last", "constant_velocity", "noise"]
    load_before = os.getloadavg()
    t0, c0, children0 = time.perf_counter(), time.process_time(), _children_cpu()
    result = run_audit(
        models,
        args.world,
        args.split.split(","),
        episodes=args.episodes,
        horizon=args.horizon,
        workers=args.workers,
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_report(result, Path(tmp) / "report")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    report = {
        "benchmark": "audit_baselines",
        "command": f"python benchmarks/audit_baselines.py --world {args.world} --split {args.split} "
        f"--episodes {args.episodes} --horizon {args.horizon} --workers {args.workers}",
        "target": "<= 60 s on 2 cores",
        "world": args.world,
        "splits": result.splits,
        "episodes": args.episodes,
        "horizon": args.horizon,
        "context": result.context,
        "models": models,
        "workers": args.workers,
        "wall_seconds": round(wall, 2),
        "cpu_seconds_main_process": round(cpu, 2),
        "cpu_seconds_workers": round(_children_cpu() - children0, 2),
        "truth_seconds": {k: round(v, 2) for k, v in result.truth_seconds.items()},
        "model_seconds": {m.name: round(m.seconds, 2) for m in result.models},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "metrics": {
            m.name: {
                k: round(v, 4) if np.isfinite(v) else None
                for k, v in m.splits[result.reference].scalars.items()
                if k
                in (
                    "pos_err",
                    "valid_horizon",
                    "identity_persistence",
                    "first_break",
                    "psnr",
                    "ssim",
                    "ctrl_ratio",
                    "delta_psnr",
                )
            }
            for m in result.models
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
