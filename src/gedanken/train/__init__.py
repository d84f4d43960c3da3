"""The one trainer shared by every family (progress, checkpoints, exact resume, torchrun DDP)."""

from gedanken.train.trainer import (
    DistInfo,
    Trainable,
    TrainConfig,
    TrainResult,
    dist_info,
    fit,
    make_optimizer,
    resolve_device,
)

__all__ = [
    "DistInfo",
    "TrainConfig",
    "TrainResult",
    "Trainable",
    "dist_info",
    "fit",
    "make_optimizer",
    "resolve_device",
]
