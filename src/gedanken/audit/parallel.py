"""Process parallelism for the audit: ``fork_map`` runs independent jobs on the machine's cores.

Jobs share their (large, unpicklable or costly to pickle) inputs by ``fork``: the payload is put in a module
global before the pool starts and inherited copy-on-write by the workers; only job indices go in and results
come back through pickle. Inside a worker ``fork_map`` runs serially, so nesting is safe. Where ``fork`` is
unavailable (macOS/Windows default spawn), or with ``workers <= 1``, everything runs in-process.

Forking a process that has already used CUDA is unsafe, so callers pass ``workers=1`` for models on a GPU.
Workers set ``torch.set_num_threads(1)`` first, as PyTorch's own DataLoader workers do after a fork. A worker
that dies makes the pool raise (``concurrent.futures``) instead of hanging; the jobs are then run in-process.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_PAYLOAD: tuple[Callable[[int], Any], ...] | None = None
_IN_WORKER = False


def default_workers() -> int:
    """Cores available to this process (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    global _IN_WORKER
    _IN_WORKER = True
    try:
        import torch

        torch.set_num_threads(1)  # one process per core; no oversubscription
    except ImportError:
        pass


def _run(i: int) -> Any:
    assert _PAYLOAD is not None
    return _PAYLOAD[0](i)


def fork_map(
    fn: Callable[[int], T], n: int, workers: int, done: Callable[[int], None] | None = None
) -> list[T]:
    """``[fn(0), ..., fn(n - 1)]``, on up to ``workers`` forked processes (results in order); ``done(i)`` is
    called in this process as result ``i`` arrives (progress)."""
    global _PAYLOAD
    workers = min(workers, n)
    report = done or (lambda i: None)

    def here() -> list[T]:
        out = []
        for i in range(n):
            out.append(fn(i))
            report(i)
        return out

    if workers <= 1 or _IN_WORKER or "fork" not in mp.get_all_start_methods():
        return here()
    _PAYLOAD = (fn,)
    try:
        ctx = mp.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            out = []
            for i, r in enumerate(pool.map(_run, range(n))):
                out.append(r)
                report(i)
            return out
    except BrokenProcessPool as e:  # a worker died (it raises here rather than hanging): do the work here
        log.warning("a worker process died (%s); running the %d jobs in this process", e, n)
        return here()
    finally:
        _PAYLOAD = None
