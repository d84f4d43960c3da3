"""mp4 writing and reading with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gedanken.data.synthetic import synthetic_episode
from gedanken.data.video import read_mp4, upscale, write_mp4


def test_round_trip_upscaled_and_close_to_the_source(tmp_path: Path) -> None:
    frames = synthetic_episode(0, steps=12, size=32).frames  # (T, 32, 32, 3)
    info = write_mp4(frames, tmp_path / "clip.mp4", fps=10, scale=4)
    assert info.size == (128, 128) and info.frames == 12
    back = read_mp4(tmp_path / "clip.mp4")
    assert back.shape == (12, 128, 128, 3) and back.dtype == np.uint8
    err = np.abs(back[:, 2::4, 2::4].astype(int) - frames.astype(int)).mean()  # block centres
    assert err < 6.0, f"mean abs error {err:.2f} after H.264"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temp file left


def test_odd_sizes_are_padded_to_even(tmp_path: Path) -> None:
    frames = np.full((3, 15, 21, 3), 200, dtype=np.uint8)
    info = write_mp4(frames, tmp_path / "odd.mp4", scale=1)
    assert info.size == (16, 22)
    assert read_mp4(tmp_path / "odd.mp4").shape == (3, 16, 22, 3)


def test_upscale_is_nearest_neighbour() -> None:
    x = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    y = upscale(x, 3)
    assert y.shape == (2, 6, 6, 3)
    np.testing.assert_array_equal(y[:, ::3, ::3], x)
    np.testing.assert_array_equal(y[:, 2::3, 1::3], x)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(np.zeros((2, 8, 8, 3), dtype=np.float32), tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(np.zeros((0, 8, 8, 3), dtype=np.uint8), tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="scale"):
        write_mp4(np.zeros((1, 8, 8, 3), dtype=np.uint8), tmp_path / "x.mp4", scale=0)
    for fps in (0.0001, 0.0, 1e4, float("inf"), float("nan")):  # would write an unplayable or wrong rate
        with pytest.raises(ValueError, match="fps must be between 1 and 1000"):
            write_mp4(np.zeros((1, 8, 8, 3), dtype=np.uint8), tmp_path / "x.mp4", fps=fps)
    with pytest.raises(FileNotFoundError):
        read_mp4(tmp_path / "missing.mp4")
    assert not list(tmp_path.iterdir())
