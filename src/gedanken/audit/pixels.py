"""Pixel sanity metrics, batched over any leading shape: PSNR and SSIM of uint8 frames.

Both work for every environment, built-in or external, because they need nothing but frames. PSNR of two
identical frames is infinite; it is capped at ``PSNR_CAP`` dB so that means stay finite (a perfect model
scores exactly the cap). SSIM is the usual Wang et al. index with a ``7 x 7`` uniform window
(scikit-image's default), constants ``K1 = 0.01``, ``K2 = 0.03`` and a data range of 255, computed on the
BT.601 luma of the frames (a third of the cost of per-channel SSIM; colour errors are PSNR's and the
judge's job).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PSNR_CAP = 100.0  # dB; an exact frame scores this instead of infinity
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_WIN = 7


def _check_pair(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape:
        raise ValueError(f"predicted frames {pred.shape} and true frames {true.shape} differ in shape")
    if pred.ndim < 3 or pred.shape[-1] != 3:
        raise ValueError(f"frames must be (..., H, W, 3), got {pred.shape}")


def mse(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean squared error per frame: ``(*S, H, W, 3)`` x2 -> ``(*S,)`` float64 (in uint8 units squared)."""
    _check_pair(pred, true)
    p = pred.reshape(-1, int(np.prod(pred.shape[-3:])))
    q = true.reshape(p.shape)
    out = np.empty(p.shape[0], np.float64)
    for s in range(0, p.shape[0], 256):  # chunks that stay in cache
        d = p[s : s + 256].astype(np.float32)
        d -= q[s : s + 256]
        out[s : s + 256] = np.einsum("ij,ij->i", d, d, dtype=np.float64) / d.shape[1]
    return out.reshape(pred.shape[:-3])


def psnr(pred: np.ndarray, true: np.ndarray, cap: float = PSNR_CAP) -> np.ndarray:
    """PSNR in dB per frame, ``(*S,)`` float64, capped at ``cap`` (exact frames score ``cap``)."""
    m = mse(pred, true)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(255.0**2 / m)
    return np.minimum(out, cap)


def luma(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``(..., 3)`` uint8 frames, float32 in 0..255."""
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def ssim(pred: np.ndarray, true: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Mean SSIM (on luma) per frame, ``(*S,)`` float64 (1.0 for identical frames)."""
    _check_pair(pred, true)
    lead, (h, w) = pred.shape[:-3], pred.shape[-3:-1]
    if min(h, w) < _WIN:
        raise ValueError(f"SSIM needs frames of at least {_WIN}x{_WIN} pixels, got {h}x{w}")
    a_all = pred.reshape(-1, h, w, 3)
    b_all = true.reshape(-1, h, w, 3)
    out = np.empty(a_all.shape[0], np.float64)
    size = (1, _WIN, _WIN)
    corr = _WIN * _WIN / (_WIN * _WIN - 1.0)  # sample (co)variances over the window, as scikit-image does
    pad = (_WIN - 1) // 2  # the border, where the window would leave the frame, is cropped (as scikit-image)
    for s in range(0, a_all.shape[0], chunk):
        a = luma(a_all[s : s + chunk])  # (n, H, W)
        b = luma(b_all[s : s + chunk])
        mu_a = ndimage.uniform_filter(a, size)
        mu_b = ndimage.uniform_filter(b, size)
        var_a = (ndimage.uniform_filter(a * a, size) - mu_a * mu_a) * corr
        var_b = (ndimage.uniform_filter(b * b, size) - mu_b * mu_b) * corr
        cov = (ndimage.uniform_filter(a * b, size) - mu_a * mu_b) * corr
        num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
        den = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
        m = (num / den)[:, pad : h - pad, pad : w - pad]
        out[s : s + chunk] = m.reshape(m.shape[0], -1).mean(1)
    return out.reshape(lead)
