import numpy as np
import pytest

from gedanken.data.windows import draw_windows, long_enough


def test_long_enough_keeps_the_episodes_a_window_fits_and_names_what_is_missing() -> None:
    assert long_enough([3, 8, 5, 8], [0, 1, 2, 3], 5, "steps a training window") == [1, 2, 3]
    assert long_enough([3, 8, 5], range(3), 8, "x") == [1]
    with pytest.raises(ValueError, match="no episode has the 9 frames a training clip needs"):
        long_enough([3, 8], [0, 1], 9, "frames a training clip")


def test_draws_fit_their_episode_and_repeat_the_inline_draws_they_replace() -> None:
    lengths, idx = [10, 4, 30, 6], [0, 2, 3]
    pairs = draw_windows(np.random.default_rng([7, 3, 1]), idx, lengths, 16, 6)
    assert len(pairs) == 16 and all(e in idx and 0 <= s <= lengths[e] - 6 for e, s in pairs)
    assert all(isinstance(e, int) and isinstance(s, int) for e, s in pairs)
    # the families' batch sources drew exactly this before (session 34)
    rng = np.random.default_rng([7, 3, 1])
    eps = rng.choice(idx, size=16)
    assert pairs == [(int(e), int(rng.integers(lengths[e] - 6 + 1))) for e in eps]
    again = draw_windows(np.random.default_rng([7, 3, 1]), idx, lengths, 16, 6)
    assert again == pairs and draw_windows(np.random.default_rng([7, 4, 1]), idx, lengths, 16, 6) != pairs
