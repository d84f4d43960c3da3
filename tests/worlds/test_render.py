import numpy as np
import pytest

from gedanken.worlds.palette import PALETTE, classify_pixels, colour_name, min_palette_distance, palette_for
from gedanken.worlds.render import draw_order, rasterize, render_state
from gedanken.worlds.state import ANGLE, PRESENT, H, Shape, W, X, Y, empty_state


def _state(rows):
    s = empty_state(len(rows))
    for i, (x, y, w, h, a) in enumerate(rows):
        s[i, [PRESENT, X, Y, W, H, ANGLE]] = 1, x, y, w, h, a
    return s


def test_palette_is_well_separated_and_named():
    assert min_palette_distance(PALETTE) >= 127
    assert palette_for(3).shape == (4, 3) and palette_for(3).dtype == np.uint8
    assert colour_name((250, 10, 5)) == "red" and colour_name(PALETTE[0]) == "black"
    with pytest.raises(ValueError, match="identity slots"):
        palette_for(0)


def test_circle_pixel_centre_inclusion():
    # radius 2.5 centred on a pixel centre: pixels whose centre is within 2.5 units
    s = _state([(10.5, 64 - 20.5, 5.0, 5.0, 0.0)])
    lab = rasterize(s, [Shape.CIRCLE]).labels
    rr, cc = np.nonzero(lab == 1)
    d2 = (cc + 0.5 - 10.5) ** 2 + (rr + 0.5 - 20.5) ** 2
    assert (d2 <= 2.5**2).all()
    assert len(rr) == sum(1 for dr in range(-3, 4) for dc in range(-3, 4) if dr * dr + dc * dc <= 6.25)


def test_rotated_box_area_and_size_scaling():
    s = _state([(32.0, 32.0, 20.0, 6.0, np.pi / 2)])  # rotated a quarter turn: 6 wide, 20 tall
    lab = rasterize(s, [Shape.BOX]).labels
    rr, cc = np.nonzero(lab)
    assert cc.max() - cc.min() + 1 == 6 and rr.max() - rr.min() + 1 == 20
    big = rasterize(s, [Shape.BOX], size=(128, 96)).labels  # any size, non-square included
    assert big.shape == (128, 96)
    assert abs(int((big > 0).sum()) - 120 * (128 * 96) / 64**2) <= 0.1 * 120 * 3


def test_draw_order_puts_occluder_in_front_and_goal_behind():
    kinds = ["ball", "occluder", "goal"]
    assert draw_order(kinds, 3) == [2, 0, 1]
    s = _state([(32, 32, 6, 6, 0), (32, 32, 4, 4, 0), (32, 32, 20, 20, 0)])
    frame = render_state(s, [Shape.CIRCLE, Shape.BOX, Shape.BOX], palette_for(3), kinds=kinds)
    assert (frame[32, 32] == PALETTE[2]).all()  # occluder covers the ball
    assert (frame[32, 29] == PALETTE[1]).all()  # ball covers the goal
    assert (frame[32, 24] == PALETTE[3]).all()  # goal visible around
    r = rasterize(s, [Shape.CIRCLE, Shape.BOX, Shape.BOX], kinds=kinds)
    vf = r.visible_fraction()
    assert 0 < vf[0] < 1 and vf[1] == 1


def test_antialias_leaves_palette_and_default_does_not():
    s = _state([(20.3, 30.7, 9.0, 9.0, 0.0)])
    sharp = render_state(s, ["circle"], palette_for(1))
    soft = render_state(s, ["circle"], palette_for(1), antialias=True)
    assert len(np.unique(sharp.reshape(-1, 3), axis=0)) == 2
    assert len(np.unique(soft.reshape(-1, 3), axis=0)) > 2
    assert (classify_pixels(sharp, palette_for(1)) == rasterize(s, ["circle"]).labels).all()


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="shapes has"):
        rasterize(empty_state(2), [Shape.BOX])
    with pytest.raises(ValueError, match="unknown shape"):
        rasterize(_state([(1, 1, 3, 3, 0)]), ["triangle"])
    with pytest.raises(ValueError, match="palette"):
        render_state(empty_state(3), ["box"] * 3, palette_for(1))


def test_flat_palette_finds_drawn_colours_and_refuses_smooth_frames():
    from gedanken.worlds.palette import flat_palette

    rng = np.random.default_rng(0)
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    frames[:, 2:6, 2:6] = (255, 0, 0)
    frames[:, 9:11, 9:11] = (0, 0, 255)
    assert flat_palette(frames) == ((0, 0, 0), (255, 0, 0), (0, 0, 255))
    smooth = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)  # camera-like: colours everywhere
    assert flat_palette(smooth) == ()
    assert flat_palette(np.zeros((0, 4, 4, 3), np.uint8)) == ()
    frames[0, 0, 0] = (7, 7, 7)  # one stray pixel (below min_share) is dropped, not a colour
    assert (7, 7, 7) not in flat_palette(frames)
