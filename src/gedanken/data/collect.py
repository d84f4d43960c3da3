"""Collect episodes from a built-in world or a Gymnasium environment into an :class:`EpisodeDataset`.

Worker processes (forkserver/spawn, never fork) record episodes; the main process is the dataset's only
writer and appends them in episode order, a few at a time, each batch committed atomically. Episode ``i``
always uses seed ``seed + i``, so a collection is resumable: a re-run continues after the last committed
episode and never records one twice, and a re-run whose world, split, size, steps, seed or policy differ from
the dataset's is refused.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from gedanken.data.episode import Episode
from gedanken.data.store import DatasetError, EpisodeDataset

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]  # (episodes committed or recorded so far, target) -> None


class SourceKind(str, Enum):
    """Where episodes come from."""

    WORLD = "world"  # a built-in pymunk world (exact states, captions, behaviour policies)
    GYM = "gym"  # any Gymnasium env with an rgb_array render (random policy, no states)


@dataclass(frozen=True)
class CollectSpec:
    """Everything that defines the episodes of a collected dataset; stored in its attributes."""

    source: str  # built-in world name ("push") or Gymnasium id ("ALE/Pong-v5")
    kind: SourceKind
    split: str  # world split, or "external" for Gymnasium envs
    steps: int  # frames per episode (fewer when the env terminates first)
    seed: int  # base seed: episode i uses seed + i
    policy: str  # behaviour policy ("random" for Gymnasium envs)
    size: int  # frames are size x size

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}

    @staticmethod
    def from_json(d: dict[str, Any]) -> CollectSpec:
        return CollectSpec(
            source=str(d["source"]),
            kind=SourceKind(d["kind"]),
            split=str(d["split"]),
            steps=int(d["steps"]),
            seed=int(d["seed"]),
            policy=str(d["policy"]),
            size=int(d["size"]),
        )


@dataclass(frozen=True)
class CollectResult:
    """What a :func:`collect` call did."""

    path: Path
    spec: CollectSpec
    episodes_before: int  # committed before this call
    episodes_added: int
    episodes_total: int
    steps_added: int
    seconds: float

    @property
    def episodes_per_second(self) -> float:
        return self.episodes_added / self.seconds if self.seconds > 0 else 0.0


def resolve_source(source: str, kind: SourceKind | None = None) -> tuple[str, SourceKind]:
    """Map a world name or Gymnasium id to ``(name, kind)``; raise ValueError listing valid choices.

    A built-in world's Gymnasium id (``gedanken/Push-v0``) resolves to the world itself.
    """
    from gedanken.worlds import WORLD_ENTRIES
    from gedanken.worlds.external import UnknownEnvError, check_env_id

    by_gym_id = {e.gym_id: name for name, e in WORLD_ENTRIES.items()}
    if kind in (None, SourceKind.WORLD):
        if source in WORLD_ENTRIES:
            return source, SourceKind.WORLD
        if source in by_gym_id:
            return by_gym_id[source], SourceKind.WORLD
        if kind is SourceKind.WORLD:
            raise ValueError(
                f"unknown world {source!r}; valid worlds: {', '.join(WORLD_ENTRIES)} "
                "(record a Gymnasium environment with --env instead)"
            )
    if source in by_gym_id:
        return by_gym_id[source], SourceKind.WORLD
    try:
        return check_env_id(source), SourceKind.GYM
    except UnknownEnvError:
        raise
    except Exception as e:  # a broken optional env family must not hide the real message
        raise ValueError(f"cannot resolve environment {source!r}: {e}") from e


def make_spec(
    source: str,
    *,
    kind: SourceKind | None = None,
    split: str | None = None,
    steps: int = 96,
    seed: int = 0,
    policy: str | None = None,
    size: int = 64,
) -> CollectSpec:
    """Validate the arguments of a collection; raise ValueError naming the bad one and the valid values."""
    from gedanken.worlds.external import EXTERNAL_SPLIT
    from gedanken.worlds.policies import PLANNER_PREFIX, POLICIES
    from gedanken.worlds.splits import check_split

    name, kind = resolve_source(source, kind)
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (an episode needs a transition), got {steps}")
    if not 8 <= size <= 1024:
        raise ValueError(f"size must be between 8 and 1024 pixels, got {size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if kind is SourceKind.GYM:
        split = EXTERNAL_SPLIT if split is None else split
        if split != EXTERNAL_SPLIT:
            raise ValueError(
                f"Gymnasium environments are recorded with split '{EXTERNAL_SPLIT}', got {split!r}"
            )
        policy = "random" if policy is None else policy
        if policy != "random":
            raise ValueError(f"Gymnasium environments are recorded with the 'random' policy, got {policy!r}")
    else:
        split = check_split("train" if split is None else split)
        policy = "mixed" if policy is None else policy
        if policy.startswith(PLANNER_PREFIX):
            from gedanken.planning.policy import check_planner_policy

            check_planner_policy(policy, name)
        elif policy not in POLICIES:
            raise ValueError(
                f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}, plan:<checkpoint>"
            )
    return CollectSpec(name, kind, split, steps, seed, policy, size)


# ---------------------------------------------------------------------- worker side

_WORKER_ENVS: dict[str, Any] = {}  # Gymnasium envs kept alive per worker process


def _record(task: tuple[CollectSpec, int]) -> Episode:
    spec, i = task
    seed = spec.seed + i
    if spec.kind is SourceKind.WORLD:
        from gedanken.worlds.record import record_episode

        return record_episode(
            spec.source, spec.split, seed, spec.steps, policy=spec.policy, render_size=(spec.size, spec.size)
        )
    from gedanken.worlds.external import make_env, record_external

    env = _WORKER_ENVS.get(spec.source)
    if env is None:
        env = _WORKER_ENVS[spec.source] = make_env(spec.source)
    return record_external(env, seed, spec.steps, size=(spec.size, spec.size))


def _episodes(spec: CollectSpec, first: int, last: int, workers: int) -> Iterator[Episode]:
    tasks = [(spec, i) for i in range(first, last)]
    if workers <= 1:
        yield from map(_record, tasks)
        return
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["gedanken.worlds.record", "gedanken.worlds.external"])
    with ctx.Pool(processes=min(workers, len(tasks))) as pool:
        yield from pool.imap(_record, tasks, chunksize=1)  # in episode order, so commits stay a prefix


# ---------------------------------------------------------------------- main side


def _open_or_create(out: Path, spec: CollectSpec) -> tuple[EpisodeDataset | None, int]:
    """The existing dataset (checked against ``spec``) and its committed count, or ``(None, 0)``."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None, 0
    ds = EpisodeDataset.open(out, mode="a")
    stored = ds.attrs.get("collect")
    if stored is None:
        if len(ds):
            raise DatasetError(
                f"{out} holds {len(ds)} episodes that were not collected by `collect`; use another --out"
            )
        ds.set_attrs(collect=spec.to_json())
        return ds, 0
    old = CollectSpec.from_json(stored)
    if old != spec:
        diff = ", ".join(
            f"{k}: dataset {v!r} vs requested {getattr(spec, k)!r}"
            for k, v in old.to_json().items()
            if spec.to_json()[k] != v
        )
        raise DatasetError(f"{out} was collected with different settings ({diff}); use another --out")
    n = len(ds)
    if n and ds.meta(n - 1).seed != spec.seed + n - 1:
        raise DatasetError(
            f"{out}: episode {n - 1} has seed {ds.meta(n - 1).seed}, expected {spec.seed + n - 1}"
        )
    return ds, n


def collect(
    source: str,
    out: str | os.PathLike[str],
    episodes: int,
    *,
    kind: SourceKind | None = None,
    split: str | None = None,
    steps: int = 96,
    seed: int = 0,
    policy: str | None = None,
    size: int = 64,
    workers: int = 2,
    progress: ProgressFn | None = None,
    flush_every: int = 16,
    flush_seconds: float = 5.0,
) -> CollectResult:
    """Make the dataset at ``out`` hold ``episodes`` episodes of ``source`` (recording only the missing ones).

    ``source`` is a built-in world name or a Gymnasium id (``kind`` forces one reading); ``split`` defaults
    to "train" for worlds and "external" for Gymnasium envs, ``policy`` to "mixed" and "random". Episode ``i``
    uses seed ``seed + i``. All arguments are validated before anything is written, and nothing is written
    until the first episodes are recorded; an interruption later leaves every committed episode readable.
    """
    spec = make_spec(source, kind=kind, split=split, steps=steps, seed=seed, policy=policy, size=size)
    return collect_spec(
        spec,
        out,
        episodes,
        workers=workers,
        progress=progress,
        flush_every=flush_every,
        flush_seconds=flush_seconds,
    )


def collect_spec(
    spec: CollectSpec,
    out: str | os.PathLike[str],
    episodes: int,
    *,
    workers: int = 2,
    progress: ProgressFn | None = None,
    flush_every: int = 16,
    flush_seconds: float = 5.0,
) -> CollectResult:
    """:func:`collect` for an already validated :class:`CollectSpec`."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    t0 = time.perf_counter()
    ds, before = _open_or_create(out, spec)
    if progress is not None:
        progress(before, episodes)
    if before >= episodes:
        log.info("%s already holds %d episodes (asked for %d); nothing to do", out, before, episodes)
        return CollectResult(out, spec, before, 0, before, 0, time.perf_counter() - t0)
    if ds is not None and before:
        ds.verify()  # appending onto a damaged dataset: say so now (DatasetCorruptError names the chunk file)
    buffer: list[Episode] = []
    added = steps = 0
    last_flush = time.perf_counter()

    def flush() -> None:
        nonlocal ds, added, steps, last_flush
        if not buffer:
            return
        if ds is None:
            ds = EpisodeDataset.create(out, attrs={"collect": spec.to_json()}, overwrite=out.exists())
        ds.extend(buffer)
        added += len(buffer)
        steps += sum(len(e) for e in buffer)
        buffer.clear()
        last_flush = time.perf_counter()

    try:
        for ep in _episodes(spec, before, episodes, workers):
            buffer.append(ep)
            if progress is not None:
                progress(before + added + len(buffer), episodes)
            if len(buffer) >= flush_every or time.perf_counter() - last_flush > flush_seconds:
                flush()
    except KeyboardInterrupt:
        flush()  # keep what was fully recorded
        log.warning("interrupted: %s holds %d episodes; re-run to continue", out, before + added)
        raise
    flush()
    dt = time.perf_counter() - t0
    log.info("%s: +%d episodes (%d steps) in %.1f s", out, added, steps, dt)
    return CollectResult(out, spec, before, added, before + added, steps, dt)
