"""The JEPA family (V-JEPA 2-AC / LeWM lineage): predicts in representation space and earns its keep by planning."""

from gedanken.models import register_family
from gedanken.models.jepa.config import (
    AntiCollapse,
    DecoderConfig,
    EncoderConfig,
    EncoderKind,
    JepaConfig,
    PredictorConfig,
    default,
    tiny,
)
from gedanken.models.jepa.model import JepaContext, JepaWorldModel, LatentBatch, Stage, build

register_family("jepa", build)

__all__ = [
    "AntiCollapse",
    "DecoderConfig",
    "EncoderConfig",
    "EncoderKind",
    "JepaConfig",
    "JepaContext",
    "JepaWorldModel",
    "LatentBatch",
    "PredictorConfig",
    "Stage",
    "build",
    "default",
    "tiny",
]
