"""The episode dataset on disk: one Zarr v3 group per dataset, appendable, schema-checked, corruption-aware.

Layout (``T_total`` = steps over all committed episodes, ``E`` = episodes)::

    <path>/zarr.json                 group; attributes["gedanken"] = dataset header (see ``_Header``)
    <path>/frames       (T_total, H, W, 3) uint8    chunked by 32-64 steps
    <path>/actions      (T_total, A) float32
    <path>/rewards      (T_total,) float32
    <path>/terminated   (T_total,) bool
    <path>/states       (T_total, K, F) float32     only when the episodes carry object states
    <path>/contacts     (T_total, K) int32          idem
    <path>/extras/<n>   (T_total, ...)              optional per-step extras, fixed by the first episode
    <path>/episode_start, episode_length   (E,) int64
    <path>/episode_meta, episode_caption   (E,) str  (EpisodeMeta as JSON, caption)

Every chunk is zstd-compressed and ends in a crc32c checksum, so a flipped bit or a truncated file is detected
on read. Commit protocol: an append writes every array first and updates ``committed`` in the group attributes
last (zarr's local store replaces files atomically), so a write interrupted at any point leaves the dataset at
its previous committed state; anything beyond the committed length is ignored on read and overwritten by the
next append. Opening checks that every chunk inside the committed length exists, since zarr would silently
return zeros for a missing chunk.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from gedanken.data.episode import SCHEMA_VERSION, Episode, EpisodeMeta
from gedanken.data.schema import (
    DatasetCorruptError,
    DatasetError,
    DatasetInfo,
    DatasetLayout,
    DatasetNotFoundError,
    DatasetSchemaError,
)
from gedanken.worlds.state import STATE_FIELDS

log = logging.getLogger(__name__)

FORMAT = "gedanken-episodes"
_ATTR = "gedanken"
_TIME_CHUNK_SMALL = 4096  # steps per chunk of the narrow per-step arrays (actions, rewards, ...)
_EPISODE_CHUNK = 256  # episodes per chunk of the per-episode arrays


def _codecs() -> list[Any]:
    return [ZstdCodec(level=3), Crc32cCodec()]


def _frame_chunk(h: int, w: int) -> int:
    return 64 if h * w * 3 <= 16 * 1024 else 32


def _dir_size(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


class EpisodeDataset:
    """A dataset of episodes on disk. Create with :meth:`create`, open with :meth:`open`.

    One writer at a time (the collection process); any number of readers (loader workers open their own).
    """

    def __init__(self, path: Path, group: zarr.Group, writable: bool) -> None:
        self.path = path
        self._group = group
        self._writable = writable
        self._arrays: dict[str, zarr.Array] = {}
        self._meta_cache: list[EpisodeMeta] | None = None
        self._caption_cache: list[str] | None = None
        self._starts = np.zeros(0, dtype=np.int64)  # (E,) first global step of each episode
        self._lengths = np.zeros(0, dtype=np.int64)  # (E,) steps of each episode
        self._load_header()

    # ------------------------------------------------------------------ creation / opening

    @staticmethod
    def create(
        path: str | os.PathLike[str],
        layout: DatasetLayout | None = None,
        *,
        attrs: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> EpisodeDataset:
        """Create an empty dataset. ``layout=None`` fixes the layout from the first appended episode."""
        p = Path(path)
        if p.exists():
            if not overwrite:
                raise DatasetError(f"{p} already exists; open it to append, or pass overwrite=True")
            shutil.rmtree(p)
        group = zarr.open_group(str(p), mode="w", zarr_format=3)
        header = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "layout": None,
            "committed": {"episodes": 0, "steps": 0},
            "worlds": [],
            "attrs": dict(attrs or {}),
        }
        group.attrs[_ATTR] = header
        ds = EpisodeDataset(p, group, writable=True)
        if layout is not None:
            ds._init_arrays(layout)
        return ds

    @staticmethod
    def open(path: str | os.PathLike[str], mode: str = "r", *, check_chunks: bool = True) -> EpisodeDataset:
        """Open an existing dataset (``mode`` "r" read-only, "a" append). Raises a :class:`DatasetError`
        subclass naming the path if it is missing, has the wrong schema, or has a missing chunk."""
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        p = Path(path)
        if not (p / "zarr.json").is_file():
            raise DatasetNotFoundError(f"no gedanken dataset at {p} (no zarr.json there)")
        try:
            group = zarr.open_group(str(p), mode="r" if mode == "r" else "r+", zarr_format=3)
        except Exception as e:  # zarr raises several types for unreadable metadata
            raise DatasetSchemaError(f"{p}: not a readable zarr v3 group ({e})") from e
        ds = EpisodeDataset(p, group, writable=mode == "a")
        if check_chunks:
            ds.check_chunks()
        return ds

    def _load_header(self) -> None:
        header = self._group.attrs.get(_ATTR)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise DatasetSchemaError(f"{self.path}: not a gedanken episode dataset (no '{_ATTR}' header)")
        version = header.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DatasetSchemaError(
                f"{self.path}: dataset schema version {version}, this gedanken reads version {SCHEMA_VERSION}"
            )
        self._header: dict[str, Any] = header
        try:
            self.layout = None if header["layout"] is None else DatasetLayout.from_json(header["layout"])
            self._n_episodes = int(header["committed"]["episodes"])
            self._n_steps = int(header["committed"]["steps"])
        except (KeyError, TypeError, ValueError) as e:  # a hand-edited or damaged header
            raise DatasetSchemaError(
                f"{self.path}: damaged '{_ATTR}' header ({type(e).__name__}: {e})"
            ) from e
        if self.layout is not None:
            if tuple(header["layout"].get("state_fields", STATE_FIELDS)) != STATE_FIELDS:
                raise DatasetSchemaError(
                    f"{self.path}: state fields {header['layout']['state_fields']} differ from {STATE_FIELDS}"
                )
            self._open_arrays()

    def _expected(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Array name -> (trailing shape, dtype); trailing = shape after the leading time/episode axis."""
        lay = self.layout
        assert lay is not None
        h, w = lay.frame_size
        out: dict[str, tuple[tuple[int, ...], np.dtype]] = {
            "frames": ((h, w, 3), np.dtype(np.uint8)),
            "actions": ((lay.action_dim,), np.dtype(np.float32)),
            "rewards": ((), np.dtype(np.float32)),
            "terminated": ((), np.dtype(np.bool_)),
        }
        if lay.max_objects:
            out["states"] = ((lay.max_objects, len(STATE_FIELDS)), np.dtype(np.float32))
            out["contacts"] = ((lay.max_objects,), np.dtype(np.int32))
        for name, shape, dtype in lay.extras:
            out[f"extras/{name}"] = (shape, np.dtype(dtype))
        return out

    _EPISODE_ARRAYS: tuple[str, ...] = ("episode_start", "episode_length", "episode_meta", "episode_caption")

    def _init_arrays(self, layout: DatasetLayout) -> None:
        self.layout = layout
        cfg = {"write_empty_chunks": True}
        for name, (trail, dtype) in self._expected().items():
            chunk = _frame_chunk(*layout.frame_size) if name == "frames" else _TIME_CHUNK_SMALL
            self._group.create_array(
                name,
                shape=(0, *trail),
                chunks=(chunk, *trail),
                dtype=dtype,
                compressors=_codecs(),
                config=cfg,
                overwrite=True,
            )
        for name in ("episode_start", "episode_length"):
            self._group.create_array(
                name,
                shape=(0,),
                chunks=(_EPISODE_CHUNK,),
                dtype=np.int64,
                compressors=_codecs(),
                config=cfg,
                overwrite=True,
            )
        for name in ("episode_meta", "episode_caption"):
            self._group.create_array(
                name,
                shape=(0,),
                chunks=(_EPISODE_CHUNK,),
                dtype=str,
                compressors=_codecs(),
                config=cfg,
                overwrite=True,
            )
        self._header = {**self._header, "layout": layout.to_json()}
        self._group.attrs[_ATTR] = self._header
        self._open_arrays()

    def _open_arrays(self) -> None:
        names = [*self._expected(), *self._EPISODE_ARRAYS]
        for name in names:
            try:
                arr = self._group[name]
            except KeyError:
                raise DatasetSchemaError(f"{self.path}: array '{name}' is missing") from None
            except Exception as e:  # unreadable array metadata
                meta = self.path / name / "zarr.json"
                raise DatasetCorruptError(f"{self.path}: {meta} is unreadable ({e})", str(meta)) from e
            if not isinstance(arr, zarr.Array):
                raise DatasetSchemaError(f"{self.path}: '{name}' is not an array")
            self._arrays[name] = arr.with_config({"write_empty_chunks": True})
        for name, (trail, dtype) in self._expected().items():
            arr = self._arrays[name]
            if tuple(arr.shape[1:]) != trail or arr.dtype != dtype:
                raise DatasetSchemaError(
                    f"{self.path}: array '{name}' has per-step shape {tuple(arr.shape[1:])} {arr.dtype}, "
                    f"the header says {trail} {dtype}"
                )
            if arr.shape[0] < self._n_steps:
                raise DatasetSchemaError(
                    f"{self.path}: array '{name}' has {arr.shape[0]} steps, {self._n_steps} are committed"
                )
        for name in self._EPISODE_ARRAYS:
            if self._arrays[name].shape[0] < self._n_episodes:
                raise DatasetSchemaError(
                    f"{self.path}: array '{name}' has {self._arrays[name].shape[0]} entries, "
                    f"{self._n_episodes} episodes are committed"
                )
        n = self._n_episodes
        self._starts = self._read("episode_start", slice(0, n)).astype(np.int64)
        self._lengths = self._read("episode_length", slice(0, n)).astype(np.int64)
        if n and int(self._starts[-1] + self._lengths[-1]) != self._n_steps:
            raise DatasetSchemaError(
                f"{self.path}: episode index ends at step {int(self._starts[-1] + self._lengths[-1])}, "
                f"{self._n_steps} steps are committed"
            )

    # ------------------------------------------------------------------ integrity

    def _chunk_path(self, name: str, index: int) -> Path:
        arr = self._arrays[name]
        key = arr.metadata.encode_chunk_key((index,) + (0,) * (arr.ndim - 1))
        return self.path / name / key

    def check_chunks(self) -> None:
        """Raise :class:`DatasetCorruptError` if any chunk inside the committed length is missing."""
        if self.layout is None:
            return
        for name, arr in self._arrays.items():
            n = self._n_episodes if name in self._EPISODE_ARRAYS else self._n_steps
            for c in range(-(-n // arr.chunks[0])):
                p = self._chunk_path(name, c)
                if not p.is_file():
                    raise DatasetCorruptError(f"{self.path}: chunk file {p} is missing", str(p))

    def verify(self) -> None:
        """Read every committed chunk and check its checksum (slow; ``open`` only checks chunks exist)."""
        self.check_chunks()
        if self.layout is None:
            return
        for name, arr in self._arrays.items():
            n = self._n_episodes if name in self._EPISODE_ARRAYS else self._n_steps
            c = arr.chunks[0]
            for lo in range(0, n, c):
                self._read(name, slice(lo, min(lo + c, n)))

    def _read(self, name: str, sel: slice) -> np.ndarray:
        """Read ``array[sel]`` along the leading axis; a missing chunk or a decode failure (checksum,
        truncation) raises DatasetCorruptError naming the chunk file."""
        arr = self._arrays[name]
        c = arr.chunks[0]
        for idx in range(sel.start // c, -(-sel.stop // c)):  # zarr would return fill values for these
            p = self._chunk_path(name, idx)
            if not p.is_file():
                raise DatasetCorruptError(f"{self.path}: chunk file {p} is missing", str(p))
        try:
            return np.asarray(arr[sel])
        except Exception as e:
            for idx in range(sel.start // c, -(-sel.stop // c)):
                p = self._chunk_path(name, idx)
                if not p.is_file():
                    raise DatasetCorruptError(f"{self.path}: chunk file {p} is missing", str(p)) from e
                try:
                    arr[idx * c : min((idx + 1) * c, arr.shape[0])]
                except Exception as e2:
                    raise DatasetCorruptError(
                        f"{self.path}: chunk file {p} is corrupt ({e2})", str(p)
                    ) from e2
            raise DatasetCorruptError(
                f"{self.path}: reading '{name}' failed ({e})", str(self.path / name)
            ) from e

    # ------------------------------------------------------------------ writing

    def append(self, episode: Episode) -> int:
        """Append one episode atomically; returns its index."""
        return self.extend([episode])[0]

    def extend(self, episodes: Sequence[Episode]) -> list[int]:
        """Append several episodes with one commit (all or none become visible); returns their indices."""
        if not self._writable:
            raise DatasetError(f"{self.path} is open read-only; open it with mode='a' to append")
        if not episodes:
            return []
        for ep in episodes:
            ep.validate()
            if len(ep) == 0:
                raise ValueError(f"{self.path}: cannot append an episode with no frames")
        if self.layout is None:
            self._init_arrays(DatasetLayout.from_episode(episodes[0]))
        for ep in episodes:
            self._check_compatible(ep)
        t0, e0 = self._n_steps, self._n_episodes
        lengths = np.array([len(ep) for ep in episodes], dtype=np.int64)
        t1, e1 = t0 + int(lengths.sum()), e0 + len(episodes)

        def put(name: str, parts: list[np.ndarray], lo: int, hi: int) -> None:
            arr = self._arrays[name]
            arr.resize((hi, *arr.shape[1:]))
            arr[lo:hi] = np.concatenate(parts) if len(parts) > 1 else parts[0]

        put("frames", [ep.frames for ep in episodes], t0, t1)
        put("actions", [ep.actions for ep in episodes], t0, t1)
        put("rewards", [ep.rewards for ep in episodes], t0, t1)
        put("terminated", [ep.terminated for ep in episodes], t0, t1)
        if self.layout is not None and self.layout.max_objects:
            put("states", [ep.states for ep in episodes], t0, t1)  # type: ignore[misc]
            put("contacts", [ep.contacts for ep in episodes], t0, t1)  # type: ignore[misc]
        for name, _, _ in self.layout.extras if self.layout else ():
            put(f"extras/{name}", [ep.extras[name] for ep in episodes], t0, t1)
        put("episode_start", [t0 + np.concatenate([[0], np.cumsum(lengths)[:-1]])], e0, e1)
        put("episode_length", [lengths], e0, e1)
        metas = [json.dumps(ep.meta.to_json(), sort_keys=True) for ep in episodes]
        put("episode_meta", [np.array(metas, dtype=object)], e0, e1)
        put("episode_caption", [np.array([ep.caption for ep in episodes], dtype=object)], e0, e1)
        worlds = sorted({*self._header.get("worlds", []), *(ep.meta.world for ep in episodes)})
        self._commit(e1, t1, worlds)  # last: until here the new episodes are invisible
        self._starts = np.concatenate([self._starts, t0 + np.concatenate([[0], np.cumsum(lengths)[:-1]])])
        self._lengths = np.concatenate([self._lengths, lengths])
        if self._meta_cache is not None and self._caption_cache is not None:
            self._meta_cache.extend(ep.meta for ep in episodes)
            self._caption_cache.extend(ep.caption for ep in episodes)
        return list(range(e0, e1))

    def _commit(self, episodes: int, steps: int, worlds: list[str]) -> None:
        self._header = {**self._header, "committed": {"episodes": episodes, "steps": steps}, "worlds": worlds}
        self._group.attrs[_ATTR] = self._header
        self._n_episodes, self._n_steps = episodes, steps

    def _check_compatible(self, ep: Episode) -> None:
        lay = self.layout
        assert lay is not None
        if tuple(ep.frames.shape[1:3]) != lay.frame_size:
            raise ValueError(
                f"{self.path}: episode frames are {ep.frames.shape[1]}x{ep.frames.shape[2]}, the dataset holds "
                f"{lay.frame_size[0]}x{lay.frame_size[1]} frames; mixed frame sizes are not supported "
                "(resize the episode or use another dataset)"
            )
        if ep.actions.shape[1] != lay.action_dim:
            raise ValueError(
                f"{self.path}: episode actions have width {ep.actions.shape[1]}, dataset {lay.action_dim}"
            )
        k = 0 if ep.states is None else int(ep.states.shape[1])
        if k != lay.max_objects:
            raise ValueError(
                f"{self.path}: episode has {k} state slots, dataset has {lay.max_objects} (0 = none)"
            )
        want = {n: (s, d) for n, s, d in lay.extras}
        got = {n: (tuple(a.shape[1:]), str(a.dtype)) for n, a in ep.extras.items()}
        if want != got:
            raise ValueError(f"{self.path}: episode extras {got} differ from the dataset's {want}")

    def set_attrs(self, **attrs: Any) -> None:
        """Update user attributes (JSON-able) stored in the header."""
        if not self._writable:
            raise DatasetError(f"{self.path} is open read-only")
        self._header = {**self._header, "attrs": {**self._header["attrs"], **attrs}}
        self._group.attrs[_ATTR] = self._header

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._header["attrs"])

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return self._n_episodes

    @property
    def worlds(self) -> tuple[str, ...]:
        """The worlds (or environment ids) the committed episodes were recorded from, sorted."""
        return tuple(self._header.get("worlds", []))

    @property
    def num_steps(self) -> int:
        return self._n_steps

    @property
    def starts(self) -> np.ndarray:
        """(E,) int64 first global step of each episode."""
        return self._starts

    @property
    def lengths(self) -> np.ndarray:
        """(E,) int64 number of steps of each episode."""
        return self._lengths

    def _load_meta(self) -> None:
        if self._meta_cache is None:
            n = self._n_episodes
            self._meta_cache = (
                []
                if not n
                else [EpisodeMeta.from_json(json.loads(s)) for s in self._read("episode_meta", slice(0, n))]
            )
            self._caption_cache = (
                [] if not n else [str(s) for s in self._read("episode_caption", slice(0, n))]
            )

    def meta(self, i: int) -> EpisodeMeta:
        self._load_meta()
        assert self._meta_cache is not None
        return self._meta_cache[self._index(i)]

    def caption(self, i: int) -> str:
        self._load_meta()
        assert self._caption_cache is not None
        return self._caption_cache[self._index(i)]

    def _index(self, i: int) -> int:
        n = self._n_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range, {self.path} has {n} episodes")
        return i % n

    def read_steps(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Raw per-step arrays for global steps ``[lo, hi)`` (must be committed): name -> (hi - lo, ...)."""
        if not 0 <= lo <= hi <= self._n_steps:
            raise IndexError(f"steps [{lo}, {hi}) outside the committed 0..{self._n_steps} of {self.path}")
        return {name: self._read(name, slice(lo, hi)) for name in self._expected()}

    def window(self, i: int, start: int, length: int) -> Episode:
        """Steps ``[start, start + length)`` of episode ``i`` as an Episode (same meta and caption)."""
        i = self._index(i)
        n = int(self._lengths[i])
        if start < 0 or length < 1 or start + length > n:
            raise IndexError(f"window [{start}, {start + length}) outside episode {i} of length {n}")
        lo = int(self._starts[i]) + start
        raw = self.read_steps(lo, lo + length)
        return Episode(
            frames=raw["frames"],
            actions=raw["actions"],
            rewards=raw["rewards"],
            terminated=raw["terminated"],
            meta=self.meta(i),
            states=raw.get("states"),
            contacts=raw.get("contacts"),
            caption=self.caption(i),
            extras={k.removeprefix("extras/"): v for k, v in raw.items() if k.startswith("extras/")},
        )

    def episode(self, i: int) -> Episode:
        i = self._index(i)
        return self.window(i, 0, int(self._lengths[i]))

    def __getitem__(self, i: int) -> Episode:
        return self.episode(i)

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.episode(i)

    def info(self) -> DatasetInfo:
        self._load_meta()
        metas = self._meta_cache or []
        captions = []
        for c in self._caption_cache or []:
            if c and c not in captions:
                captions.append(c)
            if len(captions) == 3:
                break
        lens = self._lengths
        return DatasetInfo(
            path=str(self.path),
            schema_version=int(self._header["schema_version"]),
            episodes=len(self),
            steps=self._n_steps,
            frame_size=None if self.layout is None else self.layout.frame_size,
            action_spec=None if self.layout is None else self.layout.action_spec,
            max_objects=0 if self.layout is None else self.layout.max_objects,
            worlds=dict(Counter(m.world for m in metas)),
            splits=dict(Counter(m.split for m in metas)),
            policies=dict(Counter(m.policy for m in metas)),
            episode_length=(int(lens.min()), int(lens.max()), float(lens.mean()))
            if len(lens)
            else (0, 0, 0.0),
            size_bytes=_dir_size(self.path),
            captions_sample=tuple(captions),
            attrs=self.attrs,
        )

    def __repr__(self) -> str:
        return f"EpisodeDataset({str(self.path)!r}, episodes={len(self)}, steps={self._n_steps})"


__all__ = [  # the errors and the layout live in schema.py; importing them from here keeps working
    "FORMAT",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetInfo",
    "DatasetLayout",
    "DatasetNotFoundError",
    "DatasetSchemaError",
    "EpisodeDataset",
]
