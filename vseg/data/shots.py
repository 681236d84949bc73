"""Every shot of a movie as one tensor, with SCRL's evaluation preprocessing (SCRL's ``extract_embeddings.py``), or
BaSSL's (``view="bassl"``).

Each keyframe is decoded with OpenCV and turned to RGB (:func:`vseg.io.images.load_rgb_opencv`), then torchvision's
``Resize(S)`` on the PIL image (bilinear on the short side: 426x240 -> 397x224 for S = 224, the width truncated from
224 * 426 / 240 = 397.6), ``CenterCrop(S)``, ``ToTensor`` and ImageNet normalisation, all as the reference does them;
the shot's keyframes are then concatenated on channels (3 keyframes -> 9 x S x S), not averaged.

BaSSL's view (its ``TEST.TRANSFORM``: ``VideoResizedCenterCrop(image_size=256, crop_size=224)``, ``VideoToTensor``)
decodes with PIL, resizes the short side to ``S * 256 / 224`` (256 for S = 224) with bicubic interpolation and crops the
centre S x S; the keyframes are stacked on channels the same way, and BaSSL's encoder averages their features
(:class:`vseg.models.bassl.BasslShotEncoder`).

The device pipeline (:class:`EncodedShots`, :func:`device_eval_views`) ships each shot's JPEG bytes from the loader
workers and decodes, resizes (antialiased bilinear on the tensor, the same output size), crops and normalises whole
batches on the device; its pixels can differ from PIL's resize by a grey level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
import torchvision.transforms.v2.functional as F
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from vseg.data.augment import IMAGENET_MEAN, IMAGENET_STD
from vseg.data.sampler import collate_or_error
from vseg.errors import DataError
from vseg.io.images import decode_jpegs, load_rgb, load_rgb_opencv, read_jpeg_bytes
from vseg.io.movienet import MovieKeyframes


VIEWS = ("scrl", "bassl")  # SCRL's evaluation preprocessing, BaSSL's


def view_resize(view: str, size: int) -> tuple[int, InterpolationMode]:
    """The short side a ``view`` resizes to before its centre crop of ``size``, and the interpolation."""
    if view == "bassl":
        return round(size * 256 / 224), InterpolationMode.BICUBIC
    return size, InterpolationMode.BILINEAR


def eval_view(keyframes: Sequence[Image.Image], size: int, view: str = "scrl") -> torch.Tensor:
    """RGB keyframes -> ``3K x size x size`` float32: PIL resize of the short side, centre crop, normalise."""
    views = []
    resize, interpolation = view_resize(view, size)
    for keyframe in keyframes:
        x = F.center_crop(F.resize(keyframe, [resize], interpolation=interpolation), [size, size])
        x = F.to_dtype(F.pil_to_tensor(x), torch.float32, scale=True)
        views.append(F.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD)))
    return torch.cat(views)


class MovieShots(Dataset):
    """Shot ``i`` of one movie -> its keyframes as one ``3K x S x S`` tensor (or the DataError of a bad keyframe), in
    SCRL's view (keyframes decoded by OpenCV) or BaSSL's (by PIL, as its ``pil_loader``)."""

    def __init__(self, keyframes: MovieKeyframes, size: int = 224, num_shots: int | None = None, view: str = "scrl"):
        self.keyframes, self.size, self.view = keyframes, size, view
        self.num_shots = keyframes.num_shots if num_shots is None else num_shots

    def __len__(self) -> int:
        return self.num_shots

    def __getitem__(self, shot: int) -> torch.Tensor | DataError:
        try:
            load = load_rgb if self.view == "bassl" else load_rgb_opencv
            return eval_view([load(path) for path in self.keyframes.shot_paths(shot)], self.size, self.view)
        except DataError as exc:
            return exc


class EncodedShotBatch(NamedTuple):
    """Shots as they leave the loader workers of the device pipeline: their keyframes' JPEG bytes in shot order, and
    the side of the views to make of them."""

    files: list[torch.Tensor]
    paths: list[str]
    keyframes_per_shot: int
    size: int
    view: str = "scrl"


def collate_encoded_shots(items: list, size: int, view: str = "scrl") -> EncodedShotBatch | DataError:
    """The batch of ``items`` (each a list of (bytes, path) per keyframe), or the first item's DataError."""

    def batch(shots: list) -> EncodedShotBatch:
        files, paths = [f for shot in shots for f, _ in shot], [p for shot in shots for _, p in shot]
        return EncodedShotBatch(files, paths, len(shots[0]), size, view)

    return collate_or_error(items, batch)


class EncodedShots(MovieShots):
    """:class:`MovieShots` for the device pipeline: shot ``i`` -> its keyframes' (JPEG bytes, path) pairs, to be
    collated by :func:`collate_encoded_shots`."""

    def __getitem__(self, shot: int) -> list[tuple[torch.Tensor, str]] | DataError:
        try:
            return [(read_jpeg_bytes(path)[0], str(path)) for path in self.keyframes.shot_paths(shot)]
        except DataError as exc:
            return exc


def device_eval_views(batch: EncodedShotBatch, device: torch.device) -> torch.Tensor:
    """An :class:`EncodedShotBatch` -> ``shots x 3K x S x S`` float32 on ``device``, as :func:`eval_view`: one
    decode call, then resize of the short side, centre crop and normalisation per group of equal-sized frames."""
    images = decode_jpegs(batch.files, batch.paths, device)
    size = batch.size
    resize, interpolation = view_resize(batch.view, size)
    out = torch.empty(len(images), 3, size, size, device=device)
    shapes: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        shapes.setdefault(tuple(image.shape), []).append(index)
    for indices in shapes.values():
        group = torch.stack([images[i] for i in indices])
        group = F.resize(group, [resize], interpolation=interpolation, antialias=True)
        group = F.to_dtype(F.center_crop(group, [size, size]), torch.float32, scale=True)
        out[torch.tensor(indices, device=device)] = F.normalize(group, list(IMAGENET_MEAN), list(IMAGENET_STD))
    return out.view(-1, 3 * batch.keyframes_per_shot, size, size)


def shots_for(
    pipeline: str, size: int, view: str = "scrl"
) -> tuple[Callable[..., MovieShots], Callable[[list], object]]:
    """The dataset maker (``(keyframes, size, num_shots)`` -> dataset) and the collation of a resolved pipeline:
    ``cpu`` (:class:`MovieShots`, views made in the workers) or ``device`` (:class:`EncodedShots`, views made by
    :func:`device_eval_views`), for SCRL's or BaSSL's ``view``."""
    if pipeline == "device":
        return partial(EncodedShots, view=view), partial(collate_encoded_shots, size=size, view=view)
    return partial(MovieShots, view=view), collate_or_error
