"""``gedanken train diffusion`` and what every ``train`` command shares (datasets, run folders, exports).

``gedanken rollout``, ``generate`` and ``play`` run a trained model: :mod:`gedanken.models.cli`.

Other families add their trainer to the same group: ``from gedanken.train.cli import train_app`` and
``@train_app.command("jepa")``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from gedanken.cli_options import (
    MODEL_FILES,
    breach_forcing_option,
    breach_px_option,
    breach_walls_only_option,
    contact_weight_option,
    device_option,
    export_option,
    run_dir_option,
)

log = logging.getLogger(__name__)
console = Console()

train_app = typer.Typer(
    help="Train a world model (one shared trainer; resumes from <out>/.../last).", no_args_is_help=True
)


def resolve_model_path(spec: str) -> Path:
    """A checkpoint directory, or the name of a shipped one (``diffusion_bounce``)."""
    p = Path(spec)
    if p.exists():
        return p
    from gedanken.models import CHECKPOINT_ROOT

    shipped = CHECKPOINT_ROOT / spec
    if shipped.is_dir():
        return shipped
    avail = sorted(x.name for x in CHECKPOINT_ROOT.iterdir()) if CHECKPOINT_ROOT.is_dir() else []
    raise typer.BadParameter(f"{spec!r} is neither a checkpoint directory nor a shipped model {avail}")


def recorded_worlds(path: Path) -> tuple[str, ...]:
    """The worlds the dataset at ``path`` was recorded from; () when there is none there (yet).
    ``DatasetError`` when its header is damaged."""
    if not (path / "zarr.json").exists():
        return ()
    from gedanken.data.store import EpisodeDataset

    return EpisodeDataset.open(path, check_chunks=False).worlds


def dataset_for(
    world: str,
    data: Path | None,
    episodes: int,
    episode_steps: int,
    *,
    collect_given: bool = True,
    policy: str | None = None,
    world_given: bool = False,
    can_record: bool = False,
    before_recording: Callable[[Path], None] | None = None,
) -> Path:
    """The dataset a ``train`` command reads: ``data`` or ``data/<world>``, recorded from ``world`` if absent.

    With ``collect_given=False`` only the default location is recorded into; an explicit ``data`` must exist
    (``diffusion`` and ``autoregressive`` record into an absent ``data`` only when the user typed ``--world``).
    A behaviour ``policy`` other than the collector's default records into ``data/<world>_<policy>``.
    ``world_given`` (the user typed ``--world``): an existing ``data`` recorded from another world is refused.
    ``can_record``: the command records into an absent ``data`` once ``--world`` is typed (said in the refusal).
    ``before_recording(path)`` runs the command's own checks first, so that a refused command records nothing.
    """
    name = world.replace("/", "_") + (f"_{policy}" if policy not in (None, "mixed") else "")
    path = data or Path("data") / name
    if world_given and data is not None:
        from gedanken.data.store import DatasetError
        from gedanken.worlds import world_name

        try:
            held = recorded_worlds(path)
        except DatasetError as e:
            raise typer.BadParameter(str(e), param_hint="--data") from None
        if held and world_name(world) not in {world_name(h) for h in held}:
            raise typer.BadParameter(
                f"--world {world}, but {path} was recorded from {', '.join(held)}; drop --world or give a "
                f"dataset of {world}",
                param_hint="--world",
            )
    if not (path / "zarr.json").exists() and (data is None or collect_given):
        from gedanken.data.collect import collect

        if before_recording is not None:
            before_recording(path)
        console.print(f"collecting {episodes} episodes of {world} into {path}")
        collect(world, path, episodes, steps=episode_steps, seed=0, workers=1, policy=policy)
    if not (path / "zarr.json").exists():  # a --data that names nothing: most likely a typo
        how = "type --world too, to record one there" if can_record else "record one with `gedanken collect`"
        raise typer.BadParameter(f"no dataset at {path}; {how}", param_hint="--data")
    return path


def run_dir(family: str, world: str, data: Path, out: Path | None) -> Path:
    """``out``, or ``runs/<family>_<world>`` named after the world ``data`` was recorded from (when it holds one),
    so that ``--data`` alone does not file a Bounce run under the ``--world`` default."""
    if out is not None:
        return out
    from gedanken.data.store import DatasetError

    try:
        held = recorded_worlds(data)
    except DatasetError:  # the training says so, naming the file
        held = ()
    name = held[0] if len(held) == 1 else world
    return Path("runs") / f"{family}_{name.replace('/', '_')}"


def check_finite(ctx: typer.Context) -> None:
    """Every number option of the command is finite: NaN passes every range check (it compares False), so without
    this a ``--lr nan`` trains the first stages before the optimizer refuses it."""
    import math

    for name, value in ctx.params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(
                f"must be a finite number, got {value}", param_hint=f"--{name.replace('_', '-')}"
            )


def typed(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option ``name`` on the command line (rather than its default)."""
    source = ctx.get_parameter_source(name)  # an enum of the click that typer carries (typer._click here)
    return source is not None and source.name == "COMMANDLINE"


def run_inputs(
    ctx: typer.Context,
    family: str,
    world: str,
    data: Path | None,
    add_data: list[Path],
    out: Path | None,
    export: Path | None,
    episodes: int,
    episode_steps: int,
    *,
    records: bool = True,
    policy: str | None = None,
) -> tuple[Path, Path]:
    """``train <family>``'s dataset and run folder, every path checked before any stage trains.

    ``records``: an absent ``--data`` is recorded into when the user typed ``--world`` (diffusion, autoregressive);
    otherwise only the default ``data/<world>`` is (:func:`dataset_for`)."""
    world_given = typed(ctx, "world")

    def paths_first(path: Path) -> None:  # the run folder and --export, before a dataset is recorded
        check_run_paths(run_dir(family, world, path, out), export, path, add_data)

    data = dataset_for(
        world,
        data,
        episodes,
        episode_steps,
        collect_given=records and world_given,
        policy=policy,
        world_given=world_given,
        can_record=records,
        before_recording=paths_first,
    )
    out = run_dir(family, world, data, out)
    check_run_paths(out, export, data, add_data)
    return data, out


def check_run_paths(out: Path, export: Path | None, data: Path, add_data: list[Path]) -> None:
    """Before training: ``--export`` lies outside the run folder ``out`` and does not hold it, and no dataset is
    given twice (its episodes would be trained on twice, and the held-out ones seen in training)."""
    given = [data, *add_data]
    seen = [p.resolve() for p in given]
    if len(set(seen)) != len(seen):
        twice = next(p for p, r in zip(given, seen, strict=True) if seen.count(r) > 1)
        raise typer.BadParameter(f"{twice} is given twice (--data / --add-data)", param_hint="--add-data")
    if export is None:
        return
    e, o = export.resolve(), out.resolve()
    if e == o or o in e.parents or e in o.parents:
        raise typer.BadParameter(
            f"{export} is or overlaps the run folder {out}; export elsewhere", param_hint="--export"
        )


def export_model(model_dir: Path, export: Path | None) -> None:
    """Copy a finished run's exported model (no trainer state) to ``export``, replacing an earlier export there
    (``--export`` was checked before training: it holds nothing else)."""
    if export is None:
        return
    import shutil

    export.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        (export / name).unlink(missing_ok=True)
    for name in MODEL_FILES:
        shutil.copy2(model_dir / name, export / name)


def check_decoder_options(
    steps: int, weight: float, episodes: int, only: bool, init: object, edge_weight: float = 0.0
) -> None:
    """The decoder fine-tune's options (``--decoder-*``), checked alike for every family that has the stage."""
    if edge_weight < 0:
        raise typer.BadParameter(f"--decoder-edge-weight must be >= 0, got {edge_weight}")
    if steps < 0 or weight < 0 or episodes < 1:
        raise typer.BadParameter(
            "--decoder-steps and --decoder-weight must be >= 0 and --decoder-episodes >= 1, got "
            f"{steps}, {weight}, {episodes}"
        )
    if only and (init is None or not steps):
        raise typer.BadParameter("--decoder-only needs --init (a trained model) and --decoder-steps > 0")


@train_app.command("diffusion")
def train_diffusion_cmd(
    ctx: typer.Context,
    world: str = typer.Option(
        "bounce", help="Built-in world (or Gymnasium id) to collect data from if --data is absent."
    ),
    preset: str = typer.Option("default", help="Recipe preset: tiny | default."),
    data: Path = typer.Option(
        None, help="Dataset to train on (default: data/<world>); collected from --world if absent."
    ),
    add_data: list[Path] = typer.Option(
        [],
        help="More recorded datasets (same world, frame size, action space) whose episodes are trained on "
        "after --data's, e.g. one collected with another --policy. Repeatable.",
    ),
    out: Path = run_dir_option("diffusion"),
    device: str = typer.Option("auto", callback=device_option, help="auto | cpu | cuda | cuda:N."),
    steps: int = typer.Option(0, min=0, help="Override the DiT's training steps (0 = preset)."),
    tokenizer_steps: int = typer.Option(
        0,
        help="Override the tokenizer's training steps (0 = preset); with --init, fine-tune the checkpoint's "
        "tokenizer this many steps before its DiT trains on (0 = keep it).",
    ),
    tokenizer_lr: float = typer.Option(
        0.0,
        help="Override the tokenizer's peak learning rate (0 = preset: 2e-3, or 3e-4 for an --init fine-tune).",
    ),
    hard_weight: float = typer.Option(
        -1.0,
        help="Extra tokenizer loss weight on pixels it reconstructs in the wrong colour (-1 = preset).",
    ),
    lr: float = typer.Option(0.0, help="Override the DiT's peak learning rate (0 = preset)."),
    init: Path = typer.Option(
        None,
        help="Start from this diffusion checkpoint (directory or shipped name): keep its tokenizer (unless "
        "--tokenizer-steps) and train its DiT on, e.g. to train a shipped model longer.",
    ),
    edge_embedding: int = typer.Option(
        -1, help="Border-distance levels the DiT embeds (0 = none, -1 = preset); with --init, added at zero."
    ),
    prev_frames: int = typer.Option(
        0,
        help="Past frames each noisy DiT token embeds at its position (0 = preset); with --init, added at zero.",
    ),
    dit_depth: int = typer.Option(
        0, help="DiT blocks (0 = preset); with --init, more blocks than it has are appended at identity."
    ),
    change_weight: float = typer.Option(
        -1.0, help="Extra DiT loss weight on latent positions that change between frames (-1 = preset)."
    ),
    self_forcing: float = typer.Option(
        0.0, help="Share of DiT batches whose context is the model's own one-step predictions (0 = off)."
    ),
    rollout_forcing: float = typer.Option(
        0.0,
        help="Share of DiT batches whose context is the model's own multi-frame rollout under the true actions "
        "(0 = off).",
    ),
    breach_forcing: float = breach_forcing_option("DiT windows whose context"),
    breach_px: float = breach_px_option(),
    breach_walls_only: bool = breach_walls_only_option(),
    episodes: int = typer.Option(
        0, min=0, help="Episodes to collect when the dataset is absent (0 = preset)."
    ),
    resume: bool = typer.Option(True, help="Continue an interrupted run in --out."),
    size_weight: float = typer.Option(
        1.0,
        help="Up to this factor of DiT loss on the latent cells of small objects, so they are not drawn dim "
        "(palette data; 1 = off).",
    ),
    edge_weight: float = typer.Option(
        1.0,
        help="DiT loss factor on the latent cells of objects within 8 px of the frame's border (the walls), so "
        "objects pressed against a wall are placed exactly (palette data; 1 = off).",
    ),
    contact_weight: float = contact_weight_option("DiT loss factor on the latent cells"),
    decoder_steps: int = typer.Option(
        0,
        help="Then fine-tune the decoder this many steps on the DiT's one-step predictions of training "
        "episodes, so that objects it is unsure of are not drawn dim (0 = off).",
    ),
    decoder_weight: float = typer.Option(
        4.0, help="Extra decoder-fine-tune loss weight on object pixels (more: brighter and larger objects)."
    ),
    decoder_edge_weight: float = typer.Option(
        0.0,
        help="Further decoder-fine-tune weight on object pixels within 8 px of the frame's border, so objects at a "
        "wall are drawn to their full extent (0 = off).",
    ),
    decoder_only: bool = typer.Option(
        False, help="With --init and --decoder-steps: skip the DiT stage, fine-tune the decoder alone."
    ),
    decoder_episodes: int = typer.Option(
        256, help="Training episodes whose one-step predictions the decoder fine-tune learns from."
    ),
    decoder_display: bool = typer.Option(
        False,
        help="Fine-tune a separate decoder for the frames the model shows, leaving the tokenizer's (which "
        "draws the frames re-encoded into the context) as it is.",
    ),
    threads: int = typer.Option(0, min=0, help="torch threads (0 = preset)."),
    seed: int = typer.Option(0, min=0, help="Initialisation and data-order seed."),
    export: Path = export_option(),
) -> None:
    """Train the diffusion world model: tokenizer, then the DiT on frozen latents (then, optionally, the
    decoder on the DiT's predictions)."""
    import dataclasses

    from gedanken.models.diffusion.recipe import RECIPES, decoder_preset, train_diffusion

    check_finite(ctx)
    if preset not in RECIPES:
        raise typer.BadParameter(f"unknown preset {preset!r}; valid: {', '.join(RECIPES)}")
    r = RECIPES[preset]()
    if steps:
        r = dataclasses.replace(r, dit_train=dataclasses.replace(r.dit_train, steps=steps))
    if lr < 0:
        raise typer.BadParameter(f"--lr must be positive, got {lr}")
    if lr:
        r = dataclasses.replace(r, dit_train=dataclasses.replace(r.dit_train, lr=lr))
    if edge_embedding < -1:
        raise typer.BadParameter(
            f"--edge-embedding must be >= 0 (or -1 for the preset), got {edge_embedding}"
        )
    if prev_frames < 0:
        raise typer.BadParameter(f"--prev-frames must be >= 1 (or 0 for the preset), got {prev_frames}")
    if not 0.0 <= self_forcing <= 1.0:
        raise typer.BadParameter(f"--self-forcing must be in [0, 1], got {self_forcing}")
    if not 0.0 <= rollout_forcing <= 1.0 - self_forcing:
        raise typer.BadParameter(
            f"--rollout-forcing must be in [0, 1 - --self-forcing], got {rollout_forcing}"
        )
    dit, flow = r.model.dit, r.model.flow
    if edge_embedding >= 0:
        dit = dataclasses.replace(dit, edge_embedding=edge_embedding)
    if prev_frames:
        if prev_frames > 1 and not dit.prev_frame and init is None:  # before any data is collected
            raise typer.BadParameter(
                f"--prev-frames {prev_frames} needs the previous-frame embedding; preset {preset!r} has none"
            )
        dit = dataclasses.replace(dit, prev_frames=prev_frames)
    if dit_depth < 0:
        raise typer.BadParameter(f"--dit-depth must be >= 1 (or 0 for the preset), got {dit_depth}")
    if dit_depth:
        dit = dataclasses.replace(dit, depth=dit_depth)
    if change_weight >= 0:
        flow = dataclasses.replace(flow, change_weight=change_weight)
    if self_forcing:
        flow = dataclasses.replace(flow, self_forcing=self_forcing)
    if rollout_forcing:
        flow = dataclasses.replace(flow, rollout_forcing=rollout_forcing)
    try:
        flow = dataclasses.replace(
            flow,
            size_weight=size_weight,
            edge_weight=edge_weight,
            contact_weight=contact_weight,
            breach_forcing=breach_forcing,
            breach_px=breach_px,
            breach_walls_only=breach_walls_only,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    r = dataclasses.replace(r, model=dataclasses.replace(r.model, dit=dit, flow=flow))
    if tokenizer_steps < 0 or tokenizer_lr < 0:
        raise typer.BadParameter(
            f"--tokenizer-steps and --tokenizer-lr must be >= 0, got {tokenizer_steps}, {tokenizer_lr}"
        )
    if hard_weight < -1:
        raise typer.BadParameter(f"--hard-weight must be >= 0 (or -1 for the preset), got {hard_weight}")
    if hard_weight >= 0:
        tok_cfg = dataclasses.replace(r.model.tokenizer, hard_weight=hard_weight)
        r = dataclasses.replace(r, model=dataclasses.replace(r.model, tokenizer=tok_cfg))
    if init is not None:
        r = dataclasses.replace(r, tokenizer_finetune_steps=tokenizer_steps)
        if tokenizer_lr:
            r = dataclasses.replace(r, tokenizer_finetune_lr=tokenizer_lr)
    elif tokenizer_steps or tokenizer_lr:
        tt = r.tokenizer_train
        tt = dataclasses.replace(tt, steps=tokenizer_steps or tt.steps, lr=tokenizer_lr or tt.lr)
        r = dataclasses.replace(r, tokenizer_train=tt)
    check_decoder_options(
        decoder_steps, decoder_weight, decoder_episodes, decoder_only, init, decoder_edge_weight
    )
    if decoder_steps:
        r = dataclasses.replace(
            r,
            decoder_train=decoder_preset(decoder_steps, r.dit_train.num_threads, r.dit_train.progress),
            decoder_tune=dataclasses.replace(
                r.decoder_tune,
                foreground_weight=decoder_weight,
                edge_weight=decoder_edge_weight,
                display=decoder_display,
                episodes=decoder_episodes,
            ),
        )
    if threads:
        r = dataclasses.replace(
            r,
            tokenizer_train=dataclasses.replace(r.tokenizer_train, num_threads=threads),
            dit_train=dataclasses.replace(r.dit_train, num_threads=threads),
        )
        if r.decoder_train is not None:
            r = dataclasses.replace(
                r, decoder_train=dataclasses.replace(r.decoder_train, num_threads=threads)
            )
    data, out = run_inputs(
        ctx, "diffusion", world, data, add_data, out, export, episodes or r.episodes, r.episode_steps
    )
    start = resolve_model_path(str(init)) if init is not None else None
    res = train_diffusion(
        r,
        data,
        out,
        device=device,
        resume=resume,
        seed=seed,
        init=start,
        more_data=tuple(add_data),
        train_dit=not decoder_only,
    )
    export_model(res.model_dir, export)
    fid = res.tokenizer_fidelity
    judged = (
        ""  # data without a palette (resized Atari frames, camera video): the judge has no colours to read
    )
    if "objects_kept" in fid:
        err = fid.get("position_error_px", float("nan"))
        where = f", position error {err:.2f} px" if err == err else ""  # NaN: no object judged in both
        judged = f" (objects kept {fid['objects_kept']:.3f}{where})"
    losses = [
        f"{name} loss {st.history[-1]['loss']:.4f}"
        for name, st in (("DiT", res.dit), ("decoder", res.decoder))
        if st is not None and st.history
    ]
    console.print(
        f"[bold green]done[/] {res.model_dir}  tokenizer PSNR {res.tokenizer_psnr:.2f} dB"
        f"{judged if fid else ''}" + "".join(f", {x}" for x in losses)
    )


def register(app: typer.Typer) -> None:
    """Add the ``train`` group to the ``gedanken`` command."""
    app.add_typer(train_app, name="train")
