"""Every shot of a movie as one tensor, with SCRL's evaluation preprocessing (SCRL's ``extract_embeddings.py``).

Each keyframe is decoded with OpenCV and turned to RGB (:func:`vseg.io.images.load_rgb_opencv`), then torchvision's
``Resize(S)`` on the PIL image (bilinear on the short side: 426x240 -> 397x224 for S = 224, the width truncated from
224 * 426 / 240 = 397.6), ``CenterCrop(S)``, ``ToTensor`` and ImageNet normalisation, all as the reference does them;
the shot's keyframes are then concatenated on channels (3 keyframes -> 9 x S x S), not averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision.transforms.v2.functional as F
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from vseg.data.augment import IMAGENET_MEAN, IMAGENET_STD
from vseg.errors import DataError
from vseg.io.images import load_rgb_opencv
from vseg.io.movienet import MovieKeyframes


def eval_view(keyframes: Sequence[Image.Image], size: int) -> torch.Tensor:
    """RGB keyframes -> ``3K x size x size`` float32: PIL resize of the short side, centre crop, normalise."""
    views = []
    for keyframe in keyframes:
        x = F.center_crop(F.resize(keyframe, [size], interpolation=InterpolationMode.BILINEAR), [size, size])
        x = F.to_dtype(F.pil_to_tensor(x), torch.float32, scale=True)
        views.append(F.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD)))
    return torch.cat(views)


class MovieShots(Dataset):
    """Shot ``i`` of one movie -> its keyframes as one ``3K x S x S`` tensor (or the DataError of a bad keyframe)."""

    def __init__(self, keyframes: MovieKeyframes, size: int = 224, num_shots: int | None = None):
        self.keyframes, self.size = keyframes, size
        self.num_shots = keyframes.num_shots if num_shots is None else num_shots

    def __len__(self) -> int:
        return self.num_shots

    def __getitem__(self, shot: int) -> torch.Tensor | DataError:
        try:
            return eval_view([load_rgb_opencv(path) for path in self.keyframes.shot_paths(shot)], self.size)
        except DataError as exc:
            return exc
