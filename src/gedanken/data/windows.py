"""Random training windows, shared by every family's batch sources: which episodes are long enough for a window,
and one batch's draws of (episode, first step)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def long_enough(lengths: Sequence[int], idx: Iterable[int], window: int, what: str) -> list[int]:
    """The episodes of ``idx`` with at least ``window`` steps; ``ValueError`` naming ``what`` (e.g. "steps a
    training window") when there is none."""
    kept = [i for i in idx if lengths[i] >= window]
    if not kept:
        raise ValueError(f"no episode has the {window} {what} needs")
    return kept


def draw_windows(
    rng: np.random.Generator, idx: Sequence[int], lengths: Sequence[int], size: int, window: int
) -> list[tuple[int, int]]:
    """``size`` (episode, first step) pairs: episodes drawn from ``idx`` with replacement, then for each in turn a
    first step at which ``window`` steps fit. The order of ``rng`` calls is fixed, so a source that seeds ``rng``
    by its step resumes exactly."""
    eps = rng.choice(idx, size=size)
    return [(int(e), int(rng.integers(lengths[e] - window + 1))) for e in eps]


__all__ = ["draw_windows", "long_enough"]
