"""Keypoint encoder: spatial softmax returns centroids, latent layout, VICReg terms, config validation."""

from __future__ import annotations

import pytest
import torch

from gedanken.models.jepa import EncoderConfig, EncoderKind, tiny
from gedanken.models.jepa.keypoints import (
    KeypointEncoder,
    correlation_penalty,
    spatial_softmax,
    variance_hinge,
)


def _cell(i: float, g: int) -> float:
    """Coordinate in [-1, 1] of (fractional) cell index ``i`` on a grid of ``g`` cells."""
    return (i + 0.5) / g * 2.0 - 1.0


def test_spatial_softmax_returns_the_centroid_whatever_the_area() -> None:
    g = 32
    heat = torch.zeros(2, 2, g, g)
    heat[0, 0, 4:8, 10:20] = 1.0  # rows 4-7, columns 10-19: a wide patch
    heat[0, 1, 20:30, 2:4] = 1.0  # a tall one
    heat[1, 0, 15:16, 15:16] = 1.0  # a single cell
    heat[1, 1, 0:24, 0:24] = 1.0  # a huge one
    xy, p = spatial_softmax(heat, torch.full((2,), 40.0))
    want = torch.tensor(
        [
            [[_cell(14.5, g), _cell(5.5, g)], [_cell(2.5, g), _cell(24.5, g)]],
            [[_cell(15, g), _cell(15, g)], [_cell(11.5, g), _cell(11.5, g)]],
        ]
    )
    torch.testing.assert_close(xy, want, atol=1e-3, rtol=0)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 2))
    # Scaling a heat map does not move its keypoint (maps are standardised first).
    xy10, _ = spatial_softmax(heat * 10.0 + 3.0, torch.full((2,), 40.0))
    torch.testing.assert_close(xy10, xy, atol=1e-4, rtol=0)


def test_latent_layout_positions_features_motion() -> None:
    cfg = tiny().encoder
    enc = KeypointEncoder(cfg)
    k = cfg.keypoints
    xy = torch.rand(2, 3, k, 2) * 2 - 1
    f = torch.rand(2, 3, k)
    z = enc.latents(xy, f)
    assert z.shape == (2, 3, 5 * k) == (2, 3, cfg.latent_dim)
    torch.testing.assert_close(z[..., : 2 * k], xy.flatten(2))
    torch.testing.assert_close(z[..., 2 * k : 3 * k], f)
    motion = z[..., 3 * k :].view(2, 3, k, 2)
    assert torch.equal(motion[:, 0], torch.zeros(2, k, 2))  # frame 0 is paired with itself
    torch.testing.assert_close(motion[:, 2], (xy[:, 2] - xy[:, 1]) * cfg.velocity_scale)


def test_encode_frames_matches_per_frame_keypoints() -> None:
    torch.manual_seed(0)
    enc = KeypointEncoder(tiny().encoder)
    frames = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        z = enc.encode_frames(frames, chunk=3)  # chunking must not change anything
        xy, f = enc.keypoints(frames[1, 2:4])
    k = enc.cfg.keypoints
    assert z.shape == (2, 4, 5 * k)
    assert float(z[..., : 2 * k].abs().max()) <= 1.0  # positions inside the frame
    torch.testing.assert_close(z[1, 3, : 2 * k], xy[1].flatten())
    torch.testing.assert_close(z[1, 3, 3 * k :], (xy[1] - xy[0]).flatten() * enc.cfg.velocity_scale)
    with pytest.raises(ValueError, match="32x32"):
        enc.keypoints(torch.zeros(1, 16, 16, 3, dtype=torch.uint8))


def test_vicreg_terms() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 6, generator=g)
    assert float(variance_hinge(x, 0.5)) == 0.0  # std ~1 everywhere
    assert float(variance_hinge(torch.zeros(8, 3), 0.3)) == pytest.approx(0.3)  # collapsed: full hinge
    assert float(correlation_penalty(x)) < 1e-3  # independent columns
    dup = torch.cat((x[:, :1], x[:, :1] * 2 + 1), dim=1)  # two views of one quantity
    assert float(correlation_penalty(dup)) == pytest.approx(1.0, abs=1e-4)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="keypoints >= 1"):
        EncoderConfig(kind=EncoderKind.KEYPOINTS, keypoints=0)
    with pytest.raises(ValueError, match="even image_size"):
        EncoderConfig(kind=EncoderKind.KEYPOINTS, image_size=33, patch=3)
    assert EncoderConfig(kind=EncoderKind.VIT).latent_dim == 8 * 16
    assert EncoderConfig(keypoints=16).latent_dim == 80
