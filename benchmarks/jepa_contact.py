"""How well a JEPA model predicts what planning on Push needs: a block moving when the pusher pushes it.

Planning failures on Push (docs/planning.md) come from contact: if the predicted block does not start to move
when the predicted pusher runs into it, CEM drives the pusher straight through the block. This benchmark reads
the model's probe on held-out episodes and reports, for block 1:

* ``onset``: transitions where the block was at rest (moved < 0.05 world units in the previous step) and then
  moves > 0.3 units: slope of the predicted one-step displacement on the true one (1 = right, 0 = "no
  motion"), teacher-forced from the true context;
* ``moving``: every transition where the block moves > 0.3 units: slope and mean error of the one-step
  displacement;
* ``open_loop``: 8-step open-loop rollouts from 2 true frames every 4 steps; block position error at step 8
  against copying the last position, on windows where the block moves > 1 unit (and on all windows);
* ``grazes``: the same rollouts on windows where the pusher passes close to the block (within 2 units of
  touching it) but the block stays put (< 0.3 units): the predicted block displacement (0 = right) and the
  share of windows where it exceeds 1 unit. This is the error a planner exploits: imagined pushes from beside
  the block (docs/jepa.md, "Contact geometry").

    .venv/bin/gedanken collect --world push --split test --episodes 48 --policy poke --out data/push_poke_test
    .venv/bin/python benchmarks/jepa_contact.py --data data/push_poke_test --model runs/jepa_push/model \\
        --out benchmarks/results/jepa_contact.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from gedanken.models import load_checkpoint
from gedanken.models.jepa.train import load_data
from gedanken.worlds.push import PUSHER_RADIUS
from gedanken.worlds.state import W, X, Y

XY = [X, Y]
BLOCK = 1  # identity slot of block 1 (every Push episode has it)


def _slope(pred: np.ndarray, true: np.ndarray) -> float:
    return float((pred * true).sum() / max((true * true).sum(), 1e-9)) if len(true) else float("nan")


@torch.no_grad()
def measure(model_path: str, data_path: str, horizon: int = 8, stride: int = 4) -> dict:
    m = load_checkpoint(model_path)
    d = load_data(data_path)
    if d.states is None:
        raise SystemExit(f"{data_path} holds no object states; the benchmark needs them")
    onset_p, onset_t, mov_p, mov_t = [], [], [], []
    ol_err, ol_copy, ol_err_all, ol_copy_all, graze = [], [], [], [], []
    for e in range(len(d.frames)):
        frames, actions, s = d.frames[e], d.actions[e], d.states[e].numpy()
        z = m.encode(frames[None])[0]  # (T, d)
        read = m.probe(z).numpy()[:, BLOCK][:, XY]  # (T, 2) probe's block position on true latents
        nxt = m.probe(m.predictor(z[None, :-1], m.normalise_actions(actions[None])[:, :-1])[0]).numpy()
        pred_step = nxt[:, BLOCK][:, XY] - read[:-1]  # (T-1, 2) predicted one-step displacement
        true_xy = s[:, BLOCK][:, XY]
        true_step = np.diff(true_xy, axis=0)
        speed = np.hypot(*true_step.T)
        for t in range(len(true_step)):
            if speed[t] > 0.3:
                mov_p.append(pred_step[t])
                mov_t.append(true_step[t])
                if t > 0 and speed[t - 1] < 0.05:
                    onset_p.append(pred_step[t])
                    onset_t.append(true_step[t])
        for st in range(1, len(frames) - horizon, stride):
            ctx = m.observe(frames[st - 1 : st + 1][None], actions[st - 1 : st + 1][None])
            roll = m.rollout(ctx, actions[st : st + horizon][None])
            end = roll.states[0, -1, BLOCK][XY].numpy()
            err = float(np.hypot(*(end - true_xy[st + horizon])))
            copy = float(np.hypot(*(true_xy[st] - true_xy[st + horizon])))
            ol_err_all.append(err)
            ol_copy_all.append(copy)
            if copy > 1.0:
                ol_err.append(err)
                ol_copy.append(copy)
            win = slice(st, st + horizon + 1)
            gap = np.hypot(*(s[win, 0][:, XY] - s[win, BLOCK][:, XY]).T) - s[st, BLOCK, W] / 2 - PUSHER_RADIUS
            moved = np.hypot(*(true_xy[win] - true_xy[st]).T).max()
            if gap.min() < 2.0 and moved < 0.3:
                graze.append(float(np.hypot(*(end - read[st]))))  # predicted displacement of a still block
    mp, mt, op, ot = (np.array(x).reshape(-1, 2) for x in (mov_p, mov_t, onset_p, onset_t))
    return {
        "model": model_path,
        "data": data_path,
        "episodes": len(d.frames),
        "onset": {"n": len(ot), "slope": _slope(op, ot)},
        "moving": {
            "n": len(mt),
            "slope": _slope(mp, mt),
            "error": float(np.hypot(*(mp - mt).T).mean()) if len(mt) else float("nan"),
            "true_step": float(np.hypot(*mt.T).mean()) if len(mt) else float("nan"),
        },
        "open_loop": {
            "horizon": horizon,
            "moving_windows": len(ol_err),
            "error_moving": float(np.mean(ol_err)) if ol_err else float("nan"),
            "copy_moving": float(np.mean(ol_copy)) if ol_copy else float("nan"),
            "windows": len(ol_err_all),
            "error_all": float(np.mean(ol_err_all)),
            "copy_all": float(np.mean(ol_copy_all)),
        },
        "grazes": {
            "windows": len(graze),
            "phantom_motion": float(np.mean(graze)) if graze else float("nan"),
            "share_over_1": float(np.mean(np.array(graze) > 1.0)) if graze else float("nan"),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="Recorded Push dataset with states (held-out episodes).")
    ap.add_argument("--model", action="append", required=True, help="JEPA checkpoint; repeat for several.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for path in args.model:
        r = measure(path, args.data)
        rows.append(r)
        o, mv, ol = r["onset"], r["moving"], r["open_loop"]
        print(
            f"{path}: onset slope {o['slope']:.2f} (n={o['n']}); moving slope {mv['slope']:.2f} error "
            f"{mv['error']:.2f} (step {mv['true_step']:.2f}, n={mv['n']}); open-loop h{ol['horizon']} "
            f"{ol['error_moving']:.2f} vs copy {ol['copy_moving']:.2f} (moving, n={ol['moving_windows']}), "
            f"{ol['error_all']:.2f} vs {ol['copy_all']:.2f} (all); grazes: phantom block motion "
            f"{r['grazes']['phantom_motion']:.2f}, > 1 unit in {r['grazes']['share_over_1']:.0%} "
            f"(n={r['grazes']['windows']})",
            flush=True,
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"results": rows}, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
