"""The typed batch of training windows that the loader yields and every family's ``loss`` consumes."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass
class Batch:
    """``B`` windows of ``T = context + future`` consecutive steps (alignment as in :mod:`gedanken.data.episode`)."""

    frames: Tensor  # (B, T, H, W, 3) uint8
    actions: Tensor  # (B, T, A) float32
    rewards: Tensor  # (B, T) float32
    terminated: Tensor  # (B, T) bool
    states: Tensor | None = None  # (B, T, K, F) float32, None for external envs
    captions: list[str] | None = None  # one per window (the episode's caption)
    episode: Tensor | None = None  # (B,) int64 episode index in the dataset
    start: Tensor | None = None  # (B,) int64 first step of the window within its episode

    def to(self, device: torch.device | str) -> Batch:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return replace(self, **moved)

    def __len__(self) -> int:
        return int(self.frames.shape[0])
