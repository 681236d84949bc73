"""Video files: which ffmpeg to run, what a video holds (decord), and writing frames to an H.264 file.

ffmpeg, first found wins: the ``IMAGEIO_FFMPEG_EXE`` environment variable, then the static build shipped
with the ``imageio-ffmpeg`` package (a known version with libx264, so every machine cuts the same clips),
then ``ffmpeg`` on PATH. ``ffprobe`` is never needed: videos are probed with decord.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from vseg.errors import ConfigError, DataError
from vseg.io import atomic

# Containers write_video can write H.264 into, by file suffix (ffmpeg's muxer names).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary to run (see the module docstring for the order); ConfigError when there is none."""
    explicit = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise ConfigError(f"IMAGEIO_FFMPEG_EXE={explicit}: no such executable")
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        pass
    found = shutil.which("ffmpeg")
    if found is None:
        raise ConfigError(
            "no ffmpeg found: install the imageio-ffmpeg package (pip install imageio-ffmpeg), put ffmpeg on PATH, "
            "or set IMAGEIO_FFMPEG_EXE to an ffmpeg binary"
        )
    return found


@dataclass(frozen=True)
class VideoInfo:
    """What decord reads from a video: frame count, average frame rate, and the frame size in pixels."""

    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Seconds: frames / fps (the time just after the last frame)."""
        return self.frames / self.fps


def open_video(path: str | Path):
    """A decord ``VideoReader`` of ``path`` (decoding on the CPU); DataError naming the file if it cannot be opened."""
    import decord

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "video missing")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # noqa: BLE001 - decord raises its own DECORDError, and RuntimeError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(path, f"cannot read video ({reason[:200]})") from None


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video, read with decord; DataError naming the file when it is unreadable,
    has no frames or no frame rate."""
    reader = open_video(path)
    frames = len(reader)
    fps = float(reader.get_avg_fps())
    if frames <= 0:
        raise DataError(path, "video has no frames")
    if not fps > 0:
        raise DataError(path, f"video has no valid frame rate ({fps})")
    height, width = reader[0].shape[:2] if frames else (0, 0)
    return VideoInfo(frames=frames, fps=fps, width=int(width), height=int(height))


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction | str,
    crf: int = 18,
    preset: str = "veryfast",
    gop: int | None = None,
) -> int:
    """Encode RGB frames (each HxWx3 uint8, one size, even W and H) as H.264 (libx264, yuv420p) at ``fps``.

    ``fps`` may be a number, a Fraction or ffmpeg's text (``"30000/1001"``). ``gop``: the keyframe interval in
    frames (unset: x264's default, 250). The file is written atomically (``path`` appears only when complete);
    the container follows the suffix (.mp4, .m4v, .mov, .mkv, .avi). Returns the number of frames written.
    """
    path = Path(path)
    container = CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"{path}: write_video writes {', '.join(CONTAINERS)} files")
    rate = str(fps) if isinstance(fps, str | Fraction) else repr(float(fps))
    count = 0
    with atomic.atomic_path(path) as tmp:
        process = None
        try:
            for frame in frames:
                frame = np.asarray(frame)
                if process is None:
                    shape = frame.shape
                    if frame.ndim != 3 or shape[2] != 3 or shape[0] % 2 or shape[1] % 2:
                        raise ValueError(f"frames must be HxWx3 with even H and W (yuv420p), got {shape}")
                    command = [
                        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{shape[1]}x{shape[0]}", "-r", rate, "-i", "-",
                        "-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                        *(["-g", str(gop)] if gop else []),
                        "-f", container, str(tmp),
                    ]  # fmt: skip
                    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
                elif frame.shape != shape:
                    raise ValueError(f"frame {count} is {frame.shape}, the first frame was {shape}")
                process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
                count += 1
            if process is None:
                raise ValueError(f"{path}: no frames to write")
            process.stdin.close()
            error = process.stderr.read().decode(errors="replace").strip()
            if process.wait() != 0:
                raise RuntimeError(f"ffmpeg failed writing {path}: {error[-500:]}")
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    return count
