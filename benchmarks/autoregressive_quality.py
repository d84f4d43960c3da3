"""Quality of a trained autoregressive world model: tokenizer, latent actions, controllability, the audit.

    .venv/bin/python benchmarks/autoregressive_quality.py --model runs/autoregressive_push_discrete/model \
        --world push_discrete --episodes 16 --out benchmarks/results/autoregressive_push_discrete.json

Measures, on freshly recorded held-out ``test`` episodes of ``--world``:

* tokenizer: reconstruction PSNR, codebook usage/perplexity, and the colour judge's identity accuracy on
  reconstructions (share of frames whose set of visible identities matches the real frame's);
* latent -> true action accuracy of the fitted map (discrete action spaces), with its confusion matrix, and
  the ceiling of any reading from single transitions: a k-nearest-neighbour classifier from the *exact*
  object states (positions, this step's and the previous step's motion of every object) to the action,
  fitted on ``--oracle-episodes`` train-split recordings (an action that moves nothing, e.g. the pusher
  pressed against a wall, cannot be read from frames by anyone), and, fitted on the same recordings, a
  random forest on what the 64x64 frames show (each palette colour's pixel centroid and pixel count, this
  step's and the previous step's change): what a supervised reading of the frames achieves;
* Genie's Delta_t PSNR: PSNR of rollouts driven by the latent actions the LAM infers from the true frames,
  minus PSNR of rollouts driven by random latent actions, per horizon;
* the shared audit (``run_audit``, baselines included) once per real-action path: the adapter and the
  latent map (ActionMode.ADAPTER / MAPPED); ``--diffusion`` adds a diffusion checkpoint to the same audit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


def _episodes(world: str, n: int, steps: int, seed0: int = 10_000) -> list:  # noqa: ANN001
    from gedanken.worlds.record import record_episode

    return [record_episode(world, "test", seed0 + i, steps) for i in range(n)]


def _oracle_features(ep) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Per transition t -> t+1: every object's motion t -> t+1 and t-1 -> t (positions would only add noise to the
    neighbour search: the blocks' are irrelevant to the action); the action."""
    from gedanken.worlds.state import X, Y

    p = ep.states[:, :, [X, Y]].reshape(len(ep.states), -1).astype(np.float64)
    prev = np.concatenate([p[:1], p[:-1]])  # frame 0: no previous motion
    feats = np.concatenate([p[1:] - p[:-1], p[:-1] - prev[:-1]], axis=1)
    return feats, ep.actions.reshape(len(ep.states), -1)[:-1, 0].round().astype(int)


def _pixel_features(ep) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """As :func:`_oracle_features`, from the frames: per palette colour (background excluded) its pixel centroid
    and pixel count, changed t -> t+1 and t-1 -> t (a colour absent from a frame has centroid 0)."""
    f = ep.frames.astype(np.int16)  # (T, H, W, 3)
    rows, cols = np.mgrid[: f.shape[1], : f.shape[2]]
    per = []
    for colour in np.asarray(ep.meta.palette[1:], dtype=np.int16):
        m = (f == colour).all(-1)  # (T, H, W)
        n = m.sum((1, 2))
        per.append(
            np.stack(
                [(m * cols).sum((1, 2)) / np.maximum(n, 1), (m * rows).sum((1, 2)) / np.maximum(n, 1), n], 1
            )
        )
    p = np.concatenate(per, axis=1).astype(np.float64)  # (T, 3 * colours)
    prev = np.concatenate([p[:1], p[:-1]])
    feats = np.concatenate([p[1:] - p[:-1], p[:-1] - prev[:-1]], axis=1)
    return feats, ep.actions.reshape(len(ep.frames), -1)[:-1, 0].round().astype(int)


def oracle_accuracy(
    train_eps: list,  # noqa: ANN001
    eps: list,  # noqa: ANN001
    features=_oracle_features,  # noqa: ANN001
    forest: bool = False,
    k: int = 15,
) -> float:
    """Accuracy on ``eps`` of a classifier from transitions to discrete actions, fitted on ``train_eps`` (see
    the module doc): ``features`` gives them (exact states by default, or :func:`_pixel_features`); a k-NN
    vote, or with ``forest`` a random forest (scikit-learn, 300 trees), which picks out the informative
    features (the pusher's) by itself."""
    train = [features(e) for e in train_eps]
    xtr, ytr = np.concatenate([f for f, _ in train]), np.concatenate([a for _, a in train])
    test = [features(e) for e in eps]
    xte, yte = np.concatenate([f for f, _ in test]), np.concatenate([a for _, a in test])
    if forest:
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(300, min_samples_leaf=3, n_jobs=1, random_state=0).fit(xtr, ytr)
        return float((rf.predict(xte) == yte).mean())
    n = int(max(ytr.max(), yte.max())) + 1
    hits = 0
    for i in range(0, len(xte), 256):
        d = ((xte[i : i + 256, None] - xtr[None]) ** 2).sum(-1)
        near = ytr[np.argsort(d, axis=1)[:, :k]]
        pred = np.array([np.bincount(r, minlength=n).argmax() for r in near])
        hits += int((pred == yte[i : i + 256]).sum())
    return hits / len(yte)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR (dB) of uint8 (..., H, W, 3), capped at 60."""
    mse = ((a.float() - b.float()) ** 2).flatten(-3).mean(-1)
    return (10 * torch.log10(255.0**2 / mse.clamp(min=1e-10))).clamp(max=60.0)


def tokenizer_report(model, eps: list) -> dict:  # noqa: ANN001
    from gedanken.audit.fidelity import reconstruction_fidelity
    from gedanken.tokenizers.fsq import codebook_usage

    frames = torch.from_numpy(np.concatenate([e.frames for e in eps]))
    with torch.no_grad():
        tok = model.tokenizer.encode(frames)
        rec = model.tokenizer.decode(tok)
    out = {
        "psnr": float(_psnr(rec, frames).mean()),
        **codebook_usage(tok, model.tokenizer.vocab_size),
        "codebook_size": model.tokenizer.vocab_size,
    }
    palette = eps[0].meta.palette
    if palette:
        fid = reconstruction_fidelity(frames.numpy(), rec.numpy(), palette)
        out["judge_identity_accuracy"] = fid["identity_accuracy"]
        out["judge_position_error_px"] = fid["position_error_px"]
        out["fidelity"] = fid
    return out


def delta_t_psnr(model, eps: list, context: int, horizon: int, seed: int = 0) -> dict:  # noqa: ANN001
    """Genie's controllability metric with latent actions (inferred from the truth vs random)."""
    from gedanken.models.autoregressive import ActionMode

    mode = model.action_mode
    model.action_mode = ActionMode.LATENT
    frames = torch.from_numpy(np.stack([e.frames[: context + horizon] for e in eps]))  # (B, T, H, W, 3)
    with torch.no_grad():
        lat = model.lam.infer(frames).float()  # (B, T-1)
        g = torch.Generator().manual_seed(seed)
        rand = torch.randint(0, model.cfg.lam.num_actions, lat.shape, generator=g).float()
        fut = frames[:, context:]
        inferred = model.rollout(
            model.observe(frames[:, :context]), lat[:, context - 1 :, None], seed=seed
        ).frames
        randomised = model.rollout(
            model.observe(frames[:, :context]), rand[:, context - 1 :, None], seed=seed
        ).frames
    model.action_mode = mode
    p_inf, p_rand = _psnr(inferred, fut).mean(0), _psnr(randomised, fut).mean(0)
    return {
        "psnr_inferred": p_inf.tolist(),
        "psnr_random": p_rand.tolist(),
        "delta_t_psnr": (p_inf - p_rand).tolist(),
        "delta_t_psnr_mean": float((p_inf - p_rand).mean()),
    }


def _model_rows(result: dict) -> dict:
    rows = {}
    for m in result["models"]:
        rows[m["name"]] = m["splits"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--world", default="push_discrete")
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--horizon", type=int, default=64)
    ap.add_argument("--context", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--diffusion", default="", help="optional diffusion checkpoint audited alongside")
    ap.add_argument(
        "--modes",
        nargs="*",
        default=["adapter", "mapped"],
        help="action paths to audit (none: skip the audit)",
    )
    ap.add_argument(
        "--oracle-episodes",
        type=int,
        default=200,
        help="train episodes of the state-oracle ceiling (0: skip)",
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from gedanken.audit.config import AuditConfig
    from gedanken.audit.run import run_audit
    from gedanken.models import load_checkpoint
    from gedanken.models.autoregressive import ActionMode
    from gedanken.models.autoregressive.posttrain import evaluate_action_map

    t0 = time.perf_counter()
    model = load_checkpoint(args.model)
    eps = _episodes(args.world, args.episodes, args.context + args.horizon)
    report: dict = {
        "command": " ".join(["python", "benchmarks/autoregressive_quality.py", *os.sys.argv[1:]]),
        "model": args.model,
        "card": model.card.__dict__,
        "world": args.world,
    }
    report["tokenizer"] = tokenizer_report(model, eps)
    print("tokenizer", report["tokenizer"])
    if model.map_fitted and model.cfg.action_classes:
        ev = evaluate_action_map(
            model, [torch.from_numpy(e.frames) for e in eps], [torch.from_numpy(e.actions) for e in eps]
        )
        report["latent_to_true"] = {
            "accuracy": ev.accuracy,
            "steps": ev.steps,
            "confusion": ev.confusion.tolist(),
        }
        if args.oracle_episodes and eps[0].states is not None:
            from gedanken.worlds.record import record_episode

            train_eps = [
                record_episode(args.world, "train", i, len(eps[0])) for i in range(args.oracle_episodes)
            ]
            report["latent_to_true"]["state_oracle_accuracy"] = oracle_accuracy(train_eps, eps)
            report["latent_to_true"]["pixel_oracle_accuracy"] = oracle_accuracy(
                train_eps, eps, _pixel_features, forest=True
            )
        print("latent->true", report["latent_to_true"])
    long_eps = [e for e in eps if len(e) >= args.context + 16]
    if long_eps:
        report["delta_t_psnr"] = delta_t_psnr(model, long_eps, args.context, 16)
        print("delta_t_psnr", report["delta_t_psnr"]["delta_t_psnr_mean"])
    audits = {}
    for mode in args.modes:
        model.action_mode = ActionMode(mode)
        model.name = f"autoregressive[{mode}]"
        models = [model] + (
            [load_checkpoint(args.diffusion)] if args.diffusion and mode == args.modes[0] else []
        )
        res = run_audit(
            models,
            args.world,
            episodes=args.episodes,
            horizon=args.horizon,
            context=args.context,
            config=AuditConfig(batch_size=16),
            baselines=mode == args.modes[0],
        )
        audits[mode] = res.to_json()
        for name, splits in _model_rows(audits[mode]).items():
            sc = splits["test"]["scalars"]
            print(
                mode,
                name,
                {k: sc.get(k) for k in ("psnr", "delta_psnr", "ctrl_ratio", "identity_persistence")},
            )
    report["audit"] = audits
    report["seconds"] = time.perf_counter() - t0
    report["machine"] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg": os.getloadavg(),
        "torch": torch.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
