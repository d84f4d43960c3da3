"""Synthetic episodes (coloured squares moving in straight lines) for tests and benchmarks.

They follow the episode contract exactly (time alignment, state layout) but involve no physics engine, so
data-pipeline code can be exercised without the built-in worlds.
"""

from __future__ import annotations

import numpy as np

from gedanken.data.episode import ActionSpec, Episode, EpisodeMeta
from gedanken.worlds.state import PRESENT, VX, VY, WORLD_SIZE, H, W, X, Y, empty_state

_PALETTE = ((24, 24, 32), (230, 60, 60), (60, 200, 90), (70, 110, 240), (240, 200, 40), (200, 80, 220))


def synthetic_episode(
    seed: int,
    steps: int = 32,
    size: int = 64,
    objects: int = 3,
    max_objects: int = 4,
    action_dim: int = 2,
    with_states: bool = True,
    caption: str | None = None,
    world: str = "synthetic",
    split: str = "train",
) -> Episode:
    """One deterministic episode of ``objects`` squares bouncing off the borders (``seed`` picks the motion)."""
    if not 0 < objects <= max_objects <= len(_PALETTE) - 1:
        raise ValueError(f"need 0 < objects <= max_objects <= {len(_PALETTE) - 1}")
    rng = np.random.default_rng(seed)
    side = 8.0
    pos = rng.uniform(side, WORLD_SIZE - side, size=(objects, 2))
    vel = rng.uniform(-2.0, 2.0, size=(objects, 2))
    frames = np.empty((steps, size, size, 3), dtype=np.uint8)  # (T, H, W, 3)
    states = np.zeros((steps, max_objects, empty_state(1).shape[1]), dtype=np.float32)  # (T, K, F)
    scale = size / WORLD_SIZE
    for t in range(steps):
        frames[t] = _PALETTE[0]
        for i in range(objects):
            x, y = pos[i]
            c0, c1 = int((x - side / 2) * scale), int((x + side / 2) * scale)
            r0, r1 = int((WORLD_SIZE - y - side / 2) * scale), int((WORLD_SIZE - y + side / 2) * scale)
            frames[t, max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)] = _PALETTE[i + 1]
            states[t, i, [PRESENT, X, Y, VX, VY, W, H]] = (1.0, x, y, vel[i, 0], vel[i, 1], side, side)
        pos += vel
        out = (pos < side / 2) | (pos > WORLD_SIZE - side / 2)
        vel[out] *= -1.0
        pos = np.clip(pos, side / 2, WORLD_SIZE - side / 2)
    actions = rng.uniform(-1.0, 1.0, size=(steps, action_dim)).astype(np.float32)  # (T, A)
    actions[-1] = 0.0
    rewards = rng.normal(size=steps).astype(np.float32)
    rewards[0] = 0.0
    terminated = np.zeros(steps, dtype=bool)
    meta = EpisodeMeta(
        world=world,
        split=split,
        seed=seed,
        fps=15.0,
        params={"objects": objects, "speed": 2.0},
        action_space=ActionSpec("box", action_dim, low=(-1.0,) * action_dim, high=(1.0,) * action_dim),
        kinds=tuple("square" if i < objects else "" for i in range(max_objects)),
        shapes=tuple("box" if i < objects else "" for i in range(max_objects)),
        palette=_PALETTE[: max_objects + 1],
        policy="random",
    )
    contacts = np.zeros((steps, max_objects), dtype=np.int32)  # (T, K)
    contacts[:, 0] = (np.arange(steps) % 7 == 0).astype(np.int32)
    return Episode(
        frames=frames,
        actions=actions,
        rewards=rewards,
        terminated=terminated,
        meta=meta,
        states=states if with_states else None,
        contacts=contacts if with_states else None,
        caption=f"{objects} squares drifting" if caption is None else caption,
    )
