"""Video files: which ffmpeg to run, what a video holds (decord), its frames' presentation timestamps (PyAV), its
frames streamed in order (PyAV), writing frames to an H.264 file, and a copy with chapter markers.

ffmpeg, first found wins: the ``IMAGEIO_FFMPEG_EXE`` environment variable, then the static build shipped
with the ``imageio-ffmpeg`` package (a known version with libx264, so every machine cuts the same clips),
then ``ffmpeg`` on PATH. ``ffprobe`` is never needed: videos are probed with decord and PyAV.

Frames read at random (clips, probes) come from decord (frame ``i`` is the ``i``-th frame in presentation order);
a whole video read in order (shots: ``vseg prep shots``, ``vseg scenes``) comes from PyAV's decoder with frame
threads (:class:`FrameReader`), whose memory stays flat in the video's length where decord's grows (275 MB against
97 MB for 90 s of 1080p, BENCHMARKS.md). Times come from PyAV, which reads the stream's packets without decoding
them (:func:`read_frame_times`): the exact rational presentation timestamps, where decord's
``get_frame_timestamp`` gives float32 seconds counted from the first frame.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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


def quiet_ffmpeg(*arguments: str) -> list[str]:
    """An ffmpeg command line: :func:`ffmpeg_exe`, errors only, no stdin, overwriting, then ``arguments``."""
    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *arguments]


def run_ffmpeg(command: list[str], source: str | Path, failure: str) -> None:
    """Run an ffmpeg command to its end; DataError naming ``source`` as "ffmpeg failed ``failure``: <its last error
    line>" (or its exit code when it printed nothing) when it fails."""
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        raise DataError(source, f"ffmpeg failed {failure}: {lines[-1] if lines else result.returncode}")


def open_video(path: str | Path, width: int = -1, height: int = -1, threads: int = 1):
    """A decord ``VideoReader`` of ``path`` (decoding on the CPU, ``threads`` decoder threads, 0 for one per core),
    giving frames scaled to ``width`` x ``height`` when set; DataError naming the file if it cannot be opened."""
    import decord

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "video missing")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    with _captured_stderr() as captured:
        try:
            return decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height, num_threads=threads)
        except Exception as exc:  # noqa: BLE001 - decord raises its own DECORDError, and RuntimeError
            reason = _reason(exc, captured())
    raise DataError(path, f"cannot read video ({reason})")


def decode_frames(reader, indices: list[int], path: str | Path) -> np.ndarray:
    """Frames ``indices`` of an open decord reader as one ``N x H x W x 3`` uint8 array; DataError naming ``path``
    and the frames when they cannot be decoded."""
    try:
        return reader.get_batch(indices).asnumpy()
    except Exception as exc:  # noqa: BLE001 - decord raises its own DECORDError, and RuntimeError
        raise DataError(path, f"cannot decode frames {indices[0]}-{indices[-1]} ({_reason(exc)[:160]})") from None


@contextmanager
def _captured_stderr() -> Iterator[Callable[[], str]]:
    """Catch what C code writes to file descriptor 2 (decord logs why it cannot open a file there, on top of
    raising a bare "Error reading ..."), so that a bad video makes one line of output, not three. Yields a
    function that returns what was caught so far."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as sink:

        def caught() -> str:
            sink.seek(0)
            return sink.read().decode(errors="replace")

        os.dup2(sink.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
    try:
        height, width = reader[0].shape[:2]  # decoding the first frame also proves the stream decodes
    except Exception as exc:  # noqa: BLE001 - decord raises its own DECORDError
        raise DataError(path, f"cannot decode the first frame ({_reason(exc)})") from None
    return VideoInfo(frames=frames, fps=fps, width=int(width), height=int(height))


def _reason(exc: BaseException, log: str = "") -> str:
    """decord's or PyAV's error as one short line: libav's reason (``Invalid data found ...``), from the error itself
    (PyAV's ``strerror``) or from what decord logged."""
    if getattr(exc, "strerror", None) and not log:
        return str(exc.strerror)
    text = f"{exc}\n{log}".strip()
    if "cannot find video stream" in text:
        return "no video stream"
    reason = re.search(r"ERROR opening: .*?, ([^,\n]+)$", text, re.M)
    if reason:
        return reason[1].strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def quiet_decoder_logs() -> None:
    """Silence libav's messages inside decord (this process): vseg reports a bad video as one line itself."""
    import decord

    decord.logging.set_level(decord.logging.QUIET)


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction | str,
    crf: int = 18,
    preset: str = "veryfast",
    gop: int | None = None,
) -> int:
    """Encode RGB frames (each HxWx3 uint8, one size, even W and H) as H.264 (libx264, yuv420p) at ``fps``.

    ``fps`` may be a number, a Fraction or ffmpeg's text (``"30000/1001"``). ``gop``: a keyframe every ``gop``
    frames exactly, no others (unset: x264's defaults, at most 250 apart plus scene cuts). The file is written
    atomically (``path`` appears only when complete); the container follows the suffix (.mp4, .m4v, .mov, .mkv,
    .avi). Returns the number of frames written.
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
                    command = quiet_ffmpeg(
                        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{shape[1]}x{shape[0]}", "-r", rate, "-i", "-",
                        "-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                        *(["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"] if gop else []),
                        "-f", container, str(tmp),
                    )  # fmt: skip
                    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
                elif frame.shape != shape:
                    raise ValueError(f"frame {count} is {frame.shape}, the first frame was {shape}")
                try:
                    process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
                except BrokenPipeError:
                    break  # ffmpeg stopped: its error is read below
                count += 1
            if process is None:
                raise ValueError(f"{path}: no frames to write")
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
            error = process.stderr.read().decode(errors="replace").strip()
            if process.wait() != 0:
                raise RuntimeError(f"ffmpeg failed writing {path}: {error[-500:]}")
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    return count


def keyframe_indices(path: str | Path) -> list[int]:
    """Indices of the keyframes of a video (where a stream copy may start), read with decord."""
    reader = open_video(path)
    try:
        return [int(k) for k in reader.get_key_indices()]
    except Exception as exc:  # noqa: BLE001 - decord raises its own DECORDError
        raise DataError(path, f"cannot read the keyframe index ({exc})") from None


# ---------------------------------------------------------------------------------------------- timestamps


@dataclass(frozen=True)
class FrameTimes:
    """The presentation timestamps of a video stream's frames in presentation order: ``pts[i] * time_base``
    seconds is when a player shows frame ``i``; ``end`` is the pts just after the last frame (its pts plus its
    duration); ``announced_end`` the end in seconds that the file's header announces (None: it says nothing)."""

    pts: np.ndarray  # int64, strictly increasing
    time_base: Fraction
    end: int
    announced_end: Fraction | None = None

    def __len__(self) -> int:
        return len(self.pts)

    def first(self, count: int) -> FrameTimes:
        """The times of the first ``count`` frames alone (``end``: the next frame's timestamp)."""
        return FrameTimes(self.pts[:count], self.time_base, self.frame_pts(count), self.announced_end)

    def frame_pts(self, frame: int) -> int:
        """The pts of frame ``frame``; for ``frame == len(self)`` the end of the last frame."""
        return int(self.pts[frame]) if frame < len(self.pts) else self.end


def read_frame_times(path: str | Path) -> FrameTimes:
    """The presentation timestamps of the first video stream of ``path``, read with PyAV from the packets alone
    (nothing is decoded). DataError naming the file when it has no video stream, no packets, packets without
    timestamps, or decode timestamps that go backwards or repeat (joined files whose clock restarts: no player
    agrees on when their frames are shown). A file that ends early (truncated) gives the packets that are there."""
    import av

    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(path, f"cannot read video ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise DataError(path, "has no video stream")
        stream = container.streams.video[0]
        pts: list[int] = []
        durations: list[int] = []
        last_dts = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the empty packet that flushes the demuxer
                    continue
                if packet.pts is None:
                    raise DataError(path, f"frame {len(pts)} has no timestamp (remux it: ffmpeg -i IN -c copy OUT.mkv)")
                if packet.dts is not None and last_dts is not None and packet.dts <= last_dts:
                    seconds = float(packet.dts * stream.time_base), float(last_dts * stream.time_base)
                    raise DataError(
                        path, f"timestamps go backwards at packet {len(pts)} ({seconds[0]:.3f} s after "
                        f"{seconds[1]:.3f} s); re-encode it with fresh timestamps before finding its scenes",
                    )  # fmt: skip
                last_dts = packet.dts if packet.dts is not None else last_dts
                pts.append(packet.pts)
                durations.append(packet.duration or 0)
        except av.error.FFmpegError:
            pass  # damaged data at the end: keep the packets read so far
        if not pts:
            raise DataError(path, "video stream has no frames")
        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        sorted_pts = np.asarray(pts, dtype=np.int64)[order]
        if (np.diff(sorted_pts) <= 0).any():
            raise DataError(path, "two frames have the same timestamp; re-encode it with fresh timestamps")
        last = int(sorted_pts[-1])
        duration = durations[int(order[-1])]
        if duration <= 0:  # unknown: the gap before the last frame, or one frame at the average rate
            if len(sorted_pts) > 1:
                duration = last - int(sorted_pts[-2])
            else:
                rate = stream.average_rate or stream.guessed_rate or 25
                duration = max(1, round(1 / (Fraction(rate) * stream.time_base)))
        announced = None
        if stream.duration is not None:
            announced = (stream.start_time or 0) * Fraction(stream.time_base) + stream.duration * stream.time_base
        elif container.duration is not None:
            announced = Fraction(container.duration + (container.start_time or 0), av.time_base)
        return FrameTimes(sorted_pts, Fraction(stream.time_base), last + duration, announced)


def embed_chapters(video: Path, ffmetadata: Path, out: Path) -> Path:
    """Write ``out``: ``video`` with the chapters of the FFmetadata file ``ffmetadata``, every stream copied as it is
    (no re-encode) and every timestamp kept (``-copyts``, so chapter times and frame times stay on one clock)."""
    container = CONTAINERS.get(Path(out).suffix.lower())
    if container is None or container == "avi":
        raise ValueError(f"{out}: chapters are written into .mp4, .m4v, .mov or .mkv files")
    with atomic.atomic_path(Path(out)) as tmp:
        command = quiet_ffmpeg(
            "-i", str(video), "-f", "ffmetadata", "-i", str(ffmetadata), "-map", "0", "-map_chapters", "1",
            "-c", "copy", "-copyts", "-f", container, str(tmp),
        )  # fmt: skip
        run_ffmpeg(command, video, f"writing the chapters into {Path(out).name}")
    return Path(out)


# ------------------------------------------------------------------------------------------ streaming frames


def _open_stream(path: Path, threads: int):
    """A PyAV container of ``path`` and its first video stream, decoding with ``threads`` frame threads (0: one per
    core); DataError naming the file when it cannot be opened or has no video stream."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(path, f"cannot read video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise DataError(path, "has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    return container, stream


def stream_info(path: str | Path, times: FrameTimes) -> VideoInfo:
    """What PyAV reads of a video's header, with the frame count of ``times`` (its packets): frames, the average
    frame rate and the frame size; DataError naming the file when it has no frame rate or size."""
    container, stream = _open_stream(Path(path), 1)
    with container:
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
    if not rate or float(rate) <= 0:
        raise DataError(path, "video has no valid frame rate")
    if not width or not height:
        raise DataError(path, "video has no frame size")
    return VideoInfo(frames=len(times), fps=float(rate), width=int(width), height=int(height))


class FrameReader:
    """The frames of a video's first video stream, as ``height x width x 3`` uint8 RGB arrays scaled by swscale,
    decoded with PyAV: :meth:`frames` streams them all in presentation order (frame ``i`` has the timestamp
    ``times.pts[i]``), :meth:`read` fetches a few by seeking. Memory stays flat whatever the video's length."""

    def __init__(self, path: str | Path, times: FrameTimes, width: int, height: int, threads: int = 0):
        self.path, self.times = Path(path), times
        self.width, self.height, self.threads = width, height, threads

    def _array(self, frame) -> np.ndarray:
        """The frame scaled to the reader's size, RGB. swscale scales in YUV 4:2:0 (area averaging) and OpenCV
        converts the small picture to RGB (BT.601, as swscale's own RGB output): under a third of the CPU time of
        swscale's bilinear RGB output at 720p, within 2 grey levels on average, chroma as sharp as the keyframes'
        JPEG 4:2:0 keeps it. Odd sizes (no 4:2:0 picture) take swscale's RGB."""
        if self.width % 2 or self.height % 2:
            return frame.to_ndarray(width=self.width, height=self.height, format="rgb24", interpolation="AREA")
        import cv2

        planes = frame.reformat(self.width, self.height, "yuv420p", interpolation="AREA").to_ndarray()
        return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in presentation order; DataError naming the file and frame when one cannot be decoded. A file
        that ends early (truncated) gives the frames that decode."""
        import av

        container, stream = _open_stream(self.path, self.threads)
        index = 0
        with container:
            try:
                for frame in container.decode(stream):
                    yield self._array(frame)
                    index += 1
            except av.error.FFmpegError:
                if index == 0:
                    raise DataError(self.path, "cannot decode its first frame") from None
                # damaged data at the end: the frames decoded so far are the video

    def read(self, indices: Iterable[int]) -> dict[int, np.ndarray]:
        """Frames ``indices``, each found by seeking to the keyframe before it and decoding up to its timestamp;
        DataError naming the file and frame when one cannot be found."""
        import av

        found: dict[int, np.ndarray] = {}
        container, stream = _open_stream(self.path, self.threads)
        with container:
            for index in sorted(set(indices)):
                target = int(self.times.pts[index])
                container.seek(target, backward=True, any_frame=False, stream=stream)
                try:
                    for frame in container.decode(stream):
                        if frame.pts is not None and frame.pts >= target:
                            if frame.pts == target:
                                found[index] = self._array(frame)
                            break
                except av.error.FFmpegError:
                    pass
                if index not in found:
                    raise DataError(self.path, f"cannot decode frame {index} again (seeking to it)")
        return found
