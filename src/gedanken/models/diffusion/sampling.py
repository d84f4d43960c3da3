"""Noise schedule (flow matching) and sampler, kept apart from the network.

:class:`FlowMatching` draws training noise levels and builds targets; :class:`FlowSampler` walks the
few-step Euler schedule of diffusers' ``FlowMatchEulerDiscreteScheduler`` given any velocity function;
the context projection (palette, nearby colours, held areas) is :mod:`gedanken.models.projection`.
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

    def loss(
        self, out: Tensor, x: Tensor, eps: Tensor, base: Tensor, weights: Tensor | None = None
    ) -> Tensor:
        """Training loss of the network output ``out`` for clean ``x`` and noise ``eps`` (all (B, T, C, h, w)).

        ``VELOCITY``: MSE to ``eps - x``. ``RESIDUAL``: the output is the change from ``base`` (each frame's
        previous clean latent, zeros where there is none), MSE of ``base + out`` to ``x``, with latent positions
        that change between the frames weighted ``1 + change_weight`` (moving objects cover few positions; the
        static rest is the zero output). The residual form makes "nothing changes" the zero output, so an
        uncertain model copies the last frame instead of fading it. ``weights`` (B, T, 1, h, w), RESIDUAL only,
        multiply that per position (``FlowConfig.size_weight``); the loss is divided by their mean.
        """
        if self.cfg.target is not Target.RESIDUAL:
            return F.mse_loss(out, self.target(x, eps))
        err = (base + out - x).pow(2)
        if self.cfg.change_weight > 0:
            changed = ((x - base).abs().mean(dim=2, keepdim=True) > 0.05).float()  # (B, T, 1, h, w)
            changed[:, 0] = 0.0  # frame 0 has no previous frame
            err = err * (1 + self.cfg.change_weight * changed)
        if weights is None:
            return err.mean()
        return (err * weights).mean() / weights.mean()

    def velocity(self, out: Tensor, x_s: Tensor, sigma: float, base: Tensor | None) -> Tensor:
        """The flow velocity at ``x_s`` (noise level ``sigma``) from the network output, for the sampler."""
        if self.cfg.target is Target.RESIDUAL:
            x0 = out if base is None else base + out
            return (x_s - x0) / max(sigma, 1e-3)
        return out


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
