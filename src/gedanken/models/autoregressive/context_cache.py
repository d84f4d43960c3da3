"""The dynamics' projected context (``AutoregressiveRecipe.projected_context``), cached on disk by content.

Projecting the context of 2400 Push episodes takes 4-14 minutes on 2 cores, before the first dynamics step, and
every ``--init`` run of the same tokenizer on the same data used to redo it. The projection depends only on the
tokenizer's weights, the sampler's projection settings (palette, ``keep_area``, ``snap_radius``,
``snap_background``) and the frames, so its tokens are stored under a SHA-256 of exactly those, as safetensors
(never a pickle) in ``$GEDANKEN_CACHE/projected_context/`` (default ``~/.cache/gedanken``). A file that is
missing, truncated or of the wrong shapes is recomputed and rewritten; one that cannot be written only costs
the time it would have saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from rich.progress import track
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    from gedanken.models.autoregressive.model import AutoregressiveWorldModel

log = logging.getLogger(__name__)

CACHE_ENV = "GEDANKEN_CACHE"  # cache root; the projected context goes in its "projected_context" folder
_FORMAT = "gedanken.projected_context/1"


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gedanken"
    return Path(root) / "projected_context"


def cache_key(model: AutoregressiveWorldModel, frames: list[torch.Tensor]) -> str:
    """SHA-256 (hex) of everything the projected tokens depend on: tokenizer weights, projection settings,
    frames (shapes and bytes, in order)."""
    sc = model.cfg.sampler
    h = hashlib.sha256()
    settings = {
        "format": _FORMAT,
        "keep_area": sc.keep_area,
        "snap_radius": sc.snap_radius,
        "snap_background": sc.snap_background,
        "palette": [list(c) for c in model.cfg.palette],
        "grid": list(model.grid),
    }
    h.update(json.dumps(settings, sort_keys=True).encode())
    for name, value in sorted(model.tokenizer.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    for f in frames:
        h.update(repr(tuple(f.shape)).encode())
        h.update(f.contiguous().numpy().tobytes())
    return h.hexdigest()


def _read(path: Path, tokens: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """The cached tokens if ``path`` holds one tensor per episode of the expected shapes, else None."""
    if not path.is_file():
        return None
    try:
        stored = load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        log.warning("projected-context cache %s unreadable (%s): recomputing", path, err)
        return None
    shown = [stored.get(f"episode_{i}") for i in range(len(tokens))]
    if len(stored) != len(tokens) or any(
        s is None or s.shape != t.shape for s, t in zip(shown, tokens, strict=True)
    ):
        log.warning("projected-context cache %s does not match this data: recomputing", path)
        return None
    return [s.to(t.dtype) for s, t in zip(shown, tokens, strict=True)]  # type: ignore[union-attr]


def _write(path: Path, shown: list[torch.Tensor], key: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {f"episode_{i}": s.to(torch.int32).contiguous() for i, s in enumerate(shown)}, tmp, {"key": key}
        )
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    except OSError as err:
        tmp.unlink(missing_ok=True)
        log.warning("could not write the projected-context cache %s (%s)", path, err)


def projected_context(
    model: AutoregressiveWorldModel,
    frames: list[torch.Tensor],
    tokens: list[torch.Tensor],
    progress: bool = True,
) -> tuple[list[torch.Tensor], bool]:
    """Tokens ``(T, N)`` of :meth:`AutoregressiveWorldModel.projected_tokens` for each episode, and whether
    they came from the cache."""
    path = cache_dir() / f"{cache_key(model, frames)}.safetensors"
    if (cached := _read(path, tokens)) is not None:
        log.info("projected context: %d episodes from the cache %s", len(cached), path)
        return cached, True
    shown = [
        model.projected_tokens(f, t).cpu()
        for f, t in track(
            list(zip(frames, tokens, strict=True)), description="projecting the context", disable=not progress
        )
    ]
    _write(path, shown, path.stem)
    return shown, False
