"""What the dynamics trains on, cached on disk by content: the episodes' tokens and latent actions, and their
projected context (``AutoregressiveRecipe.projected_context``).

Encoding episodes (tokenizer and LAM) took 20-25 minutes for 2400 Bounce episodes with three runs sharing 2 cores
(about 12 s per 200 episodes alone), and every ``--init`` run of the same model on the same data used to redo it. The tokens and latent actions depend only on the tokenizer's
and the LAM's weights and the frames, so they are stored under a SHA-256 of exactly those, in
``$GEDANKEN_CACHE/encoded/``; the projection below is cached the same way.

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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    from gedanken.models.autoregressive.model import AutoregressiveWorldModel

log = logging.getLogger(__name__)

CACHE_ENV = "GEDANKEN_CACHE"  # cache root; the projected context goes in its "projected_context" folder
_FORMAT = "gedanken.projected_context/1"


_ENCODED_FORMAT = "gedanken.encoded/1"


def cache_dir(kind: str = "projected_context") -> Path:
    """Where the cache files of ``kind`` (``projected_context`` or ``encoded``) live."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gedanken"
    return Path(root) / kind


def _hash_weights(h: hashlib._Hash, module: torch.nn.Module) -> None:  # type: ignore[name-defined]
    for name, value in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())


def _hash_frames(h: hashlib._Hash, frames: list[torch.Tensor]) -> None:  # type: ignore[name-defined]
    for f in frames:
        h.update(repr(tuple(f.shape)).encode())
        h.update(f.contiguous().numpy().tobytes())


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
    _hash_weights(h, model.tokenizer)
    _hash_frames(h, frames)
    return h.hexdigest()


def encoded_key(model: AutoregressiveWorldModel, frames: list[torch.Tensor]) -> str:
    """SHA-256 (hex) of everything the tokens and latent actions depend on: tokenizer and LAM weights, frames."""
    h = hashlib.sha256(_ENCODED_FORMAT.encode())
    _hash_weights(h, model.tokenizer)
    _hash_weights(h, model.lam)
    _hash_frames(h, frames)
    return h.hexdigest()


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the stored values (names, shapes and int32 bytes, in name order): a flipped bit is caught."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k].to(torch.int32).contiguous()
        h.update(f"{k}{tuple(v.shape)}".encode())
        h.update(v.numpy().tobytes())
    return h.hexdigest()


def _load(path: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor] | None:
    """The cached tensors if ``path`` holds exactly ``shapes`` (name -> shape) and its values match the checksum
    written with them, as int64, else None."""
    if not path.is_file():
        return None
    try:
        with safe_open(path, "pt") as f:
            digest = (f.metadata() or {}).get("sha256")
        stored = load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        log.warning("cache %s unreadable (%s): recomputing", path, err)
        return None
    if set(stored) != set(shapes) or any(tuple(stored[k].shape) != s for k, s in shapes.items()):
        log.warning("cache %s does not match this data: recomputing", path)
        return None
    if digest is None:
        log.warning("cache %s has no checksum (an older version wrote it): recomputing", path)
        return None
    if digest != _digest(stored):
        log.warning("cache %s is damaged (its values do not match their checksum): recomputing", path)
        return None
    return {k: v.to(torch.int64) for k, v in stored.items()}


def _save(path: Path, tensors: dict[str, torch.Tensor], key: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"key": key, "sha256": _digest(tensors)}
        save_file({k: v.to(torch.int32).contiguous() for k, v in tensors.items()}, tmp, meta)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # e.g. the cache root is a file: there is no temporary file to remove
            pass
        log.warning("could not write the cache %s (%s)", path, err)


def _read(path: Path, tokens: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """The cached projected tokens if ``path`` holds one tensor per episode of the tokens' shapes, else None."""
    got = _load(path, {f"episode_{i}": tuple(t.shape) for i, t in enumerate(tokens)})
    return None if got is None else [got[f"episode_{i}"] for i in range(len(tokens))]


def _write(path: Path, shown: list[torch.Tensor], key: str) -> None:
    _save(path, {f"episode_{i}": s for i, s in enumerate(shown)}, key)


@torch.no_grad()
def encode_all(
    model: AutoregressiveWorldModel, frames: list[torch.Tensor], progress: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each episode's tokens ``(T, N)`` and latent actions ``(T - 1,)`` on the CPU, computed (no cache); the
    model is left in the mode it was in."""
    was = model.training
    model.eval()
    toks, lats = [], []
    for f in track(frames, description="encoding the episodes", disable=not progress):
        tb = model.encode(f[None])
        toks.append(tb.tokens[0].cpu())
        lats.append(tb.latent_actions[0].cpu())
    model.train(was)
    return toks, lats


def encoded_episodes(
    model: AutoregressiveWorldModel, frames: list[torch.Tensor], progress: bool = True
) -> tuple[list[torch.Tensor], list[torch.Tensor], bool]:
    """:func:`encode_all`'s tokens and latent actions (int64), read from the cache when it holds them, and
    whether they came from it."""
    path = cache_dir("encoded") / f"{encoded_key(model, frames)}.safetensors"
    per_frame, count = model.grid[0] * model.grid[1], len(frames)
    shapes = {f"tokens_{i}": (len(f), per_frame) for i, f in enumerate(frames)}
    shapes |= {f"latents_{i}": (max(len(f) - 1, 0),) for i, f in enumerate(frames)}
    if (got := _load(path, shapes)) is not None:
        log.info("tokens and latent actions of %d episodes from the cache %s", count, path)
        return [got[f"tokens_{i}"] for i in range(count)], [got[f"latents_{i}"] for i in range(count)], True
    toks, lats = encode_all(model, frames, progress)
    _save(
        path,
        {f"tokens_{i}": t for i, t in enumerate(toks)} | {f"latents_{i}": x for i, x in enumerate(lats)},
        path.stem,
    )
    return toks, lats, False


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
