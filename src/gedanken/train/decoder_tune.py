"""Decoder fine-tuning on a world model's own one-step predictions: the parts both families share.

A tokenizer's decoder is trained on what its encoder makes of true frames. A world model's predicted latents
(a DiT's continuous latents, a MaskGIT dynamics' tokens) are close to those but not on them, and the decoder
draws them as it never learned to: dim, blurred or doubled objects, which the audit's judge then miscounts. The
fix both families use keeps the encoder and the dynamics fixed and trains the decoder on pairs (the model's
prediction of a frame from the true frames before it, the true frame), recorded once on training episodes.

Here: the stage's config, the pairs, how they are recorded (:func:`predicted_pairs`, any model with the
protocol's ``observe`` / ``step``) and the trainer's batch source. Each family's loss and stage live beside its
tokenizer (``models/diffusion/decoder.py``, ``models/autoregressive/decoder.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gedanken.models.protocol import WorldModel
from gedanken.train.trainer import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecoderTuneConfig:
    """What the decoder stage trains on; its steps, batch size and learning rate are a ``TrainConfig``."""

    episodes: int = 256  # training episodes whose one-step predictions make the pairs
    stride: int = 2  # predict every stride-th frame of each episode
    context: int = 4  # true frames each prediction observes
    foreground_weight: float = 4.0  # extra loss weight on the true frame's object pixels
    mix: float = 0.5  # share of the loss on predicted latents; the rest reconstructs true frames
    display: bool = False  # train a separate display decoder instead of the tokenizer's (context untouched)
    edge_weight: float = 0.0  # further weight on object pixels within edge_band px of the frame's border
    edge_band: int = 8  # how far from the border edge_weight reaches (pixels)

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.stride < 1 or self.context < 1:
            raise ValueError(
                f"episodes, stride and context must be >= 1, got {self.episodes}, {self.stride}, {self.context}"
            )
        if self.foreground_weight < 0 or not 0.0 < self.mix <= 1.0:
            raise ValueError(
                f"foreground_weight must be >= 0 and mix in (0, 1], got {self.foreground_weight}, {self.mix}"
            )
        if self.edge_weight < 0 or self.edge_band < 1:
            raise ValueError(
                f"edge_weight must be >= 0 and edge_band >= 1, got {self.edge_weight}, {self.edge_band}"
            )

    def pixel_weight(self, foreground: Tensor) -> Tensor:
        """Loss weight per pixel from the true frame's ``(..., 1, H, W)`` object mask: ``1 + foreground_weight``
        on objects, ``edge_weight`` more on objects near the border. At a wall the judge places an object by its far
        side (a cut blob's centroid lies too far inside), so a far-side row drawn faint reads as a whole unit into
        the wall; the edge weight asks the decoder to draw those objects to their full extent."""
        w = 1.0 + self.foreground_weight * foreground
        if self.edge_weight > 0:
            h, wd = foreground.shape[-2:]
            rows = torch.arange(h, device=foreground.device)
            cols = torch.arange(wd, device=foreground.device)
            near_r = (rows < self.edge_band) | (rows >= h - self.edge_band)
            near_c = (cols < self.edge_band) | (cols >= wd - self.edge_band)
            near = (near_r[:, None] | near_c[None, :]).to(foreground.dtype)
            w = w + self.edge_weight * foreground * near
        return w


def decoder_train_config(steps: int, lr: float, threads: int = 0, progress: bool = True) -> TrainConfig:
    """A decoder stage's optimisation: ``steps`` of 32 pairs, warmup then cosine decay from ``lr``, no weight
    decay."""
    return TrainConfig(
        steps=steps,
        batch_size=32,
        lr=lr,
        warmup=min(50, max(1, steps // 10)),
        weight_decay=0.0,
        log_every=max(1, min(100, steps // 5)),
        ckpt_every=500,
        num_threads=threads,
        progress=progress,
    )


@dataclass
class LatentPairs:
    """A batch of predicted latents (N, ...), the true frames (N, H, W, 3) uint8 and the encoder's latents of
    those frames (N, ...): continuous latents normalised as the tokenizer's ``encode`` gives them, or token
    grids."""

    latents: Tensor
    frames: Tensor
    truth: Tensor

    def to(self, device: torch.device | str) -> LatentPairs:
        return LatentPairs(self.latents.to(device), self.frames.to(device), self.truth.to(device))

    def __len__(self) -> int:
        return len(self.latents)


@torch.no_grad()
def predicted_pairs(
    model: WorldModel,
    frames: list[Tensor],
    actions: list[Tensor],
    cfg: DecoderTuneConfig,
    encode: Callable[[Tensor], Tensor],
    batch: int = 32,
) -> LatentPairs:
    """The model's one-step predictions (``Prediction.latent``) of frames ``context, context + stride, ...`` of
    each episode (frames (T, H, W, 3) uint8, actions (T, A), action ``j - 1`` leading to frame ``j``) from the
    true frames before them, with the true frames and ``encode`` of them ((B, H, W, 3) uint8 -> latents, run
    once here, not at every training step). Episodes shorter than ``context + 1`` frames are skipped."""
    eps = [i for i, f in enumerate(frames) if len(f) > cfg.context]
    if not eps:
        raise ValueError(f"no episode has the {cfg.context + 1} frames a one-step prediction needs")
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    zs, xs, ts = [], [], []
    t0 = time.perf_counter()
    by_len: dict[int, list[int]] = {}
    for i in eps:
        by_len.setdefault(len(frames[i]), []).append(i)
    done = 0
    for length, group in by_len.items():
        for s in range(0, len(group), batch):
            ids = group[s : s + batch]
            fr = torch.stack([frames[i] for i in ids])
            ac = torch.stack([actions[i] for i in ids]).float()
            for j in range(cfg.context, length, cfg.stride):
                lo = j - cfg.context
                ctx = model.observe(fr[:, lo:j], ac[:, lo : j - 1] if j - 1 > lo else None)
                _, p = model.step(ctx, ac[:, j - 1])
                if p.latent is None:
                    raise ValueError(f"{type(model).__name__}.step returns no latent to decode")
                zs.append(p.latent.cpu())
                xs.append(fr[:, j])
                ts.append(encode(fr[:, j]).cpu())
            done += len(ids)
            log.info("decoder pairs: %d / %d episodes (%.0f s)", done, len(eps), time.perf_counter() - t0)
    model.train(was_training)  # type: ignore[attr-defined]
    return LatentPairs(torch.cat(zs), torch.cat(xs), torch.cat(ts))


def pair_batches(pairs: LatentPairs, size: int, seed: int) -> Callable[[int], Iterator[LatentPairs]]:
    """Batch source of random pairs (the trainer's ``source(start_step)``; same batches on resume)."""

    def source(start: int) -> Iterator[LatentPairs]:
        step = start
        while True:
            idx = torch.from_numpy(np.random.default_rng([seed, step, 2]).integers(len(pairs), size=size))
            yield LatentPairs(pairs.latents[idx], pairs.frames[idx], pairs.truth[idx])
            step += 1

    return source


__all__ = ["DecoderTuneConfig", "LatentPairs", "decoder_train_config", "pair_batches", "predicted_pairs"]
