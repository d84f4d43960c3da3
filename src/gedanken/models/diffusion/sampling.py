"""Noise schedule (flow matching) and sampler, kept apart from the network.

:class:`FlowMatching` draws training noise levels and builds targets; :class:`FlowSampler` walks the
few-step Euler schedule of diffusers' ``FlowMatchEulerDiscreteScheduler`` given any velocity function;
:func:`snap_to_palette` projects a generated frame onto the data's colours before it becomes context.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler
from torch import Tensor

from gedanken.models.diffusion.config import FlowConfig, SamplerConfig, Target


class FlowMatching:
    """Rectified-flow training: ``x_s = (1 - s) x + s eps``, target velocity ``eps - x`` (sigma 1 = pure noise)."""

    def __init__(self, cfg: FlowConfig) -> None:
        self.cfg = cfg

    def sample_sigma(self, shape: tuple[int, ...], device: torch.device) -> Tensor:
        z = torch.randn(shape, device=device) * self.cfg.logit_std + self.cfg.logit_mean
        return torch.sigmoid(z)

    def sample_context_sigma(self, shape: tuple[int, ...], device: torch.device) -> Tensor:
        return torch.rand(shape, device=device) * self.cfg.context_noise

    @staticmethod
    def noise(x: Tensor, sigma: Tensor, eps: Tensor) -> Tensor:
        """``x``, ``eps`` (B, T, ...); ``sigma`` (B, T) -> x_sigma."""
        s = sigma.view(*sigma.shape, *([1] * (x.ndim - sigma.ndim)))
        return (1 - s) * x + s * eps

    @staticmethod
    def target(x: Tensor, eps: Tensor) -> Tensor:
        return eps - x

    def loss(self, out: Tensor, x: Tensor, eps: Tensor, base: Tensor) -> Tensor:
        """Training loss of the network output ``out`` for clean ``x`` and noise ``eps`` (all (B, T, C, h, w)).

        ``VELOCITY``: MSE to ``eps - x``. ``RESIDUAL``: the output is the change from ``base`` (each frame's
        previous clean latent, zeros where there is none), MSE of ``base + out`` to ``x``, with latent positions
        that change between the frames weighted ``1 + change_weight`` (moving objects cover few positions; the
        static rest is the zero output). The residual form makes "nothing changes" the zero output, so an
        uncertain model copies the last frame instead of fading it.
        """
        if self.cfg.target is not Target.RESIDUAL:
            return F.mse_loss(out, self.target(x, eps))
        err = (base + out - x).pow(2)
        if self.cfg.change_weight <= 0:
            return err.mean()
        changed = ((x - base).abs().mean(dim=2, keepdim=True) > 0.05).float()  # (B, T, 1, h, w)
        changed[:, 0] = 0.0  # frame 0 has no previous frame
        return (err * (1 + self.cfg.change_weight * changed)).mean()

    def velocity(self, out: Tensor, x_s: Tensor, sigma: float, base: Tensor | None) -> Tensor:
        """The flow velocity at ``x_s`` (noise level ``sigma``) from the network output, for the sampler."""
        if self.cfg.target is Target.RESIDUAL:
            x0 = out if base is None else base + out
            return (x_s - x0) / max(sigma, 1e-3)
        return out


VelocityFn = Callable[[Tensor, float], Tensor]


def snap_to_palette(
    frames: Tensor, palette: Tensor, background: float = 1.0, allowed: Tensor | None = None
) -> Tensor:
    """Each pixel of uint8 frames ``(..., 3)`` replaced by the nearest (RGB distance) of ``palette`` ``(P, 3)``.

    On flat-coloured data this is the projection of a generated frame onto the frames the data can hold: a
    pixel that the sampler left between two colours (an object fading into the background, a blend of two
    touching objects) takes one of them, so the fade does not carry into the next frame's context.
    ``background`` < 1 scales the distance to ``palette[0]`` (the background), so that a pixel halfway
    between an object and the background is dropped rather than added to the object: a blurred rim, snapped
    to the object frame after frame, would grow it. ``allowed`` ``(..., P)`` bool (see :func:`nearby_colours`)
    limits each pixel to some colours.
    """
    pal = palette.to(device=frames.device, dtype=torch.float32)
    d = torch.cdist(frames.reshape(-1, 3).float(), pal)  # (N, P)
    d[:, 0] *= background
    if allowed is not None:
        d = d.masked_fill(~allowed.reshape(-1, len(pal)), float("inf"))
    return pal.to(torch.uint8)[d.argmin(-1)].view(frames.shape)


def nearby_colours(previous: Tensor, palette: Tensor, radius: int) -> Tensor:
    """``(B, H, W, P)`` bool: the palette colours that palette-projected frames ``(B, H, W, 3)`` show within
    ``radius`` pixels (a square) of each pixel; the background is always allowed. Objects move a few pixels
    per frame, so a colour far from where it was is a blend of two others (red and blue make magenta)."""
    pal = palette.to(device=previous.device, dtype=torch.uint8)
    present = torch.stack([(previous == c).all(-1) for c in pal], 1).float()  # (B, P, H, W)
    near = F.max_pool2d(present, 2 * radius + 1, stride=1, padding=radius) > 0
    near[:, 0] = True
    return near.permute(0, 2, 3, 1)


def colour_areas(snapped: Tensor, palette: Tensor) -> Tensor:
    """Pixels of each non-background palette colour ``(B, P - 1)`` in palette-projected frames ``(B, H, W, 3)``."""
    pal = palette.to(device=snapped.device, dtype=torch.uint8)
    return torch.stack([(snapped == c).all(-1).sum((1, 2)) for c in pal[1:]], 1).float()


def hold_areas(
    snapped: Tensor, frame: Tensor, palette: Tensor, reference: Tensor, allowed: Tensor, keep: float
) -> Tensor:
    """Palette-projected frames ``(B, H, W, 3)`` whose every colour keeps ``[keep, 1 / keep]`` x its
    ``reference`` area ``(B, P - 1)`` (colours with reference 0 are left alone).

    A colour below its lower bound takes the background pixels nearest to it in the generated ``frame``
    ``(B, H, W, 3)`` among those where ``allowed`` ``(B, H, W, P)`` lets it appear (near where it was): a
    fading object is redrawn from its own faint pixels, so it stays in the context instead of vanishing from
    it. A colour above its upper bound gives its pixels farthest from it back to the background. For worlds
    whose objects keep their size and never leave the frame (Push, Bounce); it is what a sampler knows, not
    the network.
    """
    pal = palette.to(device=frame.device, dtype=torch.float32)
    out = snapped.clone()
    b = frame.shape[0]
    pix, own = frame.reshape(b, -1, 3).float(), out.view(b, -1, 3)
    may = allowed.reshape(b, -1, len(pal))
    colours = pal.to(torch.uint8)
    for i in range(1, len(pal)):
        d = (pix - pal[i]).norm(dim=-1)  # (B, N) distance of each generated pixel to the colour
        mine = (own == colours[i]).all(-1)  # (B, N)
        free = (own == colours[0]).all(-1) & may[..., i]
        area, ref = mine.sum(1), reference[:, i - 1].to(d.device)
        need = torch.where(ref > 0, (keep * ref).ceil() - area, torch.zeros_like(ref)).clamp(min=0)
        excess = torch.where(ref > 0, area - (ref / keep).floor(), torch.zeros_like(ref)).clamp(min=0)
        nearest = (
            d.masked_fill(~free, float("inf")).argsort(dim=1, stable=True).argsort(1)
        )  # rank among free pixels
        farthest = (-d).masked_fill(~mine, float("inf")).argsort(dim=1, stable=True).argsort(1)
        add = free & (nearest < need[:, None])
        drop = mine & (farthest < excess[:, None])
        own[add] = colours[i]
        own[drop] = colours[0]
    return out


class FlowSampler:
    """Few-step Euler sampling on diffusers' flow-matching schedule."""

    def __init__(self, cfg: SamplerConfig) -> None:
        self.cfg = cfg
        self.scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfg.shift)
        self.scheduler.set_timesteps(cfg.steps)
        self.sigmas = [float(s) for s in self.scheduler.sigmas]  # steps + 1 values, 1 -> 0

    def sample(self, velocity: VelocityFn, noise: Tensor) -> Tensor:
        """Integrate from ``noise`` (sigma = 1) to data with ``velocity(x, sigma)``."""
        self.scheduler.set_timesteps(self.cfg.steps, device=noise.device)
        x = noise
        for i, t in enumerate(self.scheduler.timesteps):
            v = velocity(x, self.sigmas[i])
            x = self.scheduler.step(v, t, x, return_dict=False)[0]
        return x
