"""The diffusion recipe's data: a recorded dataset in memory, the model config fitted to it, and the batch
sources both training stages draw from (single frames for the tokenizer, latent windows for the DiT, each with
its loss weights and, with breach forcing, the context the DiT sees)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from gedanken.data.batch import Batch
from gedanken.data.combine import read_episodes
from gedanken.data.windows import draw_windows, long_enough
from gedanken.models.breach import ContextFn
from gedanken.models.diffusion.config import DiffusionConfig
from gedanken.models.diffusion.model import LatentBatch
from gedanken.models.object_weights import (
    contact_object_weights,
    edge_object_weights,
    small_object_weights,
)
from gedanken.worlds.palette import flat_palette


@dataclass
class DiffusionData:
    """A recorded dataset in memory, one entry per episode."""

    frames: list[torch.Tensor]  # per episode (T, H, W, 3) uint8
    actions: list[torch.Tensor]  # (T, A)
    rewards: list[torch.Tensor]
    terminated: list[torch.Tensor]
    states: list[torch.Tensor] | None
    captions: list[str]
    world: str
    action_dim: int
    action_classes: int
    palette: tuple[tuple[int, int, int], ...]  # the world's colours (empty for external data)
    # per episode, per state slot (built-in worlds; a Bounce episode fills 1-6 slots)
    shapes: list[tuple[str, ...]] = field(default_factory=list)
    kinds: list[tuple[str, ...]] = field(default_factory=list)


def load_data(path: str | Path, *more: str | Path) -> DiffusionData:
    """A dataset in memory; the episodes of ``more`` datasets (same world, frame size, action space and
    state slots, see :func:`gedanken.data.combine.read_episodes`) follow ``path``'s."""
    eps = read_episodes(path, more)
    spec = eps[0].meta.action_space
    has_states = all(e.states is not None for e in eps)
    return DiffusionData(
        frames=[torch.from_numpy(e.frames) for e in eps],
        actions=[torch.from_numpy(e.actions) for e in eps],
        rewards=[torch.from_numpy(e.rewards) for e in eps],
        terminated=[torch.from_numpy(e.terminated) for e in eps],
        states=[torch.from_numpy(e.states) for e in eps] if has_states else None,  # type: ignore[arg-type]
        captions=[e.caption for e in eps],
        world=eps[0].meta.world,
        action_dim=max(spec.dim, 1),
        action_classes=spec.n if spec.kind == "discrete" else 0,
        palette=eps[0].meta.palette,
        shapes=[e.meta.shapes for e in eps],
        kinds=[e.meta.kinds for e in eps],
    )


def data_palette(data: DiffusionData) -> tuple[tuple[int, int, int], ...]:
    """The world's declared colours, or for external data the flat palette of about 256 of its frames."""
    if data.palette:
        return data.palette
    eps = data.frames[:: max(1, len(data.frames) // 64)]
    return flat_palette(torch.cat([f[:: max(1, len(f) // 4)] for f in eps]).numpy())


def fit_config_to_data(cfg: DiffusionConfig, data: DiffusionData) -> DiffusionConfig:
    h, w = data.frames[0].shape[1:3]
    slots = data.states[0].shape[1] if data.states is not None else 0
    return replace(
        cfg,
        height=int(h),
        width=int(w),
        action_dim=data.action_dim,
        action_classes=data.action_classes,
        heads=replace(cfg.heads, slots=slots) if cfg.heads.slots == 0 else cfg.heads,
        world=data.world,
        palette=data_palette(data),
    )


def split_episodes(n: int, holdout: float) -> tuple[list[int], list[int]]:
    k = max(1, int(round(n * holdout))) if n > 1 else 0
    return list(range(n - k)), list(range(n - k, n)) or list(range(n))


def frame_batches(data: DiffusionData, idx: list[int], size: int, seed: int):
    def source(start: int) -> Iterator[Batch]:
        step = start
        while True:
            rng = np.random.default_rng([seed, step])
            eps = rng.choice(idx, size=size)
            frames = torch.stack([data.frames[e][rng.integers(len(data.frames[e]))] for e in eps])
            frames = frames[:, None]  # (B, 1, H, W, 3)
            z = torch.zeros(size, 1)
            yield Batch(frames=frames, actions=z[..., None], rewards=z, terminated=z.bool())
            step += 1

    return source


def window_batches(
    lat: list[torch.Tensor],
    data: DiffusionData,
    text: list[torch.Tensor | None],
    idx: list[int],
    size: int,
    window: int,
    seed: int,
    weight_of: Callable[[int], torch.Tensor] | None = None,
    context_of: ContextFn | None = None,
):
    """Batch source of random ``window``-step latent windows; ``weight_of(episode)`` gives its per-frame loss
    weights (FlowConfig.size_weight, edge_weight, contact_weight), ``context_of`` the context the DiT sees
    instead of the latents (FlowConfig.breach_forcing)."""
    lengths = [len(x) for x in lat]
    idx = long_enough(lengths, idx, window, "steps a training window")

    def source(start: int) -> Iterator[LatentBatch]:
        step = start
        while True:
            pairs = draw_windows(np.random.default_rng([seed, step, 1]), idx, lengths, size, window)

            def cut(arrs: list[torch.Tensor], pairs: list = pairs) -> torch.Tensor:
                return torch.stack([arrs[e][s : s + window] for e, s in pairs])

            tx = [text[e] for e, _ in pairs]
            latents = cut(lat)
            yield LatentBatch(
                latents=latents,
                actions=cut(data.actions),
                rewards=cut(data.rewards),
                terminated=cut(data.terminated),
                states=cut(data.states) if data.states is not None else None,
                text=torch.stack(tx) if all(t is not None for t in tx) else None,  # type: ignore[arg-type]
                weights=None
                if weight_of is None
                else torch.stack([weight_of(e)[s : s + window] for e, s in pairs]),
                context=None if context_of is None else context_of(pairs, latents, step),
            )
            step += 1

    return source


def object_weights(
    cfg: DiffusionConfig, data: DiffusionData, cell: int
) -> Callable[[int], torch.Tensor] | None:
    """Per-episode object loss weights (latent cells of ``cell`` px: small objects, ``flow.size_weight``; objects
    at the border, ``flow.edge_weight``; objects in contact, ``flow.contact_weight``; the largest), computed when
    an episode is first drawn; None when all are off."""
    flow = cfg.flow
    if flow.size_weight <= 1 and flow.edge_weight <= 1 and flow.contact_weight <= 1:
        return None
    if not cfg.palette:
        raise ValueError(
            "flow.size_weight, edge_weight and contact_weight read objects as palette colours; this data is not "
            "flat-coloured"
        )
    cache: dict[int, torch.Tensor] = {}

    def weight_of(e: int) -> torch.Tensor:
        if e not in cache:
            w = torch.ones(())
            if flow.size_weight > 1:
                w = small_object_weights(
                    data.frames[e], cfg.palette, flow.size_reference, flow.size_weight, cell
                )
            if flow.edge_weight > 1:
                edge = edge_object_weights(
                    data.frames[e], cfg.palette, flow.edge_band, flow.edge_weight, cell
                )
                w = torch.maximum(w, edge)
            if flow.contact_weight > 1:
                touch = contact_object_weights(
                    data.frames[e], cfg.palette, flow.contact_band, flow.contact_weight, cell
                )
                w = torch.maximum(w, touch)
            cache[e] = w
        return cache[e]

    return weight_of
