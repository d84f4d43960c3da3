"""Record any Gymnasium environment with an ``rgb_array`` render into the gedanken episode format.

CartPole, Atari (ale-py, e.g. ``ALE/Pong-v5`` with its default frameskip), Box2D (``LunarLander-v3``) and
others become datasets that every model family can train on. No object state is known for them, so
``states``/``contacts`` are None, the caption is empty, ``meta.world`` is the Gymnasium id and
``meta.split`` is ``"external"``. Frames are area-resized to the dataset size with plain numpy (no image
library needed). Actions follow the episode contract: a ``Discrete`` action is stored as its index (a float,
width 1), a ``Box`` action as the flattened vector.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from gedanken.data.episode import ActionSpec, Episode, EpisodeMeta

log = logging.getLogger(__name__)

EXTERNAL_SPLIT = "external"
POLICY_SEED_SALT = 7919  # same salt as gedanken.worlds.record: the policy's rng is independent of the env's
EXAMPLE_IDS: tuple[str, ...] = (
    "CartPole-v1",
    "LunarLander-v3",
    "ALE/Pong-v5",
    "ALE/Breakout-v5",
    "Acrobot-v1",
)
LIST_ALL_HINT = "list every id with `gedanken data envs` (or gymnasium.pprint_registry())"


class UnknownEnvError(ValueError):
    """The id is neither a built-in world nor a registered Gymnasium environment."""


def register_optional_envs() -> None:
    """Register the env families whose packages need an explicit registration (ale-py), if installed."""
    try:
        ale_py = importlib.import_module("ale_py")
    except ImportError:
        return
    if not any(k.startswith("ALE/") for k in gym.registry):
        gym.register_envs(ale_py)


def registered_ids() -> list[str]:
    """Every registered Gymnasium id (after registering optional families)."""
    register_optional_envs()
    return sorted(gym.registry)


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if registered, else raise :class:`UnknownEnvError` listing some valid ids."""
    register_optional_envs()
    if env_id in gym.registry:
        return env_id
    from gedanken.worlds import WORLD_ENTRIES

    examples = [i for i in EXAMPLE_IDS if i in gym.registry]
    close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.6)
    hint = f"; similar ids: {', '.join(close)}" if close else ""
    raise UnknownEnvError(
        f"unknown environment id {env_id!r}{hint}. Built-in worlds: {', '.join(WORLD_ENTRIES)} "
        f"(ids {', '.join(e.gym_id for e in WORLD_ENTRIES.values())}); some Gymnasium ids: "
        f"{', '.join(examples)}; {LIST_ALL_HINT}"
    )


def action_spec_of(space: gym.Space) -> ActionSpec:  # type: ignore[type-arg]
    """The :class:`ActionSpec` of a Gymnasium action space (Discrete or Box; others are refused)."""
    if isinstance(space, gym.spaces.Discrete):
        return ActionSpec("discrete", 1, n=int(space.n))
    if isinstance(space, gym.spaces.Box):
        low = np.asarray(space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(space.high, dtype=np.float64).reshape(-1)
        return ActionSpec("box", int(low.size), low=tuple(map(float, low)), high=tuple(map(float, high)))
    raise ValueError(f"unsupported action space {space}; only Discrete and Box can be recorded")


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: output cell j averages the input cells its span covers (by overlap)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    i = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0.0, None)  # (n_out, n_in)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Resizer:
    """Area resize of ``(H0, W0, 3)`` uint8 frames to ``size`` (separable box filter; exact for integer
    factors, also correct for upscaling and non-integer ratios)."""

    wh: np.ndarray  # (H, H0)
    ww: np.ndarray  # (W, W0)

    @staticmethod
    def make(src: tuple[int, int], size: tuple[int, int]) -> Resizer:
        return Resizer(_area_weights(src[0], size[0]), _area_weights(src[1], size[1]))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape[:2] == (self.wh.shape[0], self.ww.shape[0]):
            return frame
        x = np.einsum("hi,iwc->hwc", self.wh, frame.astype(np.float32))  # (H, W0, 3)
        x = np.einsum("vw,hwc->hvc", self.ww, x)  # (H, W, 3)
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def make_env(env_id: str) -> gym.Env:  # type: ignore[type-arg]
    """``gym.make(env_id, render_mode="rgb_array")`` after checking the id."""
    check_env_id(env_id)
    env = gym.make(env_id, render_mode="rgb_array")
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise ValueError(f"{env_id} has no rgb_array render mode")
    return env


def record_external(
    env: str | gym.Env,  # type: ignore[type-arg]
    seed: int,
    steps: int,
    size: tuple[int, int] = (64, 64),
) -> Episode:
    """Record one episode of up to ``steps`` frames under a uniform random policy.

    The episode stops early when the env terminates or truncates (its last frame is the final one).
    ``env`` is an id or an env made with ``render_mode="rgb_array"`` (reused across episodes by collection).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if min(size) < 1:
        raise ValueError(f"size must be positive, got {size}")
    own = isinstance(env, str)
    e = make_env(env) if isinstance(env, str) else env
    try:
        env_id = e.spec.id if e.spec is not None else type(e.unwrapped).__name__
        spec = action_spec_of(e.action_space)
        e.action_space.seed(int(np.random.default_rng([int(seed), POLICY_SEED_SALT]).integers(2**31)))
        e.reset(seed=int(seed))
        first = _render(e, env_id)
        resize = Resizer.make(first.shape[:2], size)
        frames = np.zeros((steps, *size, 3), dtype=np.uint8)  # (T, H, W, 3)
        actions = np.zeros((steps, spec.dim), dtype=np.float32)  # (T, A)
        rewards = np.zeros(steps, dtype=np.float32)
        terminated = np.zeros(steps, dtype=bool)
        frames[0] = resize(first)
        t_end = steps
        for t in range(steps - 1):
            a = e.action_space.sample()
            actions[t] = np.asarray(a, dtype=np.float32).reshape(-1)
            _, r, term, trunc, _ = e.step(a)
            frames[t + 1] = resize(_render(e, env_id))
            rewards[t + 1] = float(r)
            terminated[t + 1] = bool(term)
            if term or trunc:
                t_end = t + 2
                break
        actions[t_end - 1] = 0.0  # the last action has no successor frame: stored as a no-op
        meta = EpisodeMeta(
            world=env_id,
            split=EXTERNAL_SPLIT,
            seed=int(seed),
            fps=float(e.metadata.get("render_fps") or 30.0),
            params={"source_size": [int(first.shape[0]), int(first.shape[1])]},
            action_space=spec,
            policy="random",
        )
        return Episode(
            frames=frames[:t_end],
            actions=actions[:t_end],
            rewards=rewards[:t_end],
            terminated=terminated[:t_end],
            meta=meta,
        )
    finally:
        if own:
            e.close()


def _render(env: gym.Env, env_id: str) -> np.ndarray:  # type: ignore[type-arg]
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"{env_id}: render() must return an (H, W, 3) array, got {type(frame).__name__}")
    return frame.astype(np.uint8, copy=False)
