"""How faithfully a tokenizer's reconstructions keep the objects: the bound on everything a model built on it does.

A world model that predicts latents perfectly still shows what the decoder draws, so the audit's object
metrics on *reconstructions* of real frames are an upper bound for every learned model on that tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def round_trip_fidelity(
    frames: np.ndarray,
    round_trip: Callable[[np.ndarray], np.ndarray],
    palette: tuple[tuple[int, int, int], ...],
    at: Iterable[int],
) -> dict[int, dict[str, float]]:
    """The judge after ``n`` passes of ``round_trip`` (uint8 ``(N, H, W, 3)`` -> the same), for each ``n`` in
    ``at``: :func:`reconstruction_fidelity` plus ``area_ratio_median``, the median ratio of each visible
    object's judged area to its true area (above 1: the round trip grows objects, below 1: it erodes them).

    A world model that re-encodes its own frames runs its tokenizer's round trip once per predicted frame, so
    a round trip that is not a fixed point shows here long before it shows in a rollout.
    """
    at = sorted(set(at))
    if not at or at[0] < 1:
        raise ValueError(f"round trips to judge after must be >= 1, got {at}")
    true = judge_frames(frames, palette)
    out: dict[int, dict[str, float]] = {}
    x = frames
    for n in range(1, at[-1] + 1):
        x = round_trip(x)
        if n in at:
            area = judge_frames(x, palette).area[true.visible]
            ratio = float(np.median(area / np.maximum(true.area[true.visible], 1)))
            out[n] = {**reconstruction_fidelity(frames, x, palette), "area_ratio_median": ratio}
    return out
