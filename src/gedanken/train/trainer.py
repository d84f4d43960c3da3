"""The one trainer every family uses: AdamW + warmup/cosine, progress, quick evals, atomic checkpoints, exact
resume, and ``torchrun`` DDP (gloo on CPU, NCCL on GPU).

A family only provides a :class:`Trainable` (an ``nn.Module`` with ``loss(batch) -> (loss, logs)``)::

    result = fit(model, batches, TrainConfig(steps=2000, out_dir="runs/x"),
                 card=ModelCard(name="x", family="diffusion"), family="diffusion", model_config=cfg)

``batches`` is either an iterable of batches (on resume the first ``step`` items are skipped), or a callable
``batches(start_step) -> Iterable[Batch]`` that starts at a given step (preferred: resuming costs nothing).

Exact resume: model, optimizer, scheduler, Python/NumPy/torch RNG states, the step (= data position) and the
elapsed time are stored in ``<out_dir>/last``; in addition the torch RNG is re-seeded from ``(seed, step, rank)``
before every step, so random draws inside ``loss`` never depend on how the data iterator consumed randomness.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.distributed as dist
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import Tensor, nn

from gedanken.data.batch import Batch
from gedanken.models.checkpoint import (
    META_FILE,
    CheckpointError,
    atomic_write_dir,
    load_weights_strict,
    read_checkpoint,
    write_model_files,
)
from gedanken.models.protocol import ModelCard
from gedanken.train.interrupt import StopRequest, agreed
from gedanken.train.state import load_trainer_state, save_trainer_state

log = logging.getLogger(__name__)

BatchSource = Iterable[Any] | Callable[[int], Iterable[Any]]
Evaluate = Callable[[nn.Module], dict[str, float]]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping for :func:`fit` (model and data settings live with the family)."""

    steps: int = 1000  # total optimizer steps (the schedule spans all of them, also across resumes)
    batch_size: int = 16  # windows per step and per process; read by the data code, not by fit itself
    lr: float = 3e-4  # peak learning rate
    weight_decay: float = 0.01  # AdamW decoupled weight decay (biases and norms excluded)
    warmup: int = 100  # linear warmup steps, then cosine decay to ``lr * min_lr_ratio``
    min_lr_ratio: float = 0.1  # final learning rate as a fraction of ``lr``
    betas: tuple[float, float] = (0.9, 0.99)  # AdamW betas
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    seed: int = 0  # seeds the per-step RNG (mixed with step and rank)
    log_every: int = 50  # steps between logged averages (also written to <out_dir>/metrics.jsonl)
    eval_every: int = 0  # steps between ``evaluate(model)`` calls; 0 = only at the end (if given)
    ckpt_every: int = 0  # steps between checkpoints in <out_dir>/last; 0 = only at the end
    out_dir: str = "runs/default"  # where checkpoints and metrics go
    device: str = "auto"  # "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1", ...
    resume: bool = True  # continue from <out_dir>/last when it exists
    num_threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    progress: bool = True  # rich progress bar (rank 0 only)


@runtime_checkable
class Trainable(Protocol):
    """What :func:`fit` needs from a model: an ``nn.Module`` with a loss over one batch."""

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


@dataclass
class TrainResult:
    """What a :func:`fit` call did."""

    step: int  # steps completed in total (including those before a resume)
    checkpoint: Path  # <out_dir>/last
    card: ModelCard  # the card with steps, seconds and params filled in
    seconds: float  # wall time of all runs that led to this checkpoint
    history: list[dict[str, float]] = field(default_factory=list)  # logged averages of this run
    evals: list[dict[str, float]] = field(default_factory=list)  # evaluate() results of this run
    resumed_from: int = 0  # step this run started at


# --------------------------------------------------------------------------------------------- helpers


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> the local CUDA device when available, else CPU; ``cpu``, ``cuda``, ``cuda:N`` as named.

    Raises ``ValueError`` for a name torch does not know, or a CUDA device this machine does not have."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r}: no CUDA GPU is available here (torch {torch.__version__}); use cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"device {name!r}: gedanken runs on cpu or cuda")
    return dev


@dataclass(frozen=True)
class DistInfo:
    """Rank and world size of this process (1 process when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size())
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


def _init_distributed(device: torch.device) -> DistInfo:
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist_info()


def _step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63 - 1)


def _progress_line(
    family: str, step: int, total: int, avg: dict[str, float], start: int, this_run: float
) -> str:
    """``train <family>: step 400/1000 (40 %), loss 0.1234, lr 2.0e-04, 95 s, about 142 s left``; the time left
    from this run's pace (``this_run`` seconds for the steps since ``start``, where it resumed)."""
    done, seconds = step - start, avg.get("seconds", 0.0)
    left = f", about {this_run / done * (total - step):.0f} s left" if done > 0 and step < total else ""
    return (
        f"train {family}: step {step}/{total} ({100 * step / max(total, 1):.0f} %), loss {avg['loss']:.4g}, "
        f"lr {avg['lr']:.1e}, {seconds:.0f} s{left}"
    )


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    if cfg.warmup > 0 and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    progress = min(1.0, (step - cfg.warmup) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases, norms and embeddings' 1-d params excluded)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


class _LossModule(nn.Module):
    """Routes DDP's forward to ``model.loss`` so gradient sync hooks fire."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> tuple[Tensor, dict[str, float]]:
        return self.model.loss(batch)  # type: ignore[operator]


# ----------------------------------------------------------------------------------------------- fit


def _batch_iter(batches: BatchSource, start: int) -> Iterator[Any]:
    if callable(batches) and not isinstance(batches, Iterable):
        return iter(batches(start))
    it = iter(batches)  # type: ignore[arg-type]
    if start:
        it = itertools.islice(it, start, None)
    return it


def _same_data(before: str, now: str) -> bool:
    """Whether two cards' ``dataset`` fields ("a+b" paths, as given) name the same datasets; an empty one (data
    in memory, or a card without it) matches anything."""
    if not before or not now:
        return True
    parts = [[Path(p).resolve() for p in d.split("+")] for d in (before, now)]
    return parts[0] == parts[1]


def fit(
    model: nn.Module,
    batches: BatchSource,
    cfg: TrainConfig,
    *,
    evaluate: Evaluate | None = None,
    card: ModelCard,
    family: str,
    model_config: Any,
) -> TrainResult:
    """Train ``model`` (a :class:`Trainable`) for ``cfg.steps`` steps; see the module docstring."""
    if not hasattr(model, "loss"):
        raise TypeError(f"{type(model).__name__} has no loss(batch) method; fit needs a Trainable")
    if cfg.steps < 1:
        raise ValueError(f"steps must be >= 1, got {cfg.steps}")
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    info = _init_distributed(device)
    out = Path(cfg.out_dir)
    last = out / "last"
    model.to(device).train()
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))

    step, seconds_before = 0, 0.0
    if cfg.resume and (last / META_FILE).is_file():
        data = read_checkpoint(last)
        if data.family != family:
            raise CheckpointError(f"{last}: holds a {data.family!r} model, cannot resume a {family!r} run")
        if card is not None and not _same_data(data.card.dataset, card.dataset):
            raise CheckpointError(
                f"{last} is a run on {data.card.dataset}, this one trains on {card.dataset}: give another --out, "
                "or --no-resume to start it over"
            )
        try:
            load_weights_strict(model, {k: v.to(device) for k, v in data.tensors.items()}, where=str(last))
        except CheckpointError as e:
            if "do not fit" not in str(e):
                raise
            raise CheckpointError(
                f"{last} holds a run with another configuration (its weights do not fit this model; preset "
                f"{data.card.preset or '?'}): give another --out, or --no-resume to start it over"
            ) from None
        step, seconds_before = load_trainer_state(last, opt, sched)
        log.info("resuming %s from step %d (%s)", family, step, last)
    resumed_from = step
    if info.is_main:
        _trim_jsonl(out / "metrics.jsonl", step)

    wrapped: nn.Module = _LossModule(model)
    if info.world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(wrapped, device_ids=ids, find_unused_parameters=True)

    nparams = sum(p.numel() for p in model.parameters())
    history: list[dict[str, float]] = []
    evals: list[dict[str, float]] = []
    sums: dict[str, float] = {}
    count = 0
    t0 = time.perf_counter()

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - t0

    def current_card() -> ModelCard:
        return dataclasses.replace(card, steps=step, train_seconds=round(elapsed(), 1), params=nparams)

    def save() -> None:
        if info.is_main:

            def write(d: Path) -> None:
                write_model_files(
                    d, model, family=family, model_config=model_config, card=current_card(), step=step
                )
                save_trainer_state(d, opt, sched, step, elapsed())

            atomic_write_dir(last, write)
        if info.world_size > 1:
            dist.barrier()

    def run_eval() -> None:
        if evaluate is None or not info.is_main:
            return
        model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in evaluate(model).items()}
        model.train()
        evals.append({"step": float(step), **metrics})
        log.info("eval step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        _append_jsonl(out / "metrics.jsonl", {"kind": "eval", "step": step, **metrics})

    it = _batch_iter(batches, step)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not (cfg.progress and info.is_main),
    )
    # off a terminal (a log file, CI) the bar shows nothing: every log_every steps a line says where it is
    lines = cfg.progress and info.is_main and not progress.console.is_terminal
    in_update = stopped = False
    trainable = [p for p in model.parameters() if p.requires_grad]  # frozen stages' gradients do not count
    model.zero_grad(set_to_none=True)  # nor linger from the stage before (they would inflate the clip norm)
    try:
        with progress, StopRequest() as stop:
            task = progress.add_task(f"train {family}", total=cfg.steps, completed=step, info="")
            while step < cfg.steps:
                try:
                    batch = next(it)
                except StopIteration:
                    log.warning("batch source exhausted at step %d of %d", step, cfg.steps)
                    break
                in_update = True
                torch.manual_seed(_step_seed(cfg.seed, step, info.rank))
                batch = batch.to(device) if hasattr(batch, "to") else batch
                loss, logs = wrapped(batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"training diverged: {family} loss is {loss.item()} at step {step} (lower --lr; a resumed "
                        "run whose saved state holds it: --no-resume)"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = nn.utils.clip_grad_norm_(trainable, cfg.grad_clip if cfg.grad_clip > 0 else 1e12)
                opt.step()
                sched.step()
                step += 1
                in_update = False
                for k, v in {"loss": float(loss.detach()), "grad_norm": float(gnorm), **logs}.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                progress.update(task, completed=step, info=f"loss {float(loss.detach()):.4f}")
                if step % max(1, cfg.log_every) == 0 or step == cfg.steps:
                    avg = {k: v / count for k, v in sums.items()}
                    avg.update(step=float(step), lr=sched.get_last_lr()[0], seconds=elapsed())
                    history.append(avg)
                    sums, count = {}, 0
                    if info.is_main:
                        _append_jsonl(out / "metrics.jsonl", {"kind": "train", **avg})
                        if lines:
                            line = _progress_line(
                                family, step, cfg.steps, avg, resumed_from, elapsed() - seconds_before
                            )
                            log.info("%s", line)
                        else:
                            log.debug("step %d %s", step, avg)
                if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                    run_eval()
                if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < cfg.steps:
                    save()
                if agreed(stop.requested, info.world_size, device) and step < cfg.steps:
                    stopped = True
                    break
    except KeyboardInterrupt:
        if not in_update:
            log.warning("interrupted at step %d; saving a checkpoint to resume from", step)
            save()
        raise
    if stopped:  # Ctrl-C: the step under way was finished and is saved; the same command continues from it
        log.warning("interrupted at step %d; saving a checkpoint to resume from", step)
        save()
        raise KeyboardInterrupt
    run_eval()
    save()
    return TrainResult(
        step=step,
        checkpoint=last,
        card=current_card(),
        seconds=elapsed(),
        history=history,
        evals=evals,
        resumed_from=resumed_from,
    )


def _trim_jsonl(path: Path, step: int) -> None:
    """Keep the rows of steps up to ``step``, where this run starts: a fresh start (``--no-resume``) keeps none, a
    resumed one drops what an interrupted run logged after its last checkpoint (it is trained again)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if float(json.loads(line).get("step", 0)) <= step:
                kept.append(line)
        except (ValueError, AttributeError):
            continue  # a torn last line
    path.write_text("".join(f"{line}\n" for line in kept))


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
