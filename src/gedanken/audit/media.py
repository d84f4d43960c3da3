"""Self-contained media for the HTML report: inline SVG line plots and animated GIFs as data URIs.

Nothing here fetches anything: plots are plain SVG text, clips are GIFs encoded with PyAV (FFmpeg's GIF
encoder) from an explicit palette, embedded as ``data:image/gif;base64,...``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence

import av
import numpy as np
from av.video.frame import VideoFrame

# Line colours (colour-blind friendly, Okabe-Ito order) cycled over series.
COLOURS: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt_tick(v: float) -> str:
    return f"{v:.3g}"


def line_plot(
    series: dict[str, Sequence[float]],
    title: str,
    xlabel: str = "horizon (frames)",
    ylabel: str = "",
    width: int = 420,
    height: int = 260,
) -> str:
    """An inline ``<svg>`` line plot of each series against 1..len (NaN points are gaps)."""
    left, right, top, bottom = 52, 12, 28, 40
    pw, ph = width - left - right, height - top - bottom
    vals = [v for ys in series.values() for v in ys if v is not None and math.isfinite(v)]
    n = max((len(ys) for ys in series.values()), default=1)
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def sx(i: float) -> float:
        return left + (i - 1) / max(n - 1, 1) * pw

    def sy(v: float) -> float:
        return top + (hi - v) / (hi - lo) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for t in _ticks(lo, hi):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{_fmt_tick(t)}</text>'
        )
    for t in _ticks(1, n):
        if t < 1 or t > n:
            continue
        x = sx(t)
        out.append(
            f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="middle" font-size="10">{t:.0f}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2:.0f}" y="{height - 6}" text-anchor="middle" font-size="11">'
        f"{html.escape(xlabel)}</text>"
    )
    if ylabel:
        out.append(
            f'<text x="12" y="{top + ph / 2:.0f}" text-anchor="middle" font-size="11" '
            f'transform="rotate(-90 12 {top + ph / 2:.0f})">{html.escape(ylabel)}</text>'
        )
    for k, (name, ys) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        segments, cur = [], []
        for i, v in enumerate(ys, start=1):
            if v is None or not math.isfinite(v):
                if cur:
                    segments.append(cur)
                cur = []
                continue
            cur.append(f"{sx(i):.1f},{sy(v):.1f}")
        if cur:
            segments.append(cur)
        for seg in segments:
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{" ".join(seg)}">'
                f"<title>{html.escape(name)}</title></polyline>"
            )
        ly = top + 12 + 13 * k
        out.append(f'<rect x="{left + 6}" y="{ly - 8}" width="10" height="3" fill="{colour}"/>')
        out.append(f'<text x="{left + 20}" y="{ly - 4}" font-size="10">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def side_by_side(truth: np.ndarray, pred: np.ndarray | None, gap: int = 2) -> np.ndarray:
    """``(T, H, W, 3)`` truth | pred -> ``(T, H, 2W + gap, 3)`` uint8 with a white separator."""
    if pred is None:
        return truth
    t, h, w, _ = truth.shape
    out = np.full((t, h, 2 * w + gap, 3), 255, np.uint8)
    out[:, :, :w] = truth
    out[:, :, w + gap :] = pred
    return out


def _quantise(frames: np.ndarray, exact: Sequence[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Map frames to <= 256 colours: ``exact`` colours kept exactly, the rest to a 6x6x6 cube.

    Returns ``(indices (T, H, W) uint8, palette (256, 4) uint8 ARGB)``.
    """
    exact = list(dict.fromkeys(tuple(int(c) for c in e) for e in exact))[:40]
    levels = np.array([0, 51, 102, 153, 204, 255], np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)  # (216, 3)
    pal_rgb = np.zeros((256, 3), np.uint8)
    pal_rgb[: len(exact)] = np.asarray(exact, np.uint8).reshape(-1, 3)
    pal_rgb[len(exact) : len(exact) + 216] = cube
    q = np.rint(frames.astype(np.float32) / 51.0).astype(np.int32)  # (T, H, W, 3) in 0..5
    idx = len(exact) + q[..., 0] * 36 + q[..., 1] * 6 + q[..., 2]
    code = (frames[..., 0].astype(np.int32) << 16) | (frames[..., 1].astype(np.int32) << 8) | frames[..., 2]
    for i, (r, g, b) in enumerate(exact):
        idx = np.where(code == (r << 16 | g << 8 | b), i, idx)
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0] = 255  # alpha first: PyAV takes the palette as ARGB
    palette[:, 1:] = pal_rgb
    return idx.astype(np.uint8), palette


def gif_bytes(frames: np.ndarray, fps: float = 15.0, exact: Sequence[tuple[int, int, int]] = ()) -> bytes:
    """Encode ``(T, H, W, 3)`` uint8 frames as a looping GIF (colours in ``exact`` kept exactly)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    idx, palette = _quantise(frames, exact)
    buf = io.BytesIO()
    with av.open(buf, "w", format="gif") as container:
        stream = container.add_stream("gif", rate=max(1, round(fps)))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "pal8"
        for i in range(frames.shape[0]):
            for packet in stream.encode(VideoFrame.from_ndarray((idx[i], palette), format="pal8")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def gif_data_uri(frames: np.ndarray, fps: float = 15.0, exact: Sequence[tuple[int, int, int]] = ()) -> str:
    """``data:image/gif;base64,...`` of :func:`gif_bytes`."""
    return "data:image/gif;base64," + base64.b64encode(gif_bytes(frames, fps, exact)).decode("ascii")
