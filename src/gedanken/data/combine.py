"""Read one or more recorded datasets as one list of episodes, refusing datasets that do not fit together.

Training on several recordings of the same world is how data aimed at a failure joins the usual data (e.g.
``gedanken collect --policy poke_into_walls`` beside the default mixed policy): one dataset holds one
behaviour policy, so the recipes take ``--data`` plus any number of ``--add-data``. Episodes keep their
order: every episode of the first dataset, then of the second, and so on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from gedanken.data.episode import Episode
from gedanken.data.store import DatasetLayout, EpisodeDataset


def _describe(world: str, layout: DatasetLayout) -> str:
    spec = layout.action_spec
    action = f"{spec.kind}({spec.n})" if spec.kind == "discrete" else f"{spec.kind}({spec.dim})"
    return (
        f"world {world!r}, frames {layout.frame_size[0]}x{layout.frame_size[1]}, actions {action}, "
        f"{layout.max_objects} state slots"
    )


def _fits(a: DatasetLayout, b: DatasetLayout) -> bool:
    sa, sb = a.action_spec, b.action_spec
    return (a.frame_size, a.max_objects, sa.kind, sa.dim, sa.n, sa.low, sa.high) == (
        b.frame_size,
        b.max_objects,
        sb.kind,
        sb.dim,
        sb.n,
        sb.low,
        sb.high,
    )


def read_episodes(path: str | os.PathLike[str], more: Sequence[str | os.PathLike[str]] = ()) -> list[Episode]:
    """Every episode of ``path`` followed by every episode of each of ``more``.

    Raises :class:`ValueError`, before reading any dataset in full, for an empty dataset or a dataset of ``more``
    recorded from another world, at another frame size, with another action space (kind, width, choices,
    bounds) or another number of object-state slots than ``path``.
    """
    sets = [(p, EpisodeDataset.open(p)) for p in (path, *more)]
    first: tuple[str, DatasetLayout] | None = None
    for p, ds in sets:  # every layout is checked before any dataset is read in full
        if len(ds) == 0:
            raise ValueError(f"dataset {p} holds no episodes")
        ep = ds[0]
        here = (ep.meta.world, DatasetLayout.from_episode(ep))
        if first is None:
            first = here
        elif here[0] != first[0] or not _fits(here[1], first[1]):
            raise ValueError(
                f"{p} does not match {path}, so they cannot be trained on together: it has {_describe(*here)}, "
                f"but {path} has {_describe(*first)}"
            )
    return [e for _, ds in sets for e in ds]
