"""What the diffusion model remembers between steps, and how a sampler copies or narrows it for candidates."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from gedanken.models.heads import HeadOutputs
from gedanken.nn import KV


@dataclass
class DiffusionContext:
    """What the model remembers between steps (treat as opaque; stepping never mutates it in place)."""

    cache: list[KV] | None  # per layer, keys/values of the last W context frames; None before any frame
    t: int  # time index of the next frame
    text: Tensor | None  # (B, E) text embedding, None = null text
    batch: int  # B
    generator: torch.Generator  # noise source of this rollout
    last: HeadOutputs | None = None  # heads on the last context frame
    prev: Tensor | None = None  # (B, C, h, w) latent of the last context frame, as the DiT saw it (noised)
    older: Tensor | None = None  # (B, P, C, h, w) the context frames before prev, nearest first
    base: Tensor | None = None  # (B, C, h, w) the same latent before the context noise (RESIDUAL's base)
    areas: Tensor | None = None  # (B, P - 1) palette colour areas of the last frame (sampler.candidates > 1)
    seen: Tensor | None = None  # (B, H, W, 3) the last frame projected onto the palette (sampler.snap_radius)
    reference: Tensor | None = None  # (B, P - 1) colour areas of the last observed frame (sampler.keep_area)
    sizes: Tensor | None = None  # (B, P - 1) each colour's largest observed area (sampler.verifier)

    def tiled(self, n: int) -> DiffusionContext:
        """The network's inputs repeated ``n`` times along the batch (candidate-major), to sample ``n``
        candidates in one pass (the sampler's own bookkeeping, ``areas`` to ``sizes``, is left as it is)."""

        def rep(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.repeat(n, *([1] * (x.ndim - 1)))

        return self._with(rep, n * self.batch)

    def rows(self, idx: Tensor) -> DiffusionContext:
        """The network's inputs of batch elements ``idx`` (1-D indices) only."""
        return self._with(lambda x: None if x is None else x[idx], len(idx))

    def _with(self, f, batch: int) -> DiffusionContext:  # noqa: ANN001
        cache = None if self.cache is None else [KV(f(kv.k), f(kv.v)) for kv in self.cache]
        return replace(
            self,
            cache=cache,
            text=f(self.text),
            batch=batch,
            prev=f(self.prev),
            older=f(self.older),
            base=f(self.base),
        )
