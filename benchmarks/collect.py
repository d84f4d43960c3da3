"""End-to-end collection speed: record Push episodes in worker processes and commit them to a dataset.

Target (issue): 200 Push episodes (96 steps, 64x64) in <= 60 s on 2 cores.

    .venv/bin/python benchmarks/collect.py            # writes benchmarks/results/collect.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from gedanken.data import EpisodeDataset
from gedanken.data.collect import collect


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", default="push")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "collect.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / args.world
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        result = collect(args.world, path, args.episodes, steps=args.steps, workers=args.workers, size=64)
        wall = time.perf_counter() - t0
        info = EpisodeDataset.open(path).info()
    report = {
        "benchmark": "collect",
        "command": f"python benchmarks/collect.py --world {args.world} --episodes {args.episodes} "
        f"--steps {args.steps} --workers {args.workers}",
        "world": args.world,
        "episodes": result.episodes_added,
        "steps": result.steps_added,
        "workers": args.workers,
        "seconds": round(wall, 2),
        "episodes_per_s": round(result.episodes_added / wall, 2),
        "steps_per_s": round(result.steps_added / wall, 1),
        "dataset_bytes": info.size_bytes,
        "target": "200 Push episodes in <= 60 s on 2 cores",
        "meets_target": bool(wall <= 60.0 * args.episodes / 200),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
