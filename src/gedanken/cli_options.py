"""Checks shared by the ``gedanken`` sub-commands, run by typer as option callbacks: a bad ``--device`` or an
``--out`` that cannot be written is refused before any data is loaded, recorded or trained on."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer


def device_option(value: str) -> str:
    """``--device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, refused when this machine cannot run it."""
    from gedanken.train.trainer import resolve_device

    try:
        resolve_device(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return value


def _writable(folder: Path) -> bool:
    """Whether a file can be made in ``folder``: tried, since ``os.access`` says yes to root on read-only or
    virtual file systems (``/proc``)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _creatable(path: Path) -> Path:
    """``path`` if it can be created or written into (its nearest existing folder, itself included when it is
    one, takes a new file), else a usage error."""
    parent = path if path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise typer.BadParameter(f"cannot write {path}: {parent} is a file, not a folder")
    if not _writable(parent):
        raise typer.BadParameter(f"cannot write {path}: {parent} is not writable")
    return path


def _checked(check: Callable[[Path], Path], value: Path) -> Path:
    """``check(value)``, with what the OS says of a path it cannot even look at (a name too long, a loop of
    links) turned into a usage error."""
    try:
        return check(value)
    except OSError as e:
        raise typer.BadParameter(f"cannot write {value}: {e.strerror or e}") from None


def _folder(value: Path) -> Path:
    if value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} is a file; --out names a folder")
    return _creatable(value)


def _mp4(value: Path) -> Path:
    if value.is_dir():
        raise typer.BadParameter(f"{value} is a folder; --out names an .mp4 file, e.g. {value / 'clip.mp4'}")
    if value.suffix.lower() != ".mp4":
        raise typer.BadParameter(f"{value}: --out writes an MP4 video, so its name must end in .mp4")
    return _creatable(value)


def out_dir_option(value: Path | None) -> Path | None:
    """``--out`` naming a folder: refused when it is a file or cannot be created."""
    return None if value is None else _checked(_folder, value)


def out_file_option(value: Path | None) -> Path | None:
    """``--out`` naming an ``.mp4`` file: refused when it is a folder, has another suffix, or cannot be created."""
    return None if value is None else _checked(_mp4, value)


def run_dir_option(family: str) -> Any:  # noqa: ANN401 (typer's OptionInfo)
    """The ``--out`` option of ``train <family>``: a run folder, checked as it is parsed."""
    return typer.Option(
        None,
        callback=out_dir_option,
        help=f"Run directory (default: runs/{family}_<world>, the world the data was recorded from).",
    )


def _threads(value: int) -> int:
    if value:
        import torch

        torch.set_num_threads(value)
    return value


def threads_option() -> Any:  # noqa: ANN401 (typer's OptionInfo)
    """``--threads``: torch's threads in this process, set as the option is parsed (0 keeps torch's default)."""
    return typer.Option(
        0,
        "--threads",
        min=0,
        callback=_threads,
        help="torch threads in this process (0: torch's default, every core). Set 1 when other jobs share the cores.",
    )


MODEL_FILES = frozenset({"checkpoint.json", "model.safetensors"})  # what an exported model folder holds
MAX_CANDIDATES = 64  # --verify: samples a frame may take


def _export_dir(value: Path | None) -> Path | None:
    """``--export``: a folder that does not exist, is empty, or holds a model export and nothing else (the one
    thing ``--export`` replaces); anything else is refused before training, never deleted after it."""
    if value is None:
        return None
    if value.is_dir():
        held = {p.name for p in value.iterdir()}
        if held and not held <= MODEL_FILES:
            raise typer.BadParameter(
                f"{value} holds other files ({', '.join(sorted(held - MODEL_FILES)[:3])}); --export replaces only "
                "a model folder (checkpoint.json + model.safetensors): give a new or empty folder"
            )
    return out_dir_option(value)


def export_option() -> Any:  # noqa: ANN401 (typer's OptionInfo)
    """The ``--export`` option of ``train <family>``: where the finished model is copied, checked as it is parsed."""
    return typer.Option(
        None,
        callback=_export_dir,
        help="Also copy the final model (no trainer state) here: a new or empty folder, or an earlier export.",
    )


def breach_forcing_option(windows: str) -> Any:  # noqa: ANN401 (typer's OptionInfo)
    """``--breach-forcing``, shared by the families that train on it (models/breach.py); ``windows`` names what
    is redrawn (e.g. "DiT windows whose context")."""
    return typer.Option(
        0.0,
        help=f"Share of {windows} is redrawn from the recorded states with objects at a contact pressed into "
        "the wall or object they touch, so the model learns to push a drifted object back out (0 = off; "
        "built-in worlds' recordings).",
    )


def contact_weight_option(cells: str) -> Any:  # noqa: ANN401 (typer's OptionInfo)
    """``--contact-weight``, shared by the families that weigh objects in contact (models/object_weights.py);
    ``cells`` names what is weighed (e.g. "Dynamics loss weight (a multiplier) on the tokens")."""
    return typer.Option(
        1.0,
        min=1.0,
        help=f"{cells} covering an object within 3 px of another object, so that colliding objects bounce "
        "rather than overlap (1 = off; flat-coloured data only).",
    )


def breach_px_option() -> Any:  # noqa: ANN401 (typer's OptionInfo)
    """``--breach-px``: how deep breach forcing presses."""
    return typer.Option(
        1.5, help="With --breach-forcing: the deepest an object is pressed in (world units; px at 64x64)."
    )


def breach_walls_only_option() -> Any:  # noqa: ANN401 (typer's OptionInfo)
    """``--breach-walls-only``."""
    return typer.Option(
        False,
        "--breach-walls-only",
        help="With --breach-forcing: press objects into the walls only, never into each other (Bounce: balls "
        "pressed together are drawn as one blob).",
    )
