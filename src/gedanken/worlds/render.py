"""A small numpy rasterizer: circles and rotated boxes by pixel-centre inclusion, no anti-aliasing.

Pixel ``(r, c)`` has its centre at pixel coordinates ``(c + 0.5, r + 0.5)``; world and pixel coordinates are
related as in :mod:`gedanken.worlds.state`. A pixel belongs to an object when its centre lies inside the
object's shape (boundary included). Objects are drawn back to front in :func:`draw_order` (goals behind,
occluders in front, everything else in slot order), so a later object covers an earlier one.

:func:`render_state` needs nothing but a state array, the per-slot shapes and a palette, so extrapolated or
predicted states (for instance the audit's constant-velocity baseline) render exactly like the world does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gedanken.worlds.state import ANGLE, PRESENT, WORLD_SIZE, H, Shape, W, X, Y

# Draw layer per kind; higher layers are drawn later (in front). Unknown kinds use DEFAULT_LAYER.
KIND_LAYERS: dict[str, int] = {"goal": 0, "occluder": 2}
DEFAULT_LAYER = 1


@dataclass(frozen=True)
class Raster:
    """The label image of one state, before colouring."""

    labels: np.ndarray  # (H, W) int16: 0 background, i + 1 for identity i (the front-most object)
    areas: np.ndarray  # (K,) int32: pixels each object would cover if drawn alone

    def visible_fraction(self) -> np.ndarray:
        """Share of each object's own pixels that stay visible, ``(K,)`` float32 (0 for absent/empty)."""
        k = self.areas.shape[0]
        seen = np.bincount(self.labels.ravel(), minlength=k + 1)[1 : k + 1]
        return np.where(self.areas > 0, seen / np.maximum(self.areas, 1), 0.0).astype(np.float32)


def draw_order(kinds: Sequence[str] | None, k: int) -> list[int]:
    """Slot indices back to front: by kind layer (goal < objects < occluder), then by slot."""
    if kinds is None:
        return list(range(k))
    if len(kinds) != k:
        raise ValueError(f"kinds has {len(kinds)} entries for {k} slots")
    return sorted(range(k), key=lambda i: (KIND_LAYERS.get(kinds[i], DEFAULT_LAYER), i))


@lru_cache(maxsize=32)
def _pixel_centres(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """World x of every column centre ``(W,)`` and world y of every row centre ``(H,)``."""
    xs = (np.arange(width, dtype=np.float64) + 0.5) * (WORLD_SIZE / width)
    ys = WORLD_SIZE - (np.arange(height, dtype=np.float64) + 0.5) * (WORLD_SIZE / height)
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _as_shape(s: Shape | str) -> Shape | None:
    if isinstance(s, Shape):
        return s
    if s == "":
        return None
    try:
        return Shape(s)
    except ValueError:
        raise ValueError(f"unknown shape {s!r}; valid: {[m.value for m in Shape]} or '' for unused") from None


def object_mask(
    shape: Shape, row: np.ndarray, height: int, width: int
) -> tuple[int, int, int, int, np.ndarray] | None:
    """Pixels covered by one object: ``(r0, r1, c0, c1, mask)`` with ``mask`` of shape ``(r1-r0, c1-c0)``."""
    cx, cy = float(row[X]), float(row[Y])
    w, h = float(row[W]), float(row[H])
    ext = 0.5 * w if shape is Shape.CIRCLE else 0.5 * float(np.hypot(w, h))
    sx, sy = WORLD_SIZE / width, WORLD_SIZE / height
    c0 = max(int(np.floor((cx - ext) / sx)) - 1, 0)
    c1 = min(int(np.ceil((cx + ext) / sx)) + 1, width)
    r0 = max(int(np.floor((WORLD_SIZE - cy - ext) / sy)) - 1, 0)
    r1 = min(int(np.ceil((WORLD_SIZE - cy + ext) / sy)) + 1, height)
    if c0 >= c1 or r0 >= r1:
        return None
    xs, ys = _pixel_centres(height, width)
    dx = xs[c0:c1][None, :] - cx  # (1, w)
    dy = ys[r0:r1][:, None] - cy  # (h, 1)
    if shape is Shape.CIRCLE:
        mask = dx * dx + dy * dy <= 0.25 * w * w
    else:
        a = float(row[ANGLE])
        ca, sa = np.cos(a), np.sin(a)
        u = dx * ca + dy * sa
        v = dy * ca - dx * sa
        mask = (np.abs(u) <= 0.5 * w) & (np.abs(v) <= 0.5 * h)
    return r0, r1, c0, c1, mask


def rasterize(
    state: np.ndarray,
    shapes: Sequence[Shape | str],
    size: tuple[int, int] = (64, 64),
    kinds: Sequence[str] | None = None,
) -> Raster:
    """Label image of a ``(K, F)`` state at ``size = (H, W)`` pixels."""
    if state.ndim != 2:
        raise ValueError(f"state must be (K, F), got {state.shape}")
    k = state.shape[0]
    if len(shapes) != k:
        raise ValueError(f"shapes has {len(shapes)} entries for {k} slots")
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"render size must be positive (H, W), got {size}")
    labels = np.zeros((height, width), dtype=np.int16)
    areas = np.zeros(k, dtype=np.int32)
    for i in draw_order(kinds, k):
        shape = _as_shape(shapes[i])
        row = state[i]
        if shape is None or row[PRESENT] <= 0:
            continue
        hit = object_mask(shape, row, height, width)
        if hit is None:
            continue
        r0, r1, c0, c1, mask = hit
        areas[i] = int(mask.sum())
        labels[r0:r1, c0:c1][mask] = i + 1
    return Raster(labels=labels, areas=areas)


def colourize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``(H, W)`` labels -> ``(H, W, 3)`` uint8 frame through ``palette`` (``(K + 1, 3)``)."""
    return np.asarray(palette, dtype=np.uint8)[labels]


def render_state(
    state: np.ndarray,
    shapes: Sequence[Shape | str],
    palette: np.ndarray,
    size: tuple[int, int] = (64, 64),
    kinds: Sequence[str] | None = None,
    antialias: bool = False,
    supersample: int = 4,
) -> np.ndarray:
    """Render one ``(K, F)`` state to an ``(H, W, 3)`` uint8 frame.

    Args:
        state: object states in the layout of :mod:`gedanken.worlds.state`.
        shapes: per slot ``Shape`` (or its string value, ``""`` for an unused slot).
        palette: ``(K + 1, 3)`` uint8, background first.
        size: ``(H, W)`` in pixels.
        kinds: per slot kind, used only for the draw order (goals behind, occluders in front).
        antialias: average a ``supersample`` x ``supersample`` grid per pixel (colours leave the palette).
    """
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.ndim != 2 or palette.shape[1] != 3 or palette.shape[0] < state.shape[0] + 1:
        raise ValueError(f"palette must be (K + 1, 3) = ({state.shape[0] + 1}, 3), got {palette.shape}")
    if not antialias:
        return colourize(rasterize(state, shapes, size, kinds).labels, palette)
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    s = int(supersample)
    h, w = int(size[0]), int(size[1])
    big = colourize(rasterize(state, shapes, (h * s, w * s), kinds).labels, palette)  # (H*s, W*s, 3)
    avg = big.reshape(h, s, w, s, 3).astype(np.float32).mean(axis=(1, 3))
    return np.clip(np.rint(avg), 0, 255).astype(np.uint8)
