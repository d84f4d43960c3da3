"""``gedanken audit``: measure world models (checkpoints or baselines) as simulators and write a report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from gedanken.audit.config import EDGE_RULES, AuditConfig
from gedanken.cli_options import MAX_CANDIDATES, out_dir_option
from gedanken.progress import progress_messages

_err = Console(stderr=True)


def _report_dir(value: Path) -> Path:
    """``--out``: a folder that can be written and holds no files of anything but an audit (checked first)."""
    from gedanken.audit.report import check_report_dir

    out_dir_option(value)
    try:
        check_report_dir(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return value


def audit(
    model: list[str] = typer.Option(
        ...,
        "--model",
        "-m",
        help="Checkpoint directory, shipped model name (diffusion_push) or baseline name (ground_truth, "
        "copy_last, constant_velocity, noise); repeat for several.",
    ),
    world: str = typer.Option(
        "bounce", "--world", "-w", help="Built-in world, or a Gymnasium id (pixel metrics only)."
    ),
    split: list[str] = typer.Option(
        None,
        "--split",
        "-s",
        help="Splits, repeated or comma-separated: test, ood, gap, combo, train (default test; 'external' for a "
        "Gymnasium id).",
    ),
    episodes: int = typer.Option(100, "--episodes", "-n", max=10_000, help="Held-out episodes per split."),
    horizon: int = typer.Option(64, "--horizon", max=10_000, help="Predicted frames per episode."),
    context: int = typer.Option(4, "--context", max=256, help="Context frames given to the model."),
    seed: int = typer.Option(0, "--seed", min=0, help="Offset added to every split's held-out seed base."),
    branches: int = typer.Option(
        2, "--branches", min=0, max=64, help="Counterfactual action sequences per branched episode."
    ),
    edge_rule: str = typer.Option(
        "centroid",
        "--edge-rule",
        help="How a circle touching the frame's edge is placed for the solidity rule: centroid (its cut "
        "centroid) or far_side (its bounding box's far side, the rule before session 31).",
    ),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="Also audit every built-in baseline not already given."
    ),
    verify: int = typer.Option(
        0,
        "--verify",
        min=0,
        max=MAX_CANDIDATES,
        help="Also audit each learned model sampling with the solidity verifier, best of up to N samples per "
        "frame (named <model>+verify<N>, beside the model as it is; diffusion and autoregressive models; baselines "
        "and other models are audited as they are; 0 = off).",
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Processes to record, simulate and audit on (0: every available core)."
    ),
    threads: int = typer.Option(
        0,
        "--threads",
        help="torch threads in this process (0: torch's default, every core). Set 1 when several audits or a "
        "training share the cores: oversubscribed threads slow everything (forked --workers use 1 each).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", callback=_report_dir, help="Report directory (audit.json + index.html)."
    ),
) -> None:
    """Audit models against exact ground truth; write JSON for machines and one HTML page for people."""
    from gedanken.audit.parallel import default_workers
    from gedanken.audit.report import write_report
    from gedanken.audit.run import audit_splits, run_audit
    from gedanken.models.checkpoint import CheckpointError

    if threads < 0:
        raise typer.BadParameter(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    if edge_rule not in EDGE_RULES:
        raise typer.BadParameter(
            f"{edge_rule!r} is not one of {', '.join(EDGE_RULES)}", param_hint="--edge-rule"
        )
    splits = [p.strip() for s in split or [] for p in s.split(",") if p.strip()] or None
    if split and splits is None:  # given, but only empty names: not silently the default
        raise typer.BadParameter(
            "no split named; give at least one of test, ood, gap, combo, train", param_hint="--split"
        )
    try:
        splits = audit_splits(world, splits)  # a bad world or split is said before any progress line
        models = _with_verified(model, world, verify) if verify else model
        with progress_messages(_err, "auditing...") as say:
            result = run_audit(
                models,
                world,
                splits,
                episodes=episodes,
                horizon=horizon,
                context=context,
                seed=seed,
                config=AuditConfig(branches=branches, edge_rule=edge_rule),
                baselines=baselines,
                workers=workers or default_workers(),
                progress=say,
            )
            path = write_report(result, out)
    except (ValueError, CheckpointError, FileNotFoundError) as e:
        _err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(code=2) from None
    for m in result.models:
        typer.echo(m.sentence)
    _print_bars(result.to_json())
    typer.echo(f"report: {path / 'index.html'} ({result.seconds:.1f} s)")


def _with_verified(specs: list[str], world: str, candidates: int) -> list:
    """``specs``, each learned model followed by a copy that samples with the solidity verifier (a model that
    cannot is audited as it is, and said; none that can is refused)."""
    import copy
    import dataclasses

    from gedanken.audit.registry import BASELINES, load_model
    from gedanken.models.verifier import use_verifier

    out: list = []
    reasons = []
    for spec in specs:
        if spec in BASELINES:
            out.append(spec)
            continue
        model = load_model(spec, world)  # read once: the verified copy is a deep copy of it
        out.append(model)
        m = copy.deepcopy(model)
        try:
            use_verifier(m, candidates, world, label=spec)
        except ValueError as e:
            reasons.append(str(e))
            _err.print(f"--verify: {e}; audited as it is", highlight=False, markup=False)
            continue
        m.name = f"{m.name}+verify{candidates}"
        card = m.card
        note = f"sampler: best of up to {candidates} per frame with the solidity verifier"
        m.card = dataclasses.replace(card, name=m.name, notes=f"{card.notes}; {note}".lstrip("; "))
        out.append(m)
    if len(out) == len(specs):
        why = "; ".join(reasons) or "only baselines were given, and they have no sampler"
        raise typer.BadParameter(f"no model here can sample with the verifier: {why}", param_hint="--verify")
    return out


def _print_bars(data: dict) -> None:
    """The project's bars (``gedanken.audit.bars``) for every learned model, one table each."""
    from rich.table import Table

    from gedanken.audit.bars import read_bars

    out = Console()
    for name, bars in read_bars(data).items():
        table = Table(title=f"{name}: bars on {data['reference_split']} ({data['episodes']} episodes)")
        for col in ("bar", "measured", "met"):
            table.add_column(col)
        for b in bars:
            table.add_row(b.name, b.measured, b.verdict().replace("**", ""))
        out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``audit`` to the ``gedanken`` command."""
    app.command("audit")(audit)
