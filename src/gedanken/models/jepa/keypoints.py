"""Spatial-softmax keypoint encoder and its self-supervised pre-training terms (the default JEPA encoder).

A frame ``(H, W, 3)`` goes through a small conv net (stride 2, so a ``H/2 x W/2`` grid) that ends in ``K``
heat-map channels. Each channel is normalised by a softmax over the grid (with a learned temperature) and
summarised by its expected position ``(x, y)`` in ``[-1, 1]`` (Finn et al. 2016, "Deep spatial autoencoders"),
plus one feature value (a second head's response, averaged under the same softmax weights). A *frame latent*
of frame ``t`` is ``[x_t, y_t, f_t, s * (x_t - x_{t-1}), s * (y_t - y_{t-1})]`` per keypoint (``5 K`` values;
frame 0 and single goal images are paired with themselves, so their motion part is zero).

Why: the probe has to read positions *linearly*. A softmax expectation is a normalised average, so a channel
that fires on the pixels of one object returns that object's centroid whatever its size; a ViT with a pooled
latent has to learn this and, in the measured runs, collapsed dimensionally instead (docs/jepa.md).

Self-supervised objective (no actions, no states): from the latent of frame ``t`` a small MLP predicts the
(stop-gradient) latent of frame ``t + 1``; VICReg-style terms on the keypoint coordinates of the batch keep
every coordinate varying across samples (variance hinge: no keypoint may sit still) and decorrelate the
coordinates of different keypoints (covariance: two keypoints on the same object are penalised). A keypoint
that does not move across samples is exactly what a predictive loss alone prefers (the collapse control).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.models.jepa.config import EncoderConfig
from gedanken.models.jepa.encoder import frames_to_float


def spatial_softmax(heat: Tensor, temperature: Tensor) -> tuple[Tensor, Tensor]:
    """Heat maps ``(N, K, g, g)`` -> expected positions ``(N, K, 2)`` (x, y in ``[-1, 1]``, cell centres) and
    the softmax weights ``(N, K, g*g)``.

    Each map is standardised over the grid, scaled by ``temperature`` ``(K,)`` and normalised by a softmax;
    a map that is high on one region and flat elsewhere returns that region's centroid, whatever its area.
    """
    n, k, gh, gw = heat.shape
    flat = heat.flatten(2)
    flat = (flat - flat.mean(-1, keepdim=True)) / (flat.std(-1, keepdim=True) + 1e-3)
    p = (flat * temperature[:, None]).softmax(-1)  # (N, K, g*g)
    xs = (torch.arange(gw, device=heat.device, dtype=p.dtype) + 0.5) / gw * 2.0 - 1.0
    ys = (torch.arange(gh, device=heat.device, dtype=p.dtype) + 0.5) / gh * 2.0 - 1.0
    pg = p.view(n, k, gh, gw)
    xy = torch.stack((pg.sum(2) @ xs, pg.sum(3) @ ys), dim=-1)  # marginals over rows / columns
    return xy, p


class KeypointEncoder(nn.Module):
    """Conv net -> ``K`` spatial-softmax keypoints ``(x, y)`` and feature values per frame."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch, k = cfg.conv_channels, cfg.keypoints
        self.net = nn.Sequential(
            nn.Conv2d(3, ch, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.ReLU(),
        )
        self.heat = nn.Conv2d(ch, k, 1)  # K heat maps
        self.feat = nn.Conv2d(ch, k, 1)  # K feature maps, read under each heat map's softmax
        # Softmax sharpness per keypoint (learned), applied to heat maps standardised over the grid: a channel
        # is sharp wherever its response stands out, whatever the scale of the conv output.
        self.log_temp = nn.Parameter(torch.full((k,), math.log(cfg.softmax_temperature)))

    def keypoints(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 frames ``(N, H, W, 3)`` -> coordinates ``(N, K, 2)`` in ``[-1, 1]`` and features ``(N, K)``."""
        n, h, w, _ = frames.shape
        s = self.cfg.image_size
        if h != s or w != s:
            raise ValueError(f"encoder expects {s}x{s} frames, got {h}x{w}")
        x = self.net(frames_to_float(frames))  # (N, ch, g, g)
        xy, p = spatial_softmax(self.heat(x), self.log_temp.exp())  # (N, K, 2), (N, K, g*g)
        f = (p * torch.tanh(self.feat(x).flatten(2))).sum(-1)  # (N, K)
        return xy, f

    def latents(self, xy: Tensor, f: Tensor) -> Tensor:
        """Per-frame keypoints of sequences ``xy`` ``(B, T, K, 2)``, ``f`` ``(B, T, K)`` -> latents ``(B, T, 5K)``."""
        prev = torch.cat((xy[:, :1], xy[:, :-1]), dim=1)  # frame 0 paired with itself
        motion = (xy - prev) * self.cfg.velocity_scale
        return torch.cat((xy.flatten(2), f, motion.flatten(2)), dim=-1)

    def encode_frames(self, frames: Tensor, chunk: int = 512) -> Tensor:
        """Frame latents ``(B, T, 5K)`` of a uint8 sequence ``(B, T, H, W, 3)`` (each frame encoded once)."""
        b, t = frames.shape[:2]
        flat = frames.flatten(0, 1)
        parts = [self.keypoints(flat[i : i + chunk]) for i in range(0, flat.shape[0], chunk)]
        xy = torch.cat([p[0] for p in parts]).view(b, t, -1, 2)
        f = torch.cat([p[1] for p in parts]).view(b, t, -1)
        return self.latents(xy, f)


class NextLatentPredictor(nn.Module):
    """Action-free pre-training predictor: frame latent ``z_t`` -> ``z_{t+1}`` (residual MLP)."""

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.GELU(), nn.Linear(hidden, latent_dim))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, z: Tensor) -> Tensor:
        return z + self.net(z)


def variance_hinge(x: Tensor, target: float) -> Tensor:
    """VICReg variance term: mean over columns of ``relu(target - std)`` of ``x`` ``(N, d)``."""
    return F.relu(target - x.std(0)).mean()


def correlation_penalty(x: Tensor) -> Tensor:
    """Mean squared off-diagonal correlation of the columns of ``x`` ``(N, d)`` (VICReg's covariance term,
    on correlations so that it does not fight the variance term over scale)."""
    d = x.shape[1]
    xc = x - x.mean(0)
    xc = xc / xc.norm(dim=0).clamp_min(1e-6)
    c = xc.T @ xc  # (d, d) correlations
    off = c - torch.diag_embed(torch.diagonal(c))
    return off.pow(2).sum() / max(1, d * (d - 1))


def keypoint_pretrain_loss(
    encoder: KeypointEncoder,
    predictor: NextLatentPredictor,
    frames: Tensor,
    target_encoder: KeypointEncoder | None = None,
    vicreg: bool = True,
) -> tuple[Tensor, dict[str, float], Tensor]:
    """Stage-1 loss on clips ``(B, 3, H, W, 3)``: predict the latent of frame 2 from frame 1's (stop-gradient
    target, from ``target_encoder`` when given: EMA), plus the variance/covariance terms when ``vicreg``.

    Returns the loss, logs and the flat latents of frame 1 ``(B, 5K)`` (for other regularisers)."""
    cfg = encoder.cfg
    if frames.ndim != 5 or frames.shape[1] < 3:
        raise ValueError(f"keypoint pre-training needs clips (B, >=3, H, W, 3), got {tuple(frames.shape)}")
    b = frames.shape[0]
    xy, f = encoder.keypoints(frames[:, :3].flatten(0, 1))
    xy, f = xy.view(b, 3, -1, 2), f.view(b, 3, -1)
    z = encoder.latents(xy, f)  # (B, 3, 5K)
    with torch.no_grad():
        if target_encoder is None:
            target = z[:, 2].detach()
        else:
            txy, tf = target_encoder.keypoints(frames[:, :3].flatten(0, 1))
            target = target_encoder.latents(txy.view(b, 3, -1, 2), tf.view(b, 3, -1))[:, 2]
    pred = F.mse_loss(predictor(z[:, 1]), target)
    logs = {"pred": float(pred.detach())}
    loss = cfg.pred_weight * pred
    coords = xy[:, 1].flatten(1)  # (B, 2K)
    if vicreg:
        var = variance_hinge(coords, cfg.var_target)
        cov = correlation_penalty(coords)
        loss = loss + cfg.var_weight * var + cfg.cov_weight * cov
        logs |= {"var": float(var.detach()), "cov": float(cov.detach())}
    logs["kp_std"] = float(coords.detach().std(0).mean())
    return loss, logs, z[:, 1]
