"""Every shot of a movie as one tensor, with SCRL's evaluation preprocessing (scrl.md 3, ``extract_embeddings.py``).

Each keyframe: Resize(S) on the short side (426x240 -> 398x224 for S = 224), CenterCrop(S), scale to [0, 1], ImageNet
normalisation; the shot's keyframes are then concatenated on channels (3 keyframes -> 9 x S x S), not averaged.
"""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from vseg.data.augment import IMAGENET_MEAN, IMAGENET_STD
from vseg.data.clips import read_frames
from vseg.errors import DataError
from vseg.io.movienet import MovieKeyframes


def eval_view(frames: torch.Tensor, size: int) -> torch.Tensor:
    """``K x 3 x H x W`` uint8 keyframes -> ``3K x size x size`` float32: resize, centre crop, normalise."""
    x = F.resize(frames, [size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    x = F.center_crop(x, [size, size])
    x = F.normalize(F.to_dtype(x, torch.float32, scale=True), list(IMAGENET_MEAN), list(IMAGENET_STD))
    return x.reshape(-1, size, size)


class MovieShots(Dataset):
    """Shot ``i`` of one movie -> its keyframes as one ``3K x S x S`` tensor (or the DataError of a bad keyframe)."""

    def __init__(self, keyframes: MovieKeyframes, size: int = 224, num_shots: int | None = None):
        self.keyframes, self.size = keyframes, size
        self.num_shots = keyframes.num_shots if num_shots is None else num_shots

    def __len__(self) -> int:
        return self.num_shots

    def __getitem__(self, shot: int) -> torch.Tensor | DataError:
        try:
            frames = read_frames(self.keyframes.shot_paths(shot))
        except DataError as exc:
            return exc
        return eval_view(frames, self.size)
