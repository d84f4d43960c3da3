"""The identity palette: one saturated colour per identity slot, far apart in RGB.

``PALETTE[0]`` is the background (black); identity ``i`` is drawn in ``PALETTE[i + 1]``. The first seven
identity colours are corners of the RGB cube (pairwise distance >= 255), the next three sit between them
(distance >= 127 to every other entry), so nearest-colour classification survives heavy pixel noise.
"""

from __future__ import annotations

import numpy as np

# (name, rgb); index 0 is the background.
_ENTRIES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("red", (255, 0, 0)),
    ("green", (0, 255, 0)),
    ("blue", (0, 0, 255)),
    ("yellow", (255, 255, 0)),
    ("magenta", (255, 0, 255)),
    ("cyan", (0, 255, 255)),
    ("white", (255, 255, 255)),
    ("orange", (255, 128, 0)),
    ("grey", (128, 128, 128)),
    ("purple", (128, 0, 255)),
)

PALETTE: np.ndarray = np.array([rgb for _, rgb in _ENTRIES], dtype=np.uint8)  # (N, 3)
COLOUR_NAMES: tuple[str, ...] = tuple(name for name, _ in _ENTRIES)
MAX_IDENTITIES: int = len(_ENTRIES) - 1


def palette_for(k: int) -> np.ndarray:
    """The ``(k + 1, 3)`` uint8 palette of a world with ``k`` identity slots (background first)."""
    if not 1 <= k <= MAX_IDENTITIES:
        raise ValueError(f"a world may have 1..{MAX_IDENTITIES} identity slots, got {k}")
    return PALETTE[: k + 1].copy()


def colour_name(rgb: np.ndarray | tuple[int, int, int]) -> str:
    """Name of the named palette colour nearest to ``rgb`` (used by captions)."""
    d = np.abs(PALETTE.astype(np.int32) - np.asarray(rgb, dtype=np.int32)[None, :]).sum(axis=1)
    return COLOUR_NAMES[int(np.argmin(d))]


def classify_pixels(frame: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Nearest-palette-entry index of every pixel: ``(..., 3)`` uint8 -> ``(...)`` int64 labels.

    Label 0 is the background, label ``i + 1`` is identity ``i``.
    """
    f = frame.astype(np.int32)[..., None, :]  # (..., 1, 3)
    p = np.asarray(palette, dtype=np.int32)  # (P, 3)
    return np.argmin(((f - p) ** 2).sum(axis=-1), axis=-1)


def min_palette_distance(palette: np.ndarray) -> float:
    """Smallest Euclidean RGB distance between two entries of ``palette``."""
    p = np.asarray(palette, dtype=np.float64)
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    d[np.diag_indices(len(p))] = np.inf
    return float(d.min())


def flat_palette(
    frames: np.ndarray, *, max_colours: int = 32, min_share: float = 1e-4, coverage: float = 0.999
) -> tuple[tuple[int, int, int], ...]:
    """The colours of flat-coloured frames ``(..., H, W, 3)`` uint8, most frequent first; ``()`` if not flat.

    Flat means that at most ``max_colours`` colours, each on at least ``min_share`` of the pixels, cover
    ``coverage`` of all pixels: drawn worlds and most console games, not camera video or anti-aliased
    renders (whose colours leave any small palette).
    """
    px = np.asarray(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
    if len(px) == 0:
        return ()
    keys, counts = np.unique((px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    keys, share = keys[order], counts[order] / len(px)
    kept = keys[share >= min_share][:max_colours]
    if share[: len(kept)].sum() < coverage:
        return ()
    return tuple((int(k >> 16), int((k >> 8) & 255), int(k & 255)) for k in kept)
