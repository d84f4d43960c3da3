"""World-model families and the checkpoint registry that loads any of them by the ``family`` field of its JSON.

A family registers a *builder*: a function from the checkpoint's ``model_config`` JSON to a freshly built
``nn.Module`` that speaks :class:`~gedanken.models.protocol.WorldModel`. :func:`load_checkpoint` reads and checks
the checkpoint, builds the model, checks every tensor name and shape against it and only then loads the weights,
so a foreign or corrupt checkpoint raises :class:`CheckpointError` and never yields a half-loaded model.

Families not yet registered are imported on demand (``gedanken.models.<family>``), which registers them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gedanken.models.checkpoint import (
    CheckpointData,
    CheckpointError,
    config_from_json,
    config_to_json,
    load_weights_strict,
    read_checkpoint,
    save_checkpoint,
)
from gedanken.models.protocol import ModelCard, Prediction, Rollout, WorldModel

log = logging.getLogger(__name__)

FamilyBuilder = Callable[[dict[str, Any]], nn.Module]
_FAMILIES: dict[str, FamilyBuilder] = {}

CHECKPOINT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"

__all__ = [
    "CHECKPOINT_ROOT",
    "CheckpointData",
    "CheckpointError",
    "FamilyBuilder",
    "ModelCard",
    "Prediction",
    "Rollout",
    "WorldModel",
    "config_from_json",
    "config_to_json",
    "families",
    "load_checkpoint",
    "load_initial",
    "read_checkpoint",
    "register_family",
    "save_checkpoint",
    "shipped_checkpoint",
]


def register_family(name: str, build: FamilyBuilder) -> None:
    """Register ``build(model_config_json) -> nn.Module`` for checkpoints whose ``family`` is ``name``."""
    if not name or not name.isidentifier():
        raise ValueError(f"family name must be a Python identifier, got {name!r}")
    _FAMILIES[name] = build


BUILTIN_FAMILIES = (
    "autoregressive",
    "diffusion",
    "jepa",
)  # packages under gedanken.models, imported on demand


def families() -> list[str]:
    """Names of the built-in families and of any registered since."""
    return sorted(set(_FAMILIES) | set(BUILTIN_FAMILIES))


def _builder(family: str, where: str) -> FamilyBuilder:
    if family not in _FAMILIES:
        if not family.isidentifier():
            raise CheckpointError(f"{where}: unknown model family {family!r}; known: {', '.join(families())}")
        try:
            importlib.import_module(f"gedanken.models.{family}")
        except ModuleNotFoundError as e:
            raise CheckpointError(
                f"{where}: unknown model family {family!r}; known: {', '.join(families())}"
            ) from e
    if family not in _FAMILIES:
        raise CheckpointError(f"{where}: model family {family!r} did not register a builder")
    return _FAMILIES[family]


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> WorldModel:
    """Load any registered family's checkpoint directory into an eval-mode model on ``device``."""
    data = read_checkpoint(path)
    build = _builder(data.family, str(data.path))
    try:
        model = build(data.model_config)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{data.path}: cannot build a {data.family!r} model from its config: {e}"
        ) from e
    load_weights_strict(model, data.tensors, where=str(data.path))
    model.card = data.card  # type: ignore[assignment]
    if not getattr(model, "name", ""):
        model.name = data.card.name  # type: ignore[assignment]
    model.to(device).eval()
    log.debug("loaded %s checkpoint %s (%d tensors)", data.family, data.path, len(data.tensors))
    return model  # type: ignore[return-value]


_DATA_KEYS = ("height", "width", "action_dim", "action_classes", "world")


def load_initial(init: str | Path, kind: type[Any], cfg: Any) -> Any:
    """The checkpoint at ``init`` to train on (``--init``): a ``kind`` model whose frame size, action space and
    world match ``cfg`` (a config fitted to the data); ``ValueError`` naming the difference otherwise."""
    model = load_checkpoint(init)
    if not isinstance(model, kind):
        raise ValueError(f"--init {init}: {type(model).__name__} checkpoint, this run trains {kind.__name__}")
    have, want = (tuple(getattr(c, k) for k in _DATA_KEYS) for c in (model.cfg, cfg))
    if have != want:
        raise ValueError(
            f"--init {init}: checkpoint ({', '.join(_DATA_KEYS)}) = {have}, but the data gives {want}"
        )
    return model


def source_name(init: str | Path) -> str:
    """A shipped checkpoint by its name, any other by its path (for the model card of a run trained on it)."""
    p = Path(init).resolve()
    return p.name if p.parent == CHECKPOINT_ROOT.resolve() else str(init)


def shipped_checkpoint(family: str, world: str) -> Path:
    """Path of the default checkpoint that ships in the package for ``family`` on ``world``."""
    path = CHECKPOINT_ROOT / f"{family}_{world}"
    if not path.is_dir():
        avail = sorted(p.name for p in CHECKPOINT_ROOT.iterdir()) if CHECKPOINT_ROOT.is_dir() else []
        raise CheckpointError(f"no shipped checkpoint {path.name!r}; available: {avail}")
    return path
