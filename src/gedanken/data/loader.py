"""Training windows from an :class:`~gedanken.data.store.EpisodeDataset`, batched for PyTorch.

A window is ``context + future`` consecutive steps of one episode (never across an episode boundary).
Reading is organised around *blocks*: runs of consecutive whole episodes of about ``block_steps`` steps, each
read from disk with one call per array and kept decoded in a small per-worker LRU cache. Shuffling is a block
shuffle: every epoch the blocks are permuted, gathered into pools of ``pool_blocks`` blocks, and the windows of
a pool are shuffled together and cut into batches. Each pool is served by one DataLoader worker, so every
block is decoded about once per epoch however many workers run. The batch sampler hands a whole batch to one
``__getitems__`` call, which fills tensors (in shared memory when inside a worker) without a per-item collate.

The order of batches is a pure function of ``(seed, epoch, num_workers, rank, world_size)``.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from gedanken.data.batch import Batch
from gedanken.data.store import EpisodeDataset
from gedanken.worlds.state import STATE_FIELDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Block:
    """Consecutive episodes ``[ep_lo, ep_hi)`` covering global steps ``[step_lo, step_hi)``."""

    ep_lo: int
    ep_hi: int
    step_lo: int
    step_hi: int


class WindowDataset(Dataset[Batch]):
    """All windows of ``context + future`` steps in a dataset, addressable by a flat index.

    ``__getitems__(indices)`` returns one :class:`Batch`; ``__getitem__(j)`` a Batch of one window.
    The store is opened lazily in each process that reads (safe to pickle into DataLoader workers).
    """

    def __init__(
        self,
        dataset: EpisodeDataset | str | os.PathLike[str],
        context: int,
        future: int,
        *,
        stride: int = 1,
        block_steps: int | None = None,
        cache_blocks: int = 8,
    ) -> None:
        if context < 1 or future < 0:
            raise ValueError(f"need context >= 1 and future >= 0, got context={context}, future={future}")
        store = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset.open(dataset)
        if block_steps is None:  # about 16 MiB of decoded frames per block
            h, w = store.layout.frame_size if store.layout is not None else (64, 64)
            block_steps = max(4 * (context + future), (16 << 20) // (h * w * 3))
        if stride < 1 or block_steps < 1 or cache_blocks < 1:
            raise ValueError(
                f"stride, block_steps and cache_blocks must be >= 1, got {stride}, {block_steps}, "
                f"{cache_blocks}"
            )
        self.path = Path(store.path)
        self.context, self.future, self.stride = context, future, stride
        self.length = context + future  # T of every window
        self.cache_blocks = cache_blocks
        # > 0 only inside make_loader: workers recycle this many shared buffers (WindowLoader copies out).
        self.ring_slots = 0
        self._ring: list[torch.Tensor] = []
        self._ring_next = 0
        self._store: EpisodeDataset | None = store
        self._pid = os.getpid()
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

        lengths = store.lengths
        starts = store.starts
        short = int((lengths < self.length).sum())
        if short:
            log.info(
                "%s: %d of %d episodes are shorter than %d steps and give no window",
                self.path,
                short,
                len(lengths),
                self.length,
            )
        # Blocks of whole episodes.
        blocks: list[_Block] = []
        lo = 0
        for e in range(len(lengths)):
            if starts[e] + lengths[e] - starts[lo] >= block_steps or e == len(lengths) - 1:
                blocks.append(_Block(lo, e + 1, int(starts[lo]), int(starts[e] + lengths[e])))
                lo = e + 1
        self.blocks: tuple[_Block, ...] = tuple(blocks)
        # Flat window index: episode, start within the episode, block.
        eps, sts, blks = [], [], []
        for b, blk in enumerate(self.blocks):
            for e in range(blk.ep_lo, blk.ep_hi):
                s = np.arange(0, int(lengths[e]) - self.length + 1, stride, dtype=np.int64)
                eps.append(np.full(len(s), e, dtype=np.int64))
                sts.append(s)
                blks.append(np.full(len(s), b, dtype=np.int64))
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64)  # noqa: E731
        self.episode_of: np.ndarray = cat(eps)  # (N,) episode index of each window
        self.start_of: np.ndarray = cat(sts)  # (N,) first step within its episode
        self.block_of: np.ndarray = cat(blks)  # (N,) block index
        self._global_start = starts[self.episode_of] + self.start_of if len(starts) else self.start_of
        self._captions = [store.caption(i) for i in range(len(store))]
        layout = store.layout
        self.frame_size = (0, 0) if layout is None else layout.frame_size
        self.action_dim = 1 if layout is None else layout.action_dim
        self.max_objects = 0 if layout is None else layout.max_objects

    def __len__(self) -> int:
        return int(len(self.episode_of))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = None
        state["_cache"] = OrderedDict()
        state["_ring"], state["_ring_next"] = [], 0
        return state

    def _open(self) -> EpisodeDataset:
        if self._store is None or self._pid != os.getpid():
            self._store = EpisodeDataset.open(self.path, check_chunks=False)
            self._pid = os.getpid()
            self._cache = OrderedDict()
            self._ring, self._ring_next = [], 0
        return self._store

    def _block(self, b: int) -> dict[str, np.ndarray]:
        hit = self._cache.get(b)
        if hit is not None:
            self._cache.move_to_end(b)
            return hit
        blk = self.blocks[b]
        data = self._open().read_steps(blk.step_lo, blk.step_hi)
        self._cache[b] = data
        while len(self._cache) > self.cache_blocks:
            self._cache.popitem(last=False)
        return data

    def __getitem__(self, j: int) -> Batch:
        return self.__getitems__([j])

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        n, t = len(idx), self.length
        if n and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"window index out of range 0..{len(self) - 1}")
        in_worker = get_worker_info() is not None
        packed = _Packed(
            torch.empty(0, dtype=torch.uint8), n, t, self.frame_size, self.action_dim, self.max_objects
        )
        packed.buffer = self._buffer(packed.nbytes(), shared=in_worker)
        packed.reused = in_worker and self.ring_slots > 0
        out = packed.numpy_views()
        per_step = [(name, dst) for name, dst in out.items() if name not in ("episode", "start")]
        blocks = self.block_of[idx]
        for b in np.unique(blocks):
            data = self._block(int(b))
            lo = self.blocks[int(b)].step_lo
            for pos in np.flatnonzero(blocks == b):
                s = int(self._global_start[idx[pos]]) - lo
                for name, dst in per_step:
                    dst[pos] = data[name][s : s + t]
        eps = self.episode_of[idx]
        packed.captions = [self._captions[int(e)] for e in eps]
        out["episode"][:] = eps
        out["start"][:] = self.start_of[idx]
        return packed if in_worker else packed.unpack()  # type: ignore[return-value]

    def _buffer(self, nbytes: int, shared: bool) -> torch.Tensor:
        """A (>= nbytes,) uint8 buffer: plain memory in the main process; in a worker, fresh shared memory,
        or the next slot of a ring of shared buffers when ``ring_slots`` > 0. Recycling a slot is safe
        because DataLoader keeps at most ``prefetch_factor`` batches of a worker in flight and WindowLoader
        copies each batch out before asking for the next (``ring_slots = prefetch_factor + 2``)."""
        if not shared:
            return torch.empty(nbytes, dtype=torch.uint8)
        if self.ring_slots <= 0:
            return _new_shared(nbytes)
        self._open()
        slot = self._ring_next % self.ring_slots
        self._ring_next += 1
        if slot >= len(self._ring):
            self._ring.append(_new_shared(nbytes))
        elif self._ring[slot].numel() < nbytes:
            self._ring[slot] = _new_shared(nbytes)
        return self._ring[slot]


def _new_shared(nbytes: int) -> torch.Tensor:
    """Allocate directly in shared memory (``share_memory_()`` would allocate, then copy)."""
    if nbytes == 0:
        return torch.empty(0, dtype=torch.uint8)
    return torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(nbytes))


@dataclass
class _Packed:
    """A batch whose arrays share one flat shared-memory buffer, so that a worker sends it to the main
    process as a single file descriptor (torch passes one descriptor per tensor, ~0.5 ms each)."""

    buffer: torch.Tensor  # (nbytes,) uint8
    b: int
    t: int
    frame_size: tuple[int, int]
    action_dim: int
    max_objects: int
    captions: list[str] | None = None
    reused: bool = False  # the buffer is a recycled ring slot: copy it out before the next batch

    def _specs(self) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        b, t, (h, w) = self.b, self.t, self.frame_size
        specs = [
            ("frames", (b, t, h, w, 3), torch.uint8),
            ("actions", (b, t, self.action_dim), torch.float32),
            ("rewards", (b, t), torch.float32),
            ("terminated", (b, t), torch.bool),
            ("episode", (b,), torch.int64),
            ("start", (b,), torch.int64),
        ]
        if self.max_objects:
            specs.append(("states", (b, t, self.max_objects, len(STATE_FIELDS)), torch.float32))
        return specs

    def nbytes(self) -> int:
        return sum(_aligned(math.prod(shape) * _itemsize(dt)) for _, shape, dt in self._specs())

    def views(self) -> dict[str, torch.Tensor]:
        out, off = {}, 0
        for name, shape, dt in self._specs():
            size = math.prod(shape) * _itemsize(dt)
            out[name] = self.buffer[off : off + size].view(dt).view(shape)
            off += _aligned(size)
        return out

    def numpy_views(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.views().items()}

    def unpack(self) -> Batch:
        if self.reused:
            self.buffer, self.reused = self.buffer[: self.nbytes()].clone(), False
        v = self.views()
        return Batch(
            frames=v["frames"],
            actions=v["actions"],
            rewards=v["rewards"],
            terminated=v["terminated"],
            states=v.get("states"),
            captions=self.captions,
            episode=v["episode"],
            start=v["start"],
        )


def _itemsize(dt: torch.dtype) -> int:
    return torch.empty(0, dtype=dt).element_size()


def _aligned(n: int) -> int:
    return -(-n // 16) * 16


class BlockShuffleBatchSampler(Sampler[list[int]]):
    """Yields lists of window indices (whole batches) in block-shuffled order; see the module docstring."""

    def __init__(
        self,
        windows: WindowDataset,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool_blocks: int = 4,
        num_workers: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or pool_blocks < 1:
            raise ValueError(f"batch_size and pool_blocks must be >= 1, got {batch_size}, {pool_blocks}")
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.windows, self.batch_size, self.shuffle, self.seed = windows, batch_size, shuffle, seed
        self.pool_blocks, self.num_workers, self.drop_last = pool_blocks, max(num_workers, 1), drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        order = np.argsort(windows.block_of, kind="stable")
        bounds = np.searchsorted(windows.block_of[order], np.arange(len(windows.blocks) + 1))
        self._by_block = [order[bounds[b] : bounds[b + 1]] for b in range(len(windows.blocks))]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def plan(self, epoch: int) -> list[list[int]]:
        """The batches of one epoch for this rank, in the order they will be yielded."""
        rng = np.random.default_rng([self.seed, epoch])
        nb = len(self._by_block)
        order = rng.permutation(nb) if self.shuffle else np.arange(nb)
        pools = [order[i : i + self.pool_blocks] for i in range(0, nb, self.pool_blocks)]
        lanes = self.world_size * self.num_workers  # one lane per (rank, worker)
        streams: list[list[np.ndarray]] = [[] for _ in range(lanes)]
        sizes = np.zeros(lanes, dtype=np.int64)
        for pool in pools:
            win = np.concatenate([self._by_block[b] for b in pool])
            if self.shuffle:
                rng.shuffle(win)
            lane = int(np.argmin(sizes))  # balance lanes so that workers stay in step
            streams[lane].append(win)
            sizes[lane] += len(win)
        per_lane: list[list[list[int]]] = []
        for s in streams:
            flat = np.concatenate(s) if s else np.zeros(0, dtype=np.int64)
            cuts = [flat[i : i + self.batch_size].tolist() for i in range(0, len(flat), self.batch_size)]
            if self.drop_last and cuts and len(cuts[-1]) < self.batch_size:
                cuts.pop()
            per_lane.append(cuts)
        rank_lanes = per_lane[self.rank * self.num_workers : (self.rank + 1) * self.num_workers]
        if self.world_size > 1:  # every rank must yield the same number of batches
            n_min = min(
                sum(len(x) for x in per_lane[r * self.num_workers : (r + 1) * self.num_workers])
                for r in range(self.world_size)
            )
        else:
            n_min = None
        batches: list[list[int]] = []
        # DataLoader hands batch k to worker k % workers: interleave the lanes so each worker keeps its own.
        for j in range(max((len(x) for x in rank_lanes), default=0)):
            batches.extend(lane[j] for lane in rank_lanes if j < len(lane))
        return batches if n_min is None else batches[:n_min]

    def __iter__(self) -> Iterator[list[int]]:
        # No epoch increment here: DataLoader may call iter() more than once per pass (WindowLoader advances it).
        return iter(self.plan(self.epoch))

    def __len__(self) -> int:
        return len(self.plan(self.epoch))


def _identity(batch: Any) -> Any:
    return batch


class WindowLoader:
    """Iterates :class:`Batch` es; wraps the DataLoader to unpack worker batches (zero-copy views)."""

    def __init__(self, loader: DataLoader[Any], sampler: BlockShuffleBatchSampler) -> None:
        self.loader = loader
        self.sampler = sampler
        self.windows: WindowDataset = loader.dataset  # type: ignore[assignment]
        self.next_epoch = 0  # the epoch the next pass will use

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use ``epoch`` (e.g. when resuming training)."""
        self.next_epoch = epoch

    def __len__(self) -> int:
        return len(self.sampler.plan(self.next_epoch))

    def __iter__(self) -> Iterator[Batch]:
        self.sampler.set_epoch(self.next_epoch)
        self.next_epoch += 1
        for item in self.loader:
            yield item.unpack() if isinstance(item, _Packed) else item  # copies recycled buffers out


def make_loader(
    windows: WindowDataset,
    batch_size: int = 64,
    *,
    shuffle: bool = True,
    num_workers: int = 2,
    seed: int = 0,
    drop_last: bool = False,
    pool_blocks: int = 4,
    rank: int = 0,
    world_size: int = 1,
    persistent_workers: bool = False,
    multiprocessing_context: str | None = None,
) -> WindowLoader:
    """A DataLoader yielding :class:`Batch` es of ``batch_size`` windows (the last one may be smaller).

    Each ``for batch in loader`` is a new epoch with a new permutation; ``rank``/``world_size`` shard batches
    for DDP (every rank gets the same number of batches).
    """
    sampler = BlockShuffleBatchSampler(
        windows,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        pool_blocks=pool_blocks,
        num_workers=num_workers,
        drop_last=drop_last,
        rank=rank,
        world_size=world_size,
    )
    prefetch = 4
    windows = copy.copy(windows)
    windows.cache_blocks = max(windows.cache_blocks, 2 * pool_blocks)  # a batch may straddle two pools
    if num_workers > 0:  # recycle worker buffers only where WindowLoader copies them out
        windows.ring_slots = prefetch + 2
    loader: DataLoader[Any] = DataLoader(
        windows,
        batch_sampler=sampler,
        collate_fn=_identity,
        num_workers=num_workers,
        persistent_workers=persistent_workers and num_workers > 0,
        multiprocessing_context=multiprocessing_context if num_workers > 0 else None,
        prefetch_factor=prefetch if num_workers > 0 else None,
    )
    return WindowLoader(loader, sampler)
