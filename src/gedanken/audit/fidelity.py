"""How faithfully a tokenizer's reconstructions keep the objects: the bound on everything a model built on it does.

A world model that predicts latents perfectly still shows what the decoder draws, so the audit's object
metrics on *reconstructions* of real frames are an upper bound for every learned model on that tokenizer.
"""

from __future__ import annotations

import numpy as np

from gedanken.audit.judge import JudgeConfig, judge_frames


def reconstruction_fidelity(
    true: np.ndarray,
    recon: np.ndarray,
    palette: tuple[tuple[int, int, int], ...],
    cfg: JudgeConfig | None = None,
) -> dict[str, float]:
    """Judge real frames and their reconstructions, both ``(*S, H, W, 3)`` uint8.

    Returns ``identity_accuracy`` (share of frames whose set of visible identities is exactly right),
    ``objects_kept`` (share of visible objects still visible), ``objects_extra`` (spurious identities per
    visible object), ``position_error_px`` (mean centroid error of kept objects, pixels), ``wrong_px`` (mean
    off-palette pixels per frame) and ``psnr`` (dB).
    """
    true, recon = np.asarray(true), np.asarray(recon)
    if true.shape != recon.shape:
        raise ValueError(f"frames {true.shape} and reconstructions {recon.shape} differ in shape")
    jt, jr = judge_frames(true, palette, cfg), judge_frames(recon, palette, cfg)
    vis = jt.visible
    both = vis & jr.visible
    err = np.hypot(jt.col - jr.col, jt.row - jr.row)[both]
    n_vis = max(int(vis.sum()), 1)
    mse = float(np.mean((true.astype(np.float64) - recon.astype(np.float64)) ** 2))
    return {
        "identity_accuracy": float((jt.visible == jr.visible).all(-1).mean()),
        "objects_kept": float(both.sum() / n_vis),
        "objects_extra": float((jr.visible & ~vis).sum() / n_vis),
        "position_error_px": float(err.mean()) if err.size else float("nan"),
        "wrong_px": float(jr.wrong_px.mean()),
        "psnr": float(10 * np.log10(255.0**2 / max(mse, 1e-10))),
    }
