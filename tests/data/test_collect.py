"""Collection: resumable, refuses conflicting re-runs, validates before writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gedanken.data import DatasetError, EpisodeDataset
from gedanken.data.collect import SourceKind, collect, make_spec
from gedanken.worlds.record import record_episode

TINY = {"steps": 10, "size": 32}


def test_resume_continues_without_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "push"
    calls: list[tuple[int, int]] = []
    first = collect("push", out, 3, workers=1, progress=lambda d, t: calls.append((d, t)), **TINY)
    assert (first.episodes_before, first.episodes_added, first.episodes_total) == (0, 3, 3)
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    second = collect("push", out, 5, workers=1, **TINY)
    assert (second.episodes_before, second.episodes_added, second.episodes_total) == (3, 2, 5)
    again = collect("push", out, 4, workers=1, **TINY)
    assert again.episodes_added == 0
    ds = EpisodeDataset.open(out)
    assert len(ds) == 5
    assert [ds.meta(i).seed for i in range(5)] == [0, 1, 2, 3, 4]
    ref = record_episode("push", "train", 4, 10, policy="mixed", render_size=(32, 32))
    np.testing.assert_array_equal(ds.episode(4).frames, ref.frames)
    np.testing.assert_array_equal(ds.episode(4).states, ref.states)


def test_parallel_workers_match_serial(tmp_path: Path) -> None:
    collect("bounce", tmp_path / "par", 4, workers=2, seed=10, **TINY)
    collect("bounce", tmp_path / "ser", 4, workers=1, seed=10, **TINY)
    par, ser = EpisodeDataset.open(tmp_path / "par"), EpisodeDataset.open(tmp_path / "ser")
    assert [par.meta(i).seed for i in range(4)] == [10, 11, 12, 13]
    for i in range(4):
        np.testing.assert_array_equal(par.episode(i).frames, ser.episode(i).frames)


def test_conflicting_rerun_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "push"
    collect("push", out, 2, workers=1, **TINY)
    with pytest.raises(DatasetError, match="size: dataset 32 vs requested 16"):
        collect("push", out, 3, workers=1, steps=10, size=16)
    with pytest.raises(DatasetError, match="source"):
        collect("bounce", out, 3, workers=1, **TINY)
    with pytest.raises(DatasetError, match="split"):
        collect("push", out, 3, workers=1, split="ood", **TINY)
    assert len(EpisodeDataset.open(out)) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"source": "nope"}, "unknown environment id 'nope'"),
        ({"source": "nope", "kind": SourceKind.WORLD}, "valid worlds: bounce"),
        ({"source": "push", "split": "valid"}, "valid splits"),
        ({"source": "push", "policy": "smart"}, "valid policies"),
        ({"source": "push", "steps": 1}, "steps must be >= 2"),
        ({"source": "push", "size": 4}, "size must be between"),
        ({"source": "CartPole-v1", "split": "train"}, "split 'external'"),
    ],
)
def test_invalid_arguments_are_refused_before_writing(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_spec(**kwargs)
    with pytest.raises(ValueError, match=match):
        collect(out=tmp_path / "x", episodes=2, workers=1, **kwargs)
    assert not (tmp_path / "x").exists()


def test_gym_id_of_a_builtin_world_resolves_to_the_world() -> None:
    spec = make_spec("gedanken/Push-v0")
    assert spec.source == "push" and spec.kind is SourceKind.WORLD and spec.split == "train"


def test_interrupted_collection_leaves_a_readable_dataset(tmp_path: Path) -> None:
    out = tmp_path / "push"

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        collect("push", out, 6, workers=1, progress=stop_after_three, flush_every=2, **TINY)
    ds = EpisodeDataset.open(out)
    assert len(ds) == 3  # two flushed, the third recorded before the interrupt is kept too
    ds.verify()
    assert collect("push", out, 6, workers=1, **TINY).episodes_added == 3
    assert [EpisodeDataset.open(out).meta(i).seed for i in range(6)] == list(range(6))


def test_resume_onto_a_damaged_dataset_names_the_chunk(tmp_path: Path) -> None:
    from gedanken.data.schema import DatasetCorruptError

    out = tmp_path / "push"
    collect("push", out, 2, workers=1, **TINY)
    chunk = sorted(p for p in (out / "frames" / "c").rglob("*") if p.is_file())[0]
    chunk.write_bytes(chunk.read_bytes()[:20])  # truncated, as a crash or a bad copy leaves it
    with pytest.raises(DatasetCorruptError) as err:
        collect("push", out, 4, workers=1, **TINY)
    assert str(chunk) in str(err.value)
    assert len(EpisodeDataset.open(out, check_chunks=False)) == 2  # nothing appended


def test_nothing_to_add_reads_no_chunks(tmp_path: Path) -> None:
    out = tmp_path / "push"
    collect("push", out, 2, workers=1, **TINY)
    chunk = sorted(p for p in (out / "frames" / "c").rglob("*") if p.is_file())[0]
    chunk.write_bytes(chunk.read_bytes()[:20])
    assert collect("push", out, 2, workers=1, **TINY).episodes_added == 0  # done: the chunks are not read
