import numpy as np
import pytest

from gedanken.audit.fidelity import reconstruction_fidelity

PALETTE = ((0, 0, 0), (255, 0, 0), (0, 255, 0))


def _frame(red_at: tuple[int, int] | None, green_at: tuple[int, int] | None) -> np.ndarray:
    f = np.zeros((32, 32, 3), np.uint8)
    if red_at:
        f[red_at[0] : red_at[0] + 4, red_at[1] : red_at[1] + 4] = (255, 0, 0)
    if green_at:
        f[green_at[0] : green_at[0] + 4, green_at[1] : green_at[1] + 4] = (0, 255, 0)
    return f


def test_perfect_reconstruction():
    true = np.stack([_frame((2, 2), (20, 20)), _frame((5, 5), (10, 20))])
    out = reconstruction_fidelity(true, true.copy(), PALETTE)
    assert out["identity_accuracy"] == 1.0 and out["objects_kept"] == 1.0
    assert out["position_error_px"] == 0.0 and out["objects_extra"] == 0.0
    assert out["psnr"] > 100


def test_lost_and_moved_objects_are_counted():
    true = np.stack([_frame((2, 2), (20, 20)), _frame((5, 5), (10, 20))])
    rec = np.stack([_frame((2, 4), (20, 20)), _frame((5, 5), None)])  # red moved 2 px; green lost in frame 1
    out = reconstruction_fidelity(true, rec, PALETTE)
    assert out["identity_accuracy"] == 0.5
    assert out["objects_kept"] == 0.75
    assert out["position_error_px"] == pytest.approx(2 / 3, abs=1e-6)  # errors 2, 0, 0 over the kept three
    assert out["psnr"] < 30


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_fidelity(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), PALETTE)


def test_round_trip_fidelity_sees_a_round_trip_that_grows_objects():
    from scipy import ndimage

    from gedanken.audit.fidelity import round_trip_fidelity

    true = np.stack([_frame((2, 2), (20, 20)), _frame((5, 5), (10, 20))])
    still = round_trip_fidelity(true, lambda x: x.copy(), PALETTE, (1, 4))
    assert still[4]["area_ratio_median"] == 1.0 and still[4]["identity_accuracy"] == 1.0

    def dilate(x: np.ndarray) -> np.ndarray:  # every pass paints a 1-px halo in the object's colour
        return ndimage.grey_dilation(x, size=(1, 3, 3, 1))

    grown = round_trip_fidelity(true, dilate, PALETTE, (1, 2))
    assert sorted(grown) == [1, 2]
    assert grown[1]["area_ratio_median"] == pytest.approx(36 / 16)  # 4x4 -> 6x6 after one pass
    assert grown[2]["area_ratio_median"] == pytest.approx(64 / 16)


def test_round_trip_fidelity_needs_at_least_one_pass():
    from gedanken.audit.fidelity import round_trip_fidelity

    true = np.stack([_frame((2, 2), (20, 20))])
    for at in ((), (0, 2)):
        with pytest.raises(ValueError, match=">= 1"):
            round_trip_fidelity(true, lambda x: x, PALETTE, at)
