"""Where a model breaks solidity: which episodes and frames, object against object or against a wall, how deep.

    .venv/bin/python benchmarks/solidity_breaches.py --model diffusion_push --world push --episodes 100 \
        --out benchmarks/results/solidity_breaches_diffusion_push.json

Rolls the model out on held-out ``test`` episodes exactly as the audit does (same episodes, same judge, same
geometry: judged centres, the objects' true radii, ``penetration_tol``) and lists every frame the audit's
``interpenetration`` counts, split into pair overlaps and wall breaches, with the depth past the tolerance in
world units (64 = the frame). The simulator's own frames are listed the same way beside them. For a world with
actions, a wall breach also reports whether the step's action pushed towards that wall (the action's component
along the wall's outward normal), so "the pusher was driven into the wall" can be told from drift.

With ``--round-trip`` nothing is rolled out: every true future frame goes through the model's tokenizer (encode,
then the decoder that draws the frames the model shows) and the reconstructions are judged the same way. That is
what the model draws when its latents are exactly right, so breaches there come from the decoder, not the dynamics
(session 27: balls resting on the floor drawn one row short, which the judge then read as one unit past the wall;
since session 31 a circle at the edge is placed from its centroid, and one faint row moves it about a third of a unit).

With ``--samples N`` the same episodes are also rolled out N times with other sampling seeds (sample 0 is the
audit's own rollout), and the JSON's ``resampled`` counts, per episode and frame, in how many samples it breached:
one set's count is a rare-event count that moves with the sampler's path, and over N samples an episode breached
in every sample (the network's systematic error) stands apart from one breached by chance (session 35).
``--first-sample K`` runs samples K to K + N - 1 instead, to add samples to an earlier run's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gedanken.audit.judge import Judged
    from gedanken.audit.physics import PhysicsTruth

_WALLS = ("left", "right", "bottom", "top")  # order of the outward normals below
_NORMALS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def _breach_list(judged: Judged, phys: PhysicsTruth, tol: float, actions: np.ndarray | None) -> list[dict]:
    """Every breached (episode, frame): the pairs that overlap and the objects past a wall, with depths."""
    from gedanken.audit.physics import breaches, centres, geometry
    from gedanken.worlds.state import WORLD_SIZE

    g = geometry(judged, phys)
    xy = centres(judged, phys)  # (B, E, K, 2)
    r = phys.radius[:, None, :]
    # distance from each object's rim to each wall, in _WALLS order: (B, E, K, 4)
    rims = np.stack(
        [xy[..., 0] - r, WORLD_SIZE - xy[..., 0] - r, xy[..., 1] - r, WORLD_SIZE - xy[..., 1] - r], -1
    )
    pairs, walls = breaches(g, phys.solid, tol)
    out = []
    hit = pairs.any(-1) | walls.any(-1)  # (B, E)
    for b, e in zip(*np.nonzero(hit[:, 1:]), strict=True):
        e = int(e) + 1  # index 0 is the last context frame, which the audit does not count
        row: dict = {"episode": int(b), "frame": e, "pairs": [], "walls": []}
        for p in np.flatnonzero(pairs[b, e]):
            i, j = (int(v) for v in g.pairs[p])
            row["pairs"].append({"slots": [i, j], "depth": round(float(-g.pair_gap[b, e, p] - tol), 3)})
        for k in np.flatnonzero(walls[b, e]):
            w = int(np.argmin(rims[b, e, k]))
            entry = {"slot": int(k), "wall": _WALLS[w], "depth": round(float(-g.wall_gap[b, e, k] - tol), 3)}
            if actions is not None and actions.shape[-1] == 2:
                a = actions[b, e - 1]  # the action of the step that produced frame e
                entry["action"] = [round(float(v), 3) for v in a]
                entry["action_towards_wall"] = round(float(_NORMALS[w] @ a), 3)
            row["walls"].append(entry)
        out.append(row)
    return out


def round_trip(model: object, frames: np.ndarray) -> np.ndarray:
    """``(B, T, H, W, 3)`` uint8 true frames through ``model``'s tokenizer and the decoder that draws its output."""
    import torch

    tok = model.tokenizer  # type: ignore[attr-defined]
    h, w = frames.shape[2:4]
    out = []
    with torch.inference_mode():
        for ep in frames:
            f = torch.from_numpy(ep)
            if hasattr(model, "display"):  # diffusion: continuous latents, maybe a display decoder
                out.append(tok.decode(tok.encode(f[None]), h, w, model.display)[0].numpy())
            else:  # autoregressive: discrete tokens per frame
                out.append(tok.decode(tok.encode(f)).numpy())
    return np.stack(out)


# Sample i rolls out with sampling seed ``--seed + SAMPLE_SEED * i``; sample 0 is the audit's own rollout.
SAMPLE_SEED = 7919


def resample(ap, args, cfg, truth, tj) -> dict:  # noqa: ANN001
    """``--samples N``: the same episodes rolled out N times with other sampling seeds. One set's breach count
    is a rare-event count that moves with the sampler's path; over N samples it tells an episode the network
    breaches in every sample (a systematic error) from one it breached in by chance."""
    from _audit_episodes import load

    from gedanken.audit.evaluate import _judge_output, rollout
    from gedanken.audit.physics import breaches, geometry

    model = load(ap, args.model, args.world)
    counts = np.zeros((truth.n, args.horizon), dtype=np.int64)  # samples breached per (episode, frame)
    per_sample: list[int] = []
    for i in range(args.first_sample, args.first_sample + args.samples):
        out = rollout(model, truth, truth.actions, args.seed + SAMPLE_SEED * i, cfg.batch_size)
        pairs, walls = breaches(
            geometry(_judge_output(out, truth, cfg), tj.physics), tj.physics.solid, cfg.penetration_tol
        )
        hit = (pairs.any(-1) | walls.any(-1))[:, 1:]  # frame 0 is the last context frame
        counts += hit
        per_sample.append(int(hit.sum()))
        print(f"sample {i}: {per_sample[-1]} breached frames", flush=True)
    eps = np.flatnonzero(counts.sum(1))
    return {
        "samples": args.samples,
        "first_sample": args.first_sample,
        "breached_frames_per_sample": per_sample,
        "mean_breached_frames": float(np.mean(per_sample)),
        "breached_samples_per_frame_index": counts.sum(0).tolist(),
        "episodes": {str(int(e)): counts[e].tolist() for e in eps},
    }


def main() -> None:
    from _audit_episodes import held_out, load, replay, replay_parser

    ap = replay_parser(__doc__, 100)
    ap.add_argument(
        "--round-trip", action="store_true", help="judge the tokenizer's reconstructions of the true frames"
    )
    ap.add_argument(
        "--samples",
        type=int,
        default=1,
        help="roll the episodes out this many times (sampling seeds --seed + 7919 i) and count breaches per "
        "(episode, frame) over them",
    )
    ap.add_argument(
        "--first-sample",
        type=int,
        default=0,
        help="with --samples: start at this sample (to add samples to an earlier run's)",
    )
    args = ap.parse_args()
    if args.samples < 1 or (args.samples > 1 and args.round_trip):
        ap.error("--samples must be >= 1, and --round-trip rolls nothing out to sample again")
    if args.first_sample < 0 or (args.first_sample and args.round_trip):
        ap.error("--first-sample must be >= 0, and --round-trip rolls nothing out to sample again")
    t0 = time.perf_counter()
    if args.round_trip:
        import torch

        from gedanken.audit.judge import judge_frames

        torch.set_num_threads(args.threads)
        cfg, truth, tj = held_out(args.world, args.episodes, args.horizon, args.seed)
        model = load(ap, args.model, args.world)
        if not hasattr(model, "tokenizer"):
            ap.error(f"{args.model} has no tokenizer to round-trip frames through")
        rec = round_trip(model, truth.frames)
        pj = judge_frames(np.concatenate([truth.context_frames[:, -1:], rec], 1), truth.palette, cfg.judge)
    else:
        cfg, truth, tj, pj = replay(ap, args)
    phys, tol = tj.physics, cfg.penetration_tol
    actions = None if truth.actions is None else np.asarray(truth.actions, dtype=np.float64)
    pred = _breach_list(pj, phys, tol, actions)
    sim = _breach_list(tj.judged, phys, tol, actions)
    judged_frames = truth.n * args.horizon

    def summary(rows: list[dict]) -> dict:
        return {
            "breached_frames": len(rows),
            "rate": len(rows) / judged_frames,
            "episodes": sorted({r["episode"] for r in rows}),
            "frames_with_pair_overlap": sum(bool(r["pairs"]) for r in rows),
            "frames_with_wall_breach": sum(bool(r["walls"]) for r in rows),
            "max_depth": max([x["depth"] for r in rows for x in r["pairs"] + r["walls"]], default=0.0),
        }

    result = {
        "benchmark": "solidity_breaches",
        "model": args.model,
        "what": "tokenizer round trip of the true frames" if args.round_trip else "rollout",
        "world": args.world,
        "episodes": args.episodes,
        "seed": args.seed,
        "horizon": args.horizon,
        "penetration_tol": tol,
        "model_summary": summary(pred),
        "simulator_summary": summary(sim),
        "model_breaches": pred,
        "simulator_breaches": sim,
        "resampled": resample(ap, args, cfg, truth, tj)
        if (args.samples > 1 or args.first_sample) and not args.round_trip
        else None,
        "seconds": round(time.perf_counter() - t0, 1),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in ("model", "simulator"):
        s = result[f"{name}_summary"]
        print(
            f"{name}: {s['breached_frames']} of {judged_frames} frames breached (rate {s['rate']:.4f}) in "
            f"episodes {s['episodes']}; pair overlaps in {s['frames_with_pair_overlap']} frames, wall breaches "
            f"in {s['frames_with_wall_breach']}; deepest {s['max_depth']:.2f} units past the tolerance"
        )
    if result["resampled"]:
        r = result["resampled"]
        print(
            f"over {r['samples']} samples: breached frames {r['breached_frames_per_sample']}, per frame index "
            f"{r['breached_samples_per_frame_index'][:16]}..."
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
