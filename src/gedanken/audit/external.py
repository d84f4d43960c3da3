"""Ground truth from external Gymnasium environments (no object state): pixels and controllability only.

Episodes are recorded by :func:`gedanken.worlds.external.record_external` (uniform random policy). There is no
snapshot API in a generic Gymnasium env, so the branch simulator *replays*: ``reset(seed)``, the context
actions, then the requested ones. Gymnasium envs are deterministic under a seed (Atari's sticky actions draw
from the env's own seeded generator), so the replay reproduces the recording, and the true future is taken
from the same replay path as every counterfactual, which keeps the ground-truth baseline exact.
"""

from __future__ import annotations

import logging

import numpy as np

from gedanken.audit.harness import MAX_SKIPPED, SimFuture, TruthSet

log = logging.getLogger(__name__)

EXTERNAL_SEED_BASE = 50_000  # held-out seeds of external environments


def is_external(world: str) -> bool:
    """True when ``world`` is not a built-in world (then it must be a registered Gymnasium id)."""
    from gedanken.worlds import WORLDS

    return world not in WORLDS


class ReplaySimulator:
    """Futures of recorded external episodes under any actions, by replaying from ``reset(seed)``."""

    def __init__(
        self,
        env_id: str,
        seeds: list[int],
        context_actions: np.ndarray,
        size: tuple[int, int],
        discrete: bool,
    ) -> None:
        from gedanken.worlds.external import make_env

        self.env = make_env(env_id)
        self.env_id = env_id
        self.seeds = seeds
        self.context_actions = context_actions  # (B, k, A); the last one is the first future action
        self.size = size
        self.discrete = discrete

    def _action(self, a: np.ndarray) -> object:
        if self.discrete:
            return int(round(float(a[0])))
        return np.asarray(a, np.float32).reshape(self.env.action_space.shape)

    def _frame(self) -> np.ndarray:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise ValueError(f"{self.env_id}: render() must return an (H, W, 3) array")
        return frame.astype(np.uint8, copy=False)

    def simulate(self, episodes: np.ndarray, actions: np.ndarray) -> SimFuture:
        from gedanken.worlds.external import Resizer

        b, hz = actions.shape[:2]
        out = SimFuture(
            frames=np.zeros((b, hz, *self.size, 3), np.uint8),
            states=np.zeros((b, hz, 0, 0), np.float32),
            contacts=np.zeros((b, hz, 0), np.int32),
        )
        for i, ep in enumerate(np.asarray(episodes)):
            self.env.reset(seed=int(self.seeds[int(ep)]))
            resize = Resizer.make(self._frame().shape[:2], self.size)
            for a in self.context_actions[int(ep), :-1]:
                self.env.step(self._action(a))
            done = False
            for t in range(hz):
                if not done:  # after the env ends (other actions may end it early) its last frame stays
                    _, _, term, trunc, _ = self.env.step(self._action(actions[i, t]))
                    done = bool(term or trunc)
                    frame = resize(self._frame())
                out.frames[i, t] = frame
        return out


def collect_external_truth(
    env_id: str,
    episodes: int,
    context: int,
    horizon: int,
    seed: int | None = None,
    render_size: tuple[int, int] = (64, 64),
) -> TruthSet:
    """Record ``episodes`` held-out episodes of a Gymnasium env, cut at the context (split ``external``)."""
    from gedanken.worlds.external import EXTERNAL_SPLIT, check_env_id, make_env, record_external

    check_env_id(env_id)
    if episodes < 1 or context < 1 or horizon < 1:
        raise ValueError(f"need episodes, context and horizon >= 1, got {episodes}, {context}, {horizon}")
    total = context + horizon
    env = make_env(env_id)
    seeds, recorded = [], []
    s = EXTERNAL_SEED_BASE if seed is None else int(seed)
    skipped = 0
    try:
        while len(seeds) < episodes:
            ep = record_external(env, s, total, size=render_size)
            if len(ep) < total:
                skipped += 1
                if skipped > MAX_SKIPPED:
                    raise RuntimeError(f"{skipped} episodes of {env_id} ended before {total} frames")
            else:
                seeds.append(s)
                recorded.append(ep)
            s += 1
    finally:
        env.close()
    if skipped:
        log.info("%s: skipped %d seeds (episodes ended before %d frames)", env_id, skipped, total)
    spec = recorded[0].meta.action_space
    ctx_a = np.stack([ep.actions[:context] for ep in recorded])
    sim = ReplaySimulator(env_id, seeds, ctx_a, render_size, discrete=spec.kind == "discrete")
    actions = np.stack([ep.actions[context - 1 : total - 1] for ep in recorded])
    future = sim.simulate(np.arange(len(seeds)), actions)
    same = sum(np.array_equal(f, ep.frames[context:]) for f, ep in zip(future.frames, recorded, strict=True))
    if same < len(seeds):
        log.warning(
            "%s: replay reproduced %d of %d recorded futures (nondeterministic env?)",
            env_id,
            same,
            len(seeds),
        )
    return TruthSet(
        world=env_id,
        split=EXTERNAL_SPLIT,
        seeds=seeds,
        context_frames=np.stack([ep.frames[:context] for ep in recorded]),
        context_actions=ctx_a,
        frames=future.frames,
        actions=actions,
        metas=[ep.meta for ep in recorded],
        action_spec=spec,
        fps=float(recorded[0].meta.fps),
        captions=[ep.caption for ep in recorded],
        simulator=sim,
    )
