"""The audit harness: held-out ground truth cut into context + horizon, a branch simulator, model rollouts.

Ground truth of a split is ``B`` episodes recorded by :func:`gedanken.worlds.record.record_episode` from
held-out seeds. Each is replayed in its world up to the last context frame, where a snapshot is taken
(:meth:`PhysicsWorld.get_state`); the true future is then simulated from that snapshot under the episode's
own actions. Every future the audit compares against (true actions, shuffled, random, counterfactual
branches) therefore comes from the same snapshot by the same code path, so the ground-truth baseline can
reproduce each of them bit-exactly.

Time alignment (see :mod:`gedanken.data.episode`): the context is frames ``0..k-1`` with actions
``0..k-1`` (the last one is the first action of the future); the horizon is frames ``k..k+Hz-1`` produced by
actions ``k-1..k+Hz-2``. ``TruthSet.actions[:, h]`` produces ``TruthSet.frames[:, h]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from gedanken.audit.parallel import fork_map
from gedanken.data.episode import ActionSpec, Episode, EpisodeMeta
from gedanken.models.protocol import WorldModel
from gedanken.worlds.state import PRESENT, F

log = logging.getLogger(__name__)

# Held-out seed ranges per split: disjoint from anything a training run samples by default (seeds 0..9999).
SPLIT_SEED_BASE: dict[str, int] = {"train": 0, "test": 10_000, "ood": 20_000, "gap": 30_000, "combo": 40_000}
MAX_SKIPPED = 1000  # seeds whose episodes terminate before the horizon are skipped, up to this many
RECORD_BATCH = 16  # episodes recorded per worker between two progress reports


@dataclass
class SimFuture:
    """``B`` simulated futures of ``Hz`` steps."""

    frames: np.ndarray  # (B, Hz, H, W, 3) uint8
    states: np.ndarray  # (B, Hz, K, F) float32
    contacts: np.ndarray  # (B, Hz, K) int32


@runtime_checkable
class Simulator(Protocol):
    """Continues recorded episodes from their last context frame under any actions."""

    def simulate(self, episodes: np.ndarray, actions: np.ndarray) -> SimFuture: ...


class WorldSimulator:
    """Continues any of a set of episodes from its snapshot at the last context frame, under any actions."""

    def __init__(
        self, world: str, render_size: tuple[int, int], fps: float, snapshots: list[Any], workers: int = 1
    ) -> None:
        from gedanken.worlds import make_world

        self.env = make_world(world, render_size=render_size, fps=fps, max_steps=10**9)
        self.snapshots = snapshots
        self.discrete = self.env.action_spec().kind == "discrete"
        self.workers = workers  # processes to simulate on (episodes are split between them)

    def simulate(self, episodes: np.ndarray, actions: np.ndarray) -> SimFuture:
        """Futures of ``episodes`` ``(B,)`` (indices into the snapshots) under ``actions`` ``(B, Hz, A)``."""
        parts = np.array_split(np.arange(len(episodes)), max(1, min(self.workers, len(episodes))))
        done = fork_map(
            lambda j: self._simulate(episodes[parts[j]], actions[parts[j]]), len(parts), self.workers
        )
        return SimFuture(
            frames=np.concatenate([d.frames for d in done]),
            states=np.concatenate([d.states for d in done]),
            contacts=np.concatenate([d.contacts for d in done]),
        )

    def _simulate(self, episodes: np.ndarray, actions: np.ndarray) -> SimFuture:
        b, hz = actions.shape[:2]
        k = self.env.max_objects
        h, w = self.env.render_size
        out = SimFuture(
            frames=np.zeros((b, hz, h, w, 3), np.uint8),
            states=np.zeros((b, hz, k, F), np.float32),
            contacts=np.zeros((b, hz, k), np.int32),
        )
        for i, ep in enumerate(np.asarray(episodes)):
            self.env.set_state(self.snapshots[int(ep)])
            for t in range(hz):
                out.frames[i, t], _, _, _, info = self.env.step(_env_action(actions[i, t], self.discrete))
                out.states[i, t], out.contacts[i, t] = info["state"], info["contacts"]
        return out


@dataclass
class TruthSet:
    """Held-out ground truth of one split of one world: ``B`` episodes as context + horizon."""

    world: str
    split: str
    seeds: list[int]
    context_frames: np.ndarray  # (B, k, H, W, 3) uint8
    context_actions: np.ndarray  # (B, k, A) float32; the last one is actions[:, 0]
    frames: np.ndarray  # (B, Hz, H, W, 3) uint8 true future
    actions: np.ndarray  # (B, Hz, A) float32; actions[:, h] produces frames[:, h]
    metas: list[EpisodeMeta]
    action_spec: ActionSpec
    fps: float
    states: np.ndarray | None = None  # (B, 1 + Hz, K, F): last context frame, then the future
    contacts: np.ndarray | None = None  # (B, 1 + Hz, K) int32, same steps as states
    palette: tuple[tuple[int, int, int], ...] | None = None  # background first; None: no object metrics
    shapes: tuple[str, ...] = ()  # per slot (the world's; an episode's absent slots have present == 0)
    kinds: tuple[str, ...] = ()
    captions: list[str] = field(default_factory=list)
    simulator: Simulator | None = None  # None: futures under other actions are unknown

    @property
    def n(self) -> int:
        return int(self.frames.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.frames.shape[1])

    @property
    def controllable(self) -> bool:
        return self.action_spec.kind != "none"

    def gravity_per_episode(self) -> np.ndarray:
        """(B,) gravity of each episode (NaN where the world has none)."""
        out = [m.params.get("gravity") for m in self.metas]
        return np.array([float(v) if isinstance(v, int | float) else np.nan for v in out], np.float64)


@dataclass
class _Recorded:
    """One recorded episode cut at the context, with the world's snapshot there."""

    episode: Episode
    snapshot: Any  # WorldSnapshot at the last context frame
    state: np.ndarray  # (K, F) exact state at the last context frame
    contacts: np.ndarray  # (K,)


def _record_block(
    world: str,
    split: str,
    seeds: list[int],
    context: int,
    total: int,
    policy: str,
    size: tuple[int, int],
    fps: float,
) -> list[_Recorded | None]:
    """Record and snapshot each seed (None for episodes that end before ``total`` frames)."""
    from gedanken.worlds import make_world
    from gedanken.worlds.record import record_episode

    env = make_world(world, split=split, render_size=size, fps=fps, max_steps=10**9)
    out: list[_Recorded | None] = []
    for s in seeds:
        ep = record_episode(world, split, s, total, policy=policy, render_size=size, fps=fps)
        if len(ep) < total:
            out.append(None)
            continue
        frame, info = env.reset(seed=s)
        discrete = ep.meta.action_space.kind == "discrete"
        for t in range(context - 1):
            frame, _, _, _, info = env.step(_env_action(ep.actions[t], discrete))
        if not np.array_equal(frame, ep.frames[context - 1]):
            raise RuntimeError(f"{world} seed {s}: replaying the recorded actions did not reproduce it")
        out.append(_Recorded(ep, env.get_state(), info["state"], info["contacts"]))
    return out


def collect_truth(
    world: str,
    split: str,
    episodes: int,
    context: int,
    horizon: int,
    seed: int | None = None,
    policy: str = "mixed",
    render_size: tuple[int, int] = (64, 64),
    fps: float = 15.0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> TruthSet:
    """Record ``episodes`` held-out episodes of a built-in world and cut them at the context.

    Seeds run from ``seed`` (default: the split's held-out base, :data:`SPLIT_SEED_BASE`) upwards; an episode
    that terminates before ``context + horizon`` frames is skipped and the next seed used. The result does not
    depend on ``workers`` (processes that record and simulate in parallel) nor on how the seeds are batched;
    ``progress(done, episodes)`` is called after each batch.
    """
    from gedanken.worlds.splits import check_split

    check_split(split)
    if episodes < 1 or context < 1 or horizon < 1:
        raise ValueError(f"need episodes, context and horizon >= 1, got {episodes}, {context}, {horizon}")
    start = SPLIT_SEED_BASE[split] if seed is None else int(seed)
    total = context + horizon
    found: dict[int, _Recorded] = {}
    next_seed = start
    while len(found) < episodes:
        # Seeds are tried in contiguous blocks, so the first `episodes` valid seeds are the same for any workers.
        need = min(episodes - len(found), RECORD_BATCH * max(1, workers))  # batches, so progress can be shown
        block = list(range(next_seed, next_seed + need + need // 8 + 1))
        next_seed = block[-1] + 1
        chunks = [[int(x) for x in c] for c in np.array_split(block, max(1, min(workers, len(block))))]
        done = fork_map(
            lambda j, chunks=chunks: _record_block(
                world, split, chunks[j], context, total, policy, render_size, fps
            ),
            len(chunks),
            workers,
        )
        for s, r in zip(block, (r for part in done for r in part), strict=True):
            if r is not None:
                found[s] = r
        if next_seed - start - len(found) > MAX_SKIPPED:
            raise RuntimeError(f"too many episodes of {world}/{split} ended before {total} frames")
        if progress is not None:
            progress(min(len(found), episodes), episodes)
    recorded = [found[s] for s in sorted(found)[:episodes]]
    skipped = sorted(found)[episodes - 1] - start + 1 - episodes
    if skipped:
        log.info("%s/%s: skipped %d seeds (episodes ended before %d frames)", world, split, skipped, total)
    sim = WorldSimulator(world, render_size, fps, [r.snapshot for r in recorded], workers=workers)
    eps = [r.episode for r in recorded]
    actions = np.stack([ep.actions[context - 1 : total - 1] for ep in eps])  # (B, Hz, A)
    future = sim.simulate(np.arange(len(eps)), actions)  # the same path every counterfactual takes
    same = sum(np.array_equal(f, ep.frames[context:]) for f, ep in zip(future.frames, eps, strict=True))
    log.debug("%s/%s: %d of %d futures equal the recording bit for bit", world, split, same, len(eps))
    env = sim.env
    meta = eps[0].meta
    return TruthSet(
        world=world,
        split=split,
        seeds=[ep.meta.seed for ep in eps],
        context_frames=np.stack([ep.frames[:context] for ep in eps]),
        context_actions=np.stack([ep.actions[:context] for ep in eps]),
        frames=future.frames,
        actions=actions,
        metas=[ep.meta for ep in eps],
        action_spec=meta.action_space,
        fps=float(meta.fps),
        states=np.concatenate([np.stack([r.state for r in recorded])[:, None], future.states], 1),
        contacts=np.concatenate([np.stack([r.contacts for r in recorded])[:, None], future.contacts], 1),
        palette=tuple(tuple(int(c) for c in p) for p in env.palette),  # type: ignore[misc]
        shapes=tuple(sh.value for sh in env.slot_shapes),
        kinds=tuple(env.slot_kinds),
        captions=[ep.caption for ep in eps],
        simulator=sim,
    )


def _env_action(a: np.ndarray, discrete: bool) -> Any:
    return int(round(float(a[0]))) if discrete else a


def random_actions(spec: ActionSpec, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``(B, Hz, A)`` float32 actions drawn uniformly from the action space."""
    a = max(spec.dim, 1)
    if spec.kind == "discrete":
        return rng.integers(0, max(spec.n, 1), size=(*shape, 1)).astype(np.float32)
    if spec.kind == "box" and spec.low and spec.high:
        return rng.uniform(spec.low, spec.high, size=(*shape, a)).astype(np.float32)
    return np.zeros((*shape, a), np.float32)


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` with no fixed point (identity when ``n < 2``)."""
    if n < 2:
        return np.arange(n)
    return (np.arange(n) + rng.integers(1, n)) % n


# ---------------------------------------------------------------------------------------------- rollouts


@dataclass
class EpisodeInfo:
    """Side information the harness hands to baselines (learned models never see it)."""

    truth: TruthSet
    episodes: np.ndarray  # (B,) indices into the truth set of the batch about to be observed

    @property
    def last_states(self) -> np.ndarray | None:
        """(B, K, F) exact states at the last context frame."""
        return None if self.truth.states is None else self.truth.states[self.episodes, 0]


@runtime_checkable
class UsesEpisodeInfo(Protocol):
    """A model (a baseline) that wants side information before ``observe``."""

    def prepare(self, info: EpisodeInfo) -> None: ...


@dataclass
class ModelOutput:
    """A model's rollout for ``B`` episodes as numpy."""

    frames: np.ndarray | None  # (B, Hz, H, W, 3) uint8
    states: np.ndarray | None  # (B, Hz, K, F) float32


def rollout(
    model: WorldModel,
    truth: TruthSet,
    actions: np.ndarray,
    seed: int,
    batch_size: int,
    episodes: np.ndarray | None = None,
) -> ModelOutput:
    """Roll ``model`` out from the true context of ``episodes`` (default all) under ``(B, Hz, A)`` actions."""
    idx = np.arange(truth.n) if episodes is None else np.asarray(episodes)
    if actions.shape[0] != len(idx):
        raise ValueError(f"{len(idx)} episodes but actions for {actions.shape[0]}")
    frames, states = [], []
    for s in range(0, len(idx), batch_size):
        sel = idx[s : s + batch_size]
        if isinstance(model, UsesEpisodeInfo):
            model.prepare(EpisodeInfo(truth=truth, episodes=sel))
        with torch.inference_mode():
            ctx = model.observe(
                torch.from_numpy(truth.context_frames[sel]),
                torch.from_numpy(truth.context_actions[sel]),
                [truth.captions[i] for i in sel] if truth.captions else None,
            )
            out = model.rollout(ctx, torch.from_numpy(actions[s : s + batch_size]), seed=seed + s)
        frames.append(_check_frames(model, out.frames, (len(sel), truth.horizon, *truth.frames.shape[2:])))
        states.append(None if out.states is None else out.states.detach().cpu().numpy().astype(np.float32))
    f = None if any(x is None for x in frames) else np.concatenate(frames)  # type: ignore[arg-type]
    st = None if any(x is None for x in states) else np.concatenate(states)  # type: ignore[arg-type]
    if f is None and st is None:
        raise ValueError(f"model {model.name!r} returned neither frames nor object states from rollout()")
    return ModelOutput(frames=f, states=st)


def _check_frames(model: WorldModel, frames: Any, expected: tuple[int, ...]) -> np.ndarray | None:
    if frames is None:
        return None
    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.shape != expected or arr.dtype != np.uint8:
        raise ValueError(
            f"model {getattr(model, 'name', model)!r} rolled out frames {arr.shape} {arr.dtype}, "
            f"the audit expects {expected} uint8 (B, Hz, H, W, 3)"
        )
    return arr


def present_mask(truth: TruthSet) -> np.ndarray | None:
    """(B, 1 + Hz, K) bool: the object exists in the simulator."""
    return None if truth.states is None else truth.states[..., PRESENT] > 0
