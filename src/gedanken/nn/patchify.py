"""Spacetime patches: any ``(T, C, H, W)`` grid <-> tokens, with their ``(t, y, x)`` coordinates for RoPE.

Sizes that are not multiples of the patch are padded (replicating the border) rather than cropped, and the
padding is removed again on the way back, so every native resolution and duration trains as it is (Sora).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class PatchGrid:
    """Where the tokens of one patchified tensor came from."""

    t: int  # frames (after temporal patching)
    h: int  # token rows
    w: int  # token columns
    height: int  # original H (before padding)
    width: int  # original W
    frames: int  # original T

    @property
    def per_frame(self) -> int:
        return self.h * self.w


@dataclass(frozen=True)
class SpacetimePatchifier:
    """Cuts ``(B, T, C, H, W)`` into ``(B, N, pt*ph*pw*C)`` tokens, ``N = T/pt * H/ph * W/pw``, frame-major."""

    patch: int = 2  # spatial patch side
    tubelet: int = 1  # frames per token (1 keeps attention frame-causal)

    def dim(self, channels: int) -> int:
        return self.tubelet * self.patch * self.patch * channels

    def grid(self, frames: int, height: int, width: int) -> PatchGrid:
        p, q = self.patch, self.tubelet
        return PatchGrid(-(-frames // q), -(-height // p), -(-width // p), height, width, frames)

    def patchify(self, x: Tensor) -> tuple[Tensor, PatchGrid]:
        """``x`` (B, T, C, H, W) -> tokens (B, N, D_in), grid."""
        if x.ndim != 5:
            raise ValueError(f"expected (B, T, C, H, W), got {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        g = self.grid(t, h, w)
        p, q = self.patch, self.tubelet
        ph, pw, pt = g.h * p - h, g.w * p - w, g.t * q - t
        if ph or pw:
            x = F.pad(x.reshape(b * t, c, h, w), (0, pw, 0, ph), mode="replicate").view(
                b, t, c, h + ph, w + pw
            )
        if pt:
            x = torch.cat([x, x[:, -1:].expand(b, pt, c, h + ph, w + pw)], dim=1)
        x = x.view(b, g.t, q, c, g.h, p, g.w, p)
        x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)  # (B, T', h, w, q, p, p, C)
        return x.reshape(b, g.t * g.h * g.w, q * p * p * c), g

    def unpatchify(self, tokens: Tensor, g: PatchGrid, channels: int) -> Tensor:
        """Inverse of :meth:`patchify`: (B, N, D_in) -> (B, T, C, H, W), padding removed."""
        b = tokens.shape[0]
        p, q = self.patch, self.tubelet
        x = tokens.view(b, g.t, g.h, g.w, q, p, p, channels).permute(0, 1, 4, 7, 2, 5, 3, 6)
        x = x.reshape(b, g.t * q, channels, g.h * p, g.w * p)
        return x[:, : g.frames, :, : g.height, : g.width]

    def positions(self, g: PatchGrid, t0: int = 0, device: torch.device | None = None) -> Tensor:
        """(N, 3) float (t, y, x) coordinates of the tokens of ``g``, time starting at ``t0``."""
        tt, yy, xx = torch.meshgrid(
            torch.arange(t0, t0 + g.t, device=device),
            torch.arange(g.h, device=device),
            torch.arange(g.w, device=device),
            indexing="ij",
        )
        return torch.stack([tt, yy, xx], dim=-1).reshape(-1, 3).float()
