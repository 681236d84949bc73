"""SCRL's training items: clips of 16 consecutive shots x 3 keyframes, each shot in two augmented views.

Clips come from puzzles (``vseg prep puzzles``; as SCRL's ``data/movienet_data.py``, a puzzle is one clip, cut back into
16 shots x 3 keyframes) or straight from a MovieNet keyframe folder (the same clips, ``16p .. 16p+15`` of each movie,
read as 48 files). "Scene-agnostic clip shuffling" (Wu et al., CVPR 2022) is no separate step: the clips are shuffled
over all movies by the sampler (:class:`vseg.data.sampler.EpochSampler`), so a batch of B shots is B/16 clips from
unrelated movies.

Each item's augmentation draws from its own generator, seeded by (seed, epoch, clip): the views of an epoch are the
same whatever the number of loader workers or ranks, and a resumed run sees exactly the views it would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vseg.data.augment import TwoViewShotTransform
from vseg.data.sampler import item_seed
from vseg.errors import DataError
from vseg.io.images import load_rgb
from vseg.io.movienet import index_movie, keyframe_name
from vseg.io.puzzles import read_manifest


@dataclass(frozen=True, slots=True)
class ShotClip:
    """Consecutive shots of one movie: one puzzle file, or the movie's keyframe folder (``puzzle`` false), whose
    files the clip names only when read: a clip list of all MovieNet holds no per-keyframe strings."""

    movie: str
    first_shot: int
    path: str
    puzzle: bool = True

    def keyframe_files(self, shots: int, keyframes: int) -> list[str]:
        """The clip's keyframe files in shot-major order (keyframe-folder clips)."""
        return [
            os.path.join(self.path, keyframe_name(shot, j))
            for shot in range(self.first_shot, self.first_shot + shots)
            for j in range(keyframes)
        ]


def puzzle_clips(root: Path, shots_per_clip: int, keyframes_per_shot: int) -> list[ShotClip]:
    """One clip per puzzle of a puzzle folder; DataError if its layout is not shots_per_clip x keyframes_per_shot."""
    index = read_manifest(root, shots_per_clip, keyframes_per_shot)
    if (index.shots_per_puzzle, index.keyframes_per_shot) != (shots_per_clip, keyframes_per_shot):
        raise DataError(
            Path(root) / "manifest.json",
            f"puzzles are {index.shots_per_puzzle} shots x {index.keyframes_per_shot} keyframes, the config asks for "
            f"{shots_per_clip} x {keyframes_per_shot} (data.shots_per_clip, data.keyframes_per_shot)",
        )
    return [ShotClip(p.movie, p.first_shot, str(p.path)) for p in index.puzzles]


def keyframe_clips(
    root: Path,
    shots_per_clip: int,
    keyframes_per_shot: int,
    movies: list[str],
) -> tuple[list[ShotClip], dict[str, DataError]]:
    """Clips ``16p .. 16p+15`` of every movie of a keyframe folder (the tail is dropped, as for puzzles).

    Returns the clips and the movies left out, each with the error naming its first missing keyframe.
    """
    clips, skipped = [], {}
    for movie in movies:
        try:
            keyframes = index_movie(Path(root) / movie, keyframes_per_shot)
        except DataError as exc:
            skipped[movie] = exc
            continue
        if keyframes.missing:
            shot, j = keyframes.missing[0]
            skipped[movie] = DataError(keyframes.path(shot, j), f"keyframe missing ({len(keyframes.missing)} in movie)")
            continue
        directory = str(keyframes.directory)  # one string shared by the movie's clips
        clips.extend(
            ShotClip(movie, first, directory, puzzle=False)
            for first in range(0, keyframes.num_shots - shots_per_clip + 1, shots_per_clip)
        )
    return clips, skipped


def read_image(path: str | Path) -> torch.Tensor:
    """Decode an image file to a 3 x H x W uint8 RGB tensor; DataError naming the file on failure."""
    return torch.from_numpy(np.array(load_rgb(path))).permute(2, 0, 1)


def check_same_size(paths: Sequence[str | Path], sizes: Sequence[tuple[int, int]]) -> None:
    """DataError naming the first keyframe whose (width, height) differs from the first's."""
    for path, (width, height) in zip(paths, sizes, strict=True):
        if (width, height) != tuple(sizes[0]):
            first = f"{sizes[0][0]}x{sizes[0][1]}"
            raise DataError(path, f"keyframe is {width}x{height} but {Path(paths[0]).name}, read with it, is {first}")


def read_frames(paths: Sequence[str | Path]) -> torch.Tensor:
    """Decode keyframes of one size into an ``N x 3 x H x W`` uint8 tensor; DataError naming an odd-sized file."""
    frames = [read_image(path) for path in paths]
    check_same_size(paths, [(frame.shape[2], frame.shape[1]) for frame in frames])
    return torch.stack(frames)


def check_puzzle_grid(path: str | Path, width: int, height: int, shots: int, keyframes: int) -> None:
    """DataError naming a puzzle of ``width`` x ``height`` pixels that is no grid of shots x keyframes."""
    if height % shots or width % keyframes:
        raise DataError(path, f"puzzle is {width}x{height}, not a grid of {shots} rows x {keyframes} keyframes")


def split_puzzle(puzzle: torch.Tensor, shots: int, keyframes: int) -> torch.Tensor:
    """A ``3 x (shots * h) x (keyframes * w)`` puzzle as a ``shots x keyframes x 3 x h x w`` view."""
    _, height, width = puzzle.shape
    return puzzle.view(3, shots, height // shots, keyframes, width // keyframes).permute(1, 3, 0, 2, 4)


def read_clip_frames(clip: ShotClip, shots: int, keyframes: int) -> torch.Tensor:
    """A clip's keyframes as a ``shots x keyframes x 3 x H x W`` uint8 tensor."""
    if clip.puzzle:
        puzzle = read_image(clip.path)
        check_puzzle_grid(clip.path, puzzle.shape[2], puzzle.shape[1], shots, keyframes)
        return split_puzzle(puzzle, shots, keyframes)
    frames = read_frames(clip.keyframe_files(shots, keyframes))
    return frames.view(shots, keyframes, *frames.shape[1:])


class TwoViewClips(Dataset):
    """``(epoch, i)`` -> ``(query, key)``, each ``shots x (3 * keyframes) x S x S`` float32: clip i in two views.

    A clip that cannot be read is returned as its DataError (to be raised in the training process, where it
    can be reported with the file name; see :func:`vseg.data.sampler.collate_or_error`).
    """

    def __init__(
        self,
        clips: Sequence[ShotClip],
        transform: TwoViewShotTransform,
        shots_per_clip: int = 16,
        keyframes_per_shot: int = 3,
        seed: int = 0,
    ):
        self.clips = list(clips)
        self.transform = transform
        self.shots_per_clip, self.keyframes_per_shot, self.seed = shots_per_clip, keyframes_per_shot, seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int | tuple[int, int, float]) -> tuple[torch.Tensor, torch.Tensor] | DataError:
        epoch, index = key[:2] if isinstance(key, tuple) else (0, key)
        try:
            frames = read_clip_frames(self.clips[index], self.shots_per_clip, self.keyframes_per_shot)
        except DataError as exc:
            return exc
        generator = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        views = [self.transform(shot, generator) for shot in frames]
        return torch.stack([q for q, _ in views]), torch.stack([k for _, k in views])
