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
