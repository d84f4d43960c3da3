"""The ``gedanken`` command. Each package registers its own sub-commands; this module only assembles them."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.logging import RichHandler

app = typer.Typer(
    name="gedanken",
    help="World models audited as simulators against exact physics ground truth.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, show_time=False)],
    )
    if not verbose:  # libraries' own INFO lines (which file they load from) are noise on every command
        for name in ("sentence_transformers", "transformers", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("reports/demo"), "--out", "-o", help="Output folder."),
    episodes: int = typer.Option(8, help="Episodes recorded per world."),
    audit_episodes: int = typer.Option(24, help="Held-out episodes per split in each audit."),
    horizon: int = typer.Option(64, help="Predicted frames per audited episode."),
) -> None:
    """The main job: record every world, load the shipped models, audit them against the baselines, report."""
    from rich.console import Console

    from gedanken.demo import DemoConfig, run_demo
    from gedanken.progress import progress_messages

    if min(episodes, audit_episodes, horizon) < 1:
        raise typer.BadParameter("--episodes, --audit-episodes and --horizon must be >= 1")
    console = Console()
    cfg = DemoConfig(out=out, episodes=episodes, audit_episodes=audit_episodes, horizon=horizon)
    with progress_messages(console, "demo") as say:
        res = run_demo(cfg, progress=lambda msg: say(f"demo: {msg}"))
    for world, sentences in res.sentences.items():
        console.rule(f"{world}: {res.reports[world] / 'index.html'}")
        for s in sentences:
            console.print(f"  {s}")
    console.print(f"previews: {out / 'previews'}   overview: {out / 'index.html'}   ({res.seconds:.0f} s)")


def _register() -> None:
    # Sub-command groups live next to the code they drive (library modules never parse arguments).
    from gedanken.audit import cli as audit_cli
    from gedanken.data import cli as data_cli
    from gedanken.models import cli as models_cli
    from gedanken.models.autoregressive import cli as autoregressive_cli
    from gedanken.models.jepa import cli as jepa_cli
    from gedanken.planning import cli as planning_cli
    from gedanken.train import cli as train_cli
    from gedanken.worlds import cli as worlds_cli

    worlds_cli.register(app)
    data_cli.register(app)
    audit_cli.register(app)
    train_cli.register(app)
    models_cli.register(app)
    jepa_cli.register(app)
    planning_cli.register(app)
    autoregressive_cli.register(app)


_register()


def main() -> None:
    """Entry point: user errors (bad names, paths, data, checkpoints) print one line and exit 2, no traceback."""
    from rich.console import Console

    from gedanken.data.store import DatasetError
    from gedanken.models.checkpoint import CheckpointError
    from gedanken.planning.objectives import PlanningError

    try:
        app()
    except (
        ValueError,
        FileNotFoundError,
        DatasetError,
        CheckpointError,
        PlanningError,
        FloatingPointError,
    ) as e:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False)
        raise SystemExit(2) from None
    except MemoryError as e:  # a count too large for this machine (numpy names the array it could not make)
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        Console(stderr=True).print(
            f"[red]error:[/red] not enough memory ({e}); ask for fewer steps, frames or episodes",
            highlight=False,
        )
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
