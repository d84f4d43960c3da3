"""``gedanken train jepa``: the JEPA family's entry in the shared ``train`` command group."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console

from gedanken.cli_options import device_option, export_option, run_dir_option

console = Console()


def train_jepa_cmd(
    ctx: typer.Context,
    world: str = typer.Option("push", help="Built-in world to collect data from if --data is absent."),
    preset: str = typer.Option("default", help="Recipe preset: tiny | default."),
    data: Path = typer.Option(
        None,
        help="A recorded dataset; a path given here must exist. Without it: data/<world>_poke for the default "
        "preset, data/<world> for tiny, recorded there if absent.",
    ),
    out: Path = run_dir_option("jepa"),
    device: str = typer.Option("auto", callback=device_option, help="auto | cpu | cuda | cuda:N."),
    encoder_steps: int = typer.Option(0, min=0, help="Override the encoder's steps (0 = preset)."),
    predictor_steps: int = typer.Option(0, min=0, help="Override the predictor's steps (0 = preset)."),
    predictor_loss: str = typer.Option("", help="Override the predictor's loss: l1 | mse (empty = preset)."),
    episodes: int = typer.Option(
        0, min=0, help="Episodes to collect when the dataset is absent (0 = preset)."
    ),
    resume: bool = typer.Option(True, help="Continue an interrupted run in --out."),
    threads: int = typer.Option(0, min=0, help="torch threads (0 = preset)."),
    seed: int = typer.Option(0, min=0, help="Initialisation and data-order seed."),
    export: Path = export_option(),
    encoder_from: Path = typer.Option(
        None, help="Use this JEPA checkpoint's trained encoder (skips encoder training; same encoder config)."
    ),
    add_data: list[Path] = typer.Option(
        [], help="More recorded datasets appended to --data's episodes (e.g. collect --policy plan:...)."
    ),
    interaction: int = typer.Option(
        -1, min=-1, help="Hidden width of the predictor's keypoint interaction term (0 = off; -1 = preset)."
    ),
) -> None:
    """Train the JEPA world model: encoder (self-supervised), predictor on frozen latents, probe, decoder."""
    from gedanken.models.jepa.train import RECIPES, train_jepa
    from gedanken.train.cli import check_finite

    check_finite(ctx)
    if preset not in RECIPES:
        raise typer.BadParameter(f"unknown preset {preset!r}; valid: {', '.join(RECIPES)}")
    r = RECIPES[preset]()
    if encoder_steps:
        r = dataclasses.replace(r, encoder_train=dataclasses.replace(r.encoder_train, steps=encoder_steps))
    if predictor_steps:
        r = dataclasses.replace(
            r, predictor_train=dataclasses.replace(r.predictor_train, steps=predictor_steps)
        )
    if predictor_loss:
        try:
            pred = dataclasses.replace(r.model.predictor, loss=predictor_loss)
        except ValueError as e:  # PredictorConfig names the valid losses
            raise typer.BadParameter(str(e)) from e
        r = dataclasses.replace(r, model=dataclasses.replace(r.model, predictor=pred))
    if interaction >= 0:
        pred = dataclasses.replace(r.model.predictor, interaction=interaction)
        r = dataclasses.replace(r, model=dataclasses.replace(r.model, predictor=pred))
    if threads:

        def th(tc):  # noqa: ANN001, ANN202
            return None if tc is None else dataclasses.replace(tc, num_threads=threads)

        r = dataclasses.replace(
            r,
            encoder_train=th(r.encoder_train),
            predictor_train=th(r.predictor_train),
            decoder_train=th(r.decoder_train),
        )
    from gedanken.train.cli import export_model, run_inputs

    data, out = run_inputs(
        ctx,
        "jepa",
        world,
        data,
        add_data,
        out,
        export,
        episodes or r.episodes,
        r.episode_steps,
        records=False,
        policy=r.policy,
    )
    from gedanken.train.cli import resolve_model_path

    res = train_jepa(
        r,
        data,
        out,
        device=device,
        resume=resume,
        seed=seed,
        encoder_from=resolve_model_path(str(encoder_from)) if encoder_from else None,
        more_data=tuple(add_data),
    )
    export_model(res.model_dir, export)
    console.print(
        f"[bold green]done[/] {res.model_dir}  probe R2 (held-out) position {res.probe.position_r2:.3f} "
        f"velocity {res.probe.velocity_r2:.3f}; effective rank {res.collapse.effective_rank:.1f}/"
        f"{res.collapse.dims}; {sum(res.seconds.values()):.0f} s"
    )


def register(app: typer.Typer) -> None:
    """Add ``train jepa`` to the shared ``train`` group (``app`` is the top-level command)."""
    from gedanken.train.cli import train_app

    train_app.command("jepa")(train_jepa_cmd)
