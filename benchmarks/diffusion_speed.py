"""Interactive speed of the diffusion world model: frames/s at 64x64, batch 1, and flat per-frame cost.

    .venv/bin/python benchmarks/diffusion_speed.py --threads 2 [--model diffusion_bounce] [--out benchmarks/results/diffusion_speed.json]

For each sampler step count it plays ``frames`` frames through :class:`gedanken.models.player.Player`
(the cached one-frame ``step``) and reports frames/s after warm-up, plus the mean cost of frames 12-20 vs
252-260 (the "frame 256 costs <= 1.2x frame 16" bar: the sliding KV cache keeps it flat).
Speed does not depend on the weights, so without a trained checkpoint it uses the default preset's shapes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def _model(spec: str):
    from gedanken.models import CHECKPOINT_ROOT, load_checkpoint
    from gedanken.models.diffusion import DiffusionWorldModel, default_config
    from gedanken.models.heads import HeadsConfig

    path = Path(spec) if Path(spec).exists() else CHECKPOINT_ROOT / spec
    if spec and path.is_dir():
        return load_checkpoint(path), str(path)
    torch.manual_seed(0)
    cfg = default_config(heads=HeadsConfig(slots=6), action_dim=2)
    return DiffusionWorldModel(cfg).eval(), "default preset (random weights)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="diffusion_push")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=260)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--out", default="benchmarks/results/diffusion_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from gedanken.models.player import Player

    model, source = _model(args.model)
    a_dim = model.cfg.action_dim
    rng = np.random.default_rng(0)
    ctx_frames = np.zeros((4, model.cfg.height, model.cfg.width, 3), np.uint8)
    rows = []
    for steps in args.steps:
        model.set_sampler(dataclasses.replace(model.sampler.cfg, steps=steps))
        player = Player(model, ctx_frames, np.zeros((4, a_dim), np.float32))
        for _ in range(args.frames):
            player.step(rng.uniform(-1, 1, a_dim).astype(np.float32))
        per = player.stats.per_frame
        warm = per[10:]
        early = statistics.mean(per[12:20])
        late = statistics.mean(per[252:260]) if len(per) >= 260 else float("nan")
        rows.append(
            {
                "sampler_steps": steps,
                "fps": len(warm) / sum(warm),
                "ms_per_frame_median": 1000 * statistics.median(warm),
                "ms_frame_16": 1000 * early,
                "ms_frame_256": 1000 * late,
                "ratio_256_vs_16": late / early,
            }
        )
        print(json.dumps(rows[-1]))
    result = {
        "benchmark": "diffusion_speed",
        "model": source,
        "resolution": [model.cfg.height, model.cfg.width],
        "batch": 1,
        "threads": args.threads,
        "frames": args.frames,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpus_visible": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
        "rows": rows,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
