"""Command-line interface of the data package: ``gedanken collect`` and ``gedanken data ...``.

Only argument handling and display live here; the work is done by :mod:`gedanken.data.collect`,
:mod:`gedanken.data.store` and :mod:`gedanken.data.video`. Bad input exits with code 2 and a one-line reason.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gedanken.cli_options import out_dir_option, out_file_option
from gedanken.data.store import DatasetError, EpisodeDataset

console = Console()
err_console = Console(stderr=True)

data_app = typer.Typer(help="Inspect, verify and export episode datasets.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _open(path: Path) -> EpisodeDataset:
    try:
        return EpisodeDataset.open(path)
    except DatasetError as e:
        raise _fail(str(e)) from None


def collect_command(
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        callback=out_dir_option,
        help="Dataset folder (created, or continued if it exists).",
    ),
    world: str | None = typer.Option(None, "--world", "-w", help="Built-in world (bounce, push, ...)."),
    env: str | None = typer.Option(
        None, "--env", "-e", help="Gymnasium id with rgb_array render, e.g. ALE/Pong-v5."
    ),
    episodes: int = typer.Option(..., "--episodes", "-n", help="Total episodes the dataset should hold."),
    split: str | None = typer.Option(
        None, help="Parameter split (train|test|ood|gap|combo); 'external' for --env."
    ),
    steps: int = typer.Option(96, help="Frames per episode (fewer if the episode terminates)."),
    workers: int = typer.Option(2, help="Recording processes."),
    seed: int = typer.Option(0, min=0, help="Base seed: episode i uses seed + i."),
    policy: str | None = typer.Option(
        None,
        help="Behaviour policy (worlds: mixed|poke|poke_walls|poke_into_walls|cross_goal|random|noisy_expert|expert|noop; "
        "Push also plan:<checkpoint>, "
        "MPC on that model toward the goal, with noise).",
    ),
    size: int = typer.Option(64, help="Frames are SIZE x SIZE pixels."),
) -> None:
    """Record episodes of a world or Gymnasium env into a dataset; re-run to continue an interrupted one."""
    from gedanken.data.collect import SourceKind, collect_spec, make_spec

    if (world is None) == (env is None):
        raise _fail("give exactly one of --world NAME or --env GYM_ID")
    source, kind = (world, SourceKind.WORLD) if world is not None else (env, SourceKind.GYM)
    assert source is not None
    if episodes < 1:
        raise _fail(f"--episodes must be >= 1, got {episodes}")
    if workers < 1:
        raise _fail(f"--workers must be >= 1, got {workers}")
    try:
        spec = make_spec(source, kind=kind, split=split, steps=steps, seed=seed, policy=policy, size=size)
    except ValueError as e:
        raise _fail(str(e)) from None
    if out.is_dir() and not (out / "zarr.json").exists() and any(out.iterdir()):
        raise _fail(f"{out} is a non-empty folder that holds no gedanken dataset; choose another --out")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=console, transient=False)
    task = bar.add_task(f"{spec.source} → {out}", total=episodes)

    def show(done: int, total: int) -> None:  # the bar appears once the dataset there has been accepted
        bar.start()
        bar.update(task, completed=done, total=total)

    try:
        result = collect_spec(spec, out, episodes, workers=workers, progress=show)
    except DatasetError as e:
        raise _fail(str(e)) from None
    except KeyboardInterrupt:
        _stop(bar)
        err_console.print("interrupted: committed episodes are kept; run the same command again to continue")
        raise typer.Exit(code=130) from None
    finally:
        _stop(bar)
    console.print(
        f"{result.path}: {result.episodes_total} episodes (+{result.episodes_added}, {result.steps_added} steps) "
        f"in {result.seconds:.1f} s"
    )


def _stop(bar: Progress) -> None:
    """Stop ``bar`` if it was ever shown (stopping one that was not prints an empty line)."""
    if bar.live.is_started:
        bar.stop()


@data_app.command("info")
def info_command(path: Path = typer.Argument(..., help="Dataset folder.")) -> None:
    """Summarise a dataset: episodes, steps, worlds, splits, frame size, action space, size on disk."""
    info = _open(path).info()
    table = Table(title=str(info.path), show_header=False, title_justify="left")
    table.add_column(style="bold cyan")
    table.add_column()
    a = info.action_spec
    action = "—" if a is None else (f"discrete({a.n})" if a.kind == "discrete" else f"{a.kind}[{a.dim}]")
    rows = [
        ("schema version", str(info.schema_version)),
        ("episodes", str(info.episodes)),
        ("steps", str(info.steps)),
        (
            "episode length",
            "—"
            if not info.episodes
            else f"{info.episode_length[0]}–{info.episode_length[1]} (mean {info.episode_length[2]:.1f})",
        ),
        ("frame size", "—" if info.frame_size is None else f"{info.frame_size[0]}×{info.frame_size[1]}"),
        ("action space", action),
        ("object states", f"{info.max_objects} slots" if info.max_objects else "none"),
        ("worlds", ", ".join(f"{k} ({v})" for k, v in info.worlds.items()) or "—"),
        ("splits", ", ".join(f"{k} ({v})" for k, v in info.splits.items()) or "—"),
        ("policies", ", ".join(f"{k or '—'} ({v})" for k, v in info.policies.items()) or "—"),
        ("size on disk", _human(info.size_bytes)),
        ("captions", "\n".join(info.captions_sample) or "—"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    console.print(
        f"(the chunks were not read: `gedanken data verify {path}` checks every one)", highlight=False
    )


@data_app.command("verify")
def verify_command(path: Path = typer.Argument(..., help="Dataset folder.")) -> None:
    """Read every committed chunk and check its checksum."""
    ds = _open(path)
    try:
        ds.verify()
    except DatasetError as e:
        raise _fail(str(e)) from None
    console.print(f"{path}: {len(ds)} episodes, {ds.num_steps} steps, every chunk present and intact")


@data_app.command("export-mp4")
def export_mp4_command(
    path: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", callback=out_file_option, help="Output .mp4 file."),
    episode: int = typer.Option(0, "--episode", help="Episode index."),
    scale: int = typer.Option(4, help="Integer nearest-neighbour upscale factor."),
    fps: float | None = typer.Option(None, help="Frames per second (default: the episode's)."),
) -> None:
    """Write one episode as an mp4 clip for viewing."""
    from gedanken.data.video import MAX_FPS, MIN_FPS, write_mp4

    if scale < 1 or scale > 32:
        raise _fail(f"--scale must be between 1 and 32, got {scale}")
    if fps is not None and not MIN_FPS <= fps <= MAX_FPS:
        raise _fail(f"--fps must be between {MIN_FPS:g} and {MAX_FPS:g}, got {fps}")
    ds = _open(path)
    if not 0 <= episode < len(ds):
        raise _fail(f"--episode {episode} out of range: {path} has {len(ds)} episodes (0..{len(ds) - 1})")
    try:
        ep = ds.episode(episode)
    except DatasetError as e:
        raise _fail(str(e)) from None
    try:
        info = write_mp4(ep.frames, out, fps=fps or ep.meta.fps, scale=scale)
    except OSError as e:
        said = e.strerror or str(e)
        raise _fail(said if str(out) in said else f"cannot write {out}: {said}") from None
    console.print(f"{info.path}: {info.frames} frames, {info.size[1]}×{info.size[0]} at {info.fps:g} fps")


@data_app.command("envs")
def envs_command(
    contains: str = typer.Argument("", help="Only ids containing this text (case-insensitive)."),
) -> None:
    """List the ids that `gedanken collect` accepts: built-in worlds and registered Gymnasium envs."""
    from gedanken.worlds import WORLD_ENTRIES
    from gedanken.worlds.external import registered_ids

    needle = contains.lower()
    if (
        needle
        and not any(needle in w for w in WORLD_ENTRIES)
        and not any(needle in i.lower() for i in registered_ids())
    ):
        raise _fail(
            f"no world or Gymnasium id contains {contains!r}; run `gedanken data envs` for all of them"
        )
    console.print("[bold]built-in worlds[/] (--world): " + ", ".join(w for w in WORLD_ENTRIES if needle in w))
    ids = [i for i in registered_ids() if needle in i.lower() and not i.startswith("gedanken/")]
    console.print(f"[bold]Gymnasium ids[/] (--env), {len(ids)}:")
    console.print("  ".join(ids), soft_wrap=False)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def register(app: typer.Typer) -> None:
    """Add ``collect`` and the ``data`` group to the ``gedanken`` command."""
    app.command("collect")(collect_command)
    app.add_typer(data_app, name="data")
