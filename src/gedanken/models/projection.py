"""Projection of a generated frame onto a flat-coloured world's palette before it becomes context.

Shared by the families that feed their own frames back (diffusion re-encodes them, the autoregressive model
re-tokenizes them): :func:`snap_to_palette` takes each pixel to the nearest palette colour, :func:`nearby_colours`
limits each colour to where it was, :func:`hold_areas` keeps each colour's area near an observed one and
:func:`colour_areas` counts them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def snap_to_palette(
    frames: Tensor, palette: Tensor, background: float = 1.0, allowed: Tensor | None = None
) -> Tensor:
    """Each pixel of uint8 frames ``(..., 3)`` replaced by the nearest (RGB distance) of ``palette`` ``(P, 3)``.

    On flat-coloured data this is the projection of a generated frame onto the frames the data can hold: a
    pixel that the sampler left between two colours (an object fading into the background, a blend of two
    touching objects) takes one of them, so the fade does not carry into the next frame's context.
    ``background`` < 1 scales the distance to ``palette[0]`` (the background), so that a pixel halfway
    between an object and the background is dropped rather than added to the object: a blurred rim, snapped
    to the object frame after frame, would grow it. ``allowed`` ``(..., P)`` bool (see :func:`nearby_colours`)
    limits each pixel to some colours.
    """
    pal = palette.to(device=frames.device, dtype=torch.float32)
    d = torch.cdist(frames.reshape(-1, 3).float(), pal)  # (N, P)
    d[:, 0] *= background
    if allowed is not None:
        d = d.masked_fill(~allowed.reshape(-1, len(pal)), float("inf"))
    return pal.to(torch.uint8)[d.argmin(-1)].view(frames.shape)


def nearby_colours(previous: Tensor, palette: Tensor, radius: int) -> Tensor:
    """``(B, H, W, P)`` bool: the palette colours that palette-projected frames ``(B, H, W, 3)`` show within
    ``radius`` pixels (a square) of each pixel; the background is always allowed. Objects move a few pixels
    per frame, so a colour far from where it was is a blend of two others (red and blue make magenta)."""
    pal = palette.to(device=previous.device, dtype=torch.uint8)
    present = torch.stack([(previous == c).all(-1) for c in pal], 1).float()  # (B, P, H, W)
    near = F.max_pool2d(present, 2 * radius + 1, stride=1, padding=radius) > 0
    near[:, 0] = True
    return near.permute(0, 2, 3, 1)


def colour_areas(snapped: Tensor, palette: Tensor) -> Tensor:
    """Pixels of each non-background palette colour ``(B, P - 1)`` in palette-projected frames ``(B, H, W, 3)``."""
    pal = palette.to(device=snapped.device, dtype=torch.uint8)
    return torch.stack([(snapped == c).all(-1).sum((1, 2)) for c in pal[1:]], 1).float()


def hold_areas(
    snapped: Tensor, frame: Tensor, palette: Tensor, reference: Tensor, allowed: Tensor, keep: float
) -> Tensor:
    """Palette-projected frames ``(B, H, W, 3)`` whose every colour keeps ``[keep, 1 / keep]`` x its
    ``reference`` area ``(B, P - 1)`` (colours with reference 0 are left alone).

    A colour below its lower bound takes the background pixels nearest to it in the generated ``frame``
    ``(B, H, W, 3)`` among those where ``allowed`` ``(B, H, W, P)`` lets it appear (near where it was): a
    fading object is redrawn from its own faint pixels, so it stays in the context instead of vanishing from
    it. A colour above its upper bound gives its pixels farthest from it back to the background. For worlds
    whose objects keep their size and never leave the frame (Push, Bounce); it is what a sampler knows, not
    the network.
    """
    pal = palette.to(device=frame.device, dtype=torch.float32)
    out = snapped.clone()
    b = frame.shape[0]
    pix, own = frame.reshape(b, -1, 3).float(), out.view(b, -1, 3)
    may = allowed.reshape(b, -1, len(pal))
    colours = pal.to(torch.uint8)
    for i in range(1, len(pal)):
        d = (pix - pal[i]).norm(dim=-1)  # (B, N) distance of each generated pixel to the colour
        mine = (own == colours[i]).all(-1)  # (B, N)
        free = (own == colours[0]).all(-1) & may[..., i]
        area, ref = mine.sum(1), reference[:, i - 1].to(d.device)
        need = torch.where(ref > 0, (keep * ref).ceil() - area, torch.zeros_like(ref)).clamp(min=0)
        excess = torch.where(ref > 0, area - (ref / keep).floor(), torch.zeros_like(ref)).clamp(min=0)
        if bool((need > 0).any()):  # rank among free pixels (two sorts: skipped when nothing is missing)
            nearest = d.masked_fill(~free, float("inf")).argsort(dim=1, stable=True).argsort(1)
            own[free & (nearest < need[:, None])] = colours[i]
        if bool((excess > 0).any()):
            farthest = (-d).masked_fill(~mine, float("inf")).argsort(dim=1, stable=True).argsort(1)
            own[mine & (farthest < excess[:, None])] = colours[0]
    return out
