"""Interactive speed of the diffusion world model: frames/s at 64x64, batch 1, and flat per-frame cost.

    .venv/bin/python benchmarks/diffusion_speed.py --threads 2 [--model diffusion_bounce] [--out benchmarks/results/diffusion_speed.json]

For each sampler step count it plays ``frames`` frames through :class:`gedanken.models.player.Player`
(the cached one-frame ``step``) ``repeats`` times and reports frames/s after warm-up, plus the cost of frame
16 against frame 256 (the "frame 256 costs <= 1.2x frame 16" bar: the sliding KV cache keeps it flat).
That cost is measured paired and interleaved: one context that has seen 15 frames and one that has seen
255 (``step`` returns a new context and leaves the old one as it was), then ``pairs`` times a step from
each, alternating, and the ratio of the median times. Timing the two frames minutes apart in one rollout
instead compared two states of a shared VM (ratios 0.67-1.71 in session 9).
Speed does not depend on the weights, so without a trained checkpoint it uses the default preset's shapes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine


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


@torch.no_grad()
def _paired_cost(model, ctx_frames: np.ndarray, a_dim: int, pairs: int) -> tuple[float, float]:
    """Median seconds of one step from a context at frame 16 and from one at frame 256, interleaved."""
    act = torch.zeros(1, a_dim)
    ctx = model.observe(torch.as_tensor(ctx_frames)[None], torch.zeros(1, len(ctx_frames) - 1, a_dim))
    at: dict[int, object] = {}
    while ctx.t < 255:  # the next step makes frame ctx.t + 1
        if ctx.t == 15:
            at[16] = ctx
        ctx, _ = model.step(ctx, act)
    at[256] = ctx
    times: dict[int, list[float]] = {16: [], 256: []}
    for i in range(2 * pairs):
        which = 16 if i % 2 == 0 else 256
        t0 = time.perf_counter()
        model.step(at[which], act)
        times[which].append(time.perf_counter() - t0)
    return statistics.median(times[16]), statistics.median(times[256])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="diffusion_push")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=265)
    ap.add_argument("--repeats", type=int, default=3, help="Independent rollouts per step count.")
    ap.add_argument("--pairs", type=int, default=200, help="Interleaved frame-16 / frame-256 step pairs.")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--out", default="benchmarks/results/diffusion_speed.json")
    args = ap.parse_args()
    if args.repeats < 1 or args.frames < 30 or args.pairs < 1:
        ap.error("--repeats and --pairs must be >= 1 and --frames >= 30")
    torch.set_num_threads(args.threads)
    from gedanken.models.player import Player

    model, source = _model(args.model)
    a_dim = model.cfg.action_dim
    rng = np.random.default_rng(0)
    ctx_frames = np.zeros((4, model.cfg.height, model.cfg.width, 3), np.uint8)
    rows = []
    for steps in args.steps:
        model.set_sampler(dataclasses.replace(model.sampler.cfg, steps=steps))
        wall: list[float] = []
        for _ in range(args.repeats):
            player = Player(model, ctx_frames, np.zeros((4, a_dim), np.float32))
            for _ in range(args.frames):
                action = rng.uniform(-1, 1, a_dim).astype(np.float32)
                w0 = time.perf_counter()
                player.step(action)
                wall.append(time.perf_counter() - w0)
        warm = wall[10:]
        t16, t256 = _paired_cost(model, ctx_frames, a_dim, args.pairs)
        row = {
            "sampler_steps": steps,
            "repeats": args.repeats,
            "fps": len(warm) / sum(warm),
            "ms_per_frame_median": 1000 * statistics.median(warm),
            "pairs": args.pairs,
            "ms_frame_16": 1000 * t16,
            "ms_frame_256": 1000 * t256,
            "ratio_256_vs_16": t256 / t16,
        }
        rows.append(row)
        print(json.dumps(row))
    result = {
        "benchmark": "diffusion_speed",
        "model": source,
        "resolution": [model.cfg.height, model.cfg.width],
        "batch": 1,
        "threads": args.threads,
        "frames": args.frames,
        "rows": rows,
        **machine(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
