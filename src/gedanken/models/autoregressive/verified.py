"""The solidity verifier (:mod:`gedanken.models.verifier`) for the autoregressive family.

A frame is decoded once as the sampler says (greedy in the shipped checkpoints). Where the frame shown breaks
solidity by more than ``sampler.verifier_tolerance`` px, the same step is decoded ``candidates - 1`` more times for
that batch element only, at ``sampler.verifier_temperature`` (a greedy decoding would repeat itself), from the same
cached past, and the least penetrating of all of them is kept (penalties compared in ``TIE_PX`` steps; within the
lowest, the first decoding). The cache, the action embedding and the last shown frame are narrowed to those batch
elements and repeated once per candidate, so the candidates are decoded side by side in one batch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gedanken.models.autoregressive.dynamics import DynamicsCache
from gedanken.models.autoregressive.maskgit import MaskGITSampler
from gedanken.models.verifier import least_penetrating, sampler_penalty
from gedanken.nn import KV

if TYPE_CHECKING:
    from gedanken.models.autoregressive.model import ARContext, AutoregressiveWorldModel


def cache_rows(cache: DynamicsCache, rows: Tensor, tokens: int) -> DynamicsCache:
    """The cache of batch elements ``rows`` (1-D, repeats allowed); its tensors hold ``tokens`` rows per element."""

    def take(x: Tensor) -> Tensor:
        return x.view(-1, tokens, *x.shape[1:])[rows].flatten(0, 1)

    layers = [None if kv is None else KV(take(kv.k), take(kv.v)) for kv in cache.layers]
    return DynamicsCache(layers=layers, t=cache.t)


def verified_frame(
    model: AutoregressiveWorldModel, ctx: ARContext, emb: Tensor, tokens: Tensor, frame: Tensor
) -> tuple[Tensor, Tensor]:
    """``tokens`` (B, N) and ``frame`` (B, H, W, 3), with every frame the verifier rejects replaced by the least
    penetrating of ``candidates`` decodings."""
    sc = model.cfg.sampler
    assert ctx.sizes is not None
    first = sampler_penalty(frame, model.cfg.palette, ctx.sizes, sc)
    bad = torch.nonzero(first > sc.verifier_tolerance).flatten()
    if not len(bad):
        return tokens, frame
    m, n = sc.candidates - 1, tokens.shape[1]
    rows = bad.repeat(m)  # candidate-major
    sub = replace(
        ctx,
        cache=cache_rows(ctx.cache, rows, n),
        batch=len(rows),
        shown=None if ctx.shown is None else ctx.shown[rows],
        last_tokens=None if ctx.last_tokens is None else ctx.last_tokens[rows],
    )
    sampler = MaskGITSampler(replace(sc, temperature=sc.verifier_temperature))
    more_tokens, more_frame = model.decode_frame(sub, emb[rows], sampler)
    more = sampler_penalty(more_frame, model.cfg.palette, ctx.sizes[rows], sc)
    pen = torch.cat([first[bad], more]).view(m + 1, len(bad))
    pick = least_penetrating(pen)  # first on ties: the sampler's own decoding
    chosen = pick * len(bad) + torch.arange(len(bad), device=pick.device)
    tokens, frame = tokens.clone(), frame.clone()
    tokens[bad] = torch.cat([tokens[bad], more_tokens])[chosen]
    frame[bad] = torch.cat([frame[bad], more_frame])[chosen]
    return tokens, frame
