"""``gedanken train autoregressive``: the Genie-style family's trainer, added to the shared ``train`` group."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import typer
from rich.console import Console

from gedanken.cli_options import (
    breach_forcing_option,
    breach_px_option,
    breach_walls_only_option,
    contact_weight_option,
    device_option,
    export_option,
    run_dir_option,
)

console = Console()


def train_autoregressive_cmd(
    ctx: typer.Context,
    world: str = typer.Option(
        "push_discrete", help="Built-in world (or Gymnasium id) to collect from if --data is absent."
    ),
    preset: str = typer.Option("default", help="Recipe preset: tiny | default."),
    data: Path = typer.Option(
        None,
        help="Dataset to train on (default: data/<world>); any recorded dataset, with or without actions.",
    ),
    add_data: list[Path] = typer.Option(
        [],
        help="More recorded datasets (same world, frame size, action space) whose episodes are trained on "
        "after --data's, e.g. one collected with another --policy. Repeatable.",
    ),
    out: Path = run_dir_option("autoregressive"),
    device: str = typer.Option("auto", callback=device_option, help="auto | cpu | cuda | cuda:N."),
    steps: int = typer.Option(0, min=0, help="Override the dynamics' training steps (0 = preset)."),
    labelled_steps: int = typer.Option(
        -1, min=-1, help="Labelled steps for action post-training (-1 = preset, 0 = none)."
    ),
    latent_actions: int = typer.Option(0, help="Number of latent actions |A| (0 = preset)."),
    episodes: int = typer.Option(
        0, min=0, help="Episodes to collect when the dataset is absent (0 = preset)."
    ),
    resume: bool = typer.Option(True, help="Continue an interrupted run in --out."),
    threads: int = typer.Option(0, min=0, help="torch threads (0 = preset)."),
    seed: int = typer.Option(0, min=0, help="Initialisation and data-order seed."),
    export: Path = export_option(),
    init: str = typer.Option(
        None,
        help="Start from this autoregressive checkpoint (directory or shipped name): keep its tokenizer and "
        "latent actions, train its dynamics on, post-train again.",
    ),
    lr: float = typer.Option(0.0, help="Override the dynamics' peak learning rate (0 = preset)."),
    adapter_steps: int = typer.Option(
        0, min=0, help="Override the adapter's training steps on the labelled windows (0 = preset)."
    ),
    keep_area: float = typer.Option(
        0.0,
        help="Sampler: hold each colour's area in the context between k and 1/k times the observed area (0 = preset).",
    ),
    keep_unchanged: bool = typer.Option(
        False,
        "--keep-unchanged",
        help="Sampler: a patch whose token, and its 8 neighbours' tokens, did not change keeps the last shown "
        "frame's pixels (mostly static scenes, e.g. Atari; the shipped Push model uses it).",
    ),
    projected_context: float = typer.Option(
        0.0,
        help="Share of the dynamics' training frames shown as the --keep-area projection hands them back.",
    ),
    rollout_context: float = typer.Option(
        0.0,
        help="Share of the dynamics' training windows whose past the model rolls out itself with its sampler, "
        "the true last frame the target (scheduled sampling against drift).",
    ),
    rollout_frames: int = typer.Option(
        0,
        min=0,
        help="With --rollout-context: at most this many past frames are the model's own (0 = window - 2).",
    ),
    action_dropout: float = typer.Option(
        -1.0,
        help="Share of training transitions shown with no action, so the sampler can guide on actions "
        "(action_guidance); 1 = unconditional, actions never embedded (passive video); -1 = preset.",
    ),
    action_guidance: float = typer.Option(
        0.0,
        help="Sampler: classifier-free guidance on actions, > 1 amplifies them (needs --action-dropout; "
        "0 = preset).",
    ),
    contact_weight: float = contact_weight_option("Dynamics loss weight (a multiplier) on the tokens"),
    breach_forcing: float = breach_forcing_option("the dynamics' training windows whose shown tokens"),
    breach_px: float = breach_px_option(),
    breach_walls_only: bool = breach_walls_only_option(),
    chained_head: bool = typer.Option(
        False,
        help="Predict each token's FSQ digits one after another, each given the ones before, instead of "
        "independently (the default preset's factorized head; with --init that head is grown at identity).",
    ),
    decoder_steps: int = typer.Option(
        0,
        help="Then fine-tune the tokenizer's decoder this many steps on the dynamics' one-step predictions of "
        "training episodes, so that tokens it is unsure of are not drawn as smears and ghosts (0 = off).",
    ),
    decoder_weight: float = typer.Option(
        16.0, help="Extra decoder-fine-tune loss weight on object pixels (more: brighter and larger objects)."
    ),
    decoder_edge_weight: float = typer.Option(
        0.0,
        help="Further decoder-fine-tune weight on object pixels within 8 px of the frame's border, so objects at a "
        "wall are drawn to their full extent (0 = off).",
    ),
    decoder_only: bool = typer.Option(
        False,
        help="With --init and --decoder-steps: skip the dynamics and post-training, fine-tune the decoder alone.",
    ),
    decoder_episodes: int = typer.Option(
        256, help="Training episodes whose one-step predictions the decoder fine-tune learns from."
    ),
) -> None:
    """Train the autoregressive world model: FSQ tokenizer, latent actions, MaskGIT dynamics, action adapter
    (and, with --decoder-steps, the decoder on the dynamics' predictions)."""
    from gedanken.models.autoregressive.recipe import RECIPES, train_autoregressive
    from gedanken.train.cli import check_finite

    check_finite(ctx)
    if lr < 0:
        raise typer.BadParameter(f"--lr must be >= 0 (0 = preset), got {lr}")
    if preset not in RECIPES:
        raise typer.BadParameter(f"unknown preset {preset!r}; valid: {', '.join(RECIPES)}")
    r = RECIPES[preset]()
    rep = dataclasses.replace
    if steps:
        r = rep(r, dynamics_train=rep(r.dynamics_train, steps=steps))
    if lr:
        r = rep(r, dynamics_train=rep(r.dynamics_train, lr=lr))
    if adapter_steps:
        r = rep(r, adapter_train=rep(r.adapter_train, steps=adapter_steps))
    try:
        if keep_area:
            r = rep(r, model=rep(r.model, sampler=rep(r.model.sampler, keep_area=keep_area)))
        if keep_unchanged:
            r = rep(r, model=rep(r.model, sampler=rep(r.model.sampler, keep_unchanged=True)))
        if projected_context:
            r = rep(r, projected_context=projected_context)
        if rollout_frames and not rollout_context:
            raise ValueError("--rollout-frames caps the frames --rollout-context rolls out: set that too")
        if rollout_context:
            r = rep(r, rollout_context=rollout_context, rollout_frames=rollout_frames)
        if contact_weight > 1:
            r = rep(r, contact_weight=contact_weight)
        if breach_forcing or breach_walls_only or breach_px != 1.5:
            r = rep(
                r,
                breach_forcing=breach_forcing,
                breach_px=breach_px,
                breach_walls_only=breach_walls_only,
            )
        if action_dropout >= 0:
            dyn = rep(r.model.dynamics, action_dropout=action_dropout)
            r = rep(r, model=rep(r.model, dynamics=dyn))
        if chained_head:
            r = rep(r, model=rep(r.model, dynamics=rep(r.model.dynamics, chained=True)))
        if action_guidance:
            sampler = rep(r.model.sampler, action_guidance=action_guidance)
            r = rep(r, model=rep(r.model, sampler=sampler))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if labelled_steps >= 0:
        r = rep(r, labelled_steps=max(labelled_steps, 1))
    if latent_actions:
        r = rep(r, model=rep(r.model, lam=rep(r.model.lam, num_actions=latent_actions)))
    from gedanken.train.cli import check_decoder_options

    check_decoder_options(
        decoder_steps, decoder_weight, decoder_episodes, decoder_only, init, decoder_edge_weight
    )
    if decoder_steps:
        from gedanken.models.autoregressive.decoder import decoder_train_config

        dyn = r.dynamics_train
        r = rep(
            r,
            decoder_train=decoder_train_config(decoder_steps, dyn.num_threads, dyn.progress),
            decoder_tune=rep(
                r.decoder_tune,
                foreground_weight=decoder_weight,
                edge_weight=decoder_edge_weight,
                episodes=decoder_episodes,
            ),
        )
    if threads:
        stages = ("tokenizer_train", "lam_train", "dynamics_train", "adapter_train", "decoder_train")
        r = rep(
            r, **{k: rep(getattr(r, k), num_threads=threads) for k in stages if getattr(r, k) is not None}
        )
    from gedanken.train.cli import export_model, resolve_model_path, run_inputs

    start = resolve_model_path(init) if init is not None else None
    data, out = run_inputs(
        ctx, "autoregressive", world, data, add_data, out, export, episodes or r.episodes, r.episode_steps
    )
    res = train_autoregressive(
        r,
        data,
        out,
        device=device,
        resume=resume,
        seed=seed,
        use_labels=labelled_steps != 0,
        more_data=tuple(add_data),
        init=start,
        train_dynamics=not decoder_only,
    )
    export_model(res.model_dir, export)
    summary = {
        "model": str(res.model_dir),
        "tokenizer_psnr": round(res.tokenizer_psnr, 2),
        "codebook_usage": round(res.codebook["usage"], 3),
        "tokenizer_identity_accuracy": (
            None if not res.fidelity else round(res.fidelity["identity_accuracy"], 3)
        ),
        "labelled_steps": res.labelled_steps,
    }
    amap = res.action_map
    if amap is not None:  # accuracy for discrete action spaces, mean squared error for continuous ones
        key, value = (
            ("latent_to_real_accuracy", amap.accuracy)
            if math.isfinite(amap.accuracy)
            else ("latent_to_real_mse", amap.mse)
        )
        summary[key] = round(value, 4)
    console.print(f"[bold green]done[/] {json.dumps(summary)}")


def register(app: typer.Typer) -> None:
    """Add ``train autoregressive`` to the shared ``train`` group (``app`` is unused: the group is shared)."""
    from gedanken.train.cli import train_app

    train_app.command("autoregressive")(train_autoregressive_cmd)
