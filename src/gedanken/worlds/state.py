"""Exact per-object state, the contract between worlds, datasets, the audit and model heads.

Conventions (shared by every built-in world):

* World coordinates are in *world units*; every built-in world is ``WORLD_SIZE`` x ``WORLD_SIZE`` units,
  origin at the bottom-left, y pointing up (pymunk's convention). The renderer maps world units to pixels
  with ``px = x * W / WORLD_SIZE`` and ``py = (WORLD_SIZE - y) * H / WORLD_SIZE`` (image rows grow down), so
  at the default 64x64 one unit is one pixel.
* Objects are identified by an *identity slot* ``i`` in ``0..K-1`` (``K = max_objects`` of the world).
  Identity ``i`` is drawn in palette colour ``palette[i + 1]``; ``palette[0]`` is the background.
  Absent slots have ``present == 0`` and all other fields zero.
* A state array has shape ``(..., K, F)`` with the fields of ``STATE_FIELDS`` in that order (float32).
  ``w``/``h`` are the full extent of the shape (diameter for a circle, box sides for a box).
* Contacts are an int32 bitmask per object, shape ``(..., K)``: bit ``0`` = touching static geometry
  (walls, floor), bit ``j + 1`` = touching identity ``j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

WORLD_SIZE: float = 64.0

STATE_FIELDS: tuple[str, ...] = ("present", "x", "y", "vx", "vy", "angle", "angvel", "w", "h", "mass")
F = len(STATE_FIELDS)
PRESENT, X, Y, VX, VY, ANGLE, ANGVEL, W, H, MASS = range(F)


class Shape(str, Enum):
    """Geometric shape of an object, used by the renderer and the judge."""

    CIRCLE = "circle"
    BOX = "box"


@dataclass(frozen=True)
class ObjectState:
    """One object at one instant, the readable view of one row of a state array."""

    ident: int
    kind: str
    shape: Shape
    x: float
    y: float
    vx: float
    vy: float
    angle: float
    angvel: float
    w: float
    h: float
    mass: float
    contacts: tuple[int, ...]  # identities touched; -1 stands for static geometry


def empty_state(k: int) -> np.ndarray:
    """A ``(K, F)`` float32 state array with every slot absent."""
    return np.zeros((k, F), dtype=np.float32)


def objects_from_array(
    state: np.ndarray, contacts: np.ndarray, kinds: tuple[str, ...], shapes: tuple[Shape, ...]
) -> list[ObjectState]:
    """Readable objects from one ``(K, F)`` state row and its ``(K,)`` contact bitmask."""
    if state.ndim != 2 or state.shape[1] != F:
        raise ValueError(f"state must have shape (K, {F}), got {state.shape}")
    out: list[ObjectState] = []
    for i, row in enumerate(state):
        if row[PRESENT] <= 0:
            continue
        bits = int(contacts[i])
        touched = tuple(-1 if b == 0 else b - 1 for b in range(32) if bits >> b & 1)
        out.append(
            ObjectState(
                ident=i,
                kind=kinds[i],
                shape=shapes[i],
                x=float(row[X]),
                y=float(row[Y]),
                vx=float(row[VX]),
                vy=float(row[VY]),
                angle=float(row[ANGLE]),
                angvel=float(row[ANGVEL]),
                w=float(row[W]),
                h=float(row[H]),
                mass=float(row[MASS]),
                contacts=touched,
            )
        )
    return out


def world_to_pixel(x: np.ndarray, y: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """World units -> continuous pixel coordinates (column, row) of the rendered image."""
    return x * (width / WORLD_SIZE), (WORLD_SIZE - y) * (height / WORLD_SIZE)


def pixel_to_world(
    col: np.ndarray, row: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`world_to_pixel`."""
    return col * (WORLD_SIZE / width), WORLD_SIZE - row * (WORLD_SIZE / height)
