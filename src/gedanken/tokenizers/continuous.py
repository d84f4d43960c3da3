"""A continuous video tokenizer: a per-frame convolutional autoencoder to a normalised latent grid.

Frames ``(B, T, H, W, 3)`` uint8 -> latents ``(B, T, C, H/s, W/s)`` float; any ``H``/``W`` works (padded to a
multiple of ``s`` and cropped back). Two architectures:

* ``PATCH`` (default): pixel-unshuffle by ``s = patch`` (each ``s x s`` pixel patch becomes one position with
  ``3 s^2`` channels, as ViT/Sora patch embeddings do), then residual 3x3 conv blocks at the latent
  resolution; the decoder mirrors it and pixel-shuffles back. Every convolution runs at ``H/s x W/s``, so it is
  ~10x cheaper than ``CONV`` at equal width, and small objects keep their own patch instead of being blurred
  by strided downsampling.
* ``CONV``: strided conv stages at full resolution, ``s = 2 ** len(channels)``.

Training adds Gaussian noise to the latent, scaled to the latent's own (detached) spread so that shrinking the
latent cannot escape it: a cheap bottleneck that makes the decoder tolerant of the small errors a diffusion
model leaves, without the collapse a fixed noise level plus a magnitude penalty invites.
After training, :meth:`VideoAutoencoder.calibrate` stores per-channel mean and std so that :meth:`encode`
returns roughly unit-variance latents, the scale diffusion noise schedules assume.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.data.batch import Batch
from gedanken.nn.conv import ResBlock
from gedanken.tokenizers.discrete import foreground_mask


class Architecture(str, Enum):
    """How the autoencoder reaches the latent grid."""

    PATCH = "patch"  # pixel-unshuffle + residual blocks at latent resolution (cheap, sharp)
    CONV = "conv"  # strided conv stages at full resolution


@dataclass(frozen=True)
class AutoencoderConfig:
    """Sizes and training losses of :class:`VideoAutoencoder`."""

    channels: tuple[int, ...] = (32, 64, 96)  # CONV: width of each stride-2 stage; compression 2 ** len
    latent_channels: int = 8  # C: channels of the latent grid
    latent_noise: float = 0.1  # std of the training noise on raw latents, relative to their per-channel std
    latent_penalty: float = 1e-4  # weight of mean(z ** 2) in the loss (keeps the raw scale from drifting)
    foreground_weight: float = 8.0  # extra loss weight on pixels that differ from the frame's background
    halo_weight: float = 0.0  # extra loss weight on background pixels the reconstruction paints (halos)
    cycle_weight: float = 0.0  # weight of the loss on a second round trip D(E(D(E(x)))) (stable re-encoding)
    hard_weight: float = 0.0  # extra loss weight on pixels reconstructed > 0.25 off in a channel
    cycle_steps: int = 1  # > 1: the round trip that is trained starts from 0..cycle_steps-1 detached ones
    architecture: Architecture = Architecture.CONV  # CONV keeps older checkpoints loading unchanged
    patch: int = 4  # PATCH: pixel patch side = spatial compression
    width: int = 128  # PATCH: channels of the residual trunk
    blocks: int = 2  # PATCH: residual blocks in the encoder and in the decoder

    def __post_init__(self) -> None:
        if (
            min(self.foreground_weight, self.halo_weight, self.cycle_weight, self.hard_weight) < 0
            or self.cycle_steps < 1
        ):
            raise ValueError(
                "foreground_weight, halo_weight, cycle_weight and hard_weight must be >= 0 and cycle_steps >= 1, "
                f"got {self.foreground_weight}, {self.halo_weight}, {self.cycle_weight}, {self.hard_weight}, "
                f"{self.cycle_steps}"
            )


def _conv_autoencoder(cfg: AutoencoderConfig) -> tuple[nn.Module, nn.Module]:
    ch = cfg.channels
    enc: list[nn.Module] = [nn.Conv2d(3, ch[0], 3, padding=1)]
    prev = ch[0]
    for c in ch:
        enc += [nn.Conv2d(prev, c, 4, stride=2, padding=1), ResBlock(c)]
        prev = c
    enc += [nn.SiLU(), nn.Conv2d(prev, cfg.latent_channels, 1)]
    dec: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, ch[-1], 3, padding=1)]
    prev = ch[-1]
    for c in reversed(ch):
        dec += [ResBlock(prev), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(prev, c, 3, padding=1)]
        prev = c
    dec += [nn.SiLU(), nn.Conv2d(prev, 3, 3, padding=1)]
    return nn.Sequential(*enc), nn.Sequential(*dec)


def _patch_autoencoder(cfg: AutoencoderConfig) -> tuple[nn.Module, nn.Module]:
    p, w = cfg.patch, cfg.width
    if p < 1 or w < 1 or cfg.blocks < 0:
        raise ValueError(f"patch tokenizer needs patch >= 1, width >= 1, blocks >= 0; got {cfg}")
    enc: list[nn.Module] = [nn.PixelUnshuffle(p), nn.Conv2d(3 * p * p, w, 1)]
    enc += [ResBlock(w) for _ in range(cfg.blocks)]
    enc += [nn.SiLU(), nn.Conv2d(w, cfg.latent_channels, 1)]
    dec: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, w, 3, padding=1)]
    dec += [ResBlock(w) for _ in range(cfg.blocks)]
    dec += [nn.SiLU(), nn.Conv2d(w, 3 * p * p, 1), nn.PixelShuffle(p)]
    return nn.Sequential(*enc), nn.Sequential(*dec)


class VideoAutoencoder(nn.Module):
    """Per-frame conv autoencoder; ``encode``/``decode`` speak uint8 frames and normalised latents."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.architecture is Architecture.PATCH:
            self.encoder, self.decoder = _patch_autoencoder(cfg)
        else:
            self.encoder, self.decoder = _conv_autoencoder(cfg)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))

    @property
    def stride(self) -> int:
        if self.cfg.architecture is Architecture.PATCH:
            return self.cfg.patch
        return 2 ** len(self.cfg.channels)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        s = self.stride
        return self.cfg.latent_channels, -(-height // s), -(-width // s)

    # ---------------------------------------------------------------------------------------------- core

    def _encode_raw(self, x: Tensor) -> Tensor:
        """``x`` (N, 3, H, W) in [0, 1] -> raw latents (N, C, h, w)."""
        s = self.stride
        ph, pw = (-x.shape[2]) % s, (-x.shape[3]) % s
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return self.encoder(x * 2 - 1)

    def _decode_raw(self, z: Tensor, height: int, width: int, decoder: nn.Module | None = None) -> Tensor:
        """raw latents (N, C, h, w) -> (N, 3, H, W), about [0, 1] (unclamped: clamp when making pixels).

        The decoder's output is linear, not squashed by a sigmoid: with a sigmoid, a decoder that first learns
        the (mostly) black background saturates and the few object pixels stop receiving gradient; a patch
        tokenizer trained that way reconstructed only the background (0 % of objects kept, bounce, 600 steps).
        """
        return ((self.decoder if decoder is None else decoder)(z)[:, :, :height, :width] + 1) / 2

    def encode(self, frames: Tensor) -> Tensor:
        """``frames`` (B, T, H, W, 3) uint8 -> normalised latents (B, T, C, h, w)."""
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (B, T, H, W, 3), got {tuple(frames.shape)}")
        b, t, h, w, _ = frames.shape
        x = frames.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float() / 255.0
        z = self._encode_raw(x)
        z = (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]
        return z.view(b, t, *z.shape[1:])

    def decode_float(
        self, latents: Tensor, height: int, width: int, decoder: nn.Module | None = None
    ) -> Tensor:
        """normalised latents (B, T, C, h, w) -> frames (B, T, H, W, 3) float in [0, 1]; ``decoder``: another
        module shaped like ``self.decoder`` to decode with (a world model's display decoder)."""
        b, t = latents.shape[:2]
        z = latents.reshape(b * t, *latents.shape[2:])
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        x = self._decode_raw(z, height, width, decoder).clamp(0, 1)  # (BT, 3, H, W)
        return x.permute(0, 2, 3, 1).reshape(b, t, height, width, 3)

    def decode(self, latents: Tensor, height: int, width: int, decoder: nn.Module | None = None) -> Tensor:
        """normalised latents (B, T, C, h, w) -> frames (B, T, H, W, 3) uint8."""
        x = self.decode_float(latents, height, width, decoder)
        return (x * 255.0).round().clamp(0, 255).to(torch.uint8)

    # ----------------------------------------------------------------------------------------- training

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """Weighted reconstruction of every frame of the batch through the noisy bottleneck."""
        f = batch.frames
        b, t, h, w, _ = f.shape
        x = f.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)
        z = self._encode_raw(x)
        spread = z.detach().std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)  # (1, C, 1, 1)
        zn = z + self.cfg.latent_noise * spread * torch.randn_like(z)
        y = self._decode_raw(zn, h, w)
        fg = foreground_mask(x, 0.05)  # (N, 1, H, W) off the frame's median (background) colour
        weight = 1.0 + self.cfg.foreground_weight * fg
        if self.cfg.halo_weight > 0:
            # The foreground weight alone makes painting object colour around an object cheap (a halo costs
            # 1, a missed object pixel 1 + foreground_weight), so the decoder learns to dilate.
            painted = foreground_mask(y.detach(), 0.05, reference=x)
            weight = weight + self.cfg.halo_weight * painted * (1 - fg)
        rec = ((y - x).pow(2) * self._hard(weight, y, x)).mean()
        pen = z.pow(2).mean()
        mse = (y - x).pow(2).mean()
        psnr = float(-10 * torch.log10(mse.detach().clamp_min(1e-10)))
        logs = {"rec": float(rec.detach()), "psnr": psnr, "z2": float(pen.detach())}
        loss = rec + self.cfg.latent_penalty * pen
        if self.cfg.cycle_weight > 0:
            # A world model re-encodes its own decoded frames: the round trip must be a fixed point, or a
            # small halo grows a little more on every pass (measured: static blocks grew 36 -> 196 px
            # in 16 round trips through the foreground-weighted tokenizer trained without this term).
            y1 = y.clamp(0, 1)
            if self.cfg.cycle_steps > 1:
                # Train the round trip on frames that have already been through it k times (no gradient
                # through those): the encoder learns to undo what the decoder leaves, along its own orbit.
                y1 = y1.detach()
                with torch.no_grad():
                    for _ in range(int(torch.randint(self.cfg.cycle_steps, ()))):
                        y1 = self._decode_raw(self._encode_raw(y1), h, w).clamp(0, 1)
            y2 = self._decode_raw(self._encode_raw(y1), h, w)
            cyc = ((y2 - x).pow(2) * self._hard(weight, y2, x)).mean()
            loss = loss + self.cfg.cycle_weight * cyc
            logs["cycle"] = float(cyc.detach())
        return loss, logs

    @torch.no_grad()
    def _hard(self, weight: Tensor, y: Tensor, x: Tensor) -> Tensor:
        """``weight`` plus ``hard_weight`` on the pixels whose colour ``y`` gets wrong (> 0.25 in a channel): the
        rare cases (a small object over another object's colour, differing in one channel) that a mean over
        mostly easy frames ignores, and that re-encoding a generated frame compounds."""
        if self.cfg.hard_weight <= 0:
            return weight
        wrong = ((y.detach() - x).abs().amax(dim=1, keepdim=True) > 0.25).to(x.dtype)
        return weight + self.cfg.hard_weight * wrong

    def calibrate(self, frames: Tensor) -> None:
        """Set the latent normalisation from sample frames (B, T, H, W, 3) uint8."""
        b, t, h, w, _ = frames.shape
        x = frames.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float() / 255.0
        z = self._encode_raw(x.to(self.latent_mean.device))
        self.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-3))

    @torch.no_grad()
    def psnr(self, frames: Tensor, decoder: nn.Module | None = None) -> float:
        """Reconstruction PSNR (dB) of uint8 frames (B, T, H, W, 3) through encode/decode (no noise); ``decoder``
        as in :meth:`decode`."""
        rec = self.decode(self.encode(frames), frames.shape[2], frames.shape[3], decoder).float()
        mse = (rec - frames.float()).pow(2).mean().clamp_min(1e-10)
        return float(10 * torch.log10(255.0**2 / mse))


def tiny() -> AutoencoderConfig:
    """Tests: a few thousand parameters."""
    return AutoencoderConfig(channels=(8, 8, 8), latent_channels=4)


def default() -> AutoencoderConfig:
    """64x64 -> 16x16x8 latents through 4x4 pixel patches, trunk width 64, about 0.3 M parameters, trained
    to be a stable fixed point under re-encoding (``cycle_weight``, ``cycle_steps``)."""
    return AutoencoderConfig(
        architecture=Architecture.PATCH,
        patch=4,
        width=64,
        blocks=2,
        latent_channels=8,
        cycle_weight=1.0,
        cycle_steps=4,
    )
