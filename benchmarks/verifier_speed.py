"""What the solidity verifier costs an interactive user: frames/s with and without it, on real scenes.

    .venv/bin/python benchmarks/verifier_speed.py --model diffusion_bounce --world bounce --verify 8 \
        --episodes 32 --threads 2 --out benchmarks/results/verifier_speed_diffusion_bounce.json

The verifier (``--verify N``, :mod:`gedanken.models.verifier`) samples a frame again only where the first
sample breaks solidity, so its cost depends on what the model draws: each rollout here starts from a held-out
``test`` episode's 4 context frames and plays that episode's recorded actions through
:class:`gedanken.models.player.Player` (batch 1, 64x64), once with the model's own sampler and once with the
verifier. Each row gives frames/s after warm-up, the median, 99th percentile and slowest frame, and the share of
frames the verifier sampled again (counted from its calls: a rejected frame is read twice).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine


def _play(model, frames: np.ndarray, actions: np.ndarray) -> list[float]:  # noqa: ANN001
    """Seconds of each step over the episodes' futures (``frames`` (E, 4 + T, ...), ``actions`` (E, 4 + T, A))."""
    from gedanken.models.player import Player

    wall = []
    for e in range(len(frames)):
        player = Player(model, frames[e, :4], actions[e, :4])
        for action in actions[e, 3:]:
            t0 = time.perf_counter()
            player.step(action)
            wall.append(time.perf_counter() - t0)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="diffusion_bounce", help="checkpoint directory or shipped name")
    ap.add_argument("--world", default="bounce")
    ap.add_argument("--verify", type=int, default=8, help="candidates per frame with the verifier")
    ap.add_argument("--episodes", type=int, default=8, help="held-out test episodes played per setting")
    ap.add_argument("--frames", type=int, default=64, help="frames played per episode")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="", help="JSON results")
    args = ap.parse_args()
    if args.verify < 2 or args.episodes < 1 or args.frames < 16:
        ap.error("need --verify >= 2, --episodes >= 1 and --frames >= 16")
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from _audit_episodes import held_out, load

    import gedanken.models.autoregressive.verified as ar_verified
    import gedanken.models.diffusion.model as diffusion_model
    from gedanken.models.verifier import use_verifier

    model = load(ap, args.model, args.world)
    _, truth, _ = held_out(args.world, args.episodes, args.frames)
    frames = np.concatenate([truth.context_frames, truth.frames], 1)
    # actions[:, t] leads from frame t to t + 1 (the last context action is the first future one)
    actions = np.concatenate([truth.context_actions[:, :-1], truth.actions], 1).astype(np.float32)
    reads = [0]
    for module in (diffusion_model, ar_verified):
        original = module.sampler_penalty

        def counted(*a, original=original, **kw):  # noqa: ANN002, ANN003, ANN202
            reads[0] += 1
            return original(*a, **kw)

        module.sampler_penalty = counted
    rows = []
    for verify in (0, args.verify):
        if verify:
            use_verifier(model, verify, args.world)
        reads[0] = 0
        wall = _play(model, frames, actions)
        warm = [w for i, w in enumerate(wall) if i % args.frames >= 4]  # each episode's first frames warm up
        row = {
            "verify": verify,
            "frames": len(wall),
            "fps": len(warm) / sum(warm),
            "ms_median": 1000 * statistics.median(warm),
            "ms_p99": 1000 * float(np.percentile(warm, 99)),
            "ms_max": 1000 * max(warm),
            "resampled_share": (reads[0] - len(wall)) / len(wall) if verify else 0.0,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "benchmark": "verifier_speed",
        "model": args.model,
        "world": args.world,
        "episodes": args.episodes,
        "threads": args.threads,
        "rows": rows,
        **machine(),
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
