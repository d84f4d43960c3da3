"""Test-time scaling with a verifier: a solidity check a sampler runs on its own candidate frames.

The seeds name best-of-N with a verifier as a way to buy quality at inference. A sampler that draws ``N``
candidate frames can keep the one a verifier prefers; this verifier prefers frames in which no two objects
overlap and no object reaches past the frame's border (the built-in worlds' walls). It is a check of a
physical law on the model's own output, not a reading of the truth: it sees only the candidate frame, the
palette, and how large each object looked in the frames the model was given (``object_sizes``). So it knows
what the sampler could know, and it cannot make a candidate the network never drew.

Reading a frame: each pixel takes the nearest palette colour; an object is a colour's pixels, placed at their
centroid (pixel ``c`` covers ``[c, c + 1)``). Every object is taken as a disc of the area it had in the context
(its largest area there), so its radius is ``sqrt(area / pi)``; an object the world draws as a square is read as
its inscribed circle, radius ``sqrt(area) / 2``. A blob touching one side of the frame is cut by it, and its
centroid lies too far inside: the centre is found by inverting where the centroid of a cut disc lies (the same
geometry the audit's judge uses, :func:`gedanken.audit.physics.cut_disc_centre`); a square's from the far side of
its extent. The penalty of a frame is the sum, in pixels, of how deep every pair of objects overlaps and how far
every object reaches past the border.

This shares a way of reading frames with the audit, so a model that samples with it will look better on the
audit's interpenetration by construction, to the extent one of its candidates is clean; the audit reports both
sampler settings, and the verifier's cost in frames per second is in ``benchmarks/``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Protocol

import torch
from torch import Tensor

from gedanken.models.projection import colour_areas, snap_to_palette

log = logging.getLogger(__name__)

MIN_AREA = 3.0  # an object with fewer pixels (at any size) is not read: too few to place
VERIFIERS = ("none", "solidity")
TIE_PX = (
    0.25  # penalties are compared in steps of this; within the lowest, the family's own preference decides
)


class VerifiedSampler(Protocol):
    """The fields a family's sampler config carries for the verifier."""

    verifier: str  # "none" | "solidity"
    candidates: int  # samples a frame may take
    verifier_tolerance: float  # px of total penetration a frame may have before it is sampled again
    verifier_solid: tuple[int, ...]  # identities checked (empty: all)
    verifier_boxes: tuple[int, ...]  # identities drawn as squares


def check_verifier(cfg: VerifiedSampler, colours: int) -> None:
    """``ValueError`` unless a sampler config's verifier fields fit a model whose data has ``colours`` palette
    colours."""
    verifier, candidates, tolerance = cfg.verifier, cfg.candidates, cfg.verifier_tolerance
    if verifier not in VERIFIERS:
        raise ValueError(f"sampler.verifier must be one of {', '.join(VERIFIERS)}, got {verifier!r}")
    if verifier == "solidity" and not colours:
        raise ValueError(
            "sampler.verifier='solidity' reads objects as palette colours, and this model has none (trained "
            "before palettes were recorded, or on data that is not flat-coloured)"
        )
    if verifier == "solidity" and candidates < 2:
        raise ValueError(f"sampler.verifier='solidity' picks among candidates: need >= 2, got {candidates}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"sampler.verifier_tolerance must be a finite number >= 0, got {tolerance}")
    objects = colours - 1
    for name in ("verifier_solid", "verifier_boxes"):
        if any(not 0 <= i < objects for i in getattr(cfg, name)):
            raise ValueError(
                f"sampler.{name} must list identities in [0, {objects}), got {getattr(cfg, name)}"
            )


def object_sizes(frames: Tensor, palette: Tensor) -> Tensor:
    """uint8 frames ``(B, k, H, W, 3)`` -> ``(B, P - 1)``: each object colour's largest area over the ``k`` frames
    (an object cut by the border in one context frame is whole in another)."""
    b, k = frames.shape[:2]
    snapped = snap_to_palette(frames.reshape(b * k, *frames.shape[2:]), palette, 1.0)
    return colour_areas(snapped, palette).view(b, k, -1).amax(1)


def _centre(v: Tensor, occupied: Tensor, r: Tensor, box: Tensor) -> Tensor:
    """One axis: centroids ``v`` (N, K), which pixels of the axis each blob covers (N, K, S), radii, and which
    objects are boxes. A blob touching one side is cut by it: a disc is placed from its cut centroid, a box
    from its far side (as the audit's judge does)."""
    from gedanken.audit.physics import cut_disc_centre  # here: the audit imports the model families

    size, dev = occupied.shape[-1], v.device
    low, high = occupied[..., 0], occupied[..., -1]
    first = occupied.double().argmax(-1)
    end = size - occupied.flip(-1).double().argmax(-1)  # one past the last covered pixel
    rn = r.cpu().double().numpy()
    lo = torch.from_numpy(cut_disc_centre(v.cpu().double().numpy(), rn)).to(dev)
    hi = size - torch.from_numpy(cut_disc_centre((size - v).cpu().double().numpy(), rn)).to(dev)
    lo, hi = torch.where(box, end - r, lo), torch.where(box, first + r, hi)
    return torch.where(low & ~high, lo, torch.where(high & ~low, hi, v.double()))


def solidity_penalty(
    frames: Tensor, palette: Tensor, sizes: Tensor, solid: Tensor | None = None, boxes: Tensor | None = None
) -> Tensor:
    """How far uint8 frames ``(N, H, W, 3)`` break solidity: ``(N,)`` float64 pixels, 0 when nothing overlaps.

    ``sizes`` ``(N, P - 1)``: each object colour's whole area (from :func:`object_sizes`; 0 = not an object in
    this episode). ``solid`` ``(P - 1,)`` bool: the colours that take part (default all; a goal region that
    objects pass over is not solid). ``boxes`` ``(P - 1,)`` bool: the colours drawn as squares, read as their
    inscribed circle (radius half the side), which never overstates an overlap (default none)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {tuple(frames.shape)} {frames.dtype}")
    k = len(palette) - 1
    if sizes.shape != (frames.shape[0], k):
        raise ValueError(f"sizes must be (N={frames.shape[0]}, {k}), got {tuple(sizes.shape)}")
    n, h, w = frames.shape[:3]
    pal = palette.to(device=frames.device, dtype=torch.uint8)
    snapped = snap_to_palette(frames, pal, 1.0)
    masks = torch.stack([(snapped == c).all(-1) for c in pal[1:]], 1).double()  # (N, K, H, W)
    per_row, per_col = masks.sum(3), masks.sum(2)  # (N, K, H), (N, K, W)
    area = per_row.sum(-1)
    centres_r = torch.arange(h, dtype=torch.float64, device=frames.device) + 0.5
    centres_c = torch.arange(w, dtype=torch.float64, device=frames.device) + 0.5
    safe = area.clamp(min=1)
    row, col = per_row @ centres_r / safe, per_col @ centres_c / safe
    box = torch.zeros(k, dtype=torch.bool) if boxes is None else boxes
    box = box.to(frames.device)[None].expand(n, k)
    area_ref = sizes.to(frames.device).double()
    r = torch.where(box, area_ref.sqrt() / 2, (area_ref / math.pi).sqrt())
    col = _centre(col, per_col > 0, r, box)
    row = _centre(row, per_row > 0, r, box)
    seen = (area >= MIN_AREA) & (sizes.to(frames.device) > 0)
    if solid is not None:
        seen = seen & solid.to(frames.device)[None]
    wall = torch.minimum(torch.minimum(col, w - col), torch.minimum(row, h - row))
    past = torch.where(seen, (r - wall).clamp(min=0), 0.0).sum(-1)
    d = torch.hypot(col[:, :, None] - col[:, None], row[:, :, None] - row[:, None])  # (N, K, K)
    over = (r[:, :, None] + r[:, None] - d).clamp(min=0)
    both = seen[:, :, None] & seen[:, None] & torch.ones(k, k, dtype=torch.bool, device=frames.device).triu(1)
    return past + torch.where(both, over, 0.0).sum((1, 2))


def least_penetrating(pen: Tensor, prefer: Tensor | None = None) -> Tensor:
    """Penalties ``(n, B)`` of ``n`` candidates per batch element -> ``(B,)`` index of the one to keep: among those
    in the lowest ``TIE_PX`` step, the least ``prefer`` ``(n, B)`` (default: the first)."""
    step = (pen / TIE_PX).floor()
    key = torch.zeros_like(pen) if prefer is None else prefer.to(pen)
    return key.masked_fill(step > step.min(0).values, math.inf).argmin(0)  # the first on ties


def sampler_penalty(frames: Tensor, palette: tuple, sizes: Tensor, cfg: VerifiedSampler) -> Tensor:
    """:func:`solidity_penalty` of ``frames`` with the solid and square identities a sampler config names."""
    k = len(palette) - 1
    solid = torch.tensor([i in cfg.verifier_solid for i in range(k)]) if cfg.verifier_solid else None
    boxes = torch.tensor([i in cfg.verifier_boxes for i in range(k)])
    return solidity_penalty(frames, torch.tensor(palette), sizes, solid, boxes)


PASSABLE_KINDS = ("goal", "occluder")  # kinds of object other objects pass over or behind


def world_solidity(world: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(solid, boxes)`` identity indices of a built-in world: the objects that must not overlap (not a goal
    region or an occluder) and those drawn as squares; ``((), ())`` (all solid discs) for any other name."""
    from gedanken.worlds import WORLDS, world_name
    from gedanken.worlds.state import Shape

    cls = WORLDS.get(world_name(world)) if world else None
    if cls is None:
        return (), ()
    solid = tuple(i for i, kind in enumerate(cls.slot_kinds) if kind not in PASSABLE_KINDS)
    boxes = tuple(i for i, shape in enumerate(cls.slot_shapes) if shape is Shape.BOX)
    return solid, boxes


def use_verifier(model: object, candidates: int, world: str = "", label: str = "") -> None:
    """Make ``model`` sample with the solidity verifier, best of up to ``candidates`` per frame, checking the
    objects ``world`` (default: the one it was trained on) says are solid. A model that recorded no palette
    (trained before palettes were) takes the built-in world's. ``ValueError``, naming the model as ``label``
    (default its name), for a model whose sampler has no verifier (only the diffusion and autoregressive ones
    have) or that cannot use it."""
    cfg = getattr(getattr(model, "sampler", None), "cfg", None)
    name = label or getattr(model, "name", type(model).__name__)
    if cfg is None or not hasattr(cfg, "verifier") or not hasattr(model, "set_sampler"):
        raise ValueError(
            f"model {name!r} has no solidity verifier (the diffusion and autoregressive samplers have one)"
        )
    if candidates < 2:
        raise ValueError(f"the verifier picks among candidates: need at least 2, got {candidates}")
    world = world or getattr(getattr(model, "card", None), "world", "")
    _palette_from_world(model, world, name)
    colours = len(model.cfg.palette)  # type: ignore[attr-defined]
    solid, boxes = world_solidity(world)
    new = dataclasses.replace(
        cfg,
        candidates=candidates,
        verifier="solidity",
        verifier_solid=tuple(i for i in solid if i < colours - 1),
        verifier_boxes=tuple(i for i in boxes if i < colours - 1),
    )
    try:
        model.set_sampler(new)  # type: ignore[attr-defined]
    except ValueError as e:
        raise ValueError(f"model {name!r}: {e}") from None


def _palette_from_world(model: object, world: str, name: str) -> None:
    """Give a model that recorded no palette the built-in ``world``'s colours (checkpoints from before palettes
    were recorded; ``benchmarks/diffusion_sampler.py`` does the same)."""
    from gedanken.worlds import WORLDS, world_name

    cfg = getattr(model, "cfg", None)
    if cfg is None or getattr(cfg, "palette", ()) or world_name(world) not in WORLDS:
        return
    from gedanken.worlds.palette import palette_for

    k = len(WORLDS[world_name(world)].slot_kinds)
    palette = tuple(tuple(int(c) for c in rgb) for rgb in palette_for(k))
    model.cfg = dataclasses.replace(cfg, palette=palette)  # type: ignore[attr-defined]
    log.info("%s recorded no palette; the verifier reads %s's %d colours", name, world, k + 1)
