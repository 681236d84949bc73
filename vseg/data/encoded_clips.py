"""SCRL's training items for the device pipeline: loader workers ship JPEG bytes and drawn parameters, the training
process decodes and augments whole batches on its device.

:class:`EncodedClips` is :class:`~vseg.data.clips.TwoViewClips` without the pixel work: for clip ``i`` of epoch
``e`` it reads the puzzle's (or the 48 keyframes') bytes, takes the frame size from the JPEG header, and draws every
shot's query and key parameters from the generator seeded by ``(seed, e, i)`` in the per-shot path's order, so that
both pipelines see the same views (up to float rounding) and a resumed run sees the views it would have seen.
:class:`TwoViewDecoder` turns a collated :class:`EncodedBatch` into the two ``shots x 3K x S x S`` views on the
device: one ``decode_jpeg`` call for the batch (nvJPEG on CUDA), then :func:`vseg.data.batch_augment.apply_views`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from vseg.data.augment import TwoViewShotTransform
from vseg.data.batch_augment import apply_views, pack_params
from vseg.data.clips import ShotClip, TwoViewClips, check_puzzle_grid, check_same_size, split_puzzle
from vseg.data.sampler import collate_or_error, item_seed
from vseg.errors import DataError
from vseg.io.images import decode_jpegs, read_jpeg_bytes


class EncodedClip(NamedTuple):
    """One clip as it leaves a worker: its JPEG files' bytes and paths, and ``shots x 2 x PARAMS`` parameters
    (query, key)."""

    files: list[torch.Tensor]
    paths: list[str]
    params: torch.Tensor


class EncodedBatch(NamedTuple):
    """Clips collated: every file of the batch in clip order, and ``clips x shots x 2 x PARAMS`` parameters."""

    files: list[torch.Tensor]
    paths: list[str]
    params: torch.Tensor


def _encoded_batch(clips: list[EncodedClip]) -> EncodedBatch:
    return EncodedBatch(
        [f for clip in clips for f in clip.files],
        [p for clip in clips for p in clip.paths],
        torch.stack([clip.params for clip in clips]),
    )


def collate_encoded(items: list[EncodedClip | DataError]) -> EncodedBatch | DataError:
    """The batch of ``items``, or the DataError of the first item that could not be read."""
    return collate_or_error(items, _encoded_batch)


class EncodedClips(TwoViewClips):
    """``(epoch, i)`` -> clip i as an :class:`EncodedClip`, or the DataError of a file that cannot be read."""

    collate_fn = staticmethod(collate_encoded)

    def _read(self, clip: ShotClip) -> tuple[list[torch.Tensor], list[str], tuple[int, int]]:
        """The clip's files, paths and keyframe (width, height), checked as the per-shot path checks them."""
        shots, keyframes = self.shots_per_clip, self.keyframes_per_shot
        if clip.puzzle:
            data, (width, height) = read_jpeg_bytes(clip.path)
            check_puzzle_grid(clip.path, width, height, shots, keyframes)
            return [data], [clip.path], (width // keyframes, height // shots)
        paths = clip.keyframe_files(shots, keyframes)
        files, sizes = zip(*(read_jpeg_bytes(path) for path in paths), strict=True)
        check_same_size(paths, sizes)
        return list(files), paths, sizes[0]

    def __getitem__(self, key: int | tuple[int, int, float]) -> EncodedClip | DataError:
        epoch, index = key[:2] if isinstance(key, tuple) else (0, key)
        try:
            files, paths, (width, height) = self._read(self.clips[index])
        except DataError as exc:
            return exc
        generator = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        params = [self.transform.sample(height, width, generator) for _ in range(self.shots_per_clip)]
        packed = torch.stack([torch.stack([pack_params(q), pack_params(k)]) for q, k in params])
        return EncodedClip(files, paths, packed)


class TwoViewDecoder:
    """An :class:`EncodedBatch` -> (query, key) on ``device``, each ``clips * shots x 3K x S x S`` float32, as
    :class:`~vseg.data.clips.TwoViewClips` would have made them."""

    def __init__(self, transform: TwoViewShotTransform, shots_per_clip: int = 16, keyframes_per_shot: int = 3):
        self.transform = transform
        self.shots, self.keyframes = shots_per_clip, keyframes_per_shot

    def frames(self, batch: EncodedBatch, device: torch.device) -> torch.Tensor:
        """The batch's keyframes decoded on ``device``: ``clips * shots x keyframes x 3 x H x W`` uint8."""
        images = decode_jpegs(batch.files, batch.paths, device)
        if len(images) == len(batch.params):  # one puzzle per clip
            clips = [split_puzzle(image, self.shots, self.keyframes) for image in images]
            return torch.stack(clips).flatten(0, 1)
        return torch.stack(images).view(-1, self.keyframes, *images[0].shape)

    def __call__(self, batch: EncodedBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        frames = self.frames(batch, device)
        params = batch.params.flatten(0, 1)  # clips * shots x 2 x PARAMS
        views = []
        for v, spec in enumerate((self.transform.query, self.transform.key)):
            view = apply_views(frames, params[:, v], spec.size, spec.mean, spec.std)
            views.append(view.flatten(1, 2))
        return views[0], views[1]
