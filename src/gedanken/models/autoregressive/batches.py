"""Training batch sources of the autoregressive recipe: pixel clips (tokenizer, LAM) and token windows (dynamics,
adapter), with the optional per-token contact weights."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from rich.progress import track

from gedanken.data.batch import Batch
from gedanken.data.windows import draw_windows, long_enough
from gedanken.models.autoregressive.model import TokenBatch
from gedanken.models.breach import ContextFn
from gedanken.models.object_weights import contact_object_weights

if TYPE_CHECKING:
    from gedanken.models.autoregressive.recipe import AutoregressiveRecipe, EpisodeData

log = logging.getLogger(__name__)


def clip_batches(frames: list[torch.Tensor], idx: list[int], size: int, length: int, seed: int):
    """Batch source of random ``length``-frame pixel clips (actions etc. zero: these stages use frames only)."""
    lengths = [len(f) for f in frames]
    idx = long_enough(lengths, idx, length, "frames a training clip")

    def source(start: int) -> Iterator[Batch]:
        step = start
        while True:
            pairs = draw_windows(np.random.default_rng([seed, step]), idx, lengths, size, length)
            f = torch.stack([frames[e][s : s + length] for e, s in pairs])  # (B, T, H, W, 3)
            b, t = f.shape[:2]
            yield Batch(
                frames=f,
                actions=torch.zeros(b, t, 1),
                rewards=torch.zeros(b, t),
                terminated=torch.zeros(b, t, dtype=torch.bool),
            )
            step += 1

    return source


def token_batches(
    tokens: list[torch.Tensor],
    latents: list[torch.Tensor],
    actions: list[torch.Tensor] | None,
    size: int,
    length: int,
    seed: int,
    shown: list[torch.Tensor] | None = None,
    share: float = 0.0,
    weights: list[torch.Tensor] | None = None,
    redraw: ContextFn | None = None,
):
    """Batch source of random ``length``-frame token windows (with real actions when given). With ``shown``
    (tokens of the same shape per episode), each frame of a window is shown as those with probability
    ``share`` (the first frame, context only, whenever ``share`` > 0). ``weights`` (per episode, float, the
    tokens' shape) are cut into the same windows as per-token loss weights. ``redraw`` (breach forcing,
    :func:`gedanken.models.breach.breach_context`) then presses the windows it draws (:func:`_pressed`)."""
    lengths = [len(t) for t in tokens]
    idx = long_enough(lengths, range(len(tokens)), length, "frames a dynamics window")

    def source(start: int) -> Iterator[TokenBatch]:
        step = start
        while True:
            rng = np.random.default_rng([seed, step])
            pairs = draw_windows(rng, idx, lengths, size, length)
            tok = torch.stack([tokens[e][s : s + length] for e, s in pairs])
            lat = torch.stack([latents[e][s : s + length - 1] for e, s in pairs])
            act = None if actions is None else torch.stack([actions[e][s : s + length] for e, s in pairs])
            seen = None
            if shown is not None and share > 0:
                alt = torch.stack([shown[e][s : s + length] for e, s in pairs])
                use = torch.from_numpy(rng.random((size, length)) < share)
                use[:, 0] = True
                seen = torch.where(use[..., None], alt, tok)
            wts = None if weights is None else torch.stack([weights[e][s : s + length] for e, s in pairs])
            if redraw is not None:
                seen, wts = _pressed(redraw, pairs, tok, seen, wts, step)
            yield TokenBatch(tokens=tok, latent_actions=lat, actions=act, shown=seen, weights=wts)
            step += 1

    return source


def _pressed(
    redraw: ContextFn,
    pairs: list[tuple[int, int]],
    tok: torch.Tensor,
    seen: torch.Tensor | None,
    wts: torch.Tensor | None,
    step: int,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Breach forcing on a batch of windows ``(B, T, N)``: in each window ``redraw`` changed, every frame but the
    last is shown as redrawn and only the last frame's masked tokens are learned (weight 0 on the frames between).
    Each frame is at once a target and the context of the next, and a pressed frame's unmasked tokens would
    show the overlap its masked targets are told is not there; the last frame, shown as recorded, is learned
    from a pressed past alone."""
    base = tok if seen is None else seen
    got = redraw(pairs, base[:, :-1], step)  # the past only: the last frame is shown as recorded
    if got is None:
        return seen, wts
    drawn = (got != base[:, :-1]).flatten(1).any(1)  # an object pressed in somewhere in the past
    if not drawn.any():
        return seen, wts
    shown = base.clone()
    shown[drawn, :-1] = got[drawn]
    wts = torch.ones(tok.shape, dtype=torch.float32) if wts is None else wts.clone()
    wts[drawn, 1:-1] = 0.0
    return shown, wts


def contact_weights(
    recipe: AutoregressiveRecipe,
    ep: EpisodeData,
    tokens: list[torch.Tensor],
    idx: list[int],
    progress: bool = False,
) -> list[torch.Tensor] | None:
    """Per-token dynamics loss weights ``(T, N)`` of the episodes ``idx`` (objects in contact weigh
    ``recipe.contact_weight``), or None when that is off. About 0.1 s an episode on one core."""
    if recipe.contact_weight <= 1:
        return None
    if not ep.palette:
        raise ValueError("contact_weight reads objects as palette colours; this data is not flat-coloured")
    out = []
    for i in track(idx, description="weighing objects in contact", disable=not progress):
        t, h, w = ep.frames[i].shape[:3]
        cell = int(round((h * w / tokens[i].shape[1]) ** 0.5))
        if cell < 1 or h % cell or w % cell or (h // cell) * (w // cell) != tokens[i].shape[1]:
            raise ValueError(f"cannot place {tokens[i].shape[1]} tokens on a {h}x{w} frame")
        wt = contact_object_weights(
            ep.frames[i], ep.palette, recipe.contact_band, recipe.contact_weight, cell
        )
        out.append(wt.reshape(t, -1))
    share = float(torch.cat([w.flatten() for w in out]).gt(1).float().mean())
    log.info("contact weight %g on %.4f of the dynamics' training tokens", recipe.contact_weight, share)
    return out
