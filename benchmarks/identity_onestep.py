"""Does a model lose identities by itself, or only once its own frames drift? One-step predictions from the
true past against the free rollout, on the audit's held-out episodes.

    .venv/bin/python benchmarks/identity_onestep.py --model diffusion_push --world push --episodes 48 \
        --out benchmarks/results/identity_onestep_diffusion_push.json

For every horizon step ``h`` the model observes the true frames ``h - ctx .. h - 1`` (with their actions) and
predicts frame ``h`` under the true action: a one-step prediction that never sees its own output. The free
rollout is the audit's own (same episodes, seed, judge and identity verdicts). Identity persistence of the
one-step frames is what the network gets right from a clean past; the gap to the rollout is what drift costs.
Also lists, per episode, the one-step frames that break and the rollout's first break, and compares the physics
of both (``physics``): the mean vertical acceleration of objects in free flight (no simulator contact at the
three frames it spans, the predicted object at least 4 world units from every wall; gravity pulls it to
``-g``), the mean speed ``|dy|`` per frame, and the rebound off walls and floor (frames where the true vertical
motion reverses at a static contact: the motion away from the wall one frame later, and how often its sign
is right). One-step predictions are measured against the true past, the rollout against its own.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

OPEN = 4.0  # world units an object must keep from every wall to count as in free flight


def vertical_physics(
    yp: np.ndarray,
    yt: np.ndarray,
    vis: np.ndarray,
    contacts: np.ndarray,
    solid: np.ndarray,
    xy_pred: np.ndarray,
    radius: np.ndarray,
    fps: float,
    one_step: bool,
) -> dict:
    """Free-flight acceleration, speed and rebound of predicted heights ``yp`` against true ``yt`` (B, E, K),
    world units with y up; ``vis`` (B, E, K) both visible; ``contacts`` the simulator's bitmask (bit 0: static);
    ``xy_pred`` (B, E, K, 2); with ``one_step`` the prediction at ``e`` continues the true ``e - 1``, ``e - 2``."""
    from gedanken.worlds.state import WORLD_SIZE

    past1 = yt[:, 1:-1] if one_step else yp[:, 1:-1]
    past2 = yt[:, :-2] if one_step else yp[:, :-2]
    r = radius[:, None, :] + OPEN
    inside = (xy_pred > r[..., None]).all(-1) & (xy_pred < WORLD_SIZE - r[..., None]).all(-1)  # (B, E, K)
    free = (contacts == 0) & vis & solid[:, None, :] & inside  # (B, E, K)
    three = free[:, 2:] & free[:, 1:-1] & free[:, :-2]
    acc_t = (yt[:, 2:] - 2 * yt[:, 1:-1] + yt[:, :-2])[three] * fps**2
    acc_p = (yp[:, 2:] - 2 * past1 + past2)[three] * fps**2
    dt = np.diff(yt, axis=1)  # (B, E-1, K)
    dp = yp[:, 1:] - (yt[:, :-1] if one_step else yp[:, :-1])
    ok = vis[:, 1:] & vis[:, :-1] & solid[:, None, :]
    static = (contacts[:, 1:-1] & 1) > 0  # touching a wall or the floor at the frame before the rebound
    rev = (dt[:, 1:] * dt[:, :-1] < 0) & (np.abs(dt[:, :-1]) > 0.5) & static & ok[:, 1:] & ok[:, :-1]
    away = -np.sign(dt[:, :-1][rev])  # direction away from the wall
    return {
        "free_flight_frames": int(three.sum()),
        "free_flight_accel_true": float(acc_t.mean()) if acc_t.size else float("nan"),
        "free_flight_accel_pred": float(acc_p.mean()) if acc_p.size else float("nan"),
        "speed_true": float(np.abs(dt[ok]).mean() * fps) if ok.any() else float("nan"),
        "speed_pred": float(np.abs(dp[ok]).mean() * fps) if ok.any() else float("nan"),
        "rebounds": int(rev.sum()),
        "rebound_true": float((dt[:, 1:][rev] * away).mean() * fps) if rev.any() else float("nan"),
        "rebound_pred": float((dp[:, 1:][rev] * away).mean() * fps) if rev.any() else float("nan"),
        "rebound_sign_right": float((np.sign(dp[:, 1:][rev]) == away).mean()) if rev.any() else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint directory or shipped name")
    ap.add_argument("--world", default="push")
    ap.add_argument("--episodes", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=64)
    ap.add_argument(
        "--seed", type=int, default=0, help="the audit's --seed: another set of held-out episodes"
    )
    ap.add_argument("--context", type=int, default=4, help="true frames each one-step prediction observes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.episodes < 1 or args.horizon < 2 or args.context < 1:
        ap.error("--episodes and --context must be >= 1, --horizon >= 2")

    import torch
    from _audit_episodes import held_out, load

    from gedanken.audit.evaluate import _judge_output
    from gedanken.audit.harness import ModelOutput, rollout
    from gedanken.audit.objects import identity_check, object_view

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfg, truth, tj = held_out(args.world, args.episodes, args.horizon, args.seed)
    model = load(ap, args.model, args.world)
    k = truth.context_frames.shape[1]
    frames = np.concatenate([truth.context_frames, truth.frames], 1)  # (B, k + Hz, H, W, 3)
    into = np.concatenate(
        [truth.context_actions[:, :-1], truth.actions], 1
    )  # into[:, j - 1] leads to frames[:, j]
    preds = []
    for h in range(args.horizon):
        j = k + h
        lo = max(0, j - args.context)
        acts = torch.from_numpy(into[:, lo : j - 1]) if j - 1 > lo else None
        ctx = model.observe(torch.from_numpy(frames[:, lo:j]), acts)
        _, p = model.step(ctx, torch.from_numpy(into[:, j - 1]))
        preds.append(p.frame.cpu().numpy())
    t = object_view(tj.judged, truth.fps)
    rows: dict[str, dict] = {}
    physics = {}
    for name, out in [
        ("one_step", ModelOutput(frames=np.stack(preds, 1), states=None)),
        ("rollout", rollout(model, truth, truth.actions, args.seed, cfg.batch_size)),
    ]:
        pj = _judge_output(out, truth, cfg)
        pv = object_view(pj, truth.fps)
        ic = identity_check(pj, tj.judged, pv, t, cfg, tj.full_area)
        both = pv.vis & t.vis
        physics[name] = vertical_physics(
            pv.xy[..., 1],
            t.xy[..., 1],
            both,
            tj.physics.contacts,
            tj.physics.solid,
            pv.xy,
            tj.physics.radius,
            truth.fps,
            name == "one_step",
        )
        rows[name] = {
            "ok": ic.ok[:, 1:].all(-1),
            "identity_persistence": float(ic.ok[:, 1:].all(-1).mean()),
            "vanish_object_frames": ic.vanish[:, 1:].sum((0, 1)).tolist(),
            "duplicate_object_frames": ic.duplicate[:, 1:].sum((0, 1)).tolist(),
        }
    episodes = []
    for e in range(truth.n):
        one, roll = ~rows["one_step"]["ok"][e], ~rows["rollout"]["ok"][e]
        if one.any() or roll.any():
            episodes.append(
                {
                    "episode": e,
                    "one_step_broken_frames": (np.where(one)[0] + 1).tolist(),
                    "rollout_first_break": int(np.argmax(roll)) + 1 if roll.any() else None,
                }
            )
    for r in rows.values():
        del r["ok"]
    result = {
        "benchmark": "identity_onestep",
        "model": args.model,
        "world": args.world,
        "episodes": args.episodes,
        "seed": args.seed,
        "horizon": args.horizon,
        "context": args.context,
        **rows,
        "physics": physics,
        "broken_episodes": episodes,
        "seconds": round(time.perf_counter() - t0, 1),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in rows:
        ph = physics[name]
        print(
            f"{name}: identity persistence {rows[name]['identity_persistence']:.4f}; free-flight acceleration "
            f"{ph['free_flight_accel_pred']:.1f} (true {ph['free_flight_accel_true']:.1f}), speed "
            f"{ph['speed_pred']:.1f} ({ph['speed_true']:.1f}), rebound {ph['rebound_pred']:.1f} "
            f"({ph['rebound_true']:.1f}, sign right {ph['rebound_sign_right']:.2f})"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
