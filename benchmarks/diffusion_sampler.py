"""Which sampler settings keep identities: a diffusion (or autoregressive) model rolled out on held-out episodes at
several settings.

    .venv/bin/python benchmarks/diffusion_sampler.py --model diffusion_bounce --world bounce --episodes 24 \
        --settings steps=4 steps=4,shift=3 steps=4,shift=6 steps=8,shift=6 \
        --out benchmarks/results/diffusion_sampler_bounce.json
    # the same, and write a copy of the checkpoint whose sampler is the chosen setting (weights unchanged):
    .venv/bin/python benchmarks/diffusion_sampler.py --model runs/x/model --world bounce --settings steps=4,shift=6 \
        --export runs/x/model_shift6

Each setting is a comma-separated list of ``SamplerConfig`` fields (``steps``, ``shift``, ``context_noise``,
``action_guidance``, ``reencode``, ``snap``, ``snap_background``, ``snap_radius``, ``candidates``, ``keep_area``, ``show_projected``)
on top of the checkpoint's own sampler; an autoregressive checkpoint takes ``MaskGITConfig`` fields instead
(``steps``, ``temperature``, ``keep_area``, ``snap_radius``, ``snap_background``, ``action_guidance``,
``keep_unchanged``, ``show_projected``). A checkpoint trained before
checkpoints recorded the data's colours gets the world's palette (for ``snap`` and ``keep_area``; ``--export``
keeps it). Every setting rolls out the same ``test`` episodes with the same seed, exactly as the
audit does (same judge, same identity verdicts), and reports identity persistence (share of frames whose every
identity is right), survival (share of episodes with no break yet) at horizons 4 / 16 / 64, the mean position
error over visible objects, the audit's interpenetration rate (frames with an overlapping solid pair or a
solid object past a wall by more than the tolerance; also each kind alone, and how far past the wall the
breaching objects reach), and the judged object area over the true one (geometric mean over all frames, and at
the last frame): a setting that keeps identities by letting blobs grow shows there. The network is never
changed: only how the flow is integrated. Run the full audit on the exported copy before trusting it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np


def parse_setting(text: str, base: object) -> object:
    """``"steps=4,shift=6"`` -> ``base`` with those fields replaced (typed like the field's current value)."""
    names = {f.name for f in fields(base)}  # type: ignore[arg-type]
    kw: dict[str, object] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in names:
            raise ValueError(f"{part!r}: expected field=value with field one of {', '.join(sorted(names))}")
        kind = type(getattr(base, key))
        if kind is bool:
            kw[key] = value.lower() in ("1", "true", "yes")
        elif kind is tuple:  # verifier_solid=0+1+2+3
            kw[key] = tuple(int(v) for v in value.split("+") if v)
        else:
            kw[key] = kind(value)
    return replace(base, **kw)  # type: ignore[type-var]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="diffusion checkpoint directory or shipped name")
    ap.add_argument("--world", default="bounce")
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=64)
    ap.add_argument(
        "--seed", type=int, default=0, help="the audit's --seed: another set of held-out episodes"
    )
    ap.add_argument("--settings", nargs="+", default=["steps=4"], help="e.g. steps=4,shift=6")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="", help="JSON results")
    ap.add_argument("--export", default="", help="write the checkpoint with the (single) setting here")
    args = ap.parse_args()
    if args.episodes < 1 or args.horizon < 4:
        ap.error("--episodes must be >= 1 and --horizon >= 4")
    if args.export and len(args.settings) != 1:
        ap.error("--export takes exactly one --settings entry")

    import torch
    from _audit_episodes import held_out, load

    from gedanken.audit.evaluate import _judge_output, rollout
    from gedanken.audit.objects import identity_check, object_view
    from gedanken.audit.physics import breaches, geometry
    from gedanken.models import CHECKPOINT_ROOT
    from gedanken.models.autoregressive import AutoregressiveWorldModel
    from gedanken.models.checkpoint import save_checkpoint
    from gedanken.models.diffusion import DiffusionWorldModel

    torch.set_num_threads(args.threads)
    model = load(ap, args.model, args.world)
    if not isinstance(model, DiffusionWorldModel | AutoregressiveWorldModel):
        ap.error(f"{args.model}: not a diffusion or autoregressive model")
    cfg, truth, tj = held_out(args.world, args.episodes, args.horizon, args.seed)
    if not model.cfg.palette and truth.palette:  # trained before checkpoints recorded the data's colours
        model.cfg = replace(model.cfg, palette=tuple(tuple(int(c) for c in p) for p in truth.palette))
        print(f"{args.model}: no palette recorded; using {args.world}'s {len(truth.palette)} colours")
    try:
        samplers = [parse_setting(s, model.cfg.sampler) for s in args.settings]
        for sampler in samplers:
            model.check_sampler(sampler)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        ap.error(str(e))
    t = object_view(tj.judged, truth.fps)
    rows = []
    for text, sampler in zip(args.settings, samplers, strict=True):
        t0 = time.perf_counter()
        model.set_sampler(sampler)  # type: ignore[arg-type]
        out = rollout(model, truth, truth.actions, args.seed, cfg.batch_size)
        pj = _judge_output(out, truth, cfg)
        p = object_view(pj, truth.fps)
        ok = identity_check(pj, tj.judged, p, t, cfg, tj.full_area).ok.all(-1)[:, 1:]  # (B, Hz)
        survival = np.cumprod(ok, axis=1).mean(0)
        both = p.vis[:, 1:] & t.vis[:, 1:]
        err = np.linalg.norm(p.xy[:, 1:] - t.xy[:, 1:], axis=-1)[both]
        g = geometry(pj, tj.physics)
        pairs, walls = breaches(g, tj.physics.solid, cfg.penetration_tol)
        pair_bad, wall_bad = pairs.any(-1)[:, 1:], walls.any(-1)[:, 1:]
        past = -g.wall_gap[:, 1:][walls[:, 1:]]  # px past a wall, per breaching object and frame
        log_area = np.log2(np.maximum(pj.area, 1) / np.maximum(tj.judged.area, 1))[:, 1:]  # (B, Hz, K)
        row = {
            "setting": text,
            "sampler": {f.name: getattr(sampler, f.name) for f in fields(sampler)},  # type: ignore[arg-type]
            "identity_persistence": float(ok.mean()),
            "survival": {h: float(survival[h - 1]) for h in (4, 16, args.horizon) if h <= len(survival)},
            "pos_err_visible_px": float(err.mean()) if err.size else float("nan"),
            "interpenetration": float((pair_bad | wall_bad).mean()),
            "interpenetration_pairs": float(pair_bad.mean()),
            "interpenetration_walls": float(wall_bad.mean()),
            "wall_breach_px": {
                q: float(np.percentile(past, p)) for q, p in (("p10", 10), ("p50", 50), ("p90", 90))
            }
            if past.size
            else None,
            "area_ratio": float(2 ** log_area[both].mean()) if both.any() else float("nan"),
            "area_ratio_last": float(2 ** log_area[:, -1][both[:, -1]].mean())
            if both[:, -1].any()
            else float("nan"),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "sampler"}), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        res = {"benchmark": "diffusion_sampler", "model": args.model, "world": args.world}
        res |= {"episodes": args.episodes, "seed": args.seed, "horizon": args.horizon, "rows": rows}
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    if args.export:
        model.cfg = replace(model.cfg, sampler=samplers[0])
        card = replace(model.card, notes=(model.card.notes + f"; sampler {args.settings[0]}").lstrip("; "))
        source = Path(args.model) if Path(args.model).is_dir() else CHECKPOINT_ROOT / args.model
        # the step is kept: only the sampler changes
        step = json.loads((source / "checkpoint.json").read_text()).get("step", 0)
        save_checkpoint(
            args.export, model, family=model.card.family, model_config=model.cfg, card=card, step=step
        )
        print(f"wrote {args.export}")


if __name__ == "__main__":
    main()
