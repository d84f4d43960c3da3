"""Training step time: gedanken's DiT vs diffusers' ``DiTTransformer2DModel`` of equal width, depth and tokens.

    .venv/bin/python benchmarks/diffusion_train_step.py --threads 2 [--out benchmarks/results/diffusion_train_step.json]

Both get the same optimizer (AdamW), batch, token count and width/depth/heads; ours runs its real training
pass (a window of T frames twice, clean + noisy, frame-causal mask, per-frame AdaLN on time + action + text),
diffusers' runs a class-conditional DiT on a latent image with the same number of tokens. Interleaved
repeats, median reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--out", default="benchmarks/results/diffusion_train_step.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import DiTTransformer2DModel

    from gedanken.models.diffusion import DiffusionWorldModel, LatentBatch, default_config
    from gedanken.models.heads import HeadsConfig

    torch.manual_seed(0)
    cfg = default_config(heads=HeadsConfig(slots=6), action_dim=2)
    ours = DiffusionWorldModel(cfg)
    ours.freeze_tokenizer()
    c, h, w = ours.tokenizer.latent_shape(cfg.height, cfg.width)
    t, b, d = cfg.window, args.batch, cfg.dit
    tokens = 2 * t * (h // d.patch) * (w // d.patch)  # clean + noisy copies of the window
    lb = LatentBatch(
        latents=torch.randn(b, t, c, h, w),
        actions=torch.randn(b, t, 2),
        rewards=torch.zeros(b, t),
        terminated=torch.zeros(b, t, dtype=torch.bool),
        states=torch.zeros(b, t, 6, 10),
        text=torch.randn(b, cfg.text_dim),
    )
    side = int(round(tokens**0.5)) * d.patch  # square latent image with the same token count
    ref = DiTTransformer2DModel(
        num_attention_heads=d.heads,
        attention_head_dim=d.width // d.heads,
        in_channels=c,
        out_channels=c,
        num_layers=d.depth,
        sample_size=side,
        patch_size=d.patch,
        num_embeds_ada_norm=1000,
        norm_num_groups=min(32, c),
    )
    x = torch.randn(b, c, side, side)
    ts = torch.randint(0, 1000, (b,))
    labels = torch.randint(0, 1000, (b,))
    opt_o = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=1e-4)
    opt_r = torch.optim.AdamW(ref.parameters(), lr=1e-4)

    def step_ours() -> None:
        loss, _ = ours.loss(lb)
        opt_o.zero_grad()
        loss.backward()
        opt_o.step()

    def step_ref() -> None:
        out = ref(x, timestep=ts, class_labels=labels).sample
        loss = (out - x).pow(2).mean()
        opt_r.zero_grad()
        loss.backward()
        opt_r.step()

    times: dict[str, list[float]] = {"gedanken_dit": [], "diffusers_dit": []}
    for fn in (step_ours, step_ref):  # warm-up
        fn()
    for _ in range(args.repeats):
        for name, fn in (("gedanken_dit", step_ours), ("diffusers_dit", step_ref)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    n_ours = sum(p.numel() for p in ours.dit.parameters()) + sum(p.numel() for p in ours.heads.parameters())
    result = {
        "benchmark": "diffusion_train_step",
        "threads": args.threads,
        "batch": b,
        "tokens_per_sample": tokens,
        "width": d.width,
        "depth": d.depth,
        "heads": d.heads,
        "reference_sample_size": side,
        "params": {"gedanken_dit": n_ours, "diffusers_dit": sum(p.numel() for p in ref.parameters())},
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "all_s": times,
        "load_average_at_end": os.getloadavg()[0],
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    result["ratio_ours_vs_diffusers"] = (
        result["median_s"]["gedanken_dit"] / result["median_s"]["diffusers_dit"]
    )
    print(
        json.dumps(
            {k: result[k] for k in ("median_s", "ratio_ours_vs_diffusers", "params", "tokens_per_sample")}
        )
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
