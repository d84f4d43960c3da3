"""Video tokenizers: continuous (autoencoder latents, for diffusion) and, later, discrete (FSQ, for AR models).

Every tokenizer maps uint8 frames ``(B, T, H, W, 3)`` to a per-frame latent grid ``(B, T, C, h, w)`` and back;
:class:`VideoTokenizer` is that contract, so a discrete tokenizer can sit beside the continuous one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from gedanken.tokenizers.continuous import AutoencoderConfig, VideoAutoencoder


@runtime_checkable
class VideoTokenizer(Protocol):
    """Frames <-> per-frame latent grids."""

    @property
    def stride(self) -> int: ...

    def encode(self, frames: Tensor) -> Tensor: ...

    def decode(self, latents: Tensor, height: int, width: int) -> Tensor: ...


__all__ = ["AutoencoderConfig", "VideoAutoencoder", "VideoTokenizer"]
