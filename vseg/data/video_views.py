"""Clips of trimmed video files as HiCo samples them for fine-tuning and its test (``ft_s3dg_*.yaml``), and the
evaluation views of its test protocol, for features and probes.

Interval-based sampling (HiCo's ``datasets/base/base_dataset.py``, ``_interval_based_sampling``), in frames of a
video of ``length`` frames at ``fps``: a clip spans ``clip = frames * sampling_rate * fps / target_fps`` frames (2.13 s
for 16 x 4 at 30 fps), starts at ``start`` in ``[0, max(length - clip, 0)]``, and its frames are
``linspace(start, start + clip - 1, frames)`` (float32), clamped to ``[0, length - 1]`` and truncated. A video shorter
than a clip keeps the nominal stride and repeats its last frame (it is not stretched). Training draws the start
uniformly; the test's ``views`` clips start at ``max_start * i / views`` for ``i = 0 .. views - 1`` (one view: the
centre, ``max_start / 2``).

Evaluation views: every frame is centre-cropped to a square of ``crop_fraction`` of its short side (224 / 256 =
0.875) and resized to ``size`` (112), bilinearly without antialiasing on the float frames as the reference
(``antialias``: antialiased on the uint8 frames), then normalised with 0.45 / 0.225.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.v2.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from vseg.errors import DataError
from vseg.io.video import decode_frames, open_video


def interval_span(length: int, fps: float, frames: int, sampling_rate: int, target_fps: float) -> tuple[float, float]:
    """A clip's span in frames, ``frames * sampling_rate * fps / target_fps``, and its latest start, ``max(length -
    span, 0)`` (HiCo's ``clip_length`` and ``max_idx``)."""
    span = frames * sampling_rate * fps / target_fps
    return span, max(length - span, 0)


def interval_indices(start: float, span: float, length: int, frames: int) -> list[int]:
    """The frame indices of a clip of ``span`` frames from ``start`` in a ``length``-frame video (module docstring)."""
    index = torch.linspace(start, start + span - 1, frames)
    return torch.clamp(index, 0, length - 1).long().tolist()


def view_starts(max_start: float, views: int) -> list[float]:
    """The start frames of the evaluation views (HiCo's test: ``clip_idx`` of ``NUM_ENSEMBLE_VIEWS``)."""
    if views == 1:
        return [max_start / 2]
    return [max_start * i / views for i in range(views)]


def open_frames(path: Path) -> tuple[Any, int, float]:
    """An open decord reader of ``path``, its frame count and frame rate; DataError when it has no frames."""
    reader = open_video(path)
    length, fps = len(reader), float(reader.get_avg_fps())
    if length == 0 or not fps > 0:
        raise DataError(path, "video has no frames")
    return reader, length, fps


def centre_view(
    frames: torch.Tensor, size: int, crop_fraction: float, mean: float, std: float, antialias: bool = False
) -> torch.Tensor:
    """``T x H x W x 3`` uint8 -> ``3 x T x size x size`` float32: centre square crop, resize, normalise."""
    batch = frames.permute(0, 3, 1, 2)
    side = max(1, round(min(batch.shape[-2:]) * crop_fraction))
    batch = F.center_crop(batch, [side, side])
    if not antialias:
        batch = F.to_dtype(batch, torch.float32, scale=True)
    batch = F.resize(batch, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=antialias)
    batch = F.to_dtype(batch, torch.float32, scale=True)
    batch = F.normalize(batch, [mean] * 3, [std] * 3)
    return batch.permute(1, 0, 2, 3)


@dataclass
class VideoViews(Dataset):
    """``i`` -> ``views x 3 x T x S x S`` float32 of ``videos[i]``, or the DataError naming a video that fails."""

    videos: Sequence[Path]
    frames: int = 16
    sampling_rate: int = 4
    target_fps: float = 30.0
    views: int = 10
    size: int = 112
    crop_fraction: float = 0.875
    mean: float = 0.45
    std: float = 0.225
    antialias: bool = False

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> torch.Tensor | DataError:
        path = Path(self.videos[index])
        try:
            reader, length, fps = open_frames(path)
            span, max_start = interval_span(length, fps, self.frames, self.sampling_rate, self.target_fps)
            clips = []
            for start in view_starts(max_start, self.views):
                indices = interval_indices(start, span, length, self.frames)
                frames = torch.from_numpy(decode_frames(reader, indices, path))
                clips.append(centre_view(frames, self.size, self.crop_fraction, self.mean, self.std, self.antialias))
        except DataError as exc:
            return exc
        return torch.stack(clips)
