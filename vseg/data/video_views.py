"""Evaluation views of whole video files: HiCo's test protocol (its ``ft_s3dg_*.yaml``) for features and probes.

A video gives ``views`` clips of ``frames`` frames, each spanning ``frames * sampling_rate / target_fps`` seconds
(the pre-training clip length), starting at ``(duration - clip) * i / views`` for ``i = 0 .. views - 1`` (the
reference's interval-based test sampling; one view is the centre clip). Every frame is centre-cropped to a square
of ``crop_fraction`` of its short side (224 / 256 = 0.875) and resized to ``size`` (112), then normalised with
0.45 / 0.225.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from vseg.data.untrimmed import read_span
from vseg.errors import DataError
from vseg.io.video import open_video


def view_starts(duration: float, clip_seconds: float, views: int) -> list[float]:
    """Start times (seconds) of the evaluation views of a ``duration``-second video."""
    room = max(duration - clip_seconds, 0.0)
    if views == 1:
        return [room / 2]
    return [room * i / views for i in range(views)]


def centre_view(frames: torch.Tensor, size: int, crop_fraction: float, mean: float, std: float) -> torch.Tensor:
    """``T x H x W x 3`` uint8 -> ``3 x T x size x size`` float32: centre square crop, resize, normalise."""
    batch = frames.permute(0, 3, 1, 2)
    side = max(1, round(min(batch.shape[-2:]) * crop_fraction))
    batch = F.center_crop(batch, [side, side])
    batch = F.resize(batch, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    batch = F.to_dtype(batch, torch.float32, scale=True)
    batch = F.normalize(batch, [mean] * 3, [std] * 3)
    return batch.permute(1, 0, 2, 3)


@dataclass
class VideoViews(Dataset):
    """``i`` -> ``views x 3 x T x S x S`` float32 of ``videos[i]``, or the DataError naming a video that fails."""

    videos: Sequence[Path]
    frames: int = 16
    clip_seconds: float = 16 * 4 / 30
    views: int = 10
    size: int = 112
    crop_fraction: float = 0.875
    mean: float = 0.45
    std: float = 0.225

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> torch.Tensor | DataError:
        path = Path(self.videos[index])
        try:
            reader = open_video(path)
            total, fps = len(reader), float(reader.get_avg_fps())
            if total == 0 or not fps > 0:
                raise DataError(path, "video has no frames")
            duration = total / fps
            clips = []
            for start in view_starts(duration, self.clip_seconds, self.views):
                frames = read_span(reader, path, start, min(start + self.clip_seconds, duration), self.frames)
                clips.append(centre_view(frames, self.size, self.crop_fraction, self.mean, self.std))
        except DataError as exc:
            return exc
        return torch.stack(clips)
