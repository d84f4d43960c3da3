"""Loss weights that keep small objects from being drawn dim (``FlowConfig.size_weight``).

A flow-matching network that is unsure of a small object's exact pixels predicts their mean: a faint blob the
audit's judge, rightly, does not count as the object. Session 18 found that almost all of ``diffusion_bounce``'s
lost identities were its smallest balls, drawn dim already one step from the true past. These weights raise the
loss on the latent cells that cover a small object, in the target frame or in the previous one (where it comes
from), by ``clamp((reference / area)^2, 1, cap)`` for an object of ``area`` pixels. Objects are the palette's
colours, so this needs flat-coloured data (the built-in worlds, or anything with a recorded palette).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gedanken.models.projection import colour_areas, snap_to_palette


def small_object_weights(
    frames: Tensor, palette: tuple[tuple[int, int, int], ...], reference: float, cap: float, cell: int
) -> Tensor:
    """uint8 frames ``(T, H, W, 3)`` -> weights ``(T, 1, H / cell, W / cell)`` float32, >= 1.

    Colour 0 of ``palette`` is the background (weight 1). A latent cell takes the largest weight of its
    ``cell x cell`` pixels, and frame ``t``'s cells also that of frame ``t - 1``."""
    if not palette:
        raise ValueError("small-object weights read objects as palette colours; this data has no palette")
    if frames.ndim != 4 or frames.shape[1] % cell or frames.shape[2] % cell:
        raise ValueError(
            f"frames must be (T, H, W, 3) with H, W divisible by {cell}, got {tuple(frames.shape)}"
        )
    pal = torch.tensor(palette, dtype=torch.uint8)
    snap = snap_to_palette(frames, pal, 1.0)
    per_colour = (reference / colour_areas(snap, pal).clamp(min=1)).pow(2).clamp(1.0, cap)  # (T, P - 1)
    objects = (snap[..., None, :] == pal[1:]).all(-1).float()  # (T, H, W, P - 1): each pixel's colour
    pixels = 1.0 + (objects * (per_colour[:, None, None, :] - 1.0)).sum(-1)  # (T, H, W), background 1
    cells = F.max_pool2d(pixels[:, None], cell)  # (T, 1, h, w)
    return torch.maximum(cells, torch.cat([cells[:1], cells[:-1]]))
