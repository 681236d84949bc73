"""Synthetic untrimmed videos for tests and benchmarks: each video a sequence of visually distinct segments.

A segment shows one of four moving patterns (its *kind*: stripes drifting down, stripes drifting right, diagonal
stripes, rings expanding from a random centre) in two random colours, with a random spatial frequency, speed and
phase. The kind is what a clip encoder should capture; the colours are a nuisance that changes from segment to
segment, so an encoder that only sees colour (as a random-init one largely does) cannot tell kinds apart. Labelled
held-out segments make the k-NN probe of what HiCo learned.

``colours``: two fixed RGB colours for every segment instead (e.g. black and white). Random colours tell segments
apart, so a contrastive objective such as HiCo's can match clips of one segment by colour alone; with one palette
for all segments only the pattern (kind, frequency, speed, phase) does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vseg.io.video import write_video

KINDS = ("stripes_down", "stripes_right", "diagonal", "rings")


@dataclass(frozen=True)
class Segment:
    """One segment of a synthetic video: its kind (index into KINDS) and its frames ``[start, end)``."""

    kind: int
    start: int
    end: int


Palette = tuple[tuple[int, int, int], tuple[int, int, int]]


def render_segment(
    kind: int, frames: int, height: int, width: int, rng: np.random.Generator, colours: Palette | None = None
) -> Iterator[np.ndarray]:
    """The frames (H x W x 3 uint8) of one segment of ``kind`` with random frequency, speed and phase, in
    ``colours`` (unset: two random colours)."""
    if colours is None:
        palette = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    else:
        palette = np.asarray(colours, dtype=np.float32)
    frequency = rng.uniform(0.12, 0.25)  # radians per pixel
    speed = rng.uniform(0.25, 0.5) * rng.choice((-1, 1))  # radians per frame
    phase = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:
        coordinate = y
    elif kind == 1:
        coordinate = x
    elif kind == 2:
        coordinate = (x + y) / np.sqrt(2)
    else:
        cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
        coordinate = np.hypot(y - cy, x - cx)
        speed = -abs(speed)  # rings move outwards
    for t in range(frames):
        wave = 0.5 + 0.5 * np.sin(frequency * coordinate + speed * t + phase)
        image = palette[0] * wave[..., None] + palette[1] * (1 - wave[..., None])
        yield image.clip(0, 255).astype(np.uint8)


def plan_segments(frames: int, segment_frames: tuple[int, int], rng: np.random.Generator) -> list[Segment]:
    """Cut ``frames`` into segments of random lengths in ``segment_frames``, consecutive kinds always different."""
    segments, start, kind = [], 0, -1
    while start < frames:
        kind = int(rng.choice([k for k in range(len(KINDS)) if k != kind]))
        end = min(frames, start + int(rng.integers(segment_frames[0], segment_frames[1] + 1)))
        segments.append(Segment(kind, start, end))
        start = end
    return segments


def write_untrimmed_video(
    path: Path,
    seconds: float,
    fps: float = 10.0,
    size: tuple[int, int] = (96, 72),
    segment_seconds: tuple[float, float] = (3.0, 6.0),
    seed: int = 0,
    colours: Palette | None = None,
) -> list[Segment]:
    """Write one synthetic untrimmed video (H.264) of ``seconds`` at ``fps`` and ``size`` (W, H), its segments in
    ``colours`` (unset: random ones each); its segments."""
    rng = np.random.default_rng(seed)
    width, height = size
    total = round(seconds * fps)
    segments = plan_segments(total, (round(segment_seconds[0] * fps), round(segment_seconds[1] * fps)), rng)

    def frames() -> Iterator[np.ndarray]:
        for segment in segments:
            yield from render_segment(segment.kind, segment.end - segment.start, height, width, rng, colours)

    write_video(path, frames(), fps, gop=int(fps))
    return segments


def write_labelled_videos(
    folder: Path, name: str, count: int, seed: int, seconds: float = 3.0, fps: float = 10.0,
    size: tuple[int, int] = (96, 72), colours: Palette | None = None,
) -> Path:  # fmt: skip
    """``count`` short videos of one segment each, kinds in turn, in ``colours`` (unset: random ones each), and their
    ``path kind`` list ``folder/<name>.txt`` (the UCF101 list format): a labelled set for probes and fine-tuning."""
    rng = np.random.default_rng(seed)
    width, height = size
    lines = []
    for i in range(count):
        kind = i % len(KINDS)
        path = Path(folder) / f"{name}_{i:02d}.mp4"
        write_video(path, render_segment(kind, round(seconds * fps), height, width, rng, colours), fps)
        lines.append(f"{path.name} {kind}\n")
    listing = Path(folder) / f"{name}.txt"
    listing.write_text("".join(lines))
    return listing
