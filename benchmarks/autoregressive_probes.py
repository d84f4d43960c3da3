"""Probes of the autoregressive family's first two stages alone, for choosing their settings quickly.

    # tokenizer: FSQ levels, width, foreground weight / dilation -> judge fidelity on held-out frames
    .venv/bin/python benchmarks/autoregressive_probes.py tokenizer --data data/push_discrete \\
        --levels 7,5,5,5,5 --foreground-weight 64 --steps 1000
    # latent action model: architecture, decoder_past -> latent->true accuracy with 100 labelled steps
    .venv/bin/python benchmarks/autoregressive_probes.py lam --data data/push_discrete --arch patch --steps 800
    # trained dynamics: does it use the latent actions, does it predict the tokens that change?
    .venv/bin/python benchmarks/autoregressive_probes.py dynamics --data data/push_discrete \
        --model runs/autoregressive_push_discrete/model

Both train with AdamW (no weight decay), batch 32, linear warm-up over 50 steps then cosine to 0, one torch
thread, on all but the last 24 episodes; they print held-out metrics every 250 (tokenizer) / 100 (LAM) steps:

* tokenizer: :func:`gedanken.audit.fidelity.reconstruction_fidelity` on every 4th frame of the 24 held-out
  episodes, plus codebook usage / perplexity;
* LAM: the latent -> real map fitted (majority vote, as ``posttrain.fit_action_map``) on the first 25
  transitions of 4 training episodes (100 labelled steps), its accuracy on every held-out transition, and the
  majority purity of the latent actions on the held-out transitions (the accuracy with unlimited labels), and the
  map's leave-one-out accuracy on the 100 labelled steps (what a user can measure; session 26: too noisy to choose
  a checkpoint by);
  ``--label-weight w`` also trains a linear reader of the code on those same 100 labelled steps (semi-supervised;
  it made the map worse in session 23, docs/history/autoregressive.md); ``--smooth w`` trains on 16 clips of 4
  frames and penalises the code's change between a clip's two transitions (session 24: no gain); ``--ema d``
  also evaluates an exponential moving average of the weights (session 27: no gain).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch


def _schedule(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )


def probe_tokenizer(args: argparse.Namespace, eps: list) -> None:  # noqa: ANN001
    from gedanken.audit.fidelity import reconstruction_fidelity
    from gedanken.tokenizers.discrete import DiscreteTokenizer, DiscreteTokenizerConfig, TokenizerArchitecture
    from gedanken.tokenizers.fsq import FSQConfig, codebook_usage

    frames = torch.cat([torch.from_numpy(e.frames) for e in eps[:-24]])
    held = torch.cat([torch.from_numpy(e.frames[::4]) for e in eps[-24:]])
    cfg = DiscreteTokenizerConfig(
        patch=args.patch,
        architecture=TokenizerArchitecture.PATCH,
        width=args.width,
        res_blocks=2,
        fsq=FSQConfig(tuple(int(v) for v in args.levels.split(","))),
        foreground_weight=args.foreground_weight,
        foreground_dilate=args.foreground_dilate,
        halo_weight=args.halo_weight,
        refine=args.refine,
    )
    torch.manual_seed(0)
    tok = DiscreteTokenizer(cfg)
    opt = torch.optim.AdamW(tok.parameters(), lr=2e-3, weight_decay=0.0)
    sched = _schedule(opt, args.steps)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for s in range(args.steps):
        loss = tok(frames[torch.randint(0, len(frames), (32,), generator=g)][:, None]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (s + 1) % 250 == 0 or s + 1 == args.steps:
            tok.eval()
            with torch.no_grad():
                t = tok.encode(held)
                rec = tok.decode(t)
            tok.train()
            fid = reconstruction_fidelity(held.numpy(), rec.numpy(), eps[0].meta.palette)
            fid.update(codebook_usage(t, tok.vocab_size))
            print(
                s + 1,
                f"{time.perf_counter() - t0:.0f}s",
                {k: round(v, 3) for k, v in fid.items()},
                flush=True,
            )


def probe_lam(args: argparse.Namespace, eps: list) -> None:  # noqa: ANN001
    from gedanken.models.autoregressive.lam import LAMArchitecture, LAMConfig, LatentActionModel

    frames = [torch.from_numpy(e.frames) for e in eps]
    acts = [torch.from_numpy(e.actions[:, 0]).long() for e in eps]
    n_real = int(max(int(a.max()) for a in acts)) + 1
    train, held = list(range(len(eps) - 24)), list(range(len(eps) - 24, len(eps)))
    cfg = LAMConfig(
        num_actions=args.num_actions,
        channels=(16, 32, 32),
        embed=16,
        decoder_past=args.decoder_past,
        encoder_past=args.encoder_past,
        architecture=LAMArchitecture(args.arch),
        patch=args.patch,
        width=args.width,
        noise=args.noise,
        change_weight=args.change_weight,
    )
    torch.manual_seed(args.seed)
    lam = LatentActionModel(cfg)
    # Semi-supervised (``--label-weight``): the same 100 labelled steps the map is fitted on also train a linear
    # reader of the quantized code (straight-through), so the code's partition is pulled towards the actions.
    reader = torch.nn.Linear(lam.fsq.dim, n_real)
    opt = torch.optim.AdamW([*lam.parameters(), *reader.parameters()], lr=2e-3, weight_decay=0.0)
    sched = _schedule(opt, args.steps)
    rng = np.random.default_rng(args.seed)
    lab = [frames[i][:26] for i in train[:4]]
    lab_prev = torch.cat(
        [torch.cat([f[:1], f[:24]]) for f in lab]
    )  # x_{t-1} (x_0 for the first), (100, H, W, 3)
    lab_cur = torch.cat([f[:25] for f in lab])
    lab_next = torch.cat([f[1:26] for f in lab])
    lab_act = torch.cat([acts[i][:25] for i in train[:4]])

    # ``--ema d``: an exponential moving average of the weights (decay d), evaluated beside the trained ones.
    ema = (
        torch.optim.swa_utils.AveragedModel(
            lam, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema), use_buffers=True
        )
        if args.ema > 0
        else None
    )

    def evaluate(model: LatentActionModel) -> tuple[float, float, float]:
        model.eval()
        with torch.no_grad():
            lz = torch.cat([model.infer(frames[i][None, :26])[0] for i in train[:4]])
            la = torch.cat([acts[i][:25] for i in train[:4]])
            z = torch.cat([model.infer(frames[i][None])[0] for i in held])
            a = torch.cat([acts[i][:-1] for i in held])
        model.train()
        fit = torch.zeros(args.num_actions, n_real).index_put_((lz, la), torch.ones(len(lz)), accumulate=True)
        every = torch.zeros(args.num_actions, n_real).index_put_((z, a), torch.ones(len(z)), accumulate=True)
        # Leave-one-out accuracy of the majority map on the labelled steps themselves: what a user with only those
        # 100 labels can measure, and so what can choose between LAM checkpoints.
        loo = fit[lz].clone()
        loo[torch.arange(len(lz)), la] -= 1
        labelled = float((loo.argmax(1) == la).float().mean())
        return (
            float((fit.argmax(1)[z] == a).float().mean()),
            float(every.max(1).values.sum() / len(z)),
            labelled,
        )

    # ``--smooth w``: 16 clips of 4 frames (the same 32 transitions per step), and a penalty w on the squared
    # change of the quantized code between a clip's two transitions. The data's policies hold each action for
    # several steps, so a code that names the agent's choice changes less often than one that names the outcome.
    length, n_clips = (4, args.batch // 2) if args.smooth > 0 else (3, args.batch)
    t0 = time.perf_counter()
    for s in range(args.steps):
        clips = []
        for e in rng.choice(train, size=n_clips):
            st = int(rng.integers(len(frames[e]) - length + 1))
            clips.append(frames[e][st : st + length])
        batch = torch.stack(clips)
        loss = lam(batch).loss
        if args.smooth > 0:
            from gedanken.tokenizers.discrete import frames_to_float

            x = frames_to_float(batch)  # (16, 4, 3, H, W)
            q = lam.quantized(
                torch.cat([x[:, 1], x[:, 2]]),
                torch.cat([x[:, 2], x[:, 3]]),
                past=torch.cat([x[:, 0], x[:, 1]]),
            )
            c1, c2 = q.codes.chunk(2)
            loss = loss + args.smooth * ((c1 - c2) ** 2).sum(1).mean()
        if args.label_weight > 0:
            from gedanken.tokenizers.discrete import frames_to_float

            q = lam.quantized(
                frames_to_float(lab_cur), frames_to_float(lab_next), past=frames_to_float(lab_prev)
            )
            loss = loss + args.label_weight * torch.nn.functional.cross_entropy(reader(q.codes), lab_act)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(lam)
        if (s + 1) % 100 == 0 or s + 1 == args.steps:
            acc, purity, labelled = evaluate(lam)
            line = f"accuracy {acc:.3f} purity {purity:.3f} labelled (leave-one-out) {labelled:.3f}"
            if ema is not None:
                acc, purity, labelled = evaluate(ema.module)
                line += f" | ema accuracy {acc:.3f} purity {purity:.3f} labelled {labelled:.3f}"
            print(s + 1, f"{time.perf_counter() - t0:.0f}s", line, flush=True)
    if args.save:
        from safetensors.torch import save_file

        save_file(lam.state_dict(), args.save)


@torch.no_grad()
def probe_dynamics(args: argparse.Namespace, eps: list) -> None:  # noqa: ANN001
    """Last frame of 16 held-out 6-frame windows fully masked, one pass: cross-entropy with the inferred,
    shuffled and all-zero latent actions, and argmax accuracy on the tokens that differ from the previous frame.
    """
    import torch.nn.functional as F

    from gedanken.models import load_checkpoint

    m = load_checkpoint(args.model).eval()
    f = torch.stack([torch.from_numpy(e.frames[10:16]) for e in eps[-16:]])  # (16, 6, H, W, 3)
    tb = m.encode(f)
    tok = tb.tokens
    inp = tok.clone()
    inp[:, -1] = -1
    changed = tok[:, -1] != tok[:, -2]
    g = torch.Generator().manual_seed(0)
    lats = {
        "inferred": tb.latent_actions,
        "shuffled": tb.latent_actions[torch.randperm(len(tok), generator=g)],
        "zeros": torch.zeros_like(tb.latent_actions),
    }
    for name, lat in lats.items():
        logits = m.dynamics(inp, m._clip_action_emb(m.latent_embed(lat)))[:, -1]  # (16, N, V)
        ce = float(F.cross_entropy(logits.flatten(0, 1), tok[:, -1].flatten()))
        acc = float((logits.argmax(-1) == tok[:, -1])[changed].float().mean())
        print(f"{name}: cross-entropy {ce:.3f}, accuracy on {int(changed.sum())} changed tokens {acc:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["tokenizer", "lam", "dynamics"])
    ap.add_argument("--model", default="runs/autoregressive_push_discrete/model", help="dynamics: checkpoint")
    ap.add_argument("--data", default="data/push_discrete")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument(
        "--patch", type=int, default=0, help="pixel patch (0: 8 for the tokenizer, 4 for the LAM)"
    )
    ap.add_argument("--width", type=int, default=0, help="trunk width (0: 128 tokenizer, 64 LAM)")
    ap.add_argument("--levels", default="7,5,5,5,5", help="tokenizer FSQ levels")
    ap.add_argument("--foreground-weight", type=float, default=64.0)
    ap.add_argument("--foreground-dilate", type=int, default=0)
    ap.add_argument("--refine", type=int, default=0, help="tokenizer: full-resolution refine stage width")
    ap.add_argument("--halo-weight", type=float, default=0.0, help="tokenizer: weight on painted background")
    ap.add_argument("--arch", default="patch", help="LAM architecture: patch | conv")
    ap.add_argument("--decoder-past", action="store_true", help="LAM decoder also sees x_{t-1}")
    ap.add_argument("--encoder-past", action="store_true", help="LAM encoder also sees x_{t-1}")
    ap.add_argument("--num-actions", type=int, default=8, help="LAM: number of latent actions")
    ap.add_argument("--noise", type=float, default=0.0, help="LAM: share of rows quantized with noise")
    ap.add_argument("--change-weight", type=float, default=20.0, help="LAM: extra weight on changed pixels")
    ap.add_argument(
        "--label-weight", type=float, default=0.0, help="LAM: weight of the 100 labelled steps' reader loss"
    )
    ap.add_argument(
        "--smooth", type=float, default=0.0, help="LAM: weight of the code's change between consecutive steps"
    )
    ap.add_argument("--ema", type=float, default=0.0, help="LAM: also evaluate an EMA of the weights (decay)")
    ap.add_argument("--save", default="", help="LAM: write the trained weights (safetensors) here")
    ap.add_argument("--seed", type=int, default=0, help="LAM: initialisation and sampling seed")
    ap.add_argument("--batch", type=int, default=32, help="LAM: 3-frame clips per step (the recipe: 32)")
    args = ap.parse_args()
    if args.batch < 2:
        ap.error(f"--batch must be >= 2 clips, got {args.batch}")
    torch.set_num_threads(1)
    from gedanken.data.store import EpisodeDataset

    eps = list(EpisodeDataset.open(args.data))
    if len(eps) < 30:
        raise SystemExit(f"{args.data}: need at least 30 episodes (24 are held out), got {len(eps)}")
    if args.stage == "dynamics":
        probe_dynamics(args, eps)
        return
    tok = args.stage == "tokenizer"
    args.patch = args.patch or (8 if tok else 4)
    args.width = args.width or (128 if tok else 64)
    (probe_tokenizer if tok else probe_lam)(args, eps)


if __name__ == "__main__":
    main()
