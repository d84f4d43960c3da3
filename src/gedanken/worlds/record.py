"""Record one episode of a built-in world into the shared :class:`~gedanken.data.episode.Episode` format.

Alignment follows gedanken.data.episode: ``frames[t]``/``states[t]``/``contacts[t]`` at step ``t``,
``actions[t]`` taken after ``frames[t]`` (the last one is a stored no-op), ``rewards[t]``/``terminated[t]``
belonging to the transition that led to ``frames[t]``. When the world terminates (Push: every block in the
goal) the episode stops there, so it can be shorter than ``steps``; its last frame is the terminal one.
"""

from __future__ import annotations

import numpy as np

from gedanken.data.episode import Episode, EpisodeMeta
from gedanken.worlds import make_world
from gedanken.worlds.captions import caption_episode
from gedanken.worlds.policies import make_policy
from gedanken.worlds.state import F

POLICY_SEED_SALT = (
    7919  # the policy's rng is default_rng([seed, POLICY_SEED_SALT]), independent of the world's
)


def record_episode(
    world: str,
    split: str,
    seed: int,
    steps: int,
    policy: str = "mixed",
    render_size: tuple[int, int] = (64, 64),
    fps: float = 15.0,
) -> Episode:
    """Roll ``world`` out for up to ``steps`` frames from ``reset(seed=seed)`` under ``policy``.

    Args:
        world: built-in world name (see ``gedanken.worlds.WORLDS``).
        split: parameter split (train | test | ood | gap | combo).
        seed: seeds the world (parameters and layout) and, salted, the policy.
        steps: number of frames ``T`` (>= 1); fewer when the world terminates first.
        policy: behaviour policy name (see ``gedanken.worlds.policies.POLICIES``).
        render_size: ``(H, W)`` of the frames.
        fps: frames per second of the world.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    env = make_world(world, split=split, render_size=render_size, fps=fps, max_steps=max(steps, 1))
    pol = make_policy(policy)
    pol.reset()
    rng = np.random.default_rng([int(seed), POLICY_SEED_SALT])
    spec = env.action_spec()
    k = env.max_objects
    h, w = env.render_size
    frames = np.zeros((steps, h, w, 3), dtype=np.uint8)
    actions = np.zeros((steps, max(spec.dim, 1)), dtype=np.float32)
    rewards = np.zeros(steps, dtype=np.float32)
    terminated = np.zeros(steps, dtype=bool)
    states = np.zeros((steps, k, F), dtype=np.float32)
    contacts = np.zeros((steps, k), dtype=np.int32)
    frames[0], info = env.reset(seed=int(seed))
    states[0], contacts[0] = info["state"], info["contacts"]
    meta_kinds, meta_shapes = env.episode_kinds(), env.episode_shapes()
    t_end = steps
    for t in range(steps - 1):
        a = pol(env, rng)
        actions[t] = np.asarray(a, dtype=np.float32).reshape(-1)
        frames[t + 1], rewards[t + 1], term, _, info = env.step(a)
        terminated[t + 1] = term
        states[t + 1], contacts[t + 1] = info["state"], info["contacts"]
        if term:
            t_end = t + 2
            break
    frames, actions, rewards, terminated = (
        frames[:t_end],
        actions[:t_end],
        rewards[:t_end],
        terminated[:t_end],
    )
    states, contacts = states[:t_end], contacts[:t_end]
    actions[-1] = 0.0  # the last action has no successor frame: stored as a no-op
    meta = EpisodeMeta(
        world=env.world_name,
        split=split,
        seed=int(seed),
        fps=float(env.fps),
        params=env.params.to_json(),
        action_space=spec,
        kinds=meta_kinds,
        shapes=meta_shapes,
        palette=tuple(tuple(int(c) for c in p) for p in env.palette),
        policy=policy,  # type: ignore[misc]
    )
    ep = Episode(
        frames=frames,
        actions=actions,
        rewards=rewards,
        terminated=terminated,
        meta=meta,
        states=states,
        contacts=contacts,
    )
    ep.caption = caption_episode(env.world_name, states, contacts, meta)
    return ep
