"""Named parameter splits shared by every world, and small sampling helpers.

* ``train``: the training ranges (with the ``gap`` band and the ``combo`` combination held out);
* ``test``: the same ranges as ``train``; the split name is mixed into the seed, so ``test`` episodes never
  repeat ``train`` episodes even under equal seeds;
* ``ood``: beyond the training range (faster, heavier, more objects...);
* ``gap``: a held-out band inside the training range, never sampled for ``train``;
* ``combo``: unseen combinations of seen parts (each part is in ``train``, the combination is not).

The exact ranges of every world are in docs/worlds.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np

SPLITS: tuple[str, ...] = ("train", "test", "ood", "gap", "combo")
SPLIT_INDEX: dict[str, int] = {s: i for i, s in enumerate(SPLITS)}


def check_split(split: str) -> str:
    """Return ``split`` or raise a ValueError listing the valid names."""
    if split not in SPLIT_INDEX:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return split


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One float uniformly in ``[lo, hi]``."""
    return float(rng.uniform(lo, hi))


def uniform_outside(rng: np.random.Generator, lo: float, hi: float, gap_lo: float, gap_hi: float) -> float:
    """One float uniformly in ``[lo, hi]`` minus the open band ``(gap_lo, gap_hi)``."""
    left, right = max(gap_lo - lo, 0.0), max(hi - gap_hi, 0.0)
    u = float(rng.uniform(0.0, left + right))
    return lo + u if u < left else gap_hi + (u - left)


def check_range(name: str, value: float, lo: float, hi: float) -> None:
    """Raise a ValueError naming ``name`` unless ``lo <= value <= hi`` and finite."""
    if not (isinstance(value, int | float) and math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}], got {value!r}")


def as_float_tuple(name: str, values: object, n: int | None = None) -> tuple[float, ...]:
    """A tuple of floats from a sequence (lists from JSON included), optionally of length ``n``."""
    try:
        out = tuple(float(v) for v in values)  # type: ignore[attr-defined]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if n is not None and len(out) != n:
        raise ValueError(f"{name} must have {n} entries (one per object), got {len(out)}")
    return out


def params_to_json(params: Any) -> dict[str, Any]:
    """A params dataclass as plain JSON values (tuples become lists), so it equals itself after a disk round trip."""
    return json.loads(json.dumps(asdict(params)))
