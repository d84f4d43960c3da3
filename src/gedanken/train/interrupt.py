"""Ctrl-C during training: finish the step under way, save it, then stop.

A ``KeyboardInterrupt`` lands wherever the main thread is, which during training is nearly always inside an
update (forward, backward, optimizer step), where the weights and the optimizer may be half-changed and cannot be
saved. :class:`StopRequest` turns the first SIGINT into a flag that the training loop reads between steps; a
second SIGINT interrupts at once, as usual. Under ``torchrun`` every process must stop at the same step (saving
waits for all of them), so the flag is agreed on across processes with one small all-reduce per step.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist


class StopRequest:
    """``with StopRequest() as stop:`` ... ``if stop.requested: ...`` (a no-op outside the main thread)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C is the usual KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False


def agreed(requested: bool, world_size: int, device: torch.device) -> bool:
    """Whether any process asked to stop (just ``requested`` in a single process)."""
    if world_size <= 1:
        return requested
    flag = torch.tensor([1.0 if requested else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)
