"""The episode store: round trips, schema checks, appends, corruption and interrupted writes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from gedanken.data import (
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
    DatasetSchemaError,
    Episode,
    EpisodeDataset,
)
from gedanken.data.synthetic import synthetic_episode


def _assert_same(a: Episode, b: Episode) -> None:
    for name in ("frames", "actions", "rewards", "terminated", "states", "contacts"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.meta == b.meta
    assert a.caption == b.caption
    assert sorted(a.extras) == sorted(b.extras)
    for k in a.extras:
        np.testing.assert_array_equal(a.extras[k], b.extras[k])


def _make(path: Path, n: int = 3, steps: int = 20, **kw) -> list[Episode]:
    eps = [synthetic_episode(i, steps=steps + i, **kw) for i in range(n)]
    ds = EpisodeDataset.create(path)
    for ep in eps:
        ds.append(ep)
    return eps


def test_round_trip_with_states_captions_meta(tmp_path: Path) -> None:
    eps = _make(tmp_path / "ds", n=4)
    eps[2].caption = 'ünïcode caption, with "quotes"'
    ds = EpisodeDataset.create(tmp_path / "ds2")
    ds.extend(eps)
    for path in ("ds", "ds2"):
        back = EpisodeDataset.open(tmp_path / path)
        assert len(back) == 4
        assert back.num_steps == sum(len(e) for e in eps)
        for i, ep in enumerate(eps):
            if path == "ds":
                ep = synthetic_episode(i, steps=20 + i)
            _assert_same(back.episode(i), ep)
        assert [len(e) for e in back] == [len(e) for e in eps]


def test_round_trip_without_states_and_with_extras(tmp_path: Path) -> None:
    eps = [synthetic_episode(i, steps=12, with_states=False, action_dim=1, caption="") for i in range(3)]
    for i, ep in enumerate(eps):
        ep.extras["depth"] = np.full((12, 4), i, dtype=np.float32)
    ds = EpisodeDataset.create(tmp_path / "ds")
    ds.extend(eps[:2])
    ds.append(eps[2])
    back = EpisodeDataset.open(tmp_path / "ds")
    assert back.layout is not None and back.layout.max_objects == 0
    for i, ep in enumerate(eps):
        _assert_same(back.episode(i), ep)


def test_window_is_a_slice_of_the_episode(tmp_path: Path) -> None:
    eps = _make(tmp_path / "ds", n=2)
    ds = EpisodeDataset.open(tmp_path / "ds")
    w = ds.window(1, 5, 7)
    np.testing.assert_array_equal(w.frames, eps[1].frames[5:12])
    np.testing.assert_array_equal(w.states, eps[1].states[5:12])
    assert w.meta == eps[1].meta
    with pytest.raises(IndexError, match="outside episode 1"):
        ds.window(1, 15, 7)
    with pytest.raises(IndexError, match="out of range"):
        ds.episode(2)


def test_append_then_reopen_and_append_again(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=2)
    ds = EpisodeDataset.open(tmp_path / "ds", mode="a")
    ds.append(synthetic_episode(7, steps=9))
    ds = EpisodeDataset.open(tmp_path / "ds")
    assert len(ds) == 3
    assert ds.meta(2).seed == 7
    _assert_same(ds.episode(2), synthetic_episode(7, steps=9))
    _assert_same(ds.episode(0), synthetic_episode(0, steps=20))
    with pytest.raises(DatasetError, match="read-only"):
        ds.append(synthetic_episode(8, steps=9))


def test_mixed_frame_sizes_are_refused(tmp_path: Path) -> None:
    ds = EpisodeDataset.create(tmp_path / "ds")
    ds.append(synthetic_episode(0, steps=8, size=64))
    with pytest.raises(ValueError, match="mixed frame sizes"):
        ds.append(synthetic_episode(1, steps=8, size=32))
    assert len(EpisodeDataset.open(tmp_path / "ds")) == 1


def test_create_refuses_existing_path(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=1)
    with pytest.raises(DatasetError, match="already exists"):
        EpisodeDataset.create(tmp_path / "ds")
    assert len(EpisodeDataset.create(tmp_path / "ds", overwrite=True)) == 0


def test_open_missing_dataset_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        EpisodeDataset.open(tmp_path / "nowhere")


def _edit_header(path: Path, **changes) -> None:
    g = zarr.open_group(str(path), mode="r+")
    header = dict(g.attrs["gedanken"])
    header.update(changes)
    g.attrs["gedanken"] = header


def test_wrong_schema_version_is_refused(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=1)
    _edit_header(tmp_path / "ds", schema_version=99)
    with pytest.raises(DatasetSchemaError, match="schema version 99"):
        EpisodeDataset.open(tmp_path / "ds")


@pytest.mark.parametrize(
    "changes",
    [{"committed": {"episodes": 1, "steps": "x"}}, {"committed": {}}, {"layout": {"frame_size": 3}}],
)
def test_a_damaged_header_is_refused_naming_the_path(tmp_path: Path, changes: dict) -> None:
    _make(tmp_path / "ds", n=1)
    _edit_header(tmp_path / "ds", **changes)
    with pytest.raises(DatasetSchemaError, match=f"{tmp_path / 'ds'}: damaged 'gedanken' header"):
        EpisodeDataset.open(tmp_path / "ds")


def test_not_a_gedanken_group_is_refused(tmp_path: Path) -> None:
    zarr.open_group(str(tmp_path / "g"), mode="w")
    with pytest.raises(DatasetSchemaError, match="not a gedanken episode dataset"):
        EpisodeDataset.open(tmp_path / "g")


def test_missing_array_is_refused(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=1)
    shutil.rmtree(tmp_path / "ds" / "rewards")
    with pytest.raises(DatasetSchemaError, match="'rewards' is missing"):
        EpisodeDataset.open(tmp_path / "ds")


def test_mismatched_shape_is_refused(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=1)
    layout = dict(zarr.open_group(str(tmp_path / "ds"), mode="r").attrs["gedanken"]["layout"])
    layout["frame_size"] = [32, 32]
    _edit_header(tmp_path / "ds", layout=layout)
    with pytest.raises(DatasetSchemaError, match="'frames' has per-step shape"):
        EpisodeDataset.open(tmp_path / "ds")


def _chunk(path: Path, name: str = "frames") -> Path:
    files = sorted(p for p in (path / name / "c").rglob("*") if p.is_file())
    assert files, f"no chunk files under {path / name}"
    return files[0]


def test_corrupt_chunk_names_the_file(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=2)
    chunk = _chunk(tmp_path / "ds")
    chunk.write_bytes(
        np.random.default_rng(0).integers(0, 256, chunk.stat().st_size, dtype=np.uint8).tobytes()
    )
    ds = EpisodeDataset.open(tmp_path / "ds")  # chunks exist: opening is fine
    with pytest.raises(DatasetCorruptError) as err:
        ds.episode(0)
    assert err.value.path == str(chunk)
    assert str(chunk) in str(err.value)
    with pytest.raises(DatasetCorruptError):
        ds.verify()


def test_truncated_chunk_is_detected(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=2)
    chunk = _chunk(tmp_path / "ds", "states")
    data = chunk.read_bytes()
    chunk.write_bytes(data[: len(data) // 2])
    ds = EpisodeDataset.open(tmp_path / "ds")
    with pytest.raises(DatasetCorruptError, match="corrupt") as err:
        ds.episode(1)
    assert err.value.path == str(chunk)


def test_single_flipped_bit_is_detected(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=1)
    chunk = _chunk(tmp_path / "ds", "actions")
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    with pytest.raises(DatasetCorruptError, match="corrupt"):
        EpisodeDataset.open(tmp_path / "ds").episode(0)


def test_deleted_chunk_is_an_error_not_zeros(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=2)
    chunk = _chunk(tmp_path / "ds", "rewards")
    chunk.unlink()
    with pytest.raises(DatasetCorruptError, match="missing") as err:
        EpisodeDataset.open(tmp_path / "ds")
    assert err.value.path == str(chunk)
    ds = EpisodeDataset.open(tmp_path / "ds", check_chunks=False)  # even unchecked, a read never gives zeros
    with pytest.raises(DatasetCorruptError, match="missing"):
        ds.episode(0)


def test_interrupted_write_keeps_the_committed_episodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eps = _make(tmp_path / "ds", n=2)
    ds = EpisodeDataset.open(tmp_path / "ds", mode="a")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed before commit")

    monkeypatch.setattr(EpisodeDataset, "_commit", crash)
    with pytest.raises(KeyboardInterrupt):
        ds.append(synthetic_episode(5, steps=40))  # arrays written, count not committed
    monkeypatch.undo()
    assert zarr.open_array(str(tmp_path / "ds" / "frames"), mode="r").shape[0] > sum(len(e) for e in eps)
    back = EpisodeDataset.open(tmp_path / "ds", mode="a")
    assert len(back) == 2
    _assert_same(back.episode(1), synthetic_episode(1, steps=21))
    back.append(synthetic_episode(6, steps=10))  # the uncommitted tail is overwritten
    again = EpisodeDataset.open(tmp_path / "ds")
    assert [again.meta(i).seed for i in range(len(again))] == [0, 1, 6]
    _assert_same(again.episode(2), synthetic_episode(6, steps=10))
    again.verify()


def test_info_summarises(tmp_path: Path) -> None:
    _make(tmp_path / "ds", n=3)
    info = EpisodeDataset.open(tmp_path / "ds").info()
    assert info.episodes == 3 and info.steps == 20 + 21 + 22
    assert info.worlds == {"synthetic": 3} and info.splits == {"train": 3}
    assert info.frame_size == (64, 64) and info.max_objects == 4
    assert info.action_spec is not None and info.action_spec.dim == 2
    assert info.episode_length == (20, 22, 21.0)
    assert info.size_bytes > 0 and info.captions_sample == ("3 squares drifting",)
    meta_json = json.dumps(info.attrs)
    assert meta_json == "{}"


def test_empty_dataset_opens_and_summarises(tmp_path: Path) -> None:
    EpisodeDataset.create(tmp_path / "ds")
    ds = EpisodeDataset.open(tmp_path / "ds", mode="a")
    info = ds.info()
    assert len(ds) == 0 and info.frame_size is None and info.episode_length == (0, 0, 0.0)
    assert list(ds) == []
    ep = synthetic_episode(0, steps=4)
    empty = dataclasses.replace(
        ep,
        frames=ep.frames[:0],
        actions=ep.actions[:0],
        rewards=ep.rewards[:0],
        terminated=ep.terminated[:0],
        states=ep.states[:0],
        contacts=ep.contacts[:0],  # type: ignore[index]
    )
    with pytest.raises(ValueError, match="no frames"):
        ds.append(empty)


@pytest.mark.parametrize("world", ["push", "grasp"])
def test_builtin_world_meta_survives_a_round_trip(tmp_path: Path, world: str) -> None:
    from gedanken.worlds.record import record_episode

    ep = record_episode(world, "train", 1, 12)
    ds = EpisodeDataset.create(tmp_path / "ds")
    ds.append(ep)
    back = EpisodeDataset.open(tmp_path / "ds")
    assert back.meta(0) == ep.meta
    assert np.array_equal(back.episode(0).states, ep.states)
