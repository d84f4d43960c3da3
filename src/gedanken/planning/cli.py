"""``gedanken plan``: drive one or more world models toward Push goals with CEM/MPPI and write a report."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gedanken.cli_options import device_option, out_dir_option

log = logging.getLogger(__name__)
console = Console()


def _plan_dir(value: Path) -> Path:
    """``--out``: a writable folder that is new, empty, or an earlier plan report (checked before planning)."""
    out_dir_option(value)
    if value.is_dir() and any(value.iterdir()) and not (value / "plan.json").exists():
        raise typer.BadParameter(
            f"{value} is a non-empty folder that holds no plan report; choose another --out"
        )
    return value


def plan_cmd(
    model: list[str] = typer.Option(
        ...,
        help="Checkpoint directory, shipped name (jepa_push), 'simulator' (the "
        "ceiling) or 'random' (the floor); repeat for a table. Join checkpoints with '+' for an ensemble "
        "(jepa_push+jepa_push_s1+jepa_push_s2), planned with --risk.",
    ),
    world: str = typer.Option("push", help="World with goals (only 'push' so far)."),
    episodes: int = typer.Option(50, min=1, help="Start/goal pairs per model."),
    out: Path = typer.Option(
        Path("reports/plan"),
        callback=_plan_dir,
        help="Report directory (plan.json, index.html, clips/).",
    ),
    planner: str = typer.Option("cem", help="cem | mppi."),
    goal: str = typer.Option("state", help="state (block positions via states/probe) | image | latent."),
    split: str = typer.Option("train", help="Parameter split of the episodes."),
    max_steps: int = typer.Option(100, min=1, help="N: steps allowed per episode."),
    shaping: float = typer.Option(
        4.0, help="Weight of the state goal's pusher-behind-the-block term (0 = off)."
    ),
    keepout: float = typer.Option(
        16.0,
        help="Weight of the state goal's term keeping the pusher off a block's front and sides (0 = off).",
    ),
    keepout_margin: float = typer.Option(
        3.0, help="Reach of that term beyond the shaping standoff (world units)."
    ),
    risk: float = typer.Option(
        1.0,
        help="Ensembles: cost = members' mean cost + RISK x their disagreement on predicted positions "
        "(world units; 0 = mean cost).",
    ),
    horizon: int = typer.Option(8, help="Planning horizon."),
    candidates: int = typer.Option(300, help="Candidate action sequences per iteration."),
    iterations: int = typer.Option(0, help="Planner iterations per step (0 = the planner's default)."),
    clips: int = typer.Option(3, min=0, help="Episodes per model whose clips are written."),
    seed: int = typer.Option(0, min=0, help="Episode and planner seed."),
    threads: int = typer.Option(0, min=0, help="torch threads (0 = torch's default)."),
    device: str = typer.Option(
        "cpu", callback=device_option, help="Device for learned models: cpu | cuda | cuda:N | auto."
    ),
) -> None:
    """Model-predictive control toward goals: success rate, steps to success, latency, clips."""
    import torch

    from gedanken.models.checkpoint import config_to_json
    from gedanken.planning.evaluate import EvalConfig, PlannerKind, run_push
    from gedanken.planning.report import write_report
    from gedanken.planning.tasks import GoalKind, PushTaskConfig

    if world != "push":
        raise typer.BadParameter(f"goal-reaching tasks exist for 'push' only, got {world!r}")
    try:
        kind = PlannerKind(planner)
    except ValueError:
        raise typer.BadParameter(
            f"unknown --planner {planner!r}; valid: {', '.join(k.value for k in PlannerKind)}"
        ) from None
    try:
        goal_kind = GoalKind(goal)
    except ValueError:
        raise typer.BadParameter(
            f"unknown --goal {goal!r}; valid: {', '.join(k.value for k in GoalKind)}"
        ) from None
    if threads:
        torch.set_num_threads(threads)
    try:
        task = PushTaskConfig(
            split=split,
            max_steps=max_steps,
            seed=seed,
            shaping=shaping,
            keepout=keepout,
            keepout_margin=keepout_margin,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if not 0 <= risk < float("inf"):  # NaN too
        raise typer.BadParameter(f"--risk must be finite and >= 0, got {risk}")
    if len(set(model)) != len(model):
        raise typer.BadParameter(f"a model is named twice: {', '.join(model)}", param_hint="--model")
    cfg = EvalConfig(episodes=episodes, planner=kind, goal=goal_kind, clips=clips, seed=seed, risk=risk)
    cem = dataclasses.replace(
        # the default keeps the cheapest tenth (30 of 300); fewer candidates keep a tenth too, never all of them
        cfg.cem,
        horizon=horizon,
        candidates=candidates,
        elites=min(cfg.cem.elites, max(1, candidates // 10)),
    )
    mppi = dataclasses.replace(cfg.mppi, horizon=horizon, candidates=candidates)
    if iterations:
        cem, mppi = (
            dataclasses.replace(cem, iterations=iterations),
            dataclasses.replace(mppi, iterations=iterations),
        )
    cfg = dataclasses.replace(cfg, cem=cem, mppi=mppi)
    loaded = [(spec, spec if spec in ("simulator", "random") else _load(spec, device)) for spec in model]
    if goal_kind is GoalKind.LATENT:  # every model is checked before any of them plans
        from gedanken.planning.objectives import LatentEncoder

        for spec, wm in loaded:  # random ignores the goal; simulator is a str here, which has an encode()
            if spec == "simulator" or (spec != "random" and not isinstance(wm, LatentEncoder)):
                raise typer.BadParameter(
                    f"a latent goal needs a model that encodes pictures; {spec!r} does not",
                    param_hint="--goal",
                )
    results = []
    for spec, wm in loaded:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            t = bar.add_task(f"plan {spec}", total=episodes, info="")
            wins = [0]

            def tick(i: int, r, t=t, bar=bar, wins=wins) -> None:  # noqa: ANN001
                wins[0] += int(r.success)
                bar.update(t, completed=i + 1, info=f"success {wins[0]}/{i + 1}")

            results.append(run_push(wm, task, cfg, progress=tick, name=spec))
    path = write_report(
        results, out, task={"world": world, **config_to_json(task)}, config=config_to_json(cfg)
    )
    table = Table("model", "planner", "goal", "success", "steps", "plan ms p50")
    for r in results:
        s = r.summary()
        table.add_row(
            s["model"],
            s["planner"],
            s["goal"],
            f"{s['successes']}/{s['episodes']}",
            "-" if s["steps_to_success_mean"] is None else f"{s['steps_to_success_mean']:.1f}",
            f"{s['plan_ms_p50'] or 0:.1f}",
        )
    console.print(table)
    console.print(f"report: {path} and {path.parent / 'index.html'}")


def _load(spec: str, device: str):  # noqa: ANN202
    """A checkpoint, or an :class:`Ensemble` of the ``+``-joined checkpoints of ``spec``."""
    from gedanken.models import load_checkpoint
    from gedanken.models.actions import check_model_world
    from gedanken.planning.ensemble import Ensemble
    from gedanken.train.cli import resolve_model_path
    from gedanken.train.trainer import resolve_device

    parts = spec.split("+")
    if len(parts) > 1 and any(p in ("", "simulator", "random") for p in parts):
        raise typer.BadParameter(
            f"ensemble {spec!r}: join checkpoint directories or shipped names with '+' "
            "(no empty parts; 'simulator' and 'random' cannot be members)"
        )
    models = [load_checkpoint(resolve_model_path(p), device=resolve_device(device)) for p in parts]
    for p, m in zip(parts, models, strict=True):
        check_model_world(m, "push", p)
    return models[0] if len(models) == 1 else Ensemble(models, name=spec)


def register(app: typer.Typer) -> None:
    """Add ``plan`` to the ``gedanken`` command."""
    app.command("plan")(plan_cmd)
