"""A discrete video tokenizer: a convolutional autoencoder whose bottleneck is FSQ.

Each frame is cut into ``patch x patch`` spatial patches (tubelets one frame long, so an interactive model
emits one frame per step); each patch becomes one token, an index into the implicit FSQ codebook. Two
architectures (:class:`TokenizerArchitecture`):

* ``PATCH`` (the presets): pixel-unshuffle by ``patch`` (each patch becomes one position with ``3 patch^2``
  channels), a 1x1 conv, residual 3x3 blocks at token resolution, 1x1 to the FSQ channels; the decoder
  mirrors it and pixel-shuffles back. Every conv runs on the token grid, and a small object keeps the patch
  it lies in instead of being blurred away by strided downsampling. Optionally (``refine``) a small residual
  conv stage at full resolution follows: a linear patch decoder draws each patch from a fixed basis and
  blurs edges into halos, which the nonlinear stage cuts sharp.
* ``CONV``: strided conv stages at full resolution (the original design; older checkpoints).

The decoder's output is linear (clamped only when turned into uint8 pixels), and the reconstruction loss
up-weights foreground pixels (those that differ from the frame's median, background, colour): objects cover
about 3 % of the pixels, and an unweighted loss is minimised by a background-coloured blur that loses every
object (judge identity accuracy 0 on reconstructions, measured before this change). The weighted region is
the object pixels dilated by ``foreground_dilate`` pixels: weighting only the object pixels themselves makes
painting object colour around objects nearly free, and the reconstructions grow halos (measured on Push at
weight 64: identity accuracy 0.96 but PSNR 16 dB). Weighting every pixel the *reconstruction* paints off the
background instead diverged (at initialisation that is every pixel, 65x the loss).

Shapes: frames ``(B, T, H, W, 3)`` uint8 <-> tokens ``(B, T, h, w)`` int64 with ``h = H / patch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.nn.conv import ResBlock
from gedanken.tokenizers.fsq import FSQ, FSQConfig


class TokenizerArchitecture(str, Enum):
    """How :class:`DiscreteTokenizer` reaches the token grid."""

    PATCH = "patch"  # pixel-unshuffle + residual blocks at token resolution (cheap, keeps small objects)
    CONV = "conv"  # strided conv stages at full resolution


@dataclass(frozen=True)
class DiscreteTokenizerConfig:
    """Architecture and loss of :class:`DiscreteTokenizer` (defaults: the original CONV design)."""

    patch: int = 8  # spatial patch side in pixels (a power of two); one token per patch
    channels: tuple[int, ...] = (
        32,
        64,
        96,
    )  # CONV: conv widths, one stride-2 stage each (len == log2(patch))
    res_blocks: int = 1  # residual blocks at the bottleneck (CONV) / token resolution (PATCH), each side
    fsq: FSQConfig = field(default_factory=FSQConfig)  # the quantizer (levels -> codebook size)
    architecture: TokenizerArchitecture = TokenizerArchitecture.CONV  # CONV keeps old checkpoints loading
    width: int = 128  # PATCH: channels of the residual trunk
    foreground_weight: float = 0.0  # extra loss weight on pixels off the frame's background colour (0: none)
    foreground_dilate: int = 0  # the weighted region also covers pixels this close (Chebyshev) to an object
    halo_weight: float = (
        0.0  # with foreground_weight > 0: extra weight on background the reconstruction paints
    )
    # PATCH: width of a residual 3x3 conv stage at full resolution after the patch decoder (0: none)
    refine: int = 0

    def __post_init__(self) -> None:
        if self.patch < 1 or self.patch & (self.patch - 1):
            raise ValueError(f"patch must be a power of two, got {self.patch}")
        if self.foreground_weight < 0 or self.foreground_dilate < 0 or self.halo_weight < 0:
            raise ValueError(
                f"foreground_weight, foreground_dilate and halo_weight must be >= 0, got "
                f"{self.foreground_weight}, {self.foreground_dilate}, {self.halo_weight}"
            )
        if self.architecture is TokenizerArchitecture.PATCH:
            if self.width < 1 or self.res_blocks < 0 or self.refine < 0:
                raise ValueError(
                    f"PATCH needs width >= 1, res_blocks >= 0 and refine >= 0, got {self.width}, "
                    f"{self.res_blocks}, {self.refine}"
                )
            return
        if self.refine:
            raise ValueError("refine is a PATCH decoder stage; the CONV architecture has none")
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


class _Refine(nn.Module):
    """Full-resolution residual stage ``x + f(x)`` on the decoded image: the linear patch decoder paints each
    patch from a fixed basis, which blurs edges into halos; three 3x3 convs with nonlinearities between can
    cut them sharp. The last conv starts at zero, so the stage starts as the identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, 3, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

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
        if cfg.architecture is TokenizerArchitecture.PATCH:
            self.encoder, self.decoder = self._patch_nets(cfg)
            return
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

    def _patch_nets(self, cfg: DiscreteTokenizerConfig) -> tuple[nn.Module, nn.Module]:
        p, w, d = cfg.patch, cfg.width, self.fsq.dim
        enc: list[nn.Module] = [nn.PixelUnshuffle(p), nn.Conv2d(3 * p * p, w, 1)]
        enc += [ResBlock(w) for _ in range(cfg.res_blocks)]
        enc += [nn.SiLU(), nn.Conv2d(w, d, 1)]
        dec: list[nn.Module] = [nn.Conv2d(d, w, 3, padding=1)]
        dec += [ResBlock(w) for _ in range(cfg.res_blocks)]
        dec += [nn.SiLU(), nn.Conv2d(w, 3 * p * p, 1), nn.PixelShuffle(p)]
        if cfg.refine:
            dec.append(_Refine(cfg.refine))
        return nn.Sequential(*enc), nn.Sequential(*dec)

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
        """Reconstruct uint8 frames ``(B, T, H, W, 3)``; the loss is MSE plus L1 in ``[-1, 1]`` units, each
        pixel weighted by ``1 + foreground_weight * [pixel within foreground_dilate px of a foreground pixel]``
        (see :func:`foreground_mask`)."""
        x = frames_to_float(frames)  # (B, T, 3, H, W)
        codes, idx = self._encode_float(x)
        recon = self._decode_codes(codes)
        err = (recon - x).pow(2) + 0.5 * (recon - x).abs()  # (B, T, 3, H, W)
        if self.cfg.foreground_weight > 0:
            fg = foreground_mask(x)  # (B, T, 1, H, W)
            r = self.cfg.foreground_dilate
            if r:
                fg = F.max_pool2d(fg.flatten(0, 1), 2 * r + 1, stride=1, padding=r).view_as(fg)
            weight = 1 + self.cfg.foreground_weight * fg
            if self.cfg.halo_weight > 0:  # background pixels the reconstruction paints cost extra
                weight = weight + self.cfg.halo_weight * foreground_mask(recon.detach(), reference=x) * (
                    1 - fg
                )
            err = err * weight
        return TokenizerOutput(recon=recon, tokens=idx, loss=err.mean())


def foreground_mask(x: Tensor, threshold: float = 0.1, reference: Tensor | None = None) -> Tensor:
    """``(..., 3, H, W)`` float frames in ``[-1, 1]`` -> ``(..., 1, H, W)`` float mask of pixels that differ from
    the background colour by more than ``threshold`` (0.05 of the 0-255 range) in any channel; the background
    is the median colour of ``reference`` (default ``x`` itself), a tensor of the same shape."""
    ref = x if reference is None else reference
    if ref.shape != x.shape:
        raise ValueError(f"reference {tuple(ref.shape)} must have the shape of x {tuple(x.shape)}")
    bg = ref.flatten(-2).median(dim=-1).values[..., None, None]  # (..., 3, 1, 1)
    return ((x - bg).abs().amax(dim=-3, keepdim=True) > threshold).to(x.dtype)


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """PSNR in dB between uint8 frames ``(..., H, W, 3)``, averaged over the leading dims."""
    mse = ((a.float() - b.float()) ** 2).flatten(-3).mean(-1).clamp(min=1e-3)
    return (10 * torch.log10(255.0**2 / mse)).mean()
