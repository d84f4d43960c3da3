"""Reading several datasets as one: order kept, datasets that do not fit together refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gedanken.data import EpisodeDataset
from gedanken.data.collect import collect
from gedanken.data.combine import read_episodes

TINY = {"steps": 8, "size": 32, "workers": 1}


def test_episodes_follow_in_dataset_order(tmp_path: Path) -> None:
    collect("push", tmp_path / "a", 2, seed=0, **TINY)
    collect("push", tmp_path / "b", 3, seed=50, policy="poke_into_walls", **TINY)
    a, b = list(EpisodeDataset.open(tmp_path / "a")), list(EpisodeDataset.open(tmp_path / "b"))
    both = read_episodes(tmp_path / "a", [tmp_path / "b"])
    assert len(both) == 5
    assert [e.meta.seed for e in both] == [e.meta.seed for e in a + b]
    assert np.array_equal(both[2].frames, b[0].frames)  # the second dataset's first episode
    assert {e.meta.policy for e in both} == {a[0].meta.policy, "poke_into_walls"}
    assert len(read_episodes(tmp_path / "a")) == 2  # one dataset alone


def test_datasets_that_do_not_fit_together_are_refused(tmp_path: Path) -> None:
    collect("push", tmp_path / "push", 1, seed=0, **TINY)
    collect("bounce", tmp_path / "bounce", 1, seed=0, **TINY)
    collect("push", tmp_path / "push48", 1, seed=0, steps=8, size=48, workers=1)
    collect("push_discrete", tmp_path / "discrete", 1, seed=0, **TINY)
    with pytest.raises(ValueError, match=r"does not match .*world 'bounce'.*world 'push'"):
        read_episodes(tmp_path / "push", [tmp_path / "bounce"])
    with pytest.raises(ValueError, match=r"frames 48x48.*frames 32x32"):
        read_episodes(tmp_path / "push", [tmp_path / "push48"])
    with pytest.raises(ValueError, match="does not match"):  # another world name and action space
        read_episodes(tmp_path / "push", [tmp_path / "discrete"])
    EpisodeDataset.create(tmp_path / "empty")
    with pytest.raises(ValueError, match="holds no episodes"):
        read_episodes(tmp_path / "push", [tmp_path / "empty"])
