"""Deterministic one-sentence captions generated from recorded exact state.

``caption_episode(world, states, contacts, meta)`` reads only the state arrays and the episode metadata
(palette and kinds), so it captions any recording, including one loaded from disk. Colour names come from
the palette (:func:`gedanken.worlds.palette.colour_name`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gedanken.data.episode import EpisodeMeta
from gedanken.worlds.palette import colour_name
from gedanken.worlds.state import MASS, PRESENT, VX, VY, W, X, Y

HEAVY_MASS = 1.5  # balls/blocks/cups at least this heavy are called "heavy"
LIGHT_MASS = 0.8  # ... and lighter than this "light"
BIG_RADIUS = 4.0  # balls with a radius of at least this are "big"
SMALL_RADIUS = 3.0  # ... and below this "small"
BOUNCE_DV = 5.0  # world units / s of velocity change that make a wall contact a bounce
MOVE_EPS = 1.0  # world units of displacement below which an object "stays still"


def _count(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _colour(meta: EpisodeMeta, i: int) -> str:
    return colour_name(meta.palette[i + 1])


def _onsets(bits: np.ndarray) -> int:
    """Number of frames where a boolean series switches on (``bits`` (T,) bool; frame 0 counts if on)."""
    b = bits.astype(bool)
    return int(b[0]) + int((b[1:] & ~b[:-1]).sum())


def _bounces(states: np.ndarray, contacts: np.ndarray, i: int) -> int:
    """Bounces of object ``i`` off static geometry: a new wall contact with a velocity jump > BOUNCE_DV."""
    on = (contacts[:, i] & 1) > 0  # (T,)
    dv = np.hypot(*(states[1:, i, VX : VY + 1] - states[:-1, i, VX : VY + 1]).T)  # (T - 1,)
    return int((on[1:] & ~on[:-1] & (dv > BOUNCE_DV)).sum())


def _weight(mass: float) -> str:
    return "heavy " if mass >= HEAVY_MASS else "light " if mass < LIGHT_MASS else ""


def _present(states: np.ndarray, i: int) -> bool:
    return bool(states[0, i, PRESENT] > 0)


def _bounce(states: np.ndarray, contacts: np.ndarray, meta: EpisodeMeta) -> str:
    parts = []
    for i in range(states.shape[1]):
        if not _present(states, i):
            continue
        r = states[0, i, W] / 2
        size = "big " if r >= BIG_RADIUS else "small " if r < SMALL_RADIUS else ""
        noun = f"a {_weight(float(states[0, i, MASS]))}{size}{_colour(meta, i)} ball"
        dy = float(states[-1, i, Y] - states[0, i, Y])
        moved = float(np.hypot(*(states[-1, i, [X, Y]] - states[0, i, [X, Y]])))
        verb = (
            "falls"
            if dy < -MOVE_EPS
            else "rises"
            if dy > MOVE_EPS
            else "moves"
            if moved > MOVE_EPS
            else "rests"
        )
        clauses = [verb]
        bounces = _bounces(states, contacts, i)
        if bounces:
            clauses.append(f"bounces {_count(bounces)}")
        hit = [j for j in range(states.shape[1]) if j != i and (contacts[:, i] >> (j + 1) & 1).any()]
        if hit:
            clauses.append("hits " + " and ".join(f"the {_colour(meta, j)} ball" for j in hit))
        parts.append(f"{noun} {', '.join(clauses[:-1]) + ' and ' if len(clauses) > 1 else ''}{clauses[-1]}")
    return "; ".join(parts)


def _in_box(states: np.ndarray, i: int, g: int) -> np.ndarray:
    """(T,) bool: is the centre of object ``i`` inside the (axis-aligned) region of slot ``g``."""
    dx = np.abs(states[:, i, X] - states[:, g, X])
    dy = np.abs(states[:, i, Y] - states[:, g, Y])
    return (dx <= states[:, g, W] / 2) & (dy <= states[:, g, W + 1] / 2)


def _push(states: np.ndarray, contacts: np.ndarray, meta: EpisodeMeta) -> str:
    kinds = meta.kinds
    pusher = kinds.index("pusher")
    goal = kinds.index("goal")
    parts = []
    for i, kind in enumerate(kinds):
        if kind != "block" or not _present(states, i):
            continue
        noun = f"the {_weight(float(states[0, i, MASS]))}{_colour(meta, i)} block"
        touched = bool((contacts[:, i] >> (pusher + 1) & 1).any())
        moved = float(np.hypot(*(states[-1, i, [X, Y]] - states[0, i, [X, Y]])))
        d0 = float(np.hypot(*(states[0, i, [X, Y]] - states[0, goal, [X, Y]])))
        d1 = float(np.hypot(*(states[-1, i, [X, Y]] - states[-1, goal, [X, Y]])))
        inside = _in_box(states, i, goal)
        if inside[-1] and not inside[0]:
            parts.append(f"the pusher moves {noun} into the goal")
        elif inside[-1]:
            parts.append(f"{noun} stays in the goal")
        elif moved > MOVE_EPS and d1 < d0 - MOVE_EPS:
            parts.append(f"the pusher pushes {noun} toward the goal")
        elif moved > MOVE_EPS:
            parts.append(f"the pusher pushes {noun} away from the goal" if touched else f"{noun} slides")
        else:
            parts.append(f"{noun} stays still")
    return "; ".join(parts) if parts else "the pusher moves around"


def _occlude(states: np.ndarray, contacts: np.ndarray, meta: EpisodeMeta) -> str:
    kinds = meta.kinds
    occ = kinds.index("occluder")
    wall = f"the {_colour(meta, occ)} wall"
    shapes = meta.shapes
    parts = []
    for i, kind in enumerate(kinds):
        if kind != "object" or not _present(states, i):
            continue
        noun = f"the {_colour(meta, i)} {'ball' if shapes[i] == 'circle' else 'box'}"
        # Geometric occlusion: the object's extent overlaps the occluder's columns.
        half = states[:, i, W] / 2
        behind = np.abs(states[:, i, X] - states[:, occ, X]) < states[:, occ, W] / 2 + half
        hidden = np.abs(states[:, i, X] - states[:, occ, X]) <= states[:, occ, W] / 2 - half
        n = _onsets(behind)
        if n == 0:
            parts.append(f"{noun} moves without passing behind {wall}")
        elif behind[-1] and hidden[-1]:
            parts.append(f"{noun} passes behind {wall} and stays hidden")
        elif behind[-1]:
            parts.append(f"{noun} passes behind {wall}")
        else:
            again = f" {_count(n)}" if n > 1 else ""
            parts.append(f"{noun} passes behind {wall} and reappears{again}")
    return "; ".join(parts)


def _grasp(states: np.ndarray, contacts: np.ndarray, meta: EpisodeMeta) -> str:
    kinds = meta.kinds
    cup = kinds.index("cup")
    fingers = [i for i, k in enumerate(kinds) if k == "finger"]
    noun = f"the {_weight(float(states[0, cup, MASS]))}{_colour(meta, cup)} cup"
    lift = states[:, cup, Y] - states[0, cup, Y]  # (T,)
    finger_rise = states[:, fingers[0], Y] - states[:, fingers[0], Y].min()
    gripped = np.zeros(len(states), dtype=bool)
    for f in fingers:
        gripped |= (contacts[:, f] >> (cup + 1) & 1) > 0
    if lift[-1] > 3.0:
        return f"the gripper lifts {noun}"
    if lift.max() > 3.0:
        return f"the gripper lifts {noun} but it slips and drops"
    if gripped.any() and finger_rise.max() > 3.0:
        return f"the gripper squeezes {noun} but it slips out of the grip"
    if gripped.any():
        return f"the gripper grips {noun} without lifting it"
    return f"the gripper misses {noun}"


_CAPTIONERS: dict[str, Callable[[np.ndarray, np.ndarray, EpisodeMeta], str]] = {
    "bounce": _bounce,
    "push": _push,
    "push_discrete": _push,
    "occlude": _occlude,
    "grasp": _grasp,
}


def caption_episode(world_name: str, states: np.ndarray, contacts: np.ndarray, meta: EpisodeMeta) -> str:
    """Caption of one recorded episode: ``states`` (T, K, F), ``contacts`` (T, K), ``meta`` its metadata."""
    if world_name not in _CAPTIONERS:
        raise ValueError(f"no captions for world {world_name!r}; valid: {', '.join(_CAPTIONERS)}")
    if states.ndim != 3 or contacts.shape != states.shape[:2] or len(states) == 0:
        raise ValueError(
            f"need states (T, K, F) and contacts (T, K) with T >= 1, got {states.shape}, {contacts.shape}"
        )
    return _CAPTIONERS[world_name](states, contacts.astype(np.int64), meta)
