"""The colour judge: objects (identity, position, area, visibility) from any frame, real or generated.

Every built-in world draws identity ``i`` in ``palette[i + 1]`` on a ``palette[0]`` background with no
anti-aliasing (see :mod:`gedanken.worlds.state`), so on real frames a nearest-colour segmentation recovers
identities exactly and positions to a fraction of a pixel. On generated frames the judge has to cope with
blur and noise, and must *report* what it cannot explain instead of guessing:

* a pixel takes the nearest palette colour only if it lies within ``max_colour_distance`` of it; pixels far
  from every palette colour are counted as *wrong colour*;
* an identity with fewer than ``min_visible_px`` pixels is *not visible* (vanished or occluded);
* connected components (8-connectivity, :func:`scipy.ndimage.label`) smaller than ``min_component_px``
  are ignored as speckle; more than one remaining component is a *split* object (duplicate);
* positions are centroids of the remaining pixels, in continuous pixel coordinates (pixel ``c`` covers
  ``[c, c + 1)``, so its centre is ``c + 0.5``), the same convention as
  :func:`gedanken.worlds.state.world_to_pixel`.

Everything is batched over frames with numpy: colour classification is one lookup in a 5-bit-per-channel
table (built once per palette), component labelling is one 3-D ``label`` call per identity whose structure
never connects two frames.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gedanken.worlds.state import PRESENT, WORLD_SIZE, H, W, X, Y, pixel_to_world, world_to_pixel

_BITS = 5  # bits per channel of the colour lookup table; quantisation error <= sqrt(3) * 2 ** (7 - _BITS)
_REF_PIXELS = 64 * 64  # pixel thresholds are given for a 64x64 frame and scaled with the frame area
WRONG = 255  # label of a pixel far from every palette colour


@dataclass(frozen=True)
class JudgeConfig:
    """How forgiving the judge is with generated frames."""

    max_colour_distance: float = 60.0  # RGB distance within which a pixel takes the nearest palette colour
    min_visible_px: float = 3.0  # fewer pixels (at 64x64, scaled with frame area): identity not visible
    min_component_px: float = 3.0  # smaller connected components (at 64x64) are speckle, not object parts


@dataclass
class Judged:
    """What the judge saw in ``N`` frames (any leading shape ``S``; ``K`` identities)."""

    visible: np.ndarray  # (*S, K) bool: at least min_visible_px pixels of the identity's colour
    col: np.ndarray  # (*S, K) float32 centroid column in continuous pixels, NaN where not visible
    row: np.ndarray  # (*S, K) float32 centroid row in continuous pixels, NaN where not visible
    area: np.ndarray  # (*S, K) float32 pixels of the identity (speckle excluded)
    components: np.ndarray  # (*S, K) int32 connected components above min_component_px
    bbox: np.ndarray  # (*S, K, 4) float32 pixel extent (col0, col1, row0, row1), edges of the outer pixels
    wrong_px: np.ndarray  # (*S,) int32 pixels far from every palette colour
    height: int  # H of the judged frames
    width: int  # W of the judged frames
    exact: bool = False  # col/row are the objects' true centres (from states), not centroids of pixels

    @property
    def split(self) -> np.ndarray:
        """(*S, K) bool: the identity shows up as more than one blob."""
        return self.components > 1

    def xy_world(self) -> np.ndarray:
        """(*S, K, 2) centroids in world units (NaN where not visible)."""
        x, y = pixel_to_world(self.col, self.row, self.width, self.height)
        return np.stack([x, y], axis=-1).astype(np.float32)

    def xy_pixels(self) -> np.ndarray:
        """(*S, K, 2) centroids as (column, row) pixels (NaN where not visible)."""
        return np.stack([self.col, self.row], axis=-1)

    @property
    def px_per_unit(self) -> float:
        """Pixels per world unit along x (1.0 at 64x64)."""
        return self.width / WORLD_SIZE


@functools.lru_cache(maxsize=16)
def _colour_table(palette: tuple[tuple[int, int, int], ...], max_distance: float) -> np.ndarray:
    """(2**(3*_BITS),) uint8: palette index of the nearest colour of each quantised bin, or WRONG."""
    pal = np.asarray(palette, dtype=np.float32)  # (P, 3)
    levels = np.arange(1 << _BITS, dtype=np.float32)
    step = float(1 << (8 - _BITS))
    centres = levels * step + (step - 1) / 2  # bin centres in 0..255
    r, g, b = np.meshgrid(centres, centres, centres, indexing="ij")
    bins = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)  # (Q, 3)
    d2 = ((bins[:, None, :] - pal[None, :, :]) ** 2).sum(-1)  # (Q, P)
    nearest = d2.argmin(1)
    table = np.where(d2[np.arange(len(bins)), nearest] <= max_distance**2, nearest, WRONG).astype(np.uint8)
    # Exact palette colours must always map to themselves, whatever the quantisation did.
    codes = _codes(np.asarray(palette, dtype=np.uint8)[None, None])[0, 0]  # (P,)
    if len(np.unique(codes)) != len(codes):
        raise ValueError(f"palette colours too close to tell apart at {_BITS} bits per channel: {palette}")
    table[codes] = np.arange(len(palette), dtype=np.uint8)
    return table


def _codes(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., H, W) uint16 index into the colour table."""
    q = frames >> (8 - _BITS)
    out = q[..., 0].astype(np.uint16) << (2 * _BITS)
    out |= q[..., 1].astype(np.uint16) << _BITS
    out |= q[..., 2]
    return out


def classify(frames: np.ndarray, palette: tuple[tuple[int, int, int], ...], cfg: JudgeConfig) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H, W) uint8 palette index per pixel (0 background), ``WRONG`` if far."""
    table = _colour_table(tuple(tuple(int(c) for c in p) for p in palette), float(cfg.max_colour_distance))
    return table[_codes(frames)]


_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE[1] = True  # 8-connectivity inside a frame, never across frames


def judge_frames(
    frames: np.ndarray, palette: tuple[tuple[int, int, int], ...], cfg: JudgeConfig | None = None
) -> Judged:
    """Judge ``(*S, H, W, 3)`` uint8 frames against a palette (``palette[0]`` background, ``K = len - 1``)."""
    cfg = cfg or JudgeConfig()
    frames = np.asarray(frames)
    if frames.ndim < 3 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (..., H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if len(palette) < 2:
        raise ValueError(f"palette needs a background and at least one identity colour, got {palette}")
    lead, (h, w) = frames.shape[:-3], frames.shape[-3:-1]
    flat = frames.reshape(-1, h, w, 3)
    n, k = flat.shape[0], len(palette) - 1
    scale = h * w / _REF_PIXELS
    min_visible, min_component = cfg.min_visible_px * scale, cfg.min_component_px * scale

    labels = classify(flat, palette, cfg)  # (N, H, W)
    rows_c = np.arange(h, dtype=np.float64) + 0.5
    cols_c = np.arange(w, dtype=np.float64) + 0.5
    area = np.zeros((n, k), np.float32)
    col = np.full((n, k), np.nan, np.float32)
    row = np.full((n, k), np.nan, np.float32)
    comps = np.zeros((n, k), np.int32)
    bbox = np.full((n, k, 4), np.nan, np.float32)
    for i in range(k):
        mask = labels == i + 1  # (N, H, W)
        if not mask.any():
            continue
        lab, count = ndimage.label(mask, structure=_STRUCTURE)
        fg = lab[mask]  # (M,) component of every foreground pixel, in C order
        sizes = np.bincount(fg, minlength=count + 1)  # (C + 1,) pixels per component, [0] unused
        keep = sizes >= min_component
        keep[0] = False
        frame_of = np.zeros(count + 1, np.int64)  # (C + 1,) frame holding each component
        frame_of[fg] = np.repeat(np.arange(n), mask.reshape(n, -1).sum(1))
        comps[:, i] = np.bincount(frame_of[keep], minlength=n)
        if not keep[1:].all():
            mask = keep[lab]  # drop speckle
        per_row = mask.sum(2, dtype=np.int32)  # (N, H)
        per_col = mask.sum(1, dtype=np.int32)  # (N, W)
        a = per_row.sum(1)
        area[:, i] = a
        with np.errstate(invalid="ignore", divide="ignore"):
            row[:, i] = per_row @ rows_c / a
            col[:, i] = per_col @ cols_c / a
        occupied_c, occupied_r = per_col > 0, per_row > 0
        bbox[:, i, 0] = occupied_c.argmax(1)
        bbox[:, i, 1] = w - occupied_c[:, ::-1].argmax(1)
        bbox[:, i, 2] = occupied_r.argmax(1)
        bbox[:, i, 3] = h - occupied_r[:, ::-1].argmax(1)
    visible = area >= min_visible
    col[~visible] = np.nan
    row[~visible] = np.nan
    bbox[~visible] = np.nan
    wrong = (labels == WRONG).sum((1, 2), dtype=np.int32)
    return Judged(
        visible=visible.reshape(*lead, k),
        col=col.reshape(*lead, k),
        row=row.reshape(*lead, k),
        area=area.reshape(*lead, k),
        components=comps.reshape(*lead, k),
        bbox=bbox.reshape(*lead, k, 4),
        wrong_px=wrong.reshape(lead),
        height=h,
        width=w,
    )


def judged_from_states(states: np.ndarray, height: int, width: int) -> Judged:
    """What a perfect judge would report for ``(*S, K, F)`` object states (for models with a state head).

    Used when a model predicts object states instead of pixels (a JEPA probe): positions come straight from
    the states, every present object is one visible blob, and no pixel has a wrong colour.
    """
    states = np.asarray(states, dtype=np.float32)
    visible = states[..., PRESENT] > 0
    col, row = world_to_pixel(states[..., X], states[..., Y], width, height)
    sx, sy = width / WORLD_SIZE, height / WORLD_SIZE
    half_w, half_h = 0.5 * states[..., W] * sx, 0.5 * states[..., H] * sy
    bbox = np.stack([col - half_w, col + half_w, row - half_h, row + half_h], axis=-1).astype(np.float32)
    nan = np.float32(np.nan)
    return Judged(
        visible=visible,
        col=np.where(visible, col, nan).astype(np.float32),
        row=np.where(visible, row, nan).astype(np.float32),
        area=np.where(visible, 4 * half_w * half_h, 0).astype(np.float32),
        components=visible.astype(np.int32),
        bbox=np.where(visible[..., None], bbox, nan),
        wrong_px=np.zeros(states.shape[:-2], np.int32),
        height=height,
        width=width,
        exact=True,
    )
