"""Train one variant of the diffusion family's continuous tokenizer and judge it under repeated re-encoding.

    .venv/bin/python benchmarks/diffusion_tokenizer_probe.py --world push --config '{"cycle_weight": 1.0}' \
        [--steps 1000] [--out benchmarks/results/diffusion_tokenizer_probe_<name>.json]

The diffusion world model feeds every generated frame back through its tokenizer (``SamplerConfig.reencode``),
so a frame is decoded and encoded once per predicted frame. ``--config`` overrides fields of
:func:`gedanken.tokenizers.continuous.default` (``cycle_weight``, ``cycle_steps``, ``halo_weight``, ...). The
tokenizer trains on ``data/<world>`` (1000 steps x 32 frames, lr 2e-3 with a cosine decay, as the default
recipe), is calibrated, and every 8th frame of the held-out episodes (the last 5 %) is judged after 1, 4, 8
and 16 round trips: identity accuracy, objects kept, centroid error, PSNR and the median ratio of each visible
object's area to its true area (above 1: objects grow on every pass).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="push", help="trains on data/<world>")
    ap.add_argument("--config", default="{}", help="JSON overrides of the default tokenizer config")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from gedanken.audit.fidelity import round_trip_fidelity
    from gedanken.data.batch import Batch
    from gedanken.models.diffusion.data import load_data, split_episodes
    from gedanken.tokenizers.continuous import VideoAutoencoder, default

    try:
        overrides = json.loads(args.config)
        cfg = dataclasses.replace(default(), **overrides)
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        ap.error(f"--config {args.config!r}: {err}")
    torch.manual_seed(0)
    tok = VideoAutoencoder(cfg)
    data = load_data(f"data/{args.world}")
    train, held = split_episodes(len(data.frames), 0.05)
    opt = torch.optim.AdamW(tok.parameters(), lr=2e-3, weight_decay=0.0)
    t0 = time.time()
    for step in range(args.steps):
        lr = 2e-3 * min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        rng = np.random.default_rng([0, step])
        frames = torch.stack(
            [data.frames[e][rng.integers(len(data.frames[e]))] for e in rng.choice(train, 32)]
        )
        z = torch.zeros(32, 1)
        loss, _ = tok.loss(
            Batch(frames=frames[:, None], actions=z[..., None], rewards=z, terminated=z.bool())
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.time() - t0
    rng = np.random.default_rng(0)
    tok.calibrate(
        torch.stack([data.frames[i][rng.integers(len(data.frames[i]))] for i in rng.choice(train, 256)])[None]
    )
    tok.eval()
    held_frames = torch.cat([data.frames[i][::8] for i in held])
    result: dict = {
        "benchmark": "diffusion_tokenizer_probe",
        "command": "python benchmarks/diffusion_tokenizer_probe.py "
        + " ".join(
            f"--{k} '{v}'" if k == "config" else f"--{k} {v}" for k, v in vars(args).items() if v != ""
        ),
        "config": overrides,
        "steps": args.steps,
        "seconds": round(seconds, 1),
        "frames": len(held_frames),
    }

    def round_trip(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return tok.decode(tok.encode(torch.from_numpy(x)[None]), *x.shape[1:3])[0].numpy()

    trips = round_trip_fidelity(held_frames.numpy(), round_trip, data.palette, (1, 4, 8, 16))
    for n, fid in trips.items():
        result[f"rt{n}"] = {k: round(float(v), 4) for k, v in fid.items()}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
