"""Noise schedule (flow matching) and sampler, kept apart from the network.

:class:`FlowMatching` draws training noise levels and builds targets; :class:`FlowSampler` walks the
few-step Euler schedule of diffusers' ``FlowMatchEulerDiscreteScheduler`` given any velocity function.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from torch import Tensor

from gedanken.models.diffusion.config import FlowConfig, SamplerConfig


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


VelocityFn = Callable[[Tensor, float], Tensor]


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
