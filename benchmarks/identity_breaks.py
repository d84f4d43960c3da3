"""Where a model loses identities: which objects, which kind of break, and whether they touch a wall or another object.

    .venv/bin/python benchmarks/identity_breaks.py --model diffusion_push --world push --episodes 48 \
        --out benchmarks/results/identity_breaks_diffusion_push.json

Rolls the model out on held-out ``test`` episodes exactly as the audit does (same episodes, same judge, same
identity verdicts) and splits the broken object-frames (vanish, duplicate, jump, appear) by slot, then by the
simulator's contact bits in the true frame: touching a wall (static body) or another object. Each share comes
with its base rate over all object-frames of that slot, so "at a wall" means something only when it is above
the base rate. Also lists each broken episode's first break (frame, slot, kind, contact).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from _audit_episodes import replay, replay_parser

    from gedanken.audit.objects import identity_check, object_view

    ap = replay_parser(__doc__, 48)
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg, truth, tj, pj = replay(ap, args)
    ic = identity_check(
        pj, tj.judged, object_view(pj, truth.fps), object_view(tj.judged, truth.fps), cfg, tj.full_area
    )

    contacts = truth.contacts[:, 1:]  # (B, Hz, K), the frames judged after the context
    wall, other = (contacts & 1) > 0, (contacts >> 1) > 0
    kinds = {"vanish": ic.vanish, "duplicate": ic.duplicate, "jump": ic.jump, "appear": ic.appear}
    broken = np.zeros_like(wall)
    for arr in kinds.values():
        broken |= arr[:, 1:]
    slots = []
    for k, (shape, kind) in enumerate(zip(truth.shapes, truth.kinds, strict=True)):
        b = broken[..., k]
        slots.append(
            {
                "slot": k,
                "kind": kind,
                "shape": shape,
                "broken_object_frames": int(b.sum()),
                **{f"{name}_frames": int(arr[:, 1:, k].sum()) for name, arr in kinds.items()},
                "share_at_wall": float((b & wall[..., k]).sum() / max(b.sum(), 1)),
                "base_rate_at_wall": float(wall[..., k].mean()),
                "share_touching_object": float((b & other[..., k]).sum() / max(b.sum(), 1)),
                "base_rate_touching_object": float(other[..., k].mean()),
            }
        )
    onsets = []
    for e in range(truth.n):
        frames = np.where(broken[e].any(-1))[0]
        if len(frames):
            f = int(frames[0])
            k = int(np.argmax(broken[e, f]))
            onsets.append(
                {
                    "episode": e,
                    "frame": f + 1,
                    "slot": k,
                    "kinds": [n for n, a in kinds.items() if a[e, f + 1, k]],
                    "at_wall": bool(wall[e, f, k]),
                    "touching_object": bool(other[e, f, k]),
                }
            )
    result = {
        "benchmark": "identity_breaks",
        "model": args.model,
        "world": args.world,
        "episodes": args.episodes,
        "seed": args.seed,
        "horizon": args.horizon,
        "episodes_broken": len(onsets),
        "first_breaks_at_wall": sum(o["at_wall"] for o in onsets),
        "slots": slots,
        "first_breaks": onsets,
        "seconds": round(time.perf_counter() - t0, 1),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for s in slots:
        if s["broken_object_frames"]:
            print(
                f"slot {s['slot']} ({s['kind']}): {s['broken_object_frames']} broken object-frames; at a wall "
                f"{s['share_at_wall']:.2f} (base rate {s['base_rate_at_wall']:.2f}), touching an object "
                f"{s['share_touching_object']:.2f} (base rate {s['base_rate_touching_object']:.2f})"
            )
    print(
        f"{len(onsets)} of {truth.n} episodes broken; {result['first_breaks_at_wall']} first breaks at a wall"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
