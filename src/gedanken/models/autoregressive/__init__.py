"""The autoregressive family (Genie lineage): FSQ tokens, a latent action model, MaskGIT dynamics.

Registered as family ``"autoregressive"`` for :func:`gedanken.models.load_checkpoint`.
"""

from __future__ import annotations

from typing import Any

from gedanken.models import config_from_json, register_family
from gedanken.models.autoregressive.config import ActionMode, AutoregressiveConfig, Stage, default, tiny
from gedanken.models.autoregressive.model import ARContext, AutoregressiveWorldModel, TokenBatch

__all__ = [
    "ARContext",
    "ActionMode",
    "AutoregressiveConfig",
    "AutoregressiveWorldModel",
    "Stage",
    "TokenBatch",
    "build",
    "default",
    "tiny",
]


def build(model_config: dict[str, Any]) -> AutoregressiveWorldModel:
    """Rebuild a model from the ``model_config`` JSON of its checkpoint."""
    return AutoregressiveWorldModel(config_from_json(AutoregressiveConfig, model_config))


register_family("autoregressive", build)
