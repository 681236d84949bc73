"""Synthetic videos whose frames say their own index, to check where a cut starts and ends."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from vseg.io.video import write_video

STRIPE = 8  # pixels per bit


def coded_frames(count: int, width: int = 96, height: int = 48) -> Iterator[np.ndarray]:
    """Frame i shows the bits of i as black/white vertical stripes, lowest bit on the left (width // 8 bits)."""
    bits = width // STRIPE
    assert count <= 2**bits, f"{count} frames need more than {bits} bits"
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        for bit in range(bits):
            if i >> bit & 1:
                frame[:, bit * STRIPE : (bit + 1) * STRIPE] = 255
        yield frame


def frame_code(frame: np.ndarray) -> int:
    """The index a coded frame shows (read at the centre of each stripe, robust to H.264 at crf 18)."""
    row = np.asarray(frame)[frame.shape[0] // 2]
    bits = frame.shape[1] // STRIPE
    return sum(int(row[bit * STRIPE + STRIPE // 2].mean() > 127) << bit for bit in range(bits))


def make_video(path: Path, frames: int, fps: float | Fraction | str = 10, gop: int | None = None) -> Path:
    write_video(path, coded_frames(frames), fps, gop=gop)
    return path


CODE_BITS = 12  # a cut video shows its frame index in a band of CODE_BITS stripes along its bottom


def cut_frames(count: int, cuts: list[int], width: int = 160, height: int = 96, seed: int = 0) -> Iterator[np.ndarray]:
    """Frames of a video with hard cuts at ``cuts`` (the first frame of each new shot): every shot is a blocky
    field in its own colours, drifting a pixel a frame; the bottom sixth shows the frame index as black and white
    stripes."""
    rng = np.random.default_rng(seed)
    starts = [0, *cuts]
    looks = []
    for shot in range(len(starts)):
        hue = np.asarray([np.cos(shot * 2.4), np.cos(shot * 2.4 + 2.1), np.cos(shot * 2.4 + 4.2)])
        colour = 128 + 100 * hue
        coarse = rng.uniform(-40, 40, size=(height // 16 + 1, (width + 64) // 16 + 1, 1)) * rng.uniform(0.5, 1.5, 3)
        texture = np.kron(coarse, np.ones((16, 16, 1)))[:height, : width + 64]  # blocks: a slow drift changes little
        looks.append(np.clip(colour + texture, 0, 255).astype(np.uint8))
    band = height - height // 6
    stripe = width / CODE_BITS
    for i in range(count):
        shot = sum(i >= s for s in starts) - 1
        frame = np.ascontiguousarray(looks[shot][:, (i - starts[shot]) % 64 : (i - starts[shot]) % 64 + width])
        frame[band:] = 0
        for bit in range(CODE_BITS):
            if i >> bit & 1:
                frame[band:, round(bit * stripe) : round((bit + 1) * stripe)] = 255
        yield frame


def read_cut_code(image: np.ndarray) -> int:
    """The frame index shown in the bottom band of a frame of :func:`cut_frames`, at any scale."""
    image = np.asarray(image)
    row = image[image.shape[0] - image.shape[0] // 12]
    stripe = image.shape[1] / CODE_BITS
    return sum(int(row[int((bit + 0.5) * stripe)].mean() > 127) << bit for bit in range(CODE_BITS))


def make_cut_video(path: Path, frames: int, cuts: list[int], fps: float = 24, **size) -> Path:
    write_video(path, cut_frames(frames, cuts, **size), fps)
    return path


def write_timed_video(path: Path, frames: list[np.ndarray], pts: list[int], time_base: Fraction) -> Path:
    """Encode ``frames`` with PyAV (H.264, yuv420p), frame ``i`` at presentation timestamp ``pts[i]`` in units of
    ``time_base``: a variable frame rate, or a first timestamp other than 0, exactly as chosen."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(len(pts) / float((pts[-1] - pts[0] + 1) * time_base)))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame, stamp in zip(frames, pts, strict=True):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts, picture.time_base = stamp, time_base
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return path


def decoded_codes(path: Path) -> list[int]:
    """The frame index each decoded frame of a :func:`cut_frames` video shows, every frame in order (PyAV)."""
    import av

    with av.open(str(path)) as container:
        return [read_cut_code(frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]


def decoded_times(path: Path) -> list[Fraction]:
    """The presentation time in seconds of every decoded frame of ``path`` (PyAV), in order."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * stream.time_base for frame in container.decode(stream)]
