"""Optional pixel decoder: frame latents -> pictures, trained on frozen latents for viewing only.

Planners never use it (they compare latents or probed states); the audit's pixel metrics use it when present.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gedanken.models.jepa.config import DecoderConfig, EncoderConfig


class PixelDecoder(nn.Module):
    """Latent ``(B, S * c)`` -> linear to a ``(B, ch, g, g)`` grid -> conv + nearest x2 upsampling per stage."""

    def __init__(self, cfg: DecoderConfig, enc: EncoderConfig) -> None:
        super().__init__()
        self.grid, ch = enc.grid, cfg.channels
        stages = (enc.patch - 1).bit_length()  # log2(patch) upsamplings
        if 2**stages != enc.patch:
            raise ValueError(f"the decoder needs a power-of-two patch, got {enc.patch}")
        self.inp = nn.Linear(enc.latent_dim, ch * enc.grid * enc.grid)
        self.ch = ch
        layers: list[nn.Module] = [nn.GELU(), nn.Conv2d(ch, ch, 3, padding=1), nn.GELU()]
        for _ in range(stages):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(ch, ch, 3, padding=1),
                nn.GELU(),
            ]
        layers.append(nn.Conv2d(ch, 3, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, z: Tensor) -> Tensor:
        """Frame latents ``(B, S * c)`` -> float frames ``(B, 3, H, W)`` in ``[-1, 1]`` (pre-clamp)."""
        x = self.inp(z).view(z.shape[0], self.ch, self.grid, self.grid)  # (B, ch, g, g)
        return self.net(x)

    @torch.no_grad()
    def pictures(self, z: Tensor) -> Tensor:
        """Latents ``(..., d_z)`` -> uint8 frames ``(..., H, W, 3)``."""
        lead = z.shape[:-1]
        x = self(z.reshape(-1, z.shape[-1])).clamp(-1, 1)
        img = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)  # (N, H, W, 3)
        return img.reshape(*lead, *img.shape[1:])
