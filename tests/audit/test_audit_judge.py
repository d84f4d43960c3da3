"""The colour judge: exact on real frames, honest on generated ones."""

from __future__ import annotations

import numpy as np
import pytest
from audit_helpers import PALETTE, ball_states, render_states
from scipy import ndimage

from gedanken.audit.judge import JudgeConfig, judge_frames, judged_from_states
from gedanken.worlds.record import record_episode
from gedanken.worlds.render import rasterize
from gedanken.worlds.state import PRESENT, X, Y, world_to_pixel


def _circle(frame: np.ndarray, cx: float, cy: float, r: float, colour: tuple[int, int, int]) -> None:
    """Draw a circle on a (H, W, 3) frame, pixel centres inside (column cx, row cy in pixels)."""
    rows, cols = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]] + 0.5
    frame[(cols - cx) ** 2 + (rows - cy) ** 2 <= r * r] = colour


@pytest.mark.parametrize("world", ["bounce", "push", "occlude", "grasp"])
def test_exact_on_real_frames(world: str) -> None:
    ep = record_episode(world, "test", seed=10_001, steps=24)
    pal = ep.meta.palette
    j = judge_frames(ep.frames, pal)
    h, w = ep.frames.shape[1:3]
    shapes = ep.meta.shapes
    kinds = ep.meta.kinds
    errs = []
    for t in range(len(ep)):
        st = ep.states[t]
        raster = rasterize(st, shapes, (h, w), kinds)
        pixels = np.bincount(raster.labels.ravel(), minlength=len(pal))[1:]
        # Identity is exact: the judge sees an identity iff the renderer left it (at least 3) pixels.
        assert np.array_equal(j.visible[t], pixels >= 3)
        full = (st[:, PRESENT] > 0) & (raster.visible_fraction() >= 1.0)  # untouched by occlusion
        col, row = world_to_pixel(st[full, X], st[full, Y], w, h)
        errs += list(np.hypot(j.col[t, full] - col, j.row[t, full] - row))
    assert len(errs) > 20
    assert np.mean(errs) <= 0.5, f"mean position error {np.mean(errs):.3f} px"
    assert (j.components[j.visible] >= 1).all() and j.wrong_px.sum() == 0


def test_exact_on_own_circles_64() -> None:
    rng = np.random.default_rng(0)
    frames = np.zeros((50, 64, 64, 3), np.uint8)
    truth = rng.uniform(8, 56, size=(50, 2, 2))
    for n in range(50):
        for k in range(2):
            _circle(frames[n], truth[n, k, 0], truth[n, k, 1], 3.3, PALETTE[k + 1])
    j = judge_frames(frames, PALETTE)
    sep = np.hypot(*(truth[:, 0] - truth[:, 1]).T) > 8  # not overlapping
    assert j.visible[:, :2].all() and not j.visible[:, 2].any()
    err = np.hypot(j.col[:, :2] - truth[..., 0], j.row[:, :2] - truth[..., 1])[sep]
    assert err.mean() <= 0.5 and err.max() < 1.0


def test_copes_with_blur_and_noise() -> None:
    tracks = np.array([[[20.0, 30.0], [44.0, 40.0], [np.nan, np.nan]]])
    frame = render_states(ball_states(tracks, radius=4.0))[0]
    blurred = ndimage.gaussian_filter(frame.astype(np.float32), sigma=(0.7, 0.7, 0))
    noisy = blurred + np.random.default_rng(0).normal(0, 8, blurred.shape)
    gen = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    clean, j = judge_frames(frame, PALETTE), judge_frames(gen, PALETTE)
    assert np.array_equal(j.visible, clean.visible) and j.visible.tolist() == [True, True, False]
    assert np.nanmax(np.hypot(j.col - clean.col, j.row - clean.row)) < 1.0
    assert (j.components[:2] == 1).all()


def test_reports_split_vanished_and_wrong_colours() -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    _circle(frame, 12, 12, 3, PALETTE[1])
    _circle(frame, 50, 50, 3, PALETTE[1])  # identity 0 twice: a duplicate
    frame[30:34, 30:35] = (60, 120, 190)  # far from every palette colour
    frame[5, 60] = PALETTE[2]  # one stray pixel of identity 1: speckle, not an object
    j = judge_frames(frame, PALETTE)
    assert j.components.tolist() == [2, 0, 0]
    assert j.split.tolist() == [True, False, False]
    assert j.visible.tolist() == [True, False, False]  # identity 1 vanished (a pixel is not an object)
    assert int(j.wrong_px) == 20
    assert j.col[0] == pytest.approx(31.0, abs=0.01)  # the centroid of both blobs, reported not guessed


def test_distance_threshold_decides_wrong_colour() -> None:
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[:4] = (220, 30, 30)  # 55 from red
    strict = judge_frames(frame, PALETTE, JudgeConfig(max_colour_distance=30))
    loose = judge_frames(frame, PALETTE, JudgeConfig(max_colour_distance=80))
    assert int(strict.wrong_px) == 32 and not strict.visible[0]
    assert int(loose.wrong_px) == 0 and loose.visible[0]


def test_batched_shapes_and_states_view() -> None:
    tracks = np.tile(np.array([[[10.0, 10.0], [30.0, 30.0], [50.0, 50.0]]]), (6, 1, 1))  # (T, K, 2)
    states = ball_states(tracks).reshape(2, 3, 3, -1)
    frames = render_states(states)  # (2, 3, 64, 64, 3)
    j = judge_frames(frames, PALETTE)
    assert j.visible.shape == (2, 3, 3) and j.bbox.shape == (2, 3, 3, 4) and j.wrong_px.shape == (2, 3)
    s = judged_from_states(states, 64, 64)
    assert np.allclose(s.xy_world(), j.xy_world(), atol=0.5)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        judge_frames(np.zeros((4, 4, 3), np.float32), PALETTE)
    with pytest.raises(ValueError, match="palette"):
        judge_frames(np.zeros((4, 4, 3), np.uint8), (PALETTE[0],))
