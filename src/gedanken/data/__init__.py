"""Episodes, the on-disk dataset, the window loader, collection and video I/O.

Kept light on purpose (no torch import): collection workers import this package. The loader lives in
:mod:`gedanken.data.loader` and the typed batch in :mod:`gedanken.data.batch`.
"""

from gedanken.data.episode import SCHEMA_VERSION, ActionSpec, Episode, EpisodeMeta
from gedanken.data.store import (
    DatasetCorruptError,
    DatasetError,
    DatasetInfo,
    DatasetLayout,
    DatasetNotFoundError,
    DatasetSchemaError,
    EpisodeDataset,
)

__all__ = [
    "SCHEMA_VERSION",
    "ActionSpec",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetInfo",
    "DatasetLayout",
    "DatasetNotFoundError",
    "DatasetSchemaError",
    "Episode",
    "EpisodeDataset",
    "EpisodeMeta",
]
