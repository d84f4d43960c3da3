"""Object metrics from judged frames: position and velocity error, identity persistence, events.

Every function here takes judged predicted and true frames on an *extended* time axis of ``E = 1 + Hz``
steps: index 0 is the last context frame (the same real frame for both, so that velocities and jumps at the
first predicted step are defined), indices ``1..Hz`` are the horizon. Curves have ``Hz`` entries, entry
``h`` for the ``h + 1``-th predicted frame.

Identity of an object ``k`` at a predicted frame is *right* when the judge sees it exactly when it sees it
in the real frame (an occluded object is rightly invisible), it is not split into more blobs than the real
one, and it did not *teleport*: its frame-to-frame displacement is within ``jump_threshold`` of the true
displacement. A frame's identity set is right when every identity is. Visibility only counts against a model
where it is clear-cut: an object *appears* when the prediction shows at least ``clear_fraction`` of its full
area where the real frame shows none, and *vanishes* in the mirror case; slivers at the edge of an occluder,
a few pixels either way, are not identity errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gedanken.audit.config import AuditConfig, MetricSet, episode_ci, masked_mean, scalar_mean
from gedanken.audit.judge import Judged


@dataclass
class ObjectView:
    """Derived per-object quantities shared by the object and physics metrics (``E = 1 + Hz``)."""

    xy: np.ndarray  # (B, E, K, 2) world units, NaN where not visible
    vis: np.ndarray  # (B, E, K) bool
    vel: np.ndarray  # (B, E, K, 2) world units per second, NaN at e = 0 and where not visible twice
    vel_ok: np.ndarray  # (B, E, K) bool: visible at e and e - 1


def object_view(j: Judged, fps: float) -> ObjectView:
    xy = j.xy_world().astype(np.float64)  # (B, E, K, 2)
    vis = j.visible
    vel = np.full_like(xy, np.nan)
    vel[:, 1:] = (xy[:, 1:] - xy[:, :-1]) * fps
    vel_ok = np.zeros_like(vis)
    vel_ok[:, 1:] = vis[:, 1:] & vis[:, :-1]
    return ObjectView(xy=xy, vis=vis, vel=vel, vel_ok=vel_ok)


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt((v * v).sum(-1))


def _onsets(cond: np.ndarray) -> np.ndarray:
    """(B, E, ...) bool -> (B, E, ...) True where ``cond`` switches on (never at e = 0)."""
    out = np.zeros_like(cond)
    out[:, 1:] = cond[:, 1:] & ~cond[:, :-1]
    return out


def first_false(ok: np.ndarray) -> np.ndarray:
    """(B, Hz) bool -> (B,) index of the first False per row (Hz when all True)."""
    bad = ~ok
    return np.where(bad.any(1), bad.argmax(1), ok.shape[1])


@dataclass
class IdentityCheck:
    """Per-object identity verdicts over the extended axis."""

    ok: np.ndarray  # (B, E, K) bool
    appear: np.ndarray  # (B, E, K) visible in prediction, not in the real frame
    vanish: np.ndarray  # (B, E, K) visible in the real frame, not in prediction
    duplicate: np.ndarray  # (B, E, K) more blobs than the real frame shows
    jump: np.ndarray  # (B, E, K) teleport


def identity_check(
    pred: Judged, true: Judged, p: ObjectView, t: ObjectView, cfg: AuditConfig, full_area: np.ndarray
) -> IdentityCheck:
    """Per-object verdicts; ``full_area`` ``(B, K)`` is each object's unoccluded area in pixels."""
    clear = cfg.clear_fraction * full_area[:, None, :]  # (B, 1, K)
    appear = pred.visible & ~true.visible & (pred.area >= clear)
    vanish = ~pred.visible & true.visible & (true.area >= clear)
    duplicate = pred.components > np.maximum(true.components, 1)
    both = p.vel_ok & t.vel_ok
    step_p = np.zeros_like(p.xy)
    step_t = np.zeros_like(t.xy)
    step_p[:, 1:] = p.xy[:, 1:] - p.xy[:, :-1]
    step_t[:, 1:] = t.xy[:, 1:] - t.xy[:, :-1]
    jump = both & (np.nan_to_num(_norm(step_p - step_t), nan=0.0) > cfg.jump_threshold)
    ok = ~appear & ~vanish & ~duplicate & ~jump
    return IdentityCheck(ok=ok, appear=appear, vanish=vanish, duplicate=duplicate, jump=jump)


def object_metrics(
    pred: Judged,
    true: Judged,
    present: np.ndarray,
    moving: np.ndarray,
    cfg: AuditConfig,
    fps: float,
    full_area: np.ndarray | None = None,
) -> MetricSet:
    """Position, velocity, identity and event metrics.

    Args:
        pred, true: judged frames, ``(B, E, K)``.
        present: ``(B, E, K)`` bool, the object exists in the simulator (visible or occluded).
        moving: ``(B, K)`` bool, the object is dynamic (position/velocity metrics use only these).
        fps: frames per second of the episodes (velocities are in world units per second).
        full_area: ``(B, K)`` unoccluded area of each object in pixels (default: its largest judged area in
            the real frames).
    """
    if pred.visible.shape != true.visible.shape:
        raise ValueError(f"judged prediction {pred.visible.shape} and truth {true.visible.shape} differ")
    p, t = object_view(pred, fps), object_view(true, fps)
    ppu = true.px_per_unit
    b, e, k = true.visible.shape
    mov = np.broadcast_to(moving[:, None, :], (b, e, k))

    both = pred.visible & true.visible & mov  # (B, E, K)
    pos_err = _norm(p.xy - t.xy)  # (B, E, K) world units
    vel_both = p.vel_ok & t.vel_ok & mov
    vel_err = _norm(p.vel - t.vel)  # world units / s

    if full_area is None:
        full_area = true.area.max(1)
    ident = identity_check(pred, true, p, t, cfg, full_area)
    frame_ok = ident.ok.all(-1)[:, 1:]  # (B, Hz)
    first_break = first_false(frame_ok)  # (B,)
    survival = np.cumprod(frame_ok, axis=1)

    # Valid-prediction horizon: mean error over moving objects seen in the real frame, a vanished one is inf.
    seen = true.visible & mov
    err_inf = np.where(pred.visible, np.nan_to_num(pos_err, nan=np.inf), np.inf)
    per_frame = masked_mean(err_inf, seen, axis=2)[:, 1:]  # (B, Hz), NaN where nothing moving is seen
    valid = ~(per_frame > cfg.valid_threshold)  # NaN (nothing to judge) counts as valid
    vph = first_false(valid)

    occluded = present & ~true.visible
    ghost = ident.appear & present  # drawn although the real frame hides it
    spurious = ident.appear & ~present
    hz = frame_ok.shape[1]
    n_px = true.height * true.width

    m = MetricSet()
    m.curves["pos_err"] = masked_mean(pos_err, both, axis=(0, 2))[1:]
    m.curves["pos_err_px"] = m.curves["pos_err"] * ppu
    m.curves["vel_err"] = masked_mean(vel_err, vel_both, axis=(0, 2))[1:]
    m.curves["identity"] = frame_ok.mean(0)
    m.curves["identity_survival"] = survival.mean(0)
    m.curves["valid_share"] = np.cumprod(valid, axis=1).mean(0)
    m.curves["vanished"] = masked_mean(ident.vanish, true.visible, axis=(0, 2))[1:]
    m.curves["wrong_colour"] = (pred.wrong_px[:, 1:] / n_px).mean(0)
    # Size: log2 of judged area, prediction over truth, for every object seen in both (blur that the judge
    # still takes for the object, or a blob that grows frame after frame, shows here and nowhere else).
    seen_both = pred.visible & true.visible
    log_area = np.log2(np.maximum(pred.area, 1.0) / np.maximum(true.area, 1.0))
    m.curves["area_ratio"] = np.exp2(masked_mean(log_area, seen_both, axis=(0, 2))[1:])

    m.scalars["pos_err"] = scalar_mean(pos_err[:, 1:], both[:, 1:])
    m.scalars["pos_err_px"] = m.scalars["pos_err"] * ppu
    m.scalars["vel_err"] = scalar_mean(vel_err[:, 1:], vel_both[:, 1:])
    m.scalars["vel_err_px"] = m.scalars["vel_err"] * ppu / fps  # pixels per frame
    m.scalars["valid_horizon"] = float(vph.mean())
    m.scalars["identity_persistence"] = float(frame_ok.mean())
    lo, hi = episode_ci(frame_ok.mean(1))
    m.scalars["identity_persistence_lo"], m.scalars["identity_persistence_hi"] = lo, hi
    m.scalars["first_break"] = float(first_break.mean())
    m.scalars["first_break_median"] = float(np.median(first_break))
    m.scalars["episodes_broken"] = float((first_break < hz).mean())
    m.scalars["appear_events"] = float(_onsets(spurious)[:, 1:].sum() / b)
    m.scalars["ghost_events"] = float(_onsets(ghost)[:, 1:].sum() / b)
    m.scalars["vanish_events"] = float(_onsets(ident.vanish)[:, 1:].sum() / b)
    m.scalars["duplicate_events"] = float(_onsets(ident.duplicate)[:, 1:].sum() / b)
    m.scalars["jump_events"] = float(ident.jump[:, 1:].sum() / b)
    m.scalars["occluded_frames"] = float(occluded[:, 1:].sum())
    m.scalars["occluded_correct"] = scalar_mean(~pred.visible[:, 1:], occluded[:, 1:])
    m.scalars["wrong_colour"] = float((pred.wrong_px[:, 1:] / n_px).mean())
    m.scalars["area_ratio"] = float(np.exp2(scalar_mean(log_area[:, 1:], seen_both[:, 1:])))
    m.scalars["size_err"] = scalar_mean(np.abs(log_area[:, 1:]), seen_both[:, 1:])
    m.objects["pos_err_px"] = np.where(both, pos_err * ppu, np.nan)[:, 1:]  # (B, Hz, K)
    return m


PAIRED_BASELINES: tuple[str, ...] = ("copy_last", "constant_velocity")


def paired_position(model: MetricSet, base: MetricSet) -> dict[str, np.ndarray]:
    """Position error of a model and a baseline on the *same* objects: those both draw where the truth does.

    Each one's ``pos_err_px`` curve averages over the objects *it* still shows. A baseline that loses objects
    (constant velocity carries the pusher out of the frame) is then scored on fewer, easier ones at long
    horizons, and a per-horizon comparison of the two curves favours it. Here both are averaged over the
    intersection. Returns ``model_px``, ``base_px`` and ``objects`` (object-frames in the intersection), each
    ``(Hz,)``; empty when either side has no per-object errors (a world without a palette)."""
    a, b = model.objects.get("pos_err_px"), base.objects.get("pos_err_px")
    if a is None or b is None:
        return {}
    if a.shape != b.shape:
        raise ValueError(f"per-object errors of different episodes: {a.shape} and {b.shape}")
    shared = np.isfinite(a) & np.isfinite(b)
    return {
        "model_px": masked_mean(a, shared, axis=(0, 2)),
        "base_px": masked_mean(b, shared, axis=(0, 2)),
        "objects": shared.sum(axis=(0, 2)).astype(np.float64),
    }
