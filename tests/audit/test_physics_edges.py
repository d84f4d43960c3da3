"""Where the judge places an object that touches the frame's edge (the solidity rule's wall gap)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from audit_helpers import PALETTE, ball_states, render_states

from gedanken.audit.config import AuditConfig
from gedanken.audit.judge import judge_frames
from gedanken.audit.physics import PhysicsTruth, breaches, centres, geometry

RADIUS = 4.0


def _truth(circle: bool = True, k: int = 3, radius: float = RADIUS) -> PhysicsTruth:
    return PhysicsTruth(
        radius=np.full((1, k), radius),
        solid=np.ones((1, k), bool),
        mass=np.ones((1, k)),
        contacts=None,
        gravity=np.full(1, np.nan),
        fps=15.0,
        circle=np.full((1, k), circle),
    )


def _frame(y: float, x: float = 30.3, radius: float = RADIUS) -> np.ndarray:
    """(1, 1, 64, 64, 3) one ball of ``radius`` at (x, y); the other slots absent."""
    tracks = np.full((1, 3, 2), np.nan)
    tracks[0, 0] = (x, y)
    return render_states(ball_states(tracks, radius=radius))[None]


def _floor_gap(frames: np.ndarray, truth: PhysicsTruth) -> float:
    j = judge_frames(frames, PALETTE)
    return float(geometry(j, truth).wall_gap[0, 0, 0])


def _erase_top_row(frames: np.ndarray) -> np.ndarray:
    """The ball's top row painted background (a decoder that draws it too faint)."""
    out = frames.copy()
    fg = (out[0, 0] != np.asarray(PALETTE[0], np.uint8)).any(-1)
    top = int(np.flatnonzero(fg.any(1))[0])
    out[0, 0, top][fg[top]] = PALETTE[0]
    return out


def test_a_ball_resting_on_the_floor_reads_as_touching() -> None:
    gap = _floor_gap(_frame(RADIUS), _truth())
    assert abs(gap) < 0.3


@pytest.mark.parametrize("depth", [0.5, 1.5, 3.0, 6.0])
def test_a_ball_past_the_floor_is_placed_by_its_cut_centroid(depth: float) -> None:
    frames = _frame(RADIUS - depth)
    gap = _floor_gap(frames, _truth())
    assert gap == pytest.approx(-depth, abs=0.3)
    # the raw centroid of the cut blob would put it further inside: the correction is doing the work
    raw = 64 - float(judge_frames(frames, PALETTE).row[0, 0, 0]) - RADIUS
    assert raw > gap + (0.2 if depth >= 1.5 else -0.3)


def test_a_faint_far_row_moves_a_circle_by_a_fraction_of_a_unit() -> None:
    frames = _frame(RADIUS)
    faint = _erase_top_row(frames)
    circle, box = _truth(circle=True), _truth(circle=False)
    shift_circle = _floor_gap(faint, circle) - _floor_gap(frames, circle)
    shift_far_side = _floor_gap(faint, box) - _floor_gap(frames, box)
    assert shift_far_side == pytest.approx(-1.0)  # the far-side rule takes the whole missing row
    assert -0.65 < shift_circle < -0.05  # the centroid moves, but by much less
    tol = AuditConfig().penetration_tol
    g = geometry(judge_frames(faint, PALETTE), circle)
    assert not breaches(g, circle.solid, tol)[1].any()


def test_boxes_keep_the_far_side_rule() -> None:
    frames = _frame(RADIUS - 2.0)
    j = judge_frames(frames, PALETTE)
    far = centres(j, _truth(circle=False))[0, 0, 0, 1]
    assert far == pytest.approx(64 - float(j.bbox[0, 0, 0, 2]) - RADIUS)  # y of the far side minus r
    assert centres(j, _truth(circle=True))[0, 0, 0, 1] != far


def test_side_walls_and_the_ceiling_are_judged_alike() -> None:
    truth = _truth()
    for x, y in ((RADIUS - 1.0, 30.0), (64 - RADIUS + 1.0, 30.0), (30.0, 64 - RADIUS + 1.0)):
        tracks = np.full((1, 3, 2), np.nan)
        tracks[0, 0] = (x, y)
        j = judge_frames(render_states(ball_states(tracks, radius=RADIUS))[None], PALETTE)
        assert float(geometry(j, truth).wall_gap[0, 0, 0]) == pytest.approx(-1.0, abs=0.3)


def test_absent_objects_stay_unjudged() -> None:
    truth = dataclasses.replace(_truth(), radius=np.array([[RADIUS, 0.0, 0.0]]))
    xy = centres(judge_frames(_frame(RADIUS), PALETTE), truth)
    assert np.isfinite(xy[0, 0, 0]).all() and np.isnan(xy[0, 0, 1:]).all()


def test_the_audit_config_chooses_the_edge_rule() -> None:
    from gedanken.audit.objects import object_view
    from gedanken.audit.physics import physics_metrics

    # a ball resting on the floor (the raster reads it 0.2 units in: far side -0.2, centroid -0.1)
    frames = np.concatenate([_frame(3.6, radius=3.6)] * 3, 1)
    pred = frames.copy()
    pred[:, 1:] = _erase_top_row(frames[:, 1:2])  # the model draws the top row too faint
    tj, pj = judge_frames(frames, PALETTE), judge_frames(pred, PALETTE)
    truth = dataclasses.replace(_truth(radius=3.6), solid=np.array([[True, False, False]]))
    rates = {}
    for rule in ("centroid", "far_side"):
        cfg = AuditConfig(edge_rule=rule)
        m = physics_metrics(pj, tj, object_view(pj, 15.0), object_view(tj, 15.0), truth, cfg)
        rates[rule] = (m.scalars["interpenetration"], m.scalars["interpenetration_truth"])
    assert rates["centroid"] == (0.0, 0.0)
    assert rates["far_side"] == (1.0, 0.0)
    with pytest.raises(ValueError, match="edge_rule"):
        AuditConfig(edge_rule="middle")


def test_exact_centres_from_states_are_not_re_estimated() -> None:
    from gedanken.audit.judge import judged_from_states

    tracks = np.full((1, 3, 2), np.nan)
    tracks[0, 0] = (30.0, RADIUS - 2.0)  # two units past the floor
    j = judged_from_states(ball_states(tracks, radius=RADIUS)[None], 64, 64)
    assert float(geometry(j, _truth()).wall_gap[0, 0, 0]) == pytest.approx(-2.0)
