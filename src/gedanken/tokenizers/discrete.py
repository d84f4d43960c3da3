"""A discrete video tokenizer: a convolutional autoencoder whose bottleneck is FSQ.

Each frame is cut into ``patch x patch`` spatial patches (tubelets one frame long, so an interactive model
emits one frame per step); each patch becomes one token, an index into the implicit FSQ codebook. The
encoder and decoder are small strided conv nets, so the decoder sees neighbouring tokens and can place edges
to the pixel inside a patch.

Shapes: frames ``(B, T, H, W, 3)`` uint8 <-> tokens ``(B, T, h, w)`` int64 with ``h = H / patch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.tokenizers.fsq import FSQ, FSQConfig


@dataclass(frozen=True)
class DiscreteTokenizerConfig:
    """Architecture of :class:`DiscreteTokenizer`."""

    patch: int = 8  # spatial patch side in pixels (a power of two); one token per patch
    channels: tuple[int, ...] = (32, 64, 96)  # conv widths, one stride-2 stage each (len == log2(patch))
    res_blocks: int = 1  # residual blocks at the bottleneck, in encoder and decoder each
    fsq: FSQConfig = field(default_factory=FSQConfig)  # the quantizer (levels -> codebook size)

    def __post_init__(self) -> None:
        if self.patch < 1 or self.patch & (self.patch - 1):
            raise ValueError(f"patch must be a power of two, got {self.patch}")
        if len(self.channels) != int(math.log2(self.patch)):
            raise ValueError(
                f"need one conv width per stride-2 stage: patch {self.patch} needs "
                f"{int(math.log2(self.patch))} channels, got {self.channels}"
            )


class _Res(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.GroupNorm(8 if c % 8 == 0 else 1, c),
            nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, c, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


@dataclass
class TokenizerOutput:
    """What one :meth:`DiscreteTokenizer.forward` pass produced."""

    recon: Tensor  # (B, T, 3, H, W) float in [-1, 1] (roughly)
    tokens: Tensor  # (B, T, h, w) int64
    loss: Tensor  # () reconstruction loss


def frames_to_float(frames: Tensor) -> Tensor:
    """``(..., H, W, 3)`` uint8 -> ``(..., 3, H, W)`` float in ``[-1, 1]``."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


def float_to_frames(x: Tensor) -> Tensor:
    """``(..., 3, H, W)`` float in ``[-1, 1]`` -> ``(..., H, W, 3)`` uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1)


class DiscreteTokenizer(nn.Module):
    """Frames <-> FSQ token grids. ``encode``/``decode`` work per frame and accept any leading dims."""

    def __init__(self, cfg: DiscreteTokenizerConfig = DiscreteTokenizerConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.fsq = FSQ(cfg.fsq)
        enc: list[nn.Module] = [nn.Conv2d(3, cfg.channels[0], 3, padding=1)]
        c_in = cfg.channels[0]
        for c in cfg.channels:
            enc += [nn.SiLU(), nn.Conv2d(c_in, c, 4, stride=2, padding=1)]
            c_in = c
        enc += [_Res(c_in) for _ in range(cfg.res_blocks)]
        enc += [nn.SiLU(), nn.Conv2d(c_in, self.fsq.dim, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(self.fsq.dim, c_in, 3, padding=1)]
        dec += [_Res(c_in) for _ in range(cfg.res_blocks)]
        for c in reversed((cfg.channels[0], *cfg.channels[:-1])):
            dec += [nn.SiLU(), nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1)]
            c_in = c
        dec += [nn.SiLU(), nn.Conv2d(c_in, 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens (the FSQ codebook size)."""
        return self.fsq.codebook_size

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Token grid ``(h, w)`` of a ``height x width`` frame; raises if the patch does not divide it."""
        p = self.cfg.patch
        if height % p or width % p:
            raise ValueError(f"frame size {height}x{width} is not divisible by the patch size {p}")
        return height // p, width // p

    def _encode_float(self, x: Tensor) -> tuple[Tensor, Tensor]:
        lead = x.shape[:-3]
        self.grid(x.shape[-2], x.shape[-1])
        z = self.encoder(x.reshape(-1, *x.shape[-3:]))  # (N, d, h, w)
        q = self.fsq(z.movedim(1, -1))  # codes (N, h, w, d)
        return q.codes.reshape(*lead, *q.codes.shape[1:]), q.indices.reshape(*lead, *q.indices.shape[1:])

    def encode(self, frames: Tensor) -> Tensor:
        """``(..., H, W, 3)`` uint8 frames -> ``(..., h, w)`` int64 tokens."""
        if frames.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 (..., H, W, 3), got {frames.dtype}")
        return self._encode_float(frames_to_float(frames))[1]

    def decode_float(self, tokens: Tensor) -> Tensor:
        """``(..., h, w)`` tokens -> ``(..., 3, H, W)`` float in about ``[-1, 1]``."""
        codes = self.fsq.indices_to_codes(tokens)  # (..., h, w, d)
        return self._decode_codes(codes)

    def _decode_codes(self, codes: Tensor) -> Tensor:
        lead = codes.shape[:-3]
        x = self.decoder(codes.reshape(-1, *codes.shape[-3:]).movedim(-1, 1))  # (N, 3, H, W)
        return x.reshape(*lead, *x.shape[1:])

    def decode(self, tokens: Tensor) -> Tensor:
        """``(..., h, w)`` tokens -> ``(..., H, W, 3)`` uint8 frames."""
        return float_to_frames(self.decode_float(tokens))

    def forward(self, frames: Tensor) -> TokenizerOutput:
        """Reconstruct uint8 frames ``(B, T, H, W, 3)``; the loss is MSE plus L1 in ``[-1, 1]`` units."""
        x = frames_to_float(frames)  # (B, T, 3, H, W)
        codes, idx = self._encode_float(x)
        recon = self._decode_codes(codes)
        loss = F.mse_loss(recon, x) + 0.5 * F.l1_loss(recon, x)
        return TokenizerOutput(recon=recon, tokens=idx, loss=loss)


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """PSNR in dB between uint8 frames ``(..., H, W, 3)``, averaged over the leading dims."""
    mse = ((a.float() - b.float()) ** 2).flatten(-3).mean(-1).clamp(min=1e-3)
    return (10 * torch.log10(255.0**2 / mse)).mean()
