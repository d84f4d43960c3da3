"""Physics metrics from judged frames: solidity, contacts, post-collision motion, gravity, energy, momentum.

Time axes are extended as in :mod:`gedanken.audit.objects` (index 0 is the last context frame). Every
metric is computed the same way on the real frames, so each has the simulator's own value beside it
(``..._truth``): the judge's pixel quantisation and the engine's own contact slop show up there, not as a
fault of the model.

* Solidity: judged objects are circles of the object's known radius (a box counts as its inscribed circle,
  which never overstates an overlap). Two objects overlap when their centres are closer than the sum of
  the radii minus ``penetration_tol``; an object is past a wall when it reaches beyond the ``WORLD_SIZE``
  square by more than ``penetration_tol``. A blob touching the frame edge has its centre re-estimated
  along that axis (the centroid of a cut blob lies too far inside): a circle from its centroid, inverting
  where the centroid of a disc cut by the edge lies (:func:`cut_disc_centre`), a box from the far side of
  its bounding box. The centroid keeps a faint far row to a third of a unit on a circle, where the far side
  moves a whole unit (session 31, ``benchmarks/judge_edges.py``).
* Contacts: onsets of "touching" (gap below ``contact_tol``) per pair and per object with the walls,
  matched between prediction and truth within ``contact_window`` frames for precision, recall and F1.
* Gravity: quadratic fits of ``y(t)`` over contact-free runs (exact contacts from the simulator) of at
  least ``free_flight_min`` frames; ``g = -2 a fps^2`` in world units per second squared.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from gedanken.audit.config import AuditConfig, MetricSet, episode_ci, scalar_mean
from gedanken.audit.judge import Judged
from gedanken.audit.objects import ObjectView
from gedanken.worlds.state import WORLD_SIZE


@dataclass
class PhysicsTruth:
    """What the physics metrics need to know about the episodes beyond frames."""

    radius: np.ndarray  # (B, K) world units (circle radius; inscribed radius of a box)
    solid: np.ndarray  # (B, K) bool: dynamic objects that must not overlap
    mass: np.ndarray  # (B, K) mass (0 for static slots)
    contacts: np.ndarray | None  # (B, E, K) int32 exact contact bitmask from the simulator, None if unknown
    gravity: np.ndarray  # (B,) each episode's gravity (world units / s^2, positive = down); NaN if unknown
    fps: float
    circle: np.ndarray  # (B, K) bool: drawn as a circle (else a box, judged by its inscribed circle)


# Where the centroid of a unit disc cut by a straight edge lies. ``tau``: distance from the disc's centre to
# the edge (-1: all cut away, 1: just touching); ``_CUT_D``: distance from the visible part's centroid to the
# edge, which rises monotonically from 0 to 1 with ``tau``.
_CUT_TAU = np.linspace(-1.0, 1.0, 2001)
_CUT_AREA = _CUT_TAU * np.sqrt(1 - _CUT_TAU**2) + np.arcsin(_CUT_TAU) + np.pi / 2  # visible area / r^2
with np.errstate(divide="ignore", invalid="ignore"):
    _CUT_D = _CUT_TAU + np.where(_CUT_AREA > 0, (2 / 3) * (1 - _CUT_TAU**2) ** 1.5 / _CUT_AREA, 1.0)


def cut_disc_centre(d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Distance from the edge to a disc's centre, given its visible centroid's distance ``d`` (both pixels).

    A disc of radius ``r`` whose centroid lies ``d >= r`` inside is not cut (the centre is the centroid).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        q = d / r
    return np.where(q >= 1, d, np.interp(q, _CUT_D, _CUT_TAU) * r)


def _edge_axis(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, size: int, r: np.ndarray, circle: np.ndarray):
    """One axis of :func:`centres`: ``v`` centroids, ``lo``/``hi`` bounding-box edges, ``size`` pixels."""
    low, high = (lo <= 0) & (hi < size), (hi >= size) & (lo > 0)
    v = np.where(low, np.where(circle, cut_disc_centre(v, r), hi - r), v)
    return np.where(high, np.where(circle, size - cut_disc_centre(size - v, r), lo + r), v)


def centres(j: Judged, truth: PhysicsTruth) -> np.ndarray:
    """(B, E, K, 2) world-unit centres, with blobs at the frame edge re-estimated along that axis (not when the
    judged positions are the objects' exact centres, as for a model that predicts states)."""
    col, row = j.col.astype(np.float64), j.row.astype(np.float64)
    if j.exact:
        return np.stack([col * (WORLD_SIZE / j.width), WORLD_SIZE - row * (WORLD_SIZE / j.height)], -1)
    rx = truth.radius[:, None, :] * (j.width / WORLD_SIZE)  # (B, 1, K) pixels
    ry = truth.radius[:, None, :] * (j.height / WORLD_SIZE)
    c0, c1, r0, r1 = (j.bbox[..., i].astype(np.float64) for i in range(4))
    circle = truth.circle[:, None, :]
    col = _edge_axis(col, c0, c1, j.width, rx, circle)
    row = _edge_axis(row, r0, r1, j.height, ry, circle)
    x = col * (WORLD_SIZE / j.width)
    y = WORLD_SIZE - row * (WORLD_SIZE / j.height)
    return np.stack([x, y], -1)


@dataclass
class Geometry:
    """Pairwise and wall gaps between judged objects (negative = overlap), NaN where not judged."""

    pair_gap: np.ndarray  # (B, E, P) for the pairs in ``pairs``
    wall_gap: np.ndarray  # (B, E, K) smallest distance from the object's rim to the walls
    pairs: np.ndarray  # (P, 2) slot indices i < j of solid-capable pairs


def geometry(j: Judged, truth: PhysicsTruth) -> Geometry:
    xy = centres(j, truth)  # (B, E, K, 2)
    radius = truth.radius
    k = xy.shape[2]
    ii, jj = np.triu_indices(k, 1)
    d = np.sqrt(((xy[:, :, ii] - xy[:, :, jj]) ** 2).sum(-1))  # (B, E, P)
    gap = d - (radius[:, None, ii] + radius[:, None, jj])
    x, y = xy[..., 0], xy[..., 1]
    r = radius[:, None, :]
    wall = np.minimum(np.minimum(x - r, WORLD_SIZE - x - r), np.minimum(y - r, WORLD_SIZE - y - r))
    return Geometry(pair_gap=gap, wall_gap=wall, pairs=np.stack([ii, jj], 1))


def _contact_events(g: Geometry, solid: np.ndarray, tol: float) -> np.ndarray:
    """(B, E, P + K) bool contact onsets (pairs first, then walls); only solid objects take part."""
    sp = solid[:, g.pairs[:, 0]] & solid[:, g.pairs[:, 1]]  # (B, P)
    touch = np.concatenate(
        [(g.pair_gap <= tol) & sp[:, None, :], (g.wall_gap <= tol) & solid[:, None, :]], axis=2
    )  # NaN gaps compare False: an unseen object touches nothing
    on = np.zeros_like(touch)
    on[:, 1:] = touch[:, 1:] & ~touch[:, :-1]
    return on


def _match_events(pred: np.ndarray, true: np.ndarray, window: int) -> tuple[int, int, int]:
    """Greedy one-to-one matching of onsets per (episode, pair) within +-window frames -> (tp, fp, fn)."""
    tp = 0
    n_pred, n_true = int(pred.sum()), int(true.sum())
    for b, q in zip(*np.nonzero(true.any(1) & pred.any(1)), strict=True):
        te = np.flatnonzero(true[b, :, q])
        pe = list(np.flatnonzero(pred[b, :, q]))
        for t in te:
            hit = next((p for p in pe if abs(p - t) <= window), None)
            if hit is not None:
                pe.remove(hit)
                tp += 1
    return tp, n_pred - tp, n_true - tp


def breaches(g: Geometry, solid: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """``(B, E, P)`` solid pairs that overlap and ``(B, E, K)`` solid objects past a wall, by more than tol."""
    sp = solid[:, g.pairs[:, 0]] & solid[:, g.pairs[:, 1]]
    return (g.pair_gap < -tol) & sp[:, None, :], (g.wall_gap < -tol) & solid[:, None, :]


def _interpenetration(g: Geometry, solid: np.ndarray, tol: float) -> np.ndarray:
    """(B, E) bool: some solid pair overlaps or some solid object reaches past a wall by more than tol."""
    pairs, walls = breaches(g, solid, tol)
    return pairs.any(-1) | walls.any(-1)


def _free_runs(free: np.ndarray, min_len: int) -> list[tuple[int, int, int, int]]:
    """Maximal True runs of at least ``min_len`` in (B, E, K) -> [(b, k, start, stop)]."""
    runs = []
    padded = np.zeros((free.shape[0], free.shape[1] + 2, free.shape[2]), bool)
    padded[:, 1:-1] = free
    edges = np.diff(padded.astype(np.int8), axis=1)  # (B, E + 1, K)
    for b, k in zip(*np.nonzero(free.any(1)), strict=True):
        starts = np.flatnonzero(edges[b, :, k] == 1)
        stops = np.flatnonzero(edges[b, :, k] == -1)
        runs += [
            (int(b), int(k), int(s), int(e)) for s, e in zip(starts, stops, strict=True) if e - s >= min_len
        ]
    return runs


def _fit_g(y: np.ndarray, fps: float) -> float:
    t = np.arange(len(y), dtype=np.float64)
    a = np.polyfit(t, y, 2)[0]
    return float(-2.0 * a * fps * fps)


def _energy(v: ObjectView, ok: np.ndarray, mass: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy (B, E) and momentum (B, E, 2) of the judged objects where ``ok`` (velocity defined)."""
    m = mass[:, None, :]  # (B, 1, K)
    vel = np.where(ok[..., None], v.vel, 0.0)
    y = np.where(ok, v.xy[..., 1], 0.0)
    g = np.nan_to_num(g, nan=0.0)[:, None, None]  # (B, 1, 1): no potential energy without gravity
    energy = (0.5 * m * (vel * vel).sum(-1) + m * g * y).sum(-1)
    momentum = (m[..., None] * vel).sum(2)
    return energy, momentum


def physics_metrics(
    pred: Judged, true: Judged, pv: ObjectView, tv: ObjectView, truth: PhysicsTruth, cfg: AuditConfig
) -> MetricSet:
    """Solidity, contact F1, post-collision velocity, gravity fit and energy/momentum drift."""
    if cfg.edge_rule == "far_side":
        truth = dataclasses.replace(truth, circle=np.zeros_like(truth.circle))
    gp, gt = geometry(pred, truth), geometry(true, truth)
    m = MetricSet()

    pen_p = _interpenetration(gp, truth.solid, cfg.penetration_tol)[:, 1:]  # (B, Hz)
    pen_t = _interpenetration(gt, truth.solid, cfg.penetration_tol)[:, 1:]
    m.curves["interpenetration"] = pen_p.mean(0)
    m.curves["interpenetration_truth"] = pen_t.mean(0)
    m.scalars["interpenetration"] = float(pen_p.mean())
    m.scalars["interpenetration_truth"] = float(pen_t.mean())
    lo, hi = episode_ci(pen_p.mean(1))
    m.scalars["interpenetration_lo"], m.scalars["interpenetration_hi"] = lo, hi

    on_p = _contact_events(gp, truth.solid, cfg.contact_tol)
    on_t = _contact_events(gt, truth.solid, cfg.contact_tol)
    tp, fp, fn = _match_events(on_p[:, 1:], on_t[:, 1:], cfg.contact_window)
    m.scalars["contact_events_truth"] = float(tp + fn)
    m.scalars["contact_precision"] = tp / (tp + fp) if tp + fp else float("nan")
    m.scalars["contact_recall"] = tp / (tp + fn) if tp + fn else float("nan")
    m.scalars["contact_f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")

    # Post-collision velocity error: frames within post_collision_frames after a true onset of the object.
    k = truth.radius.shape[1]
    per_obj = on_t[:, :, -k:].copy()  # (B, E, K) wall onsets
    for q, (i, j) in enumerate(gt.pairs):
        per_obj[:, :, i] |= on_t[:, :, q]
        per_obj[:, :, j] |= on_t[:, :, q]
    after = per_obj.copy()
    for s in range(1, cfg.post_collision_frames + 1):
        after[:, s:] |= per_obj[:, :-s]
    sel = after & pv.vel_ok & tv.vel_ok & truth.solid[:, None, :]
    vel_err = np.sqrt(((pv.vel - tv.vel) ** 2).sum(-1))
    m.scalars["post_collision_vel_err"] = scalar_mean(vel_err, sel)

    # Gravity from free flight (exact contacts where the simulator gave them, judged ones otherwise).
    if truth.contacts is not None:
        free = truth.contacts == 0
    else:
        free = ~(gt.wall_gap <= cfg.contact_tol)
    free = free & tv.vis & truth.solid[:, None, :]
    g_pred, g_true = [], []
    for b, kk, s, e in _free_runs(free, cfg.free_flight_min):
        g_true.append(_fit_g(tv.xy[b, s:e, kk, 1], truth.fps))
        if pv.vis[b, s:e, kk].all():
            g_pred.append(_fit_g(pv.xy[b, s:e, kk, 1], truth.fps))
    m.scalars["gravity_true"] = float(np.mean(truth.gravity)) if np.isfinite(truth.gravity).all() else np.nan
    m.scalars["gravity_fit_truth"] = float(np.median(g_true)) if g_true else float("nan")
    m.scalars["gravity_fit"] = float(np.median(g_pred)) if g_pred else float("nan")
    m.scalars["gravity_err"] = abs(m.scalars["gravity_fit"] - m.scalars["gravity_fit_truth"])
    m.scalars["gravity_segments"] = float(len(g_true))
    m.scalars["gravity_segments_fit"] = float(len(g_pred))

    # Energy and momentum of the judged objects against the simulator's own (both through the judge).
    solid = truth.solid[:, None, :]
    e_p, p_p = _energy(pv, pv.vel_ok & solid, truth.mass, truth.gravity)
    e_t, p_t = _energy(tv, tv.vel_ok & solid, truth.mass, truth.gravity)
    e_scale = np.abs(e_t[:, 1:]).mean(1, keepdims=True) + 1e-9  # (B, 1)
    tv_ok = np.where((tv.vel_ok & solid)[..., None], tv.vel, 0.0)
    p_scale = (truth.mass[:, None, :] * np.sqrt((tv_ok**2).sum(-1))).sum(-1)[:, 1:].mean(
        1, keepdims=True
    ) + 1e-9
    energy_err = (np.abs(e_p - e_t)[:, 1:]) / e_scale  # (B, Hz)
    momentum_err = np.sqrt(((p_p - p_t) ** 2).sum(-1))[:, 1:] / p_scale
    m.curves["energy_err"] = energy_err.mean(0)
    m.curves["momentum_err"] = momentum_err.mean(0)
    m.scalars["energy_err"] = float(energy_err.mean())
    m.scalars["momentum_err"] = float(momentum_err.mean())
    m.scalars["energy_drift"] = float((np.abs(e_p[:, -1] - e_p[:, 1]) / e_scale[:, 0]).mean())
    m.scalars["energy_drift_truth"] = float((np.abs(e_t[:, -1] - e_t[:, 1]) / e_scale[:, 0]).mean())
    m.scalars["momentum_drift"] = float(
        (np.sqrt(((p_p[:, -1] - p_p[:, 1]) ** 2).sum(-1)) / p_scale[:, 0]).mean()
    )
    m.scalars["momentum_drift_truth"] = float(
        (np.sqrt(((p_t[:, -1] - p_t[:, 1]) ** 2).sum(-1)) / p_scale[:, 0]).mean()
    )
    return m
