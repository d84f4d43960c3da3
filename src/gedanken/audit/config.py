"""Configuration of an audit and the container every metric family fills."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gedanken.audit.judge import JudgeConfig
from gedanken.audit.pixels import PSNR_CAP

EDGE_RULES = ("centroid", "far_side")


@dataclass(frozen=True)
class AuditConfig:
    """Thresholds and budgets of the audit. Distances are in world units (one pixel at 64x64)."""

    judge: JudgeConfig = field(default_factory=JudgeConfig)  # colour judge settings
    valid_threshold: float = 2.0  # mean position error above which a prediction stops being valid
    jump_threshold: float = 8.0  # a frame-to-frame displacement this far from the truth's is a teleport
    clear_fraction: float = 0.25  # share of its full area an object must show for (in)visibility to count
    penetration_tol: float = 1.0  # overlap (objects, or object past a wall) tolerated before it counts
    # where a circle touching the frame's edge is placed: "centroid" (its cut centroid, since session 31) or
    # "far_side" (its bounding box's far side, as boxes always are; one faint row moves it a whole unit)
    edge_rule: str = "centroid"
    contact_tol: float = 1.0  # gap below which two judged objects (or an object and a wall) are in contact
    contact_window: int = 2  # a predicted contact onset matches a true one within +- this many frames
    post_collision_frames: int = 3  # frames after a true contact onset that count as post-collision
    free_flight_min: int = 8  # shortest contact-free run (frames) used to fit gravity
    branches: int = 2  # counterfactual action sequences per branched episode
    branch_episodes: int = 16  # episodes (the first ones) that are branched
    psnr_cap: float = PSNR_CAP  # dB given to exact frames instead of infinity
    batch_size: int = 32  # episodes per model call
    clip_episodes: int = 1  # episodes per split kept as side-by-side clips for the report

    def __post_init__(self) -> None:
        if self.edge_rule not in EDGE_RULES:
            raise ValueError(f"edge_rule must be one of {EDGE_RULES}, got {self.edge_rule!r}")


def tiny() -> AuditConfig:
    """A preset for smoke tests: few branches, small batches."""
    return AuditConfig(branches=2, branch_episodes=2, batch_size=4)


def default() -> AuditConfig:
    """The preset used by ``gedanken audit``."""
    return AuditConfig()


@dataclass
class MetricSet:
    """Named curves over the horizon (``(Hz,)`` float64) and named scalars (JSON through ``to_json``).

    ``objects`` holds per-object arrays (``(B, Hz, K)``, NaN where undefined) that later comparisons between
    models need (:func:`gedanken.audit.objects.paired_position`); they stay in memory and are not written."""

    curves: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    objects: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def update(self, other: MetricSet) -> MetricSet:
        self.curves.update(other.curves)
        self.scalars.update(other.scalars)
        self.objects.update(other.objects)
        return self

    def to_json(self) -> dict[str, dict[str, object]]:
        return {
            "curves": {
                k: [json_number(v) for v in np.asarray(c, np.float64)] for k, c in self.curves.items()
            },
            "scalars": {k: json_number(v) for k, v in self.scalars.items()},
        }


def json_number(v: float) -> float | None:
    """JSON has no NaN/inf: NaN (undefined) becomes null, infinities stay out of metrics by construction."""
    v = float(v)
    return None if not np.isfinite(v) else v


def masked_mean(
    values: np.ndarray, mask: np.ndarray, axis: int | tuple[int, ...] | None = None
) -> np.ndarray:
    """Mean of ``values`` where ``mask`` (NaN where the mask is empty)."""
    m = mask.astype(np.float64)
    v = np.where(mask, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(v.sum(axis) / m.sum(axis))


def scalar_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Masked mean over everything, NaN when nothing is selected."""
    return float(masked_mean(values, mask))


CI_LEVEL = 0.95
CI_RESAMPLES = 2000


def episode_ci(per_episode: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of per-episode values (episodes resampled with
    replacement, ``scipy.stats.bootstrap``). How far the same model's figure moves on another draw of held-out
    episodes; ``(v, v)`` when every episode agrees, NaNs when there are fewer than two episodes."""
    from scipy.stats import bootstrap

    x = np.asarray(per_episode, np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = bootstrap(
        (x,),
        np.mean,
        confidence_level=CI_LEVEL,
        n_resamples=CI_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
