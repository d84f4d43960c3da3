"""Recording speed of the built-in worlds (physics + rendering + exact state + captions).

Target (issue): 200 Push episodes of 96 steps in <= 60 s on 2 processes (>= ~330 frames/s per process).

    .venv/bin/python benchmarks/worlds_record.py            # writes benchmarks/results/worlds_record.json
"""

from __future__ import annotations

import json
import os
import platform
import time
from multiprocessing import get_context
from pathlib import Path

from gedanken.worlds import WORLDS
from gedanken.worlds.record import record_episode

STEPS = 96


def _record_many(args: tuple[str, list[int]]) -> int:
    world, seeds = args
    return sum(len(record_episode(world, "train", s, STEPS)) for s in seeds)


def single_process(world: str, episodes: int) -> dict[str, float]:
    t0 = time.perf_counter()
    frames = _record_many((world, list(range(episodes))))
    dt = time.perf_counter() - t0
    return {
        "episodes": episodes,
        "frames": frames,
        "seconds": round(dt, 3),
        "frames_per_s": round(frames / dt, 1),
    }


def two_processes(world: str, episodes: int) -> dict[str, float]:
    seeds = list(range(episodes))
    chunks = [(world, seeds[0::2]), (world, seeds[1::2])]
    with get_context("spawn").Pool(2) as pool:
        pool.map(_record_many, [(world, [0])] * 2)  # warm the imports, not timed
        t0 = time.perf_counter()
        frames = sum(pool.map(_record_many, chunks))
        dt = time.perf_counter() - t0
    return {
        "episodes": episodes,
        "frames": frames,
        "seconds": round(dt, 3),
        "frames_per_s_total": round(frames / dt, 1),
        "frames_per_s_per_process": round(frames / dt / 2, 1),
    }


def main() -> None:
    out = {
        "command": ".venv/bin/python benchmarks/worlds_record.py",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "note": "policy=mixed, split=train, 64x64, fps 15, 8 substeps; Push episodes may end early",
        "push_200x96_two_processes": two_processes("push", 200),
        "single_process_40_episodes": {w: single_process(w, 40) for w in WORLDS},
    }
    path = Path(__file__).parent / "results" / "worlds_record.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
