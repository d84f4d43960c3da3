"""Video files for people: write and read H.264 mp4 clips with PyAV.

Frames are ``(T, H, W, 3)`` uint8 RGB. Small frames are upscaled by an integer factor with nearest-neighbour
(so a 64x64 clip stays crisp at 256x256) and padded by one edge pixel where yuv420p needs even sizes. Writes go
to a temporary file in the destination folder that is renamed into place, so a crash never leaves half a clip.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`write_mp4` wrote."""

    path: Path
    frames: int  # T
    size: tuple[int, int]  # (H, W) of the encoded video, after scaling and padding
    fps: float


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale ``(T, H, W, 3) -> (T, H*scale, W*scale, 3)``."""
    if scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    if scale == 1:
        return frames
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


MIN_FPS, MAX_FPS = 1.0, 1000.0  # frame rates an mp4 is written at (a slower or faster one does not play)


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[0] == 0:
        raise ValueError("cannot write a video with no frames")


def write_mp4(
    frames: np.ndarray,
    path: str | os.PathLike[str],
    fps: float = 15.0,
    *,
    scale: int = 4,
    crf: int = 18,
) -> VideoInfo:
    """Encode ``frames`` (T, H, W, 3) uint8 as H.264 yuv420p mp4 at ``path`` (atomic: temp file + rename)."""
    _check_frames(frames)
    if not MIN_FPS <= fps <= MAX_FPS:  # NaN fails too; outside it H.264 in mp4 stores no playable rate
        raise ValueError(f"fps must be between {MIN_FPS:g} and {MAX_FPS:g}, got {fps}")
    x = upscale(frames, scale)  # (T, H*s, W*s, 3)
    pad_h, pad_w = x.shape[1] % 2, x.shape[2] % 2
    if pad_h or pad_w:
        x = np.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:  # name the file asked for, not our temporary one
        raise OSError(e.errno, f"cannot write {out}: {e.strerror}") from None
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height = int(x.shape[2]), int(x.shape[1])
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for frame in x:
                for packet in stream.encode(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                ):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.debug("wrote %s (%d frames, %dx%d)", out, len(x), x.shape[2], x.shape[1])
    return VideoInfo(out, int(len(x)), (int(x.shape[1]), int(x.shape[2])), float(fps))


def read_mp4(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode every frame of a video file as ``(T, H, W, 3)`` uint8 RGB."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no video at {p}")
    with av.open(str(p)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{p} contains no video frames")
    return np.stack(frames)  # (T, H, W, 3)
