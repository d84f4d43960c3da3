"""Does a model lose identities by itself, or only once its own frames drift? One-step predictions from the
true past against the free rollout, on the audit's held-out episodes.

    .venv/bin/python benchmarks/identity_onestep.py --model diffusion_push --world push --episodes 48 \
        --out benchmarks/results/identity_onestep_diffusion_push.json

For every horizon step ``h`` the model observes the true frames ``h - ctx .. h - 1`` (with their actions) and
predicts frame ``h`` under the true action: a one-step prediction that never sees its own output. The free
rollout is the audit's own (same episodes, seed, judge and identity verdicts). Identity persistence of the
one-step frames is what the network gets right from a clean past; the gap to the rollout is what drift costs.
Also lists, per episode, the one-step frames that break and the rollout's first break.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint directory or shipped name")
    ap.add_argument("--world", default="push")
    ap.add_argument("--episodes", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=64)
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
    cfg, truth, tj = held_out(args.world, args.episodes, args.horizon)
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
    rows = {}
    for name, out in [
        ("one_step", ModelOutput(frames=np.stack(preds, 1), states=None)),
        ("rollout", rollout(model, truth, truth.actions, 0, cfg.batch_size)),
    ]:
        pj = _judge_output(out, truth, cfg)
        ic = identity_check(pj, tj.judged, object_view(pj, truth.fps), t, cfg, tj.full_area)
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
        "horizon": args.horizon,
        "context": args.context,
        **rows,
        "broken_episodes": episodes,
        "seconds": round(time.perf_counter() - t0, 1),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in rows:
        print(f"{name}: identity persistence {rows[name]['identity_persistence']:.4f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
