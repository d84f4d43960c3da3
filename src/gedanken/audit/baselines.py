"""Built-in baselines, each a :class:`~gedanken.models.protocol.WorldModel`, audited under the same harness.

* :class:`GroundTruth`: the ceiling. It replays the simulator from the true state at the last context frame
  (the harness's branch simulator) under whatever actions it is given, so the audit must score it perfectly.
* :class:`CopyLastFrame`: the world stands still.
* :class:`ConstantVelocity`: the judge reads every object's position in the last two context frames where it
  is visible; objects keep that velocity and are re-rendered by the world's own renderer
  (:func:`gedanken.worlds.render.render_state`), with shapes and sizes from the last context state. Static
  objects (mass 0: goals, occluders) stay where the state puts them.
* :class:`NoiseFloor`: the mean context frame plus noise; a model scoring near it learned nothing.

Baselines receive side information through ``prepare(info)`` (see
:class:`~gedanken.audit.harness.EpisodeInfo`) before ``observe``; learned models never do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gedanken.audit.harness import EpisodeInfo
from gedanken.audit.judge import judge_frames
from gedanken.models.protocol import ModelCard, Prediction, Rollout
from gedanken.worlds.state import MASS, PRESENT, X, Y


def _need_info(name: str, info: EpisodeInfo | None) -> EpisodeInfo:
    if info is None:
        raise RuntimeError(
            f"baseline {name!r} needs prepare(info) before observe(); the audit harness calls it"
        )
    return info


class _Informed:
    """Holds the side information of the batch about to be observed."""

    name = ""

    def __init__(self) -> None:
        self._info: EpisodeInfo | None = None

    def prepare(self, info: EpisodeInfo) -> None:
        self._info = info


# ------------------------------------------------------------------------------------------- ground truth


@dataclass
class _TruthCtx:
    info: EpisodeInfo
    history: list[np.ndarray]  # actions given to step() so far, each (B, A)


class GroundTruth(_Informed):
    """The simulator itself, continued from the exact state at the last context frame."""

    name = "ground_truth"
    card = ModelCard(
        name="ground_truth", family="baseline", notes="the simulator replayed from the true state"
    )

    def observe(
        self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None
    ) -> _TruthCtx:
        info = _need_info(self.name, self._info)
        if frames.shape[0] != len(info.episodes):
            raise ValueError(
                f"prepare() announced {len(info.episodes)} episodes, observe() got {frames.shape[0]}"
            )
        return _TruthCtx(info=info, history=[])

    def _future(self, ctx: _TruthCtx, actions: np.ndarray) -> Rollout:
        truth = ctx.info.truth
        if truth.simulator is not None:
            fut = truth.simulator.simulate(ctx.info.episodes, actions)
            return Rollout(frames=torch.from_numpy(fut.frames), states=torch.from_numpy(fut.states))
        # No simulator (external environments): only the recorded future under the recorded actions is known.
        hz = actions.shape[1]
        if not np.array_equal(actions, truth.actions[ctx.info.episodes, :hz]):
            raise ValueError("ground_truth without a simulator can only replay the recorded actions")
        states = (
            None if truth.states is None else torch.from_numpy(truth.states[ctx.info.episodes, 1 : 1 + hz])
        )
        return Rollout(frames=torch.from_numpy(truth.frames[ctx.info.episodes, :hz]), states=states)

    def rollout(self, ctx: _TruthCtx, actions: Tensor, *, seed: int = 0) -> Rollout:
        past = np.stack(ctx.history, 1) if ctx.history else np.zeros((actions.shape[0], 0, actions.shape[2]))
        full = np.concatenate([past, actions.detach().cpu().numpy()], 1).astype(np.float32)
        out = self._future(ctx, full)
        n = len(ctx.history)
        return Rollout(
            frames=None if out.frames is None else out.frames[:, n:],
            states=None if out.states is None else out.states[:, n:],
        )

    def step(self, ctx: _TruthCtx, action: Tensor) -> tuple[_TruthCtx, Prediction]:
        new = _TruthCtx(
            info=ctx.info, history=[*ctx.history, action.detach().cpu().numpy().astype(np.float32)]
        )
        out = self._future(new, np.stack(new.history, 1))
        state = None if out.states is None else out.states[:, -1]
        return new, Prediction(frame=None if out.frames is None else out.frames[:, -1], state=state)


# -------------------------------------------------------------------------------------------- copy last


class CopyLastFrame:
    """Predicts that nothing moves: every future frame is the last context frame."""

    name = "copy_last"
    card = ModelCard(name="copy_last", family="baseline", notes="repeats the last context frame")

    def observe(self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None) -> Tensor:
        return frames[:, -1]  # (B, H, W, 3)

    def step(self, ctx: Tensor, action: Tensor) -> tuple[Tensor, Prediction]:
        return ctx, Prediction(frame=ctx.clone())

    def rollout(self, ctx: Tensor, actions: Tensor, *, seed: int = 0) -> Rollout:
        hz = actions.shape[1]
        return Rollout(frames=ctx[:, None].expand(-1, hz, -1, -1, -1).clone())


# ------------------------------------------------------------------------------------ constant velocity


@dataclass
class _CVCtx:
    xy: np.ndarray  # (B, K, 2) world units of the next frame to extrapolate from
    vel: np.ndarray  # (B, K, 2) world units per frame
    states: np.ndarray  # (B, K, F) template rows (sizes, angles, static poses), present where drawn
    info: EpisodeInfo


class ConstantVelocity(_Informed):
    """Judged positions extrapolated at their last judged velocity, re-rendered by the world's renderer."""

    name = "constant_velocity"
    card = ModelCard(
        name="constant_velocity",
        family="baseline",
        notes="judge the last two sightings, extrapolate, re-render",
    )

    def observe(self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None) -> _CVCtx:
        info = _need_info(self.name, self._info)
        truth = info.truth
        if truth.palette is None or info.last_states is None:
            raise ValueError(
                f"constant_velocity needs a built-in world (palette and states), not {truth.world!r}"
            )
        j = judge_frames(frames.detach().cpu().numpy(), truth.palette)  # (B, k, K)
        xy = j.xy_world().astype(np.float64)  # (B, k, K, 2)
        b, k, n_obj = j.visible.shape
        t_idx = np.arange(k)[None, :, None]
        seen = np.where(j.visible, t_idx, -1)  # (B, k, K)
        t2 = seen.max(1)  # (B, K) last sighting, -1 if never
        seen_before = np.where(t_idx < t2[:, None, :], seen, -1)
        t1 = seen_before.max(1)  # second-to-last sighting
        bi, ki = np.meshgrid(np.arange(b), np.arange(n_obj), indexing="ij")
        p2 = xy[bi, np.maximum(t2, 0), ki]  # (B, K, 2)
        p1 = xy[bi, np.maximum(t1, 0), ki]
        gap = np.maximum(t2 - t1, 1)[..., None]
        vel = np.where((t1 >= 0)[..., None], (p2 - p1) / gap, 0.0)
        # Extrapolate from the last sighting to the last context frame (occluded objects keep moving).
        xy_last = p2 + vel * (k - 1 - t2)[..., None]
        states = info.last_states.copy()  # (B, K, F)
        dynamic = states[..., MASS] > 0
        states[..., PRESENT] = np.where(dynamic, (t2 >= 0) & (states[..., PRESENT] > 0), states[..., PRESENT])
        xy_last = np.where(dynamic[..., None], xy_last, states[..., [X, Y]])
        vel = np.where(dynamic[..., None], vel, 0.0)
        return _CVCtx(xy=np.nan_to_num(xy_last), vel=vel, states=states, info=info)

    def _render(self, ctx: _CVCtx, xy: np.ndarray) -> np.ndarray:
        from gedanken.worlds.render import render_state

        truth = ctx.info.truth
        size = truth.frames.shape[2:4]
        pal = np.asarray(truth.palette, np.uint8)
        out = np.empty((xy.shape[0], *size, 3), np.uint8)
        for i in range(xy.shape[0]):
            st = ctx.states[i].copy()
            st[:, X], st[:, Y] = xy[i, :, 0], xy[i, :, 1]
            out[i] = render_state(st, truth.shapes, pal, size, truth.kinds)
        return out

    def step(self, ctx: _CVCtx, action: Tensor) -> tuple[_CVCtx, Prediction]:
        xy = ctx.xy + ctx.vel
        new = _CVCtx(xy=xy, vel=ctx.vel, states=ctx.states, info=ctx.info)
        return new, Prediction(frame=torch.from_numpy(self._render(ctx, xy)))

    def rollout(self, ctx: _CVCtx, actions: Tensor, *, seed: int = 0) -> Rollout:
        hz = actions.shape[1]
        frames = np.stack([self._render(ctx, ctx.xy + ctx.vel * (h + 1)) for h in range(hz)], 1)
        return Rollout(frames=torch.from_numpy(frames))  # (B, Hz, H, W, 3)


# ------------------------------------------------------------------------------------------ noise floor


@dataclass
class _NoiseCtx:
    mean: np.ndarray  # (B, H, W, 3) int16 mean context frame, rounded
    calls: int = 0


class NoiseFloor:
    """The mean context frame plus uniform integer noise of standard deviation ~``sigma``, seeded per rollout."""

    name = "noise"
    card = ModelCard(name="noise", family="baseline", notes="mean context frame + uniform noise")

    def __init__(self, sigma: float = 24.0) -> None:
        self.sigma = sigma
        self._half = int(
            round((np.sqrt(1 + 12 * sigma**2) - 1) / 2)
        )  # integers in [-a, a]: var = a(a + 1) / 3

    def observe(
        self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None
    ) -> _NoiseCtx:
        mean = frames.detach().cpu().numpy().astype(np.float32).mean(1)
        return _NoiseCtx(mean=np.rint(mean).astype(np.int16))

    def _sample(self, mean: np.ndarray, hz: int, rng: np.random.Generator) -> np.ndarray:
        a = self._half
        noise = rng.integers(-a, a + 1, size=(mean.shape[0], hz, *mean.shape[1:]), dtype=np.int16)
        noise += mean[:, None]
        return np.clip(noise, 0, 255, out=noise).astype(np.uint8)

    def step(self, ctx: _NoiseCtx, action: Tensor) -> tuple[_NoiseCtx, Prediction]:
        frame = self._sample(ctx.mean, 1, np.random.default_rng(ctx.calls))[:, 0]
        return _NoiseCtx(mean=ctx.mean, calls=ctx.calls + 1), Prediction(frame=torch.from_numpy(frame))

    def rollout(self, ctx: _NoiseCtx, actions: Tensor, *, seed: int = 0) -> Rollout:
        frames = self._sample(ctx.mean, actions.shape[1], np.random.default_rng(seed))
        return Rollout(frames=torch.from_numpy(frames))
