"""How well the judge places an object at the frame's edge, measured against the simulator's exact states.

    .venv/bin/python benchmarks/judge_edges.py --world bounce --episodes 100 [--seed 1000] \
        --out benchmarks/results/judge_edges_bounce.json

The audit's solidity rule reads each object's distance to the walls from the judged frames. Where a blob touches
the frame's edge its centroid cannot be used as it is (a blob cut by the edge has its centroid too far inside), so
the judge re-estimates the centre along that axis. Two estimators are compared for circles:

* ``far_side`` (the audit's rule until session 31): the bounding box's far side minus the known radius. Exact on
  a clean raster up to the pixel grid, but one row the decoder draws too faint moves it a whole unit.
* ``centroid`` (the audit's rule since session 31): the visible centroid, turned into a centre by inverting where
  the centroid of a disc cut by a straight edge lies.

Three measurements, none of which involves a model:

1. ``truth``: on the true frames of the audit's held-out ``test`` episodes, the error of the judged wall gap
   (rim to nearest wall, world units) against the exact one from the simulator's states, over the circles within
   2 units of a wall.
2. ``faint_far_row``: the same frames with the far row of each floor-touching circle painted background (what a
   decoder drawing that row too faint shows the judge): how far the judged wall gap moves.
3. ``cut``: one ball of each radius rendered 0 to 1.9 diameters past the floor, the error of the judged gap (over
   all depths, and within 2 units of the wall, where the 1-unit tolerance decides).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np


def _wall_gap(xy: np.ndarray, radius: np.ndarray) -> np.ndarray:
    from gedanken.worlds.state import WORLD_SIZE

    x, y, r = xy[..., 0], xy[..., 1], radius[:, None, :]
    return np.minimum(np.minimum(x - r, WORLD_SIZE - x - r), np.minimum(y - r, WORLD_SIZE - y - r))


def _stats(err: np.ndarray) -> dict:
    return {
        "n": int(err.size),
        "mean": round(float(err.mean()), 4),
        "rms": round(float(np.sqrt((err**2).mean())), 4),
        "max_abs": round(float(np.abs(err).max()), 4),
    }


def _estimators(phys):  # noqa: ANN001, ANN202 - PhysicsTruth in, name -> PhysicsTruth out
    """The audit's rule (``centroid``) and the far-side rule, as the PhysicsTruth that selects each."""
    far = dataclasses.replace(phys, circle=np.zeros_like(phys.circle))
    return {"far_side": far, "centroid": phys}


def truth_and_faint_row(world: str, episodes: int, seed: int, faint_max: int) -> tuple[dict, dict]:
    from _audit_episodes import held_out

    from gedanken.audit.judge import judge_frames
    from gedanken.audit.physics import centres
    from gedanken.worlds.state import X, Y

    cfg, truth, tj = held_out(world, episodes, 64, seed)
    j, phys = tj.judged, tj.physics
    exact = _wall_gap(truth.states[..., [X, Y]].astype(np.float64), phys.radius)
    ok = j.visible & phys.solid[:, None, :] & phys.circle[:, None, :]
    near = ok & (exact < 2)
    est = {name: _wall_gap(centres(j, p), p.radius) for name, p in _estimators(phys).items()}
    acc = {name: _stats((g - exact)[near]) for name, g in est.items()}

    frames = np.concatenate([truth.context_frames[:, -1:], truth.frames], 1)
    bg = np.asarray(truth.palette[0], np.uint8)
    floor = ok & (j.bbox[..., 3] >= j.height) & (j.bbox[..., 2] > 0)
    shifts: dict[str, list[float]] = {name: [] for name in est}
    for b, e, k in np.argwhere(floor)[:faint_max]:
        f = frames[b, e].copy()
        top = int(j.bbox[b, e, k, 2])
        f[top][(f[top] == np.asarray(truth.palette[k + 1], np.uint8)).all(-1)] = bg
        jj = judge_frames(f[None, None], truth.palette, cfg.judge)
        for name, p in _estimators(phys).items():
            one = dataclasses.replace(p, radius=p.radius[b : b + 1], circle=p.circle[b : b + 1])
            shifts[name].append(float(_wall_gap(centres(jj, one), one.radius)[0, 0, k] - est[name][b, e, k]))
    faint = {
        name: {
            "n": len(v),
            "mean_shift": round(float(np.mean(v)), 4),
            "worst_shift": round(float(np.min(v)), 4),
        }
        for name, v in shifts.items()
        if v
    }
    return acc, faint


def cut_sweep(radii: tuple[float, ...]) -> dict:
    """Judged gap error for one ball rendered ``p`` units past the floor, ``p`` from 0 to 1.9 diameters."""
    from gedanken.audit.judge import judge_frames
    from gedanken.audit.physics import PhysicsTruth, centres
    from gedanken.worlds.palette import palette_for
    from gedanken.worlds.render import render_state
    from gedanken.worlds.state import PRESENT, H, W, X, Y, empty_state

    palette = np.asarray(palette_for(1), np.uint8)
    out = {}
    for r in radii:
        depths = np.arange(0.0, 1.9 * 2 * r, 0.1)
        frames = []
        for p in depths:
            s = empty_state(1)
            s[0, PRESENT], s[0, X], s[0, Y], s[0, W], s[0, H] = 1, 31.3, r - p, 2 * r, 2 * r
            frames.append(render_state(s, ("circle",), palette))
        j = judge_frames(np.stack(frames)[None], tuple(map(tuple, palette.tolist())))
        base = PhysicsTruth(
            radius=np.full((1, 1), r),
            solid=np.ones((1, 1), bool),
            mass=np.ones((1, 1)),
            contacts=None,
            gravity=np.full(1, np.nan),
            fps=15.0,
            circle=np.ones((1, 1), bool),
        )
        seen = j.visible[0, :, 0]
        row = {}
        for name, p in _estimators(base).items():
            err = _wall_gap(centres(j, p), p.radius)[0, :, 0] + depths  # exact gap is -depth
            row[name] = _stats(err[seen])
            row[f"{name}_within_2_units"] = _stats(err[seen & (depths <= 2.0)])
        row["judged_frames"] = int(seen.sum())
        out[str(r)] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="bounce")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument(
        "--seed", type=int, default=0, help="the audit's --seed: another set of held-out episodes"
    )
    ap.add_argument("--faint-max", type=int, default=300, help="floor-touching circles to repaint")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.episodes < 1:
        ap.error("--episodes must be >= 1")
    t0 = time.perf_counter()
    acc, faint = truth_and_faint_row(args.world, args.episodes, args.seed, args.faint_max)
    result = {
        "benchmark": "judge_edges",
        "world": args.world,
        "episodes": args.episodes,
        "seed": args.seed,
        "truth_wall_gap_error": acc,
        "faint_far_row": faint,
        "cut": cut_sweep((2.5, 4.0, 5.5)),
        "seconds": round(time.perf_counter() - t0, 1),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name, s in acc.items():
        f = faint.get(name, {})
        print(
            f"{name:9s} true frames: gap error rms {s['rms']:.3f} max {s['max_abs']:.3f} (n={s['n']}); "
            f"faint far row moves it {f.get('mean_shift', float('nan')):+.3f} (worst {f.get('worst_shift', float('nan')):+.3f})"
        )
    for r, row in result["cut"].items():
        print(
            f"cut ball r={r}: "
            + "; ".join(
                f"{n} rms {row[n]['rms']:.3f} max {row[n]['max_abs']:.3f} "
                f"(within 2 units: max {row[n + '_within_2_units']['max_abs']:.3f})"
                for n in ("far_side", "centroid")
            )
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
