"""Metrics on constructed cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from audit_helpers import PALETTE, ball_states, make_truth, render_states

from gedanken.audit.baselines import CopyLastFrame, GroundTruth
from gedanken.audit.config import AuditConfig
from gedanken.audit.evaluate import evaluate_model, judge_truth
from gedanken.audit.judge import judge_frames
from gedanken.audit.objects import object_metrics, object_view
from gedanken.audit.physics import PhysicsTruth, physics_metrics
from gedanken.audit.pixels import PSNR_CAP, psnr, ssim
from gedanken.worlds.state import H, W

CFG = AuditConfig()


def _line(t: int, start: tuple[float, float], vel: tuple[float, float]) -> np.ndarray:
    """(T, 2) positions of constant velocity (world units per frame)."""
    return np.asarray(start) + np.arange(t)[:, None] * np.asarray(vel)


def _tracks(*balls: np.ndarray, k: int = 3) -> np.ndarray:
    """(T, K, 2) from per-ball (T, 2) tracks; missing slots absent."""
    t = len(balls[0])
    out = np.full((t, k, 2), np.nan)
    for i, b in enumerate(balls):
        out[:, i] = b
    return out


def _metrics(true_tracks: np.ndarray, pred_tracks: np.ndarray, gravity: float = float("nan")):
    """Object + physics metrics of predicted vs true tracks (both (T, K, 2), extended axis: index 0 shared)."""
    ts, ps = ball_states(true_tracks)[None], ball_states(pred_tracks)[None]
    tj, pj = judge_frames(render_states(ts), PALETTE), judge_frames(render_states(ps), PALETTE)
    present = ts[..., 0] > 0
    moving = present.any(1)
    m = object_metrics(pj, tj, present, moving, CFG, fps=15.0)
    phys = PhysicsTruth(
        radius=np.full((1, 3), 3.0),
        solid=moving,
        mass=moving.astype(float),
        contacts=np.zeros(present.shape, np.int32),
        gravity=np.array([gravity]),
        fps=15.0,
        circle=np.ones((1, 3), bool),
    )
    m.update(physics_metrics(pj, tj, object_view(pj, 15.0), object_view(tj, 15.0), phys, CFG))
    return m


def test_teleport_breaks_identity_at_the_right_frame() -> None:
    true = _tracks(_line(21, (10, 20), (1, 0.5)), _line(21, (50, 50), (-0.5, 0)))
    pred = true.copy()
    pred[11:, 0] += (0, 20)  # ball 0 jumps 20 units at extended index 11 = horizon step 10
    m = _metrics(true, pred)
    assert m.scalars["first_break"] == 10
    assert (
        m.curves["identity"][10] == 0 and m.curves["identity"][:10].all() and m.curves["identity"][11:].all()
    )
    assert m.scalars["jump_events"] == 1
    same = _metrics(true, true)
    assert same.scalars["first_break"] == 20 and same.scalars["identity_persistence"] == 1.0


def test_ball_through_a_wall_is_interpenetration() -> None:
    # Truth: the ball falls to the floor (centre at radius 3) and rests. Prediction: it sinks through.
    y_true = np.maximum(20 - 2.0 * np.arange(16), 3.0)
    y_pred = 20 - 2.0 * np.arange(16)
    true = _tracks(np.stack([np.full(16, 32.0), y_true], 1))
    pred = _tracks(np.stack([np.full(16, 32.0), y_pred], 1))
    m = _metrics(true, pred)
    assert m.scalars["interpenetration_truth"] == 0.0
    # Extended index e has y = 20 - 2e: e = 10 (y = 0, half sunk) and e = 11 (y = -2, a sliver left) breach
    # the floor by more than the tolerance; from e = 12 on the ball is gone entirely, which is a vanish.
    breach = m.curves["interpenetration"]
    assert breach[:9].sum() == 0 and breach[9:11].all() and breach[11:].sum() == 0
    assert m.scalars["vanish_events"] == 1


def test_balls_overlapping_is_interpenetration() -> None:
    a = _line(12, (20, 30), (1, 0))
    true = _tracks(a, _line(12, (40, 30), (0, 0)))
    pred = _tracks(a, _line(12, (40, 30), (-1, 0)))  # moves into ball 0: overlap grows every frame
    m = _metrics(true, pred)
    assert m.scalars["interpenetration_truth"] == 0.0
    assert m.curves["interpenetration"][-1] == 1.0


def test_vanish_versus_occluded() -> None:
    a, b = _line(10, (10, 10), (1, 1)), _line(10, (50, 20), (0, 1))
    true = _tracks(a, b)
    pred = true.copy()
    pred[5:, 1] = np.nan  # ball 1 disappears from the prediction at horizon step 4
    m = _metrics(true, pred)
    assert m.scalars["vanish_events"] == 1 and m.scalars["first_break"] == 4
    # If the simulator hides it too (occluded: present but unseen), leaving it out is right.
    ts = ball_states(true)[None]
    frames = render_states(ts)
    frames[0, 5:] = render_states(ball_states(pred))[5:]  # the real frames hide ball 1 from index 5
    tj, pj = judge_frames(frames, PALETTE), judge_frames(render_states(ball_states(pred)[None]), PALETTE)
    present = ts[..., 0] > 0
    occ = object_metrics(pj, tj, present, present.any(1), CFG, 15.0)
    assert occ.scalars["vanish_events"] == 0 and occ.scalars["identity_persistence"] == 1.0
    assert occ.scalars["occluded_correct"] == 1.0 and occ.scalars["occluded_frames"] == 5


def test_duplicate_object_is_reported() -> None:
    true = _tracks(_line(8, (10, 10), (1, 1)))
    frames_t = render_states(ball_states(true)[None])
    frames_p = frames_t.copy()
    rows, cols = np.mgrid[0:64, 0:64] + 0.5
    frames_p[0, 4:, (cols - 50) ** 2 + (rows - 50) ** 2 <= 9] = PALETTE[1]  # a second copy of ball 0
    tj, pj = judge_frames(frames_t, PALETTE), judge_frames(frames_p, PALETTE)
    present = ball_states(true)[None][..., 0] > 0
    m = object_metrics(pj, tj, present, present.any(1), CFG, 15.0)
    assert m.scalars["duplicate_events"] == 1 and m.scalars["first_break"] == 3


def test_wrong_gravity_is_caught_by_the_law_fit() -> None:
    t = np.arange(20) / 15.0

    def fall(g: float) -> np.ndarray:
        return _tracks(np.stack([30 + 10 * t, 55 - 0.5 * g * t**2], 1))

    right = _metrics(fall(35.0), fall(35.0), gravity=35.0)
    wrong = _metrics(fall(35.0), fall(70.0), gravity=35.0)
    assert right.scalars["gravity_fit_truth"] == pytest.approx(35.0, rel=0.05)
    assert right.scalars["gravity_err"] == 0.0
    assert wrong.scalars["gravity_fit"] == pytest.approx(70.0, rel=0.05)
    assert wrong.scalars["gravity_err"] > 25.0


def test_contact_f1_matches_within_the_window() -> None:
    a = _line(14, (20, 30), (1, 0))  # touches b (gap <= tol) around index 7
    b = np.full((14, 2), (34.0, 30.0))
    true = _tracks(a, b)
    late = _tracks(_line(14, (19, 30), (1, 0)), b)  # one frame late: inside the +-2 window
    very_late = _tracks(_line(14, (14, 30), (1, 0)), b)  # six frames late
    assert _metrics(true, true).scalars["contact_f1"] == 1.0
    assert _metrics(true, late).scalars["contact_f1"] == 1.0
    assert _metrics(true, very_late).scalars["contact_f1"] == 0.0


def test_psnr_and_ssim() -> None:
    a = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert (psnr(a, a) == PSNR_CAP).all() and np.allclose(ssim(a, a), 1.0)
    b = a.astype(np.int16)
    b[..., 0] = np.where(b[..., 0] > 127, b[..., 0] - 10, b[..., 0] + 10)  # MSE = 100 / 3
    expected = 10 * np.log10(255**2 / (100 / 3))
    assert np.allclose(psnr(b.astype(np.uint8), a), expected)
    assert (ssim(255 - a, a) < 0.5).all()


def test_ground_truth_scores_perfectly(bounce_truth, cfg) -> None:
    tj = judge_truth(bounce_truth, cfg)
    m = evaluate_model(GroundTruth(), bounce_truth, tj, cfg, seed=0).metrics.scalars
    assert m["pos_err"] == 0 and m["vel_err"] == 0
    assert m["identity_persistence"] == 1.0 and m["first_break"] == bounce_truth.horizon
    assert m["psnr"] == PSNR_CAP and m["ssim"] == 1.0
    assert m["valid_horizon"] == bounce_truth.horizon
    assert m["interpenetration"] == m["interpenetration_truth"]
    assert m["gravity_err"] == 0 and m["energy_err"] == 0 and m["momentum_err"] == 0
    assert m["contact_f1"] == 1.0 or np.isnan(m["contact_f1"])
    assert m["vanish_events"] == m["appear_events"] == m["duplicate_events"] == 0


def test_action_blind_model_has_controllability_ratio_one(push_truth, cfg) -> None:
    tj = judge_truth(push_truth, cfg)
    blind = evaluate_model(CopyLastFrame(), push_truth, tj, cfg, seed=0).metrics.scalars
    sim = evaluate_model(GroundTruth(), push_truth, tj, cfg, seed=0).metrics.scalars
    assert blind["ctrl_ratio"] == pytest.approx(1.0) and blind["ctrl_ratio_mse"] == pytest.approx(1.0)
    assert blind["delta_psnr"] == 0.0 and blind["branch_spread_ratio"] == 0.0
    assert sim["ctrl_ratio"] > 2.0 and sim["delta_psnr"] > 10.0
    assert sim["branch_pos_err"] == 0.0 and sim["branch_spread_ratio"] == pytest.approx(1.0)


def test_constructed_truth_runs_end_to_end(cfg) -> None:
    tracks = np.stack([_tracks(_line(12, (10, 30), (1.5, 0)), _line(12, (40, 10), (0, 1)))] * 2)
    truth = make_truth(tracks, context=3)
    m = evaluate_model(CopyLastFrame(), truth, judge_truth(truth, cfg), cfg, seed=0).metrics
    # copy-last lags by 1.5 units per frame on ball 0 and 1 on ball 1: mean error (1.25 h) at step h.
    assert np.allclose(m.curves["pos_err"], 1.25 * np.arange(1, 10), atol=0.3)
    assert m.scalars["valid_horizon"] == 1  # 1.25 at step 1 is valid, 2.5 at step 2 is not (threshold 2)


def test_a_growing_object_shows_in_size_not_in_identity() -> None:
    true = _tracks(_line(10, (20, 30), (1, 0)), _line(10, (45, 40), (0, -1)))
    ts = ball_states(true)
    ps = ts.copy()
    ps[5:, 0, W] = ps[5:, 0, H] = 12.0  # ball 0 doubles its diameter from extended index 5 on
    tj, pj = judge_frames(render_states(ts[None]), PALETTE), judge_frames(render_states(ps[None]), PALETTE)
    present = ts[None, ..., 0] > 0
    m = object_metrics(pj, tj, present, present.any(1), CFG, 15.0)
    assert m.scalars["identity_persistence"] == 1.0
    assert m.curves["area_ratio"][:4] == pytest.approx(1.0)
    assert 1.5 < m.curves["area_ratio"][5] < 2.5  # ball 0 about 4x its area, ball 1 unchanged: geometric mean
    assert m.scalars["size_err"] > 0.5 and m.scalars["area_ratio"] > 1.2
    same = object_metrics(tj, tj, present, present.any(1), CFG, 15.0)
    assert same.scalars["size_err"] == 0.0 and same.scalars["area_ratio"] == 1.0


def test_per_object_errors_are_kept_for_paired_comparisons() -> None:
    true = _tracks(_line(9, (10, 20), (1, 0)), _line(9, (40, 40), (0, 1)))
    pred = true.copy()
    pred[1:, 0] += (0, 2)  # ball 0 drawn 2 units low
    pred[5:, 1] = (500, 500)  # ball 1 leaves the frame at horizon step 4
    m = _metrics(true, pred)
    err = m.objects["pos_err_px"]  # (1, Hz, K), pixels (64 px over 64 units)
    assert err.shape == (1, 8, 3)
    np.testing.assert_allclose(err[0, :, 0], 2.0, atol=0.3)
    assert np.isfinite(err[0, :4, 1]).all() and np.isnan(err[0, 4:, 1]).all()
    assert np.isnan(err[0, :, 2]).all()  # an empty slot is never scored


def test_episode_interval_brackets_the_mean_and_narrows_with_episodes() -> None:
    from gedanken.audit.config import episode_ci

    rng = np.random.default_rng(0)
    few, many = rng.random(20), rng.random(400)
    lo, hi = episode_ci(few)
    assert lo < few.mean() < hi
    lo2, hi2 = episode_ci(many)
    assert lo2 < many.mean() < hi2 and (hi2 - lo2) < 0.6 * (hi - lo)
    assert episode_ci(few) == (lo, hi)  # seeded: the same interval every time
    assert episode_ci(np.ones(10)) == (1.0, 1.0)
    assert all(np.isnan(episode_ci(np.ones(1))))


def test_one_episode_has_no_interval() -> None:
    true = _tracks(_line(9, (10, 20), (1, 0)), _line(9, (40, 40), (0, 1)))
    m = _metrics(true, true.copy())
    assert m.scalars["identity_persistence"] == 1.0
    assert np.isnan(m.scalars["identity_persistence_lo"]) and np.isnan(m.scalars["interpenetration_hi"])
