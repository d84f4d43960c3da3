"""The on-disk checkpoint format: safetensors for tensors, JSON for everything else; never pickle.

A checkpoint is a directory::

    <dir>/checkpoint.json      {"format": "gedanken.checkpoint", "version": 1, "family": ..., "model_config": {...},
                                "card": {...}, "tensors": {name: [shape...]}, "step": int}
    <dir>/model.safetensors    the model's state dict (float tensors, buffers included)
    <dir>/trainer.json         optional, written by the trainer for resume (step, optimizer groups, RNG, ...)
    <dir>/trainer.safetensors  optional, optimizer moments and torch RNG states

Writes are atomic: everything goes to a temporary sibling directory first, which is then renamed into place,
so a crash mid-write never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from gedanken.models.protocol import ModelCard

FORMAT_TAG = "gedanken.checkpoint"
FORMAT_VERSION = 1
META_FILE = "checkpoint.json"
MODEL_FILE = "model.safetensors"
TRAINER_META_FILE = "trainer.json"
TRAINER_FILE = "trainer.safetensors"


class CheckpointError(Exception):
    """A checkpoint is missing, foreign, corrupt, or does not match the model its config describes."""


@dataclass
class CheckpointData:
    """A checkpoint read from disk and checked for format (not yet for agreement with a model)."""

    path: Path
    family: str
    model_config: dict[str, Any]
    card: ModelCard
    tensors: dict[str, Tensor]
    step: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------- dataclass <-> JSON


def config_to_json(cfg: Any) -> Any:
    """A (nested) frozen dataclass -> plain JSON values (tuples become lists, enums their value)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_json(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Enum):
        return cfg.value
    if isinstance(cfg, (list, tuple)):
        return [config_to_json(v) for v in cfg]
    if isinstance(cfg, dict):
        return {str(k): config_to_json(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return config_from_json(tp, value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_coerce(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in typing.get_args(tp):
            if arg is not type(None):
                try:
                    return _coerce(arg, value)
                except (TypeError, ValueError):
                    continue
        return value
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def config_from_json(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) dataclass from :func:`config_to_json` output; unknown keys are an error."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise CheckpointError(
            f"{cls.__name__}: unknown config keys {unknown}; valid keys are {sorted(names)}"
        )
    kwargs = {k: _coerce(hints[k], v) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise CheckpointError(f"{cls.__name__}: cannot build config from checkpoint: {e}") from e


# ----------------------------------------------------------------------------------------------- writing


def atomic_write_dir(path: str | Path, write: typing.Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` and move ``tmp_dir`` to ``path`` (replacing an existing directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        write(tmp)
        _plain_modes(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _plain_modes(folder: Path) -> None:
    """The modes a plain ``mkdir`` / ``open`` would give under the umask (``mkdtemp`` and some writers use 0700 /
    0600, which would hide the weights from other users who can read the JSON)."""
    umask = os.umask(0)
    os.umask(umask)
    for p in [folder, *folder.rglob("*")]:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def _state_tensors(model: nn.Module) -> dict[str, Tensor]:
    # safetensors refuses shared storage; clone makes every tensor its own contiguous block.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def write_model_files(
    directory: Path, model: nn.Module, *, family: str, model_config: Any, card: ModelCard, step: int = 0
) -> None:
    """Write ``checkpoint.json`` + ``model.safetensors`` into an existing directory (not atomic by itself)."""
    tensors = _state_tensors(model)
    meta = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "family": family,
        "model_config": config_to_json(model_config),
        "card": config_to_json(card),
        "step": int(step),
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
    }
    save_file(tensors, str(directory / MODEL_FILE), metadata={"format": FORMAT_TAG})
    (directory / META_FILE).write_text(json.dumps(meta, indent=1))


def save_checkpoint(
    path: str | Path, model: nn.Module, *, family: str, model_config: Any, card: ModelCard, step: int = 0
) -> Path:
    """Save a model (weights + config + card) atomically as a checkpoint directory; returns its path."""
    return atomic_write_dir(
        path,
        lambda d: write_model_files(d, model, family=family, model_config=model_config, card=card, step=step),
    )


# ----------------------------------------------------------------------------------------------- reading


def read_checkpoint(path: str | Path) -> CheckpointData:
    """Read and check a checkpoint directory; raise :class:`CheckpointError` on anything foreign or corrupt."""
    path = Path(path)
    if path.is_file() and path.name in (META_FILE, MODEL_FILE):
        path = path.parent
    meta_path, model_path = path / META_FILE, path / MODEL_FILE
    if not path.is_dir():
        raise CheckpointError(
            f"{path}: not a checkpoint directory (expected {META_FILE} + {MODEL_FILE} inside)"
        )
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: missing {META_FILE}; not a gedanken checkpoint")
    if not model_path.is_file():
        raise CheckpointError(f"{path}: missing {MODEL_FILE}")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{meta_path}: format tag is {got!r}, expected {FORMAT_TAG!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: format version {meta.get('version')!r}, this gedanken reads {FORMAT_VERSION}"
        )
    for key in ("family", "model_config", "card", "tensors"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: missing field {key!r}")
    try:
        tensors = load_file(str(model_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{model_path}: unreadable safetensors file ({e})") from e
    declared = {k: tuple(v) for k, v in meta["tensors"].items()}
    actual = {k: tuple(v.shape) for k, v in tensors.items()}
    if declared != actual:
        raise CheckpointError(
            f"{path}: tensors in {MODEL_FILE} disagree with {META_FILE} ({_diff(declared, actual)})"
        )
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: tensor {k!r} contains NaN or inf")
    try:
        card = config_from_json(ModelCard, meta["card"])
    except CheckpointError as e:
        raise CheckpointError(f"{meta_path}: bad model card: {e}") from e
    return CheckpointData(
        path=path,
        family=str(meta["family"]),
        model_config=dict(meta["model_config"]),
        card=card,
        tensors=tensors,
        step=int(meta.get("step", 0)),
        meta=meta,
    )


def _diff(expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> str:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    shaped = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    parts = []
    if missing:
        parts.append(f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}")
    if extra:
        parts.append(f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")
    if shaped:
        parts.append(
            "mis-shaped " + ", ".join(f"{k}: expected {expected[k]}, got {got[k]}" for k in shaped[:5])
        )
    return "; ".join(parts) or "no difference"


def load_weights_strict(model: nn.Module, tensors: dict[str, Tensor], *, where: str = "checkpoint") -> None:
    """Load ``tensors`` into ``model`` only if names and shapes match exactly; otherwise raise, touching nothing."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        raise CheckpointError(
            f"{where}: weights do not fit the model its config builds ({_diff(expected, got)})"
        )
    model.load_state_dict(tensors, strict=True)
