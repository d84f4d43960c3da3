"""What the numbers mean: the metric glossary, generalization ratios and the plain sentence per model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gedanken.audit.config import MetricSet


@dataclass(frozen=True)
class MetricInfo:
    """How to read one metric."""

    label: str  # short column title
    better: str  # "lower" | "higher" | "" (informative only)
    doc: str  # one sentence for the glossary


METRICS: dict[str, MetricInfo] = {
    "pos_err": MetricInfo(
        "pos err", "lower", "mean centre error of moving objects seen in both frames (world units)"
    ),
    "pos_err_px": MetricInfo("pos err px", "lower", "the same in pixels"),
    "vel_err": MetricInfo("vel err", "lower", "velocity error from judged positions (world units / s)"),
    "valid_horizon": MetricInfo(
        "valid horizon", "higher", "frames until the mean position error first exceeds the threshold"
    ),
    "identity_persistence": MetricInfo("identity", "higher", "share of frames whose identity set is right"),
    "first_break": MetricInfo("first break", "higher", "mean first frame where some identity is wrong"),
    "vanish_events": MetricInfo("vanish", "lower", "visible objects that disappear, per episode"),
    "appear_events": MetricInfo("appear", "lower", "objects drawn that do not exist, per episode"),
    "ghost_events": MetricInfo("ghost", "lower", "occluded objects drawn through the occluder, per episode"),
    "duplicate_events": MetricInfo("duplicate", "lower", "objects split into several blobs, per episode"),
    "occluded_correct": MetricInfo(
        "occl ok", "higher", "share of occluded object-frames rightly left unseen"
    ),
    "interpenetration": MetricInfo(
        "interpen", "lower", "share of frames with overlapping objects or a wall breach"
    ),
    "interpenetration_truth": MetricInfo("interpen (sim)", "", "the same on the simulator's own frames"),
    "contact_f1": MetricInfo("contact F1", "higher", "F1 of contact onsets matched within +-k frames"),
    "post_collision_vel_err": MetricInfo(
        "post-coll vel", "lower", "velocity error in the frames right after true contacts"
    ),
    "gravity_fit": MetricInfo("g fit", "", "gravity fitted on free-flight segments of the prediction"),
    "gravity_fit_truth": MetricInfo("g fit (sim)", "", "the same fit on the simulator's frames"),
    "gravity_err": MetricInfo("g err", "lower", "|g fit - g fit of the simulator| (world units / s^2)"),
    "energy_err": MetricInfo("energy err", "lower", "|E pred - E sim| / mean |E sim|, judged objects"),
    "momentum_err": MetricInfo("momentum err", "lower", "|p pred - p sim| / mean sum m|v|, judged objects"),
    "ctrl_ratio": MetricInfo(
        "ctrl ratio", "higher", "position error under shuffled / under true actions (1 = ignores actions)"
    ),
    "ctrl_ratio_mse": MetricInfo("ctrl ratio px", "higher", "the same with pixel MSE"),
    "delta_psnr": MetricInfo("dPSNR", "higher", "PSNR under true actions minus under random actions (Genie)"),
    "branch_pos_err": MetricInfo("branch err", "lower", "position error on counterfactual action branches"),
    "branch_spread_ratio": MetricInfo(
        "branch spread", "", "how far the model's branches diverge relative to the simulator's (1 = as much)"
    ),
    "psnr": MetricInfo("PSNR", "higher", "peak signal-to-noise ratio, dB (exact frames capped)"),
    "ssim": MetricInfo("SSIM", "higher", "structural similarity on luma"),
    "wrong_colour": MetricInfo("wrong colour", "lower", "share of pixels far from every palette colour"),
    "size_err": MetricInfo(
        "size err", "lower", "mean |log2 judged area / true area| of objects seen in both"
    ),
    "area_ratio": MetricInfo("area ratio", "", "judged area / true area, geometric mean (1 = sizes kept)"),
}

LEADERBOARD: tuple[str, ...] = (
    "pos_err",
    "valid_horizon",
    "identity_persistence",
    "first_break",
    "interpenetration",
    "size_err",
    "contact_f1",
    "gravity_err",
    "ctrl_ratio",
    "delta_psnr",
    "psnr",
    "ssim",
)

GENERALIZATION: tuple[str, ...] = ("pos_err", "vel_err", "valid_horizon", "identity_persistence", "psnr")


def generalization(metrics: dict[str, MetricSet], reference: str) -> dict[str, dict[str, float]]:
    """Per non-reference split, ``metric(split) / metric(reference)`` for the key metrics (NaN if undefined)."""
    ref = metrics[reference].scalars
    out: dict[str, dict[str, float]] = {}
    for split, m in metrics.items():
        if split == reference:
            continue
        row = {}
        for name in GENERALIZATION:
            a, b = m.scalars.get(name, np.nan), ref.get(name, np.nan)
            row[name] = float(a / b) if np.isfinite(a) and np.isfinite(b) and b != 0 else float("nan")
        out[split] = row
    return out


def _error_curve(m: MetricSet) -> tuple[np.ndarray, str] | None:
    if "pos_err" in m.curves and np.isfinite(m.curves["pos_err"]).any():
        return m.curves["pos_err"], "position error"
    if "psnr" in m.curves:
        return -m.curves["psnr"], "PSNR"
    return None


def _versus(model: MetricSet, base: MetricSet, base_name: str, key: str = "") -> str | None:
    """'beats <base> from horizon h on' by the error curve: position error on the objects both draw (the
    ``paired_<key>_*`` curves, when the audit made them), else position error, else PSNR."""
    pm, pb = model.curves.get(f"paired_{key}_model_px"), model.curves.get(f"paired_{key}_base_px")
    if pm is not None and pb is not None and np.isfinite(pm).any():
        a, b = (pm, "position error on the objects both draw"), (pb, "")
    else:
        a, b = _error_curve(model), _error_curve(base)
        if a is None or b is None or a[1] != b[1]:
            return None
    wins = np.nan_to_num(a[0], nan=np.inf) < np.nan_to_num(b[0], nan=np.inf)
    if wins.all():
        return f"beats {base_name} at every horizon ({a[1]})"
    if not wins.any():
        return f"never beats {base_name} ({a[1]})"
    last_loss = int(np.flatnonzero(~wins)[-1])
    if last_loss == len(wins) - 1:
        return f"beats {base_name} only at some horizons, not at the last ({a[1]})"
    return f"beats {base_name} from horizon {last_loss + 2} on ({a[1]})"


def sentence(
    name: str, per_split: dict[str, MetricSet], reference: str, baselines: dict[str, MetricSet]
) -> str:
    """One plain sentence: how long it stays valid, where it beats the baselines, where identities break.

    ``baselines`` maps a baseline name to its metrics on the reference split (the model itself excluded).
    """
    ref = per_split[reference]
    parts = []
    if "valid_horizon" in ref.scalars:
        hz = len(ref.curves["identity"]) if "identity" in ref.curves else 0
        parts.append(f"valid for {ref.scalars['valid_horizon']:.1f} of {hz} frames on {reference}")
    for base in ("constant_velocity", "copy_last"):
        if base in baselines and base != name:
            v = _versus(ref, baselines[base], base.replace("_", "-"), base)
            if v:
                parts.append(v)
                break
    breaks = []
    for split, m in per_split.items():
        surv = m.curves.get("identity_survival")
        if surv is None:
            continue
        below = np.flatnonzero(surv < 0.5)
        if len(below):
            breaks.append((int(below[0]) + 1, split))
    if breaks:  # frames count from 1, the first predicted frame
        frame, split = min(breaks)
        broken = 1.0 - float(per_split[split].curves["identity_survival"][-1])
        parts.append(
            f"half its episodes have broken an identity by frame {frame} on {split} ({broken:.0%} by the last)"
        )
    elif all(m.scalars.get("identity_persistence") == 1.0 for m in per_split.values()):
        parts.append("keeps every identity in every frame on every split")
    elif any("identity_survival" in m.curves for m in per_split.values()):
        kept = min(
            float(m.curves["identity_survival"][-1])
            for m in per_split.values()
            if "identity_survival" in m.curves
        )
        parts.append(
            f"keeps every identity over the whole horizon in at least {kept:.0%} of episodes on every split"
        )
    if not parts:
        return f"{name}: pixel metrics only (no object state known for this world)."
    return f"{name}: " + "; ".join(parts) + "."
