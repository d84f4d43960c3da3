"""The window loader: shapes, determinism, coverage, episode boundaries, workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gedanken.data import EpisodeDataset
from gedanken.data.batch import Batch
from gedanken.data.loader import WindowDataset, make_loader
from gedanken.data.synthetic import synthetic_episode

LENGTHS = (20, 9, 31, 5, 26, 17)  # one episode (5) is shorter than a window and gives none


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("loader") / "ds"
    ds = EpisodeDataset.create(path)
    ds.extend([synthetic_episode(i, steps=n, size=16) for i, n in enumerate(LENGTHS)])
    return path


def _windows(store: Path, **kw) -> WindowDataset:
    return WindowDataset(store, context=4, future=3, block_steps=40, **kw)


def test_window_count_and_bounds(store: Path) -> None:
    w = _windows(store)
    assert len(w) == sum(max(n - 7 + 1, 0) for n in LENGTHS)
    assert np.all(w.start_of + 7 <= np.asarray(LENGTHS)[w.episode_of])
    assert 3 not in set(w.episode_of.tolist())
    strided = _windows(store, stride=3)
    assert len(strided) == sum(len(range(0, n - 7 + 1, 3)) for n in LENGTHS if n >= 7)


def test_batch_shapes_and_dtypes(store: Path) -> None:
    batch = next(iter(make_loader(_windows(store), batch_size=5, num_workers=0)))
    assert isinstance(batch, Batch) and len(batch) == 5
    assert batch.frames.shape == (5, 7, 16, 16, 3) and batch.frames.dtype == torch.uint8
    assert batch.actions.shape == (5, 7, 2) and batch.actions.dtype == torch.float32
    assert batch.rewards.shape == (5, 7) and batch.rewards.dtype == torch.float32
    assert batch.terminated.shape == (5, 7) and batch.terminated.dtype == torch.bool
    assert batch.states is not None and batch.states.shape == (5, 7, 4, 10)
    assert batch.episode is not None and batch.episode.dtype == torch.int64
    assert batch.start is not None and batch.captions is not None and len(batch.captions) == 5


def _check_windows(batch: Batch, store: Path) -> None:
    """Every window equals the matching steps of its own episode (so it cannot cross a boundary)."""
    for b in range(len(batch)):
        e, s = int(batch.episode[b]), int(batch.start[b])  # type: ignore[index]
        ref = synthetic_episode(e, steps=LENGTHS[e], size=16)
        assert s + 7 <= len(ref)
        np.testing.assert_array_equal(batch.frames[b].numpy(), ref.frames[s : s + 7])
        np.testing.assert_array_equal(batch.actions[b].numpy(), ref.actions[s : s + 7])
        np.testing.assert_array_equal(batch.rewards[b].numpy(), ref.rewards[s : s + 7])
        np.testing.assert_array_equal(batch.states[b].numpy(), ref.states[s : s + 7])  # type: ignore[index]
        assert batch.captions is not None and batch.captions[b] == ref.caption


def _order(loader) -> list[tuple[int, int]]:
    return [(int(e), int(s)) for b in loader for e, s in zip(b.episode, b.start, strict=True)]


def test_windows_match_their_episode_and_cover_each_window_once(store: Path) -> None:
    w = _windows(store)
    loader = make_loader(w, batch_size=8, num_workers=0, seed=3)
    seen = []
    for batch in loader:
        _check_windows(batch, store)
        seen += [(int(e), int(s)) for e, s in zip(batch.episode, batch.start, strict=True)]
    assert len(seen) == len(w) and len(set(seen)) == len(w)


def test_shuffle_is_deterministic_under_seed(store: Path) -> None:
    w = _windows(store)
    a = _order(make_loader(w, batch_size=8, num_workers=0, seed=1))
    b = _order(make_loader(w, batch_size=8, num_workers=0, seed=1))
    c = _order(make_loader(w, batch_size=8, num_workers=0, seed=2))
    assert a == b and a != c and sorted(a) == sorted(c)
    loader = make_loader(w, batch_size=8, num_workers=0, seed=1)
    first, second = _order(loader), _order(loader)  # each pass is a new epoch
    assert first == a and second != first and sorted(second) == sorted(first)
    plain = _order(make_loader(w, batch_size=8, shuffle=False, num_workers=0))
    assert plain == sorted(plain)


def test_two_workers_give_the_same_windows_in_plan_order(store: Path) -> None:
    w = _windows(store)
    loader = make_loader(w, batch_size=8, num_workers=2, seed=4)
    batches = list(loader)
    for batch in batches:
        _check_windows(batch, store)
    got = [(int(e), int(s)) for b in batches for e, s in zip(b.episode, b.start, strict=True)]
    plan = [(int(w.episode_of[j]), int(w.start_of[j])) for batch in loader.sampler.plan(0) for j in batch]
    assert got == plan and len(set(got)) == len(w)
    assert got == _order(make_loader(w, batch_size=8, num_workers=2, seed=4))


def test_drop_last_and_ddp_shards(store: Path) -> None:
    w = _windows(store)
    full = [len(b) for b in make_loader(w, batch_size=8, num_workers=0, drop_last=True)]
    assert full and all(n == 8 for n in full)
    shards = [_order(make_loader(w, batch_size=4, num_workers=0, rank=r, world_size=2)) for r in range(2)]
    assert not set(shards[0]) & set(shards[1])
    assert len(make_loader(w, batch_size=4, num_workers=0, rank=0, world_size=2)) == len(
        make_loader(w, batch_size=4, num_workers=0, rank=1, world_size=2)
    )


def test_bad_arguments_are_refused(store: Path) -> None:
    with pytest.raises(ValueError, match="context"):
        WindowDataset(store, context=0, future=2)
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(_windows(store), batch_size=0)
    with pytest.raises(IndexError):
        _windows(store)[10_000]
