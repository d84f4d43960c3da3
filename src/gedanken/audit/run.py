"""The public entry point: ``run_audit`` measures models on held-out splits of a world; ``AuditResult`` holds it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gedanken.audit.config import AuditConfig, MetricSet, json_number
from gedanken.audit.evaluate import SplitEvaluation, TruthJudged, evaluate_model, judge_truth
from gedanken.audit.external import EXTERNAL_SEED_BASE, collect_external_truth, is_external
from gedanken.audit.harness import TruthSet, collect_truth
from gedanken.audit.objects import PAIRED_BASELINES, paired_position
from gedanken.audit.parallel import fork_map
from gedanken.audit.registry import BASELINES, check_world, load_model
from gedanken.audit.summary import generalization, sentence
from gedanken.models.protocol import ModelCard, WorldModel
from gedanken.worlds import world_name

log = logging.getLogger(__name__)

DEFAULT_BASELINES: tuple[str, ...] = ("ground_truth", "copy_last", "constant_velocity", "noise")
STATE_BASELINES: tuple[str, ...] = ("constant_velocity",)  # need a palette and object state


@dataclass
class Clip:
    """Side-by-side material for the report: true and predicted futures of a few episodes."""

    truth: np.ndarray  # (C, Hz, H, W, 3) uint8
    pred: np.ndarray | None  # (C, Hz, H, W, 3) uint8, None for models without pixels


@dataclass
class ModelAudit:
    """One model's results on every split."""

    name: str
    card: ModelCard
    splits: dict[str, MetricSet]
    notes: dict[str, list[str]]
    generalization: dict[str, dict[str, float]]  # split -> metric -> ratio to the reference split
    sentence: str = ""
    seconds: float = 0.0


@dataclass
class AuditResult:
    """Everything an audit measured; ``to_json`` is what ``write_report`` stores for machines."""

    world: str
    splits: list[str]
    reference: str  # split the generalization ratios divide by ("test" when audited)
    episodes: int
    horizon: int
    context: int
    seed: int
    config: AuditConfig
    models: list[ModelAudit]
    clips: dict[str, dict[str, Clip]] = field(default_factory=dict)  # model -> split -> clip
    truth_seconds: dict[str, float] = field(default_factory=dict)  # split -> seconds to record and judge
    seconds: float = 0.0

    def model(self, name: str) -> ModelAudit:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"no model {name!r} in this audit; models: {[m.name for m in self.models]}")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "gedanken.audit",
            "version": 1,
            "world": self.world,
            "splits": self.splits,
            "reference_split": self.reference,
            "episodes": self.episodes,
            "horizon": self.horizon,
            "context": self.context,
            "seed": self.seed,
            "config": dataclasses.asdict(self.config),
            "seconds": self.seconds,
            "truth_seconds": self.truth_seconds,
            "models": [
                {
                    "name": m.name,
                    "card": dataclasses.asdict(m.card),
                    "sentence": m.sentence,
                    "seconds": m.seconds,
                    "notes": m.notes,
                    "splits": {s: ms.to_json() for s, ms in m.splits.items()},
                    "generalization": {
                        s: {k: json_number(v) for k, v in row.items()} for s, row in m.generalization.items()
                    },
                }
                for m in self.models
            ],
        }


def _card(model: WorldModel, world: str) -> ModelCard:
    card = getattr(model, "card", None)
    if isinstance(card, ModelCard):
        return card
    return ModelCard(name=getattr(model, "name", type(model).__name__), family="unknown", world=world)


def audit_splits(world: str, splits: Sequence[str] | None) -> list[str]:
    """The splits :func:`run_audit` audits ``world`` on (default ``test``, ``external`` for a Gymnasium id);
    ValueError for an unknown world or split, a split named twice, or none."""
    from gedanken.worlds.external import EXTERNAL_SPLIT
    from gedanken.worlds.splits import check_split

    world = world_name(world)
    check_world(world)
    if is_external(world):
        out = list(splits or [EXTERNAL_SPLIT])
        if out != [EXTERNAL_SPLIT]:
            raise ValueError(
                f"{world} is an external environment with no parameter splits; use split 'external'"
            )
    else:
        out = [check_split(s) for s in (splits or ["test"])]
    if not out:
        raise ValueError("no split to audit; give at least one of test, ood, gap, combo, train")
    if len(set(out)) != len(out):
        raise ValueError(f"split listed twice: {out}")
    return out


def run_audit(
    models: Sequence[str | WorldModel],
    world: str,
    splits: Sequence[str] | None = None,
    episodes: int = 100,
    horizon: int = 64,
    context: int = 4,
    seed: int = 0,
    *,
    config: AuditConfig | None = None,
    baselines: bool = False,
    policy: str = "mixed",
    render_size: tuple[int, int] = (64, 64),
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Audit ``models`` (objects or specs for :func:`~gedanken.audit.registry.load_model`) on ``world``.

    Args:
        models: world models, or baseline names / checkpoint paths.
        world: a built-in world name, or a Gymnasium id (then pixel and controllability metrics only).
        splits: held-out splits to audit on (test | ood | gap | combo | train; default test), ``external``
            for a Gymnasium id.
        episodes: episodes per split.
        horizon: predicted frames per episode.
        context: context frames given to the model.
        seed: offset added to every split's held-out seed base.
        config: thresholds and budgets (default :func:`gedanken.audit.config.default`).
        baselines: also audit the built-in baselines (those not already among ``models``).
        policy: behaviour policy that chose the episodes' actions.
        render_size: ``(H, W)`` of the frames.
        workers: processes for recording, simulating and auditing models side by side (forked; models are
            audited in-process whenever CUDA is in use). Results do not depend on it.
        progress: called with a short message before each step of work.
    """
    cfg = config or AuditConfig()
    world = world_name(world)  # a built-in world's Gymnasium id is that world, with its object states
    splits = audit_splits(world, splits)
    external = is_external(world)
    if episodes < 1 or horizon < 2 or context < 2:
        raise ValueError(
            f"need episodes >= 1, horizon >= 2, context >= 2; got {episodes}, {horizon}, {context}"
        )
    specs: list[str | WorldModel] = list(models)
    if baselines:
        given = {m if isinstance(m, str) else getattr(m, "name", "") for m in specs}
        specs += [b for b in DEFAULT_BASELINES if b not in given and not (external and b in STATE_BASELINES)]
    if external and any(m in STATE_BASELINES for m in specs if isinstance(m, str)):
        raise ValueError(f"{', '.join(STATE_BASELINES)} need a built-in world (object state), not {world}")
    if not specs:
        raise ValueError(f"no model to audit; give a checkpoint or a baseline ({', '.join(BASELINES)})")
    resolved = [load_model(m, world) if isinstance(m, str) else m for m in specs]
    names = [getattr(m, "name", type(m).__name__) for m in resolved]
    if len(set(names)) != len(names):
        # two checkpoints of one card (a model and its fine-tune): add their paths
        names = [
            f"{n} ({spec})" if names.count(n) > 1 and isinstance(spec, str) else n
            for n, spec in zip(names, specs, strict=True)
        ]
    if len(set(names)) != len(names):
        raise ValueError(f"two models share a name: {names}")

    say = progress or (lambda msg: log.info(msg))
    t_all = time.perf_counter()
    reference = "test" if "test" in splits else splits[0]
    per_model: dict[str, dict[str, MetricSet]] = {n: {} for n in names}
    notes: dict[str, dict[str, list[str]]] = {n: {} for n in names}
    seconds = dict.fromkeys(names, 0.0)
    clips: dict[str, dict[str, Clip]] = {n: {} for n in names}
    truth_seconds: dict[str, float] = {}
    for split in splits:
        say(f"recording {episodes} {world}/{split} episodes")
        t0 = time.perf_counter()
        if external:
            truth = collect_external_truth(
                world, episodes, context, horizon, seed=EXTERNAL_SEED_BASE + seed, render_size=render_size
            )
        else:
            truth = collect_truth(
                world,
                split,
                episodes,
                context,
                horizon,
                seed=_split_seed(split, seed),
                policy=policy,
                render_size=render_size,
                workers=workers,
                progress=lambda done, total, split=split: say(
                    f"recording {world}/{split}: {done}/{total} episodes"
                ),
            )
        say(
            f"{split}: judging the true frames"
            + (" and simulating the interventions" if truth.controllable else "")
        )
        tj = judge_truth(truth, cfg, seed)
        truth_seconds[split] = time.perf_counter() - t0
        say(f"{split}: auditing {', '.join(names)}")
        model_workers = 1 if _cuda_in_use() else workers

        def job(i: int, truth: TruthSet = truth, tj: TruthJudged = tj) -> tuple[SplitEvaluation, float]:
            t0 = time.perf_counter()
            return evaluate_model(resolved[i], truth, tj, cfg, seed=seed), time.perf_counter() - t0

        def audited(i: int, split: str = split) -> None:
            say(f"{split}: {names[i]} audited ({i + 1}/{len(names)})")

        results = fork_map(job, len(resolved), model_workers, done=audited)
        for name, (ev, dt) in zip(names, results, strict=True):
            seconds[name] += dt
            per_model[name][split] = ev.metrics
            notes[name][split] = ev.notes
            clips[name][split] = Clip(truth=ev.clip_truth, pred=ev.clip_pred)

    _add_paired(per_model, splits)
    baseline_ref = {n: per_model[n][reference] for n in names if n in BASELINES}
    audits = []
    for name, model in zip(names, resolved, strict=True):
        others = {b: m for b, m in baseline_ref.items() if b != name}
        audits.append(
            ModelAudit(
                name=name,
                card=_card(model, world),
                splits=per_model[name],
                notes=notes[name],
                generalization=generalization(per_model[name], reference),
                sentence=sentence(name, per_model[name], reference, others),
                seconds=seconds[name],
            )
        )
    return AuditResult(
        world=world,
        splits=splits,
        reference=reference,
        episodes=episodes,
        horizon=horizon,
        context=context,
        seed=seed,
        config=cfg,
        models=audits,
        clips=clips,
        truth_seconds=truth_seconds,
        seconds=time.perf_counter() - t_all,
    )


def _add_paired(per_model: dict[str, dict[str, MetricSet]], splits: Sequence[str]) -> None:
    """Curves ``paired_<base>_{model_px,base_px,objects}`` on every model audited beside copy-last or constant
    velocity: both errors over the objects both draw (:func:`~gedanken.audit.objects.paired_position`)."""
    for split in splits:
        for base in PAIRED_BASELINES:
            if base not in per_model:
                continue
            for name, metrics in per_model.items():
                if name == base:
                    continue
                for key, curve in paired_position(metrics[split], per_model[base][split]).items():
                    metrics[split].curves[f"paired_{base}_{key}"] = curve


def _cuda_in_use() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_initialized()


def _split_seed(split: str, seed: int) -> int:
    from gedanken.audit.harness import SPLIT_SEED_BASE

    return SPLIT_SEED_BASE[split] + seed
