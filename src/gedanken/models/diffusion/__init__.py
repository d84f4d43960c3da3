"""Diffusion world models (Sora / Cosmos-Predict / DIAMOND lineage): latent DiT with flow matching."""

from __future__ import annotations

from typing import Any

from gedanken.models import config_from_json, register_family
from gedanken.models.diffusion.config import (
    DiffusionConfig,
    DiTConfig,
    FlowConfig,
    SamplerConfig,
    TextEncoderKind,
)
from gedanken.models.diffusion.config import default as default_config
from gedanken.models.diffusion.config import tiny as tiny_config
from gedanken.models.diffusion.model import DiffusionContext, DiffusionWorldModel, LatentBatch


def build(model_config: dict[str, Any]) -> DiffusionWorldModel:
    """Checkpoint builder: config JSON -> a freshly initialised model (weights are loaded by the registry)."""
    return DiffusionWorldModel(config_from_json(DiffusionConfig, model_config))


register_family("diffusion", build)

__all__ = [
    "DiTConfig",
    "DiffusionConfig",
    "DiffusionContext",
    "DiffusionWorldModel",
    "FlowConfig",
    "LatentBatch",
    "SamplerConfig",
    "TextEncoderKind",
    "build",
    "default_config",
    "tiny_config",
]
