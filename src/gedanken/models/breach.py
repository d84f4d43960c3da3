"""Breach forcing: a share of the training windows see context frames in which objects at a contact are
redrawn pressed into the wall or the object they touch. Shared by the diffusion family (the DiT's context
latents, ``FlowConfig.breach_forcing``) and the autoregressive one (the dynamics' unmasked tokens,
``AutoregressiveRecipe.breach_forcing``).

A rollout's context is the model's own frames, snapped to the palette and encoded again. What is left of the
shipped models' solidity breaches is a ball drawn a pixel into the floor and kept there frame after frame, or two
balls drawn overlapping: the network never saw such a context in teacher forcing, so it copies the error on
(docs/history/diffusion.md, "Session 33"). Here, in a drawn window, about half the movable objects get a depth
``d ~ U(0, depth_px)`` held over the window; in every frame where such an object is within ``depth_px`` of a
wall (or else of another solid object) it is moved towards it until it reaches ``d`` past it, and the states
are rendered exactly as the world draws them (:func:`gedanken.worlds.render.render_state`). The DiT then
predicts each true frame from that context, its residual output the correction; the autoregressive dynamics
predicts the true frame after a pressed past (``models/autoregressive/batches.py``).

Only breaches are drawn, never a displacement in free space: a flow model learns the spread of its targets, so
a context error the frames cannot show (an offset in mid-air) would be learned as a jump to sample.

Needs a dataset recorded from a built-in world (states, shapes, palette). Goals and occluders, which other
objects pass over, are neither moved nor pressed against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from gedanken.models.verifier import PASSABLE_KINDS
from gedanken.worlds.render import render_state
from gedanken.worlds.state import ANGLE, PRESENT, WORLD_SIZE, H, W, X, Y

STUCK_SHARE = 0.5  # share of a drawn window's movable objects that are pressed in

Pairs = Sequence[tuple[int, int]]  # (episode, first step) of each window in a batch
ContextFn = Callable[[Pairs, torch.Tensor, int], "torch.Tensor | None"]


def _extents(row: np.ndarray, shape: str) -> tuple[float, float, float]:
    """Half extents along x and y of an object's bounding box, and its inscribed radius (world units)."""
    if shape == "circle":
        r = float(row[W]) / 2
        return r, r, r
    c, s = abs(np.cos(row[ANGLE])), abs(np.sin(row[ANGLE]))
    w, h = float(row[W]), float(row[H])
    return (w * c + h * s) / 2, (w * s + h * c) / 2, min(w, h) / 2


def pressed_states(
    states: np.ndarray,
    shapes: Sequence[str],
    kinds: Sequence[str],
    depth_px: float,
    rng: np.random.Generator,
    walls_only: bool = False,
) -> np.ndarray:
    """``(T, K, F)`` states with a share of the movable objects pressed into what they are near (module doc);
    with ``walls_only``, into a wall only (an object near another stays where it is)."""
    if states.ndim != 3:
        raise ValueError(f"states must be (T, K, F), got {states.shape}")
    if not (0 < depth_px < WORLD_SIZE / 4):
        raise ValueError(f"depth_px must be in (0, {WORLD_SIZE / 4:g}), got {depth_px}")
    t, k = states.shape[:2]
    if len(shapes) != k or len(kinds) != k:
        raise ValueError(f"need one shape and kind per slot ({k}), got {len(shapes)} and {len(kinds)}")
    solid = np.array([bool(s) and kd not in PASSABLE_KINDS for s, kd in zip(shapes, kinds, strict=True)])
    stuck = solid & (rng.random(k) < STUCK_SHARE)
    depth = rng.uniform(0, depth_px, k)
    out = states.copy()
    for f in range(t):
        row = states[f]
        here = solid & (row[:, PRESENT] > 0)
        ext = [_extents(row[i], shapes[i]) if here[i] else (0.0, 0.0, 0.0) for i in range(k)]
        for i in np.flatnonzero(stuck & here):
            x, y = row[i, X], row[i, Y]
            ex, ey, r = ext[i]
            gaps = np.array(
                [x - ex, WORLD_SIZE - x - ex, y - ey, WORLD_SIZE - y - ey]
            )  # left right bottom top
            wall = int(np.argmin(gaps))
            if gaps[wall] < depth_px:
                step = gaps[wall] + depth[i]
                out[f, i, X if wall < 2 else Y] += step * (-1.0 if wall in (0, 2) else 1.0)
                continue
            others = [j for j in np.flatnonzero(here) if j != i]
            if walls_only or not others:
                continue
            d = np.array([np.hypot(row[j, X] - x, row[j, Y] - y) for j in others])
            gap = d - r - np.array([ext[j][2] for j in others])
            n = int(np.argmin(gap))
            if gap[n] < depth_px and d[n] > 1e-6:
                j = others[n]
                unit = np.array([row[j, X] - x, row[j, Y] - y]) / d[n]
                out[f, i, X] += unit[0] * (gap[n] + depth[i])
                out[f, i, Y] += unit[1] * (gap[n] + depth[i])
    return out


def check_breach_settings(share: float, depth_px: float, walls_only: bool) -> None:
    """Raise ValueError unless ``share`` is in [0, 1] and ``depth_px`` in (0, 16), and ``walls_only`` comes with a
    share above 0 (the recipes' and configs' ``breach_forcing``, ``breach_px``, ``breach_walls_only``)."""
    if not (0 <= share <= 1 and 0 < depth_px < 16):
        raise ValueError(f"need breach_forcing in [0, 1] and breach_px in (0, 16), got {share}, {depth_px}")
    if walls_only and share == 0:
        raise ValueError("breach_walls_only says where breach forcing presses objects; breach_forcing is 0")


def check_breach_data(
    states: Sequence[object] | None,
    shapes: Sequence[Sequence[str]],
    kinds: Sequence[Sequence[str]],
    palette: Sequence[Sequence[int]],
) -> None:
    """Raise ValueError unless the episodes carry what breach forcing redraws from: states, shapes and kinds per
    episode, and a palette with a colour per slot."""
    if states is None or len(shapes) != len(states) or not all(any(s) for s in shapes):
        raise ValueError(
            "breach forcing redraws the recorded states; this dataset has no states or shapes (record it "
            "from a built-in world with `gedanken collect --world`)"
        )
    if len(kinds) != len(states):
        raise ValueError(f"need the kinds of every episode ({len(states)}), got {len(kinds)}")
    slots = max(len(s) for s in shapes)
    if len(palette) < slots + 1:
        raise ValueError(f"breach forcing needs a palette of {slots + 1} colours, got {len(palette)}")


def breach_context(
    share: float,
    depth_px: float,
    states: list[torch.Tensor] | None,
    shapes: Sequence[Sequence[str]],
    kinds: Sequence[Sequence[str]],
    palette: Sequence[Sequence[int]],
    encode: Callable[[torch.Tensor], torch.Tensor],
    seed: int,
    size: tuple[int, int] = (64, 64),
    walls_only: bool = False,
) -> ContextFn | None:
    """``context(pairs, latents, step)``: the batch's context latents with a ``share`` of its windows redrawn
    from :func:`pressed_states` and encoded with ``encode`` ((B, T, H, W, 3) uint8 -> latents) at ``size =
    (H, W)``; None when no window of this step is drawn. None when ``share`` is 0. ``walls_only``: see
    :func:`pressed_states`. ``states``, ``shapes`` and
    ``kinds`` are per episode (episodes of one world differ in which slots they fill)."""
    if share <= 0:
        return None
    check_breach_data(states, shapes, kinds, palette)
    pal = np.asarray(palette, dtype=np.uint8)

    def context(pairs: Pairs, latents: torch.Tensor, step: int) -> torch.Tensor | None:
        rng = np.random.default_rng([seed, step, 2])
        drawn = np.flatnonzero(rng.random(len(pairs)) < share)
        if drawn.size == 0:
            return None
        window = latents.shape[1]
        frames = []
        for i in drawn:
            e, s = pairs[i]
            sh, kd = shapes[e], kinds[e]
            moved = pressed_states(states[e][s : s + window].numpy(), sh, kd, depth_px, rng, walls_only)
            frames.append(np.stack([render_state(m, sh, pal, size, kd) for m in moved]))
        ctx = latents.clone()
        with torch.no_grad():
            ctx[torch.as_tensor(drawn)] = encode(torch.from_numpy(np.stack(frames))).to(ctx.dtype).cpu()
        return ctx

    return context


__all__ = ["STUCK_SHARE", "breach_context", "check_breach_data", "check_breach_settings", "pressed_states"]
