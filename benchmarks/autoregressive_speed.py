"""Interactive speed of the autoregressive world model: frames/s at 64x64, batch 1, per MaskGIT step count.

    .venv/bin/python benchmarks/autoregressive_speed.py --threads 2 [--model autoregressive_push_discrete]

Plays ``frames`` frames through :class:`gedanken.models.player.Player` (the cached one-frame ``step``: MaskGIT
passes over the 64 tokens of the new frame against cached keys/values, one commit pass, one decode) and
reports frames/s after warm-up plus the mean cost of frames 12-20 vs the last 8 (the sliding cache keeps it
flat). Each step count runs the checkpoint's own sampler otherwise (its context projection, ``keep_area``, and
action guidance included; before session 18 the benchmark reset them to the defaults). Speed does not depend on
the weights, so without a trained checkpoint it uses the default preset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def _model(spec: str):  # noqa: ANN202
    from gedanken.models import CHECKPOINT_ROOT, load_checkpoint
    from gedanken.models.autoregressive import AutoregressiveWorldModel, default

    path = Path(spec) if Path(spec).exists() else CHECKPOINT_ROOT / spec
    if spec and path.is_dir():
        return load_checkpoint(path), str(path)
    torch.manual_seed(0)
    return AutoregressiveWorldModel(default(action_classes=5)).eval(), "default preset (random weights)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="autoregressive_push_discrete")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--out", default="benchmarks/results/autoregressive_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from gedanken.models.player import Player

    model, source = _model(args.model)
    rng = np.random.default_rng(0)
    context = np.zeros((4, 64, 64, 3), dtype=np.uint8)
    context[:, 20:28, 30:38] = (230, 60, 60)
    rows = []
    for steps in args.steps:
        # the checkpoint's own sampler (its projection, guidance, temperature) at this many MaskGIT passes
        model.set_sampler(replace(model.cfg.sampler, steps=steps))
        player = Player(model, context)
        per = []
        for _ in range(args.frames):
            t = time.perf_counter()
            player.step(
                int(rng.integers(5)) if model.cfg.action_classes else rng.uniform(-1, 1, model.cfg.action_dim)
            )
            per.append(time.perf_counter() - t)
        warm = per[10:]
        rows.append(
            {
                "maskgit_steps": steps,
                "fps": round(len(warm) / sum(warm), 1),
                "ms_frames_12_20": round(1e3 * statistics.mean(per[12:20]), 2),
                "ms_last_8": round(1e3 * statistics.mean(per[-8:]), 2),
            }
        )
        print(rows[-1])
    out = {
        "command": f".venv/bin/python benchmarks/autoregressive_speed.py --threads {args.threads} --model {args.model}",
        "model": source,
        "threads": args.threads,
        "frames": args.frames,
        "resolution": "64x64",
        "batch": 1,
        "results": rows,
        "bar": ">= 30 frames/s at 64x64 on 2 cores",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg": os.getloadavg(),
            "torch": torch.__version__,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
