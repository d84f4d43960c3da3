"""What a dataset is, apart from how it is stored: its errors, the layout every episode shares, its summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gedanken.data.episode import ActionSpec, Episode
from gedanken.worlds.state import STATE_FIELDS


class DatasetError(Exception):
    """Base class of dataset errors; the message always names the dataset path."""


class DatasetNotFoundError(DatasetError):
    """No gedanken dataset at the given path."""


class DatasetSchemaError(DatasetError):
    """The dataset exists but its header or arrays do not match the schema this gedanken reads."""


class DatasetCorruptError(DatasetError):
    """A chunk is missing, truncated or fails its checksum. ``path`` is the offending file."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class DatasetLayout:
    """What every episode of one dataset shares; fixed by the first episode (or given at creation)."""

    frame_size: tuple[int, int]  # (H, W) of every frame
    action_spec: ActionSpec  # action space of the first episode; every episode must have the same width
    max_objects: int = 0  # K of the state arrays; 0 = episodes carry no object states
    extras: tuple[tuple[str, tuple[int, ...], str], ...] = ()  # (name, per-step shape, dtype) of extras

    @property
    def action_dim(self) -> int:
        return max(self.action_spec.dim, 1)

    @staticmethod
    def from_episode(ep: Episode) -> DatasetLayout:
        h, w = ep.frames.shape[1:3]
        k = 0 if ep.states is None else int(ep.states.shape[1])
        extras = tuple(
            (name, tuple(int(s) for s in arr.shape[1:]), str(arr.dtype))
            for name, arr in sorted(ep.extras.items())
        )
        return DatasetLayout((int(h), int(w)), ep.meta.action_space, k, extras)

    def to_json(self) -> dict[str, Any]:
        return {
            "frame_size": list(self.frame_size),
            "action_spec": self.action_spec.to_json(),
            "max_objects": self.max_objects,
            "state_fields": list(STATE_FIELDS),
            "extras": [[n, list(s), d] for n, s, d in self.extras],
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> DatasetLayout:
        return DatasetLayout(
            frame_size=(int(d["frame_size"][0]), int(d["frame_size"][1])),
            action_spec=ActionSpec.from_json(d["action_spec"]),
            max_objects=int(d["max_objects"]),
            extras=tuple((str(n), tuple(int(v) for v in s), str(t)) for n, s, t in d.get("extras", [])),
        )


@dataclass(frozen=True)
class DatasetInfo:
    """A summary of a dataset, for people (``gedanken data info``) and for logs."""

    path: str
    schema_version: int
    episodes: int
    steps: int
    frame_size: tuple[int, int] | None  # None while the dataset is empty
    action_spec: ActionSpec | None
    max_objects: int  # 0 = no object states
    worlds: dict[str, int]  # world -> episodes
    splits: dict[str, int]  # split -> episodes
    policies: dict[str, int]  # behaviour policy -> episodes
    episode_length: tuple[int, int, float]  # (min, max, mean) steps, zeros when empty
    size_bytes: int  # on disk
    captions_sample: tuple[str, ...]  # up to three distinct non-empty captions
    attrs: dict[str, Any] = field(default_factory=dict)  # user attributes (e.g. the collection spec)


__all__ = [
    "DatasetCorruptError",
    "DatasetError",
    "DatasetInfo",
    "DatasetLayout",
    "DatasetNotFoundError",
    "DatasetSchemaError",
]
