"""Helpers for the audit tests: hand-built truth sets rendered by the worlds' own renderer."""

from __future__ import annotations

import numpy as np
import torch

from gedanken.audit.harness import TruthSet
from gedanken.data.episode import ActionSpec, EpisodeMeta
from gedanken.worlds.palette import palette_for
from gedanken.worlds.render import render_state
from gedanken.worlds.state import MASS, PRESENT, VX, VY, H, W, X, Y, empty_state

K = 3
PALETTE = tuple(tuple(int(c) for c in p) for p in palette_for(K))
SHAPES = ("circle",) * K
KINDS = ("ball",) * K


def ball_states(tracks: np.ndarray, radius: float = 3.0, fps: float = 15.0) -> np.ndarray:
    """(T, K, 2) world positions (NaN = absent) -> (T, K, F) states of balls of one radius."""
    t, k, _ = tracks.shape
    st = np.stack([empty_state(k) for _ in range(t)])
    ok = np.isfinite(tracks[..., 0])
    st[..., PRESENT] = ok
    st[..., X] = np.nan_to_num(tracks[..., 0])
    st[..., Y] = np.nan_to_num(tracks[..., 1])
    vel = np.zeros_like(tracks)
    vel[1:] = (tracks[1:] - tracks[:-1]) * fps
    st[..., VX], st[..., VY] = np.nan_to_num(vel[..., 0]), np.nan_to_num(vel[..., 1])
    st[..., W] = st[..., H] = np.where(ok, 2 * radius, 0)
    st[..., MASS] = np.where(ok, 1.0, 0)
    return st.astype(np.float32)


def render_states(states: np.ndarray, size: int = 64) -> np.ndarray:
    """(..., K, F) -> (..., size, size, 3) uint8 with the worlds' renderer."""
    lead = states.shape[:-2]
    flat = states.reshape(-1, *states.shape[-2:])
    frames = np.stack(
        [render_state(s, SHAPES, np.asarray(PALETTE, np.uint8), (size, size), KINDS) for s in flat]
    )
    return frames.reshape(*lead, size, size, 3)


def make_truth(tracks: np.ndarray, context: int = 3, gravity: float = float("nan")) -> TruthSet:
    """A simulator-free truth set from (B, T, K, 2) world tracks (passive, one ignored action)."""
    b, t = tracks.shape[:2]
    states = np.stack([ball_states(tr) for tr in tracks])  # (B, T, K, F)
    frames = render_states(states)
    spec = ActionSpec(kind="none", dim=1, low=(-1.0,), high=(1.0,))
    params = {} if np.isnan(gravity) else {"gravity": gravity}
    meta = EpisodeMeta(world="test", split="test", seed=0, fps=15.0, params=params, action_space=spec)
    return TruthSet(
        world="test",
        split="test",
        seeds=list(range(b)),
        context_frames=frames[:, :context],
        context_actions=np.zeros((b, context, 1), np.float32),
        frames=frames[:, context:],
        actions=np.zeros((b, t - context, 1), np.float32),
        metas=[meta] * b,
        action_spec=spec,
        fps=15.0,
        states=states[:, context - 1 :],
        contacts=np.zeros(states.shape[:3], np.int32)[:, context - 1 :],
        palette=PALETTE,
        shapes=SHAPES,
        kinds=KINDS,
    )


class TinyDrift(torch.nn.Module):
    """A learned-model stand-in: shifts the last context frame down by ``shift`` rows per step."""

    def __init__(self, shift: int = 1) -> None:
        super().__init__()
        self.name = "tiny_drift"
        self.shift = shift
        self.scale = torch.nn.Parameter(torch.ones(1))

    def observe(self, frames, actions=None, text=None):
        return frames[:, -1]

    def step(self, ctx, action):
        raise NotImplementedError

    def rollout(self, ctx, actions, *, seed=0):
        from gedanken.models.protocol import Rollout

        steps = [torch.roll(ctx, self.shift * (h + 1), dims=1) for h in range(actions.shape[1])]
        return Rollout(frames=torch.stack(steps, 1))
