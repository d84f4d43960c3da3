"""Training the dynamics against its own drift: a window's past rolled out by the model itself.

Teacher forcing shows the dynamics only true pasts; a rollout shows it its own. Where its own frames are a little
off (a ball drawn a little short of where it should be, a digit one level off), the velocity it reads from them
is off too, and the error compounds: on Bounce the rollouts slowed the balls to half their speed and stopped
rebounding them (docs/history/autoregressive.md, session 37). Scheduled sampling (Bengio et al., 2015) puts
such pasts in distribution: for a share of the training windows (``AutoregressiveRecipe.rollout_context``), the
frames from a random ``s`` (1 <= s <= T - 2) up to the one before the last are replaced by what the model's own
sampler makes of them from the true frames before ``s`` and the window's action embeddings (no gradient; the
sampler exactly as a rollout runs it, the ``keep_area`` projection included), and only the last frame, true,
is the target (``AutoregressiveWorldModel._token_loss``'s ``last_only``). The model thus learns to read the
next true frame off a past it drew itself. On Bounce it did not mend the slowing, which the diffusion family shares,
and with more than one own frame it taught the model to smear (docs/history/autoregressive.md, session 38).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gedanken.models.projection import colour_areas, snap_to_palette

if TYPE_CHECKING:
    from gedanken.models.autoregressive.model import AutoregressiveWorldModel


@torch.no_grad()
def own_past(
    model: AutoregressiveWorldModel,
    shown: Tensor,
    emb: Tensor,
    rows: Tensor,
    start: int | None = None,
    most: int = 0,
) -> Tensor:
    """``shown`` tokens ``(B, T, N)`` with frames ``s .. T - 2`` of the windows flagged in ``rows`` (B,) bool
    replaced by the model's own rollout from their frames ``< s`` under action embeddings ``emb`` (B, T, D);
    ``s`` is ``start``, or drawn once per call so that between 1 and ``most`` frames (every one the window
    allows when 0) are the model's. Windows shorter than 3 frames have no room for it and come back unchanged."""
    from gedanken.models.autoregressive.model import ARContext

    t = shown.shape[1]
    if t < 3:
        return shown
    low = 1 if most <= 0 else max(1, t - 1 - most)
    s = int(torch.randint(low, t - 1, ())) if start is None else start
    if not 1 <= s <= t - 2:
        raise ValueError(f"the own past starts at a frame in [1, {t - 2}], got {start}")
    past, e = shown[rows], emb[rows]  # (B', T, N), (B', T, D)
    was = model.training
    model.eval()
    try:
        cache = model.dynamics.empty_cache()
        for i in range(s):
            cache = model.dynamics.commit(past[:, i], e[:, i], cache)
        seed = int(torch.randint(0, 2**31 - 1, ()))
        ctx = ARContext(
            cache=cache, batch=len(past), generator=torch.Generator(model.device).manual_seed(seed)
        )
        sc = model.cfg.sampler
        if sc.keep_area > 0 or sc.keep_unchanged:
            last = model.tokenizer.decode(past[:, s - 1].view(len(past), *model.grid))  # (B', H, W, 3)
            if sc.keep_area > 0:
                pal = torch.tensor(model.cfg.palette)
                seen = snap_to_palette(last, pal, sc.snap_background)
                ctx = replace(ctx, seen=seen, reference=colour_areas(seen, pal))
            if sc.keep_unchanged:
                ctx = replace(ctx, shown=last, last_tokens=past[:, s - 1])
        out = past.clone()
        for i in range(s, t - 1):
            ctx, out[:, i], _ = model.advance(ctx, e[:, i])
    finally:
        model.train(was)
    shown = shown.clone()
    shown[rows] = out
    return shown
