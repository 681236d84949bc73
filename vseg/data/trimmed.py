"""Samples of trimmed labelled videos (a ``relative/path label`` list: UCF101, HMDB51, Kinetics-400), one file each.

- :class:`TrimmedClips`: HiCo pre-training on trimmed Kinetics-400 (HiCo's ``datasets/base/kinetics400.py``,
  ``_decode_hico_clips_for_trimmed_videos``): the same centre sampler as for untrimmed video
  (:func:`vseg.data.untrimmed.sample_clips`) on the one file, with ``duration = frames / fps``.
- :class:`LabelledClips`: fine-tuning (HiCo's ``ft_s3dg_*.yaml``): one clip of ``frames`` frames over
  ``frames * sampling_rate / target_fps`` seconds from a random start, in frames as the reference samples it (a short
  video is not stretched: :mod:`vseg.data.video_views`), augmented with one parameter set for all its frames, and its
  label.

Every listed video is opened before training (:func:`probe_listed`): a missing or unreadable one is an error naming
the list's line, decided up front as ``vseg prep clips`` does. The reference instead trained on a neighbouring
sample whenever a video failed to decode (fixed on purpose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vseg.data.augment import ViewSpec
from vseg.data.sampler import item_seed
from vseg.data.untrimmed import ClipSampling, CroppedClips, augment_clip, collate_clips, read_span, sample_clips
from vseg.data.video_views import interval_indices, interval_span, open_frames
from vseg.errors import DataError
from vseg.io.video import VideoInfo, decode_frames, open_video, probe_video
from vseg.runtime import DistEnv, gather_objects


@dataclass(frozen=True)
class ListedVideo:
    """A video of a labelled list: its file, label, line of the list, and what decord read of it."""

    path: Path
    label: int
    line: int
    info: VideoInfo

    @property
    def duration(self) -> float:
        """Seconds: frames / fps (:attr:`VideoInfo.duration`), as HiCo's trimmed loader takes it."""
        return self.info.duration


def probe_listed(entries: Sequence[tuple[int, Path, int]]) -> list[ListedVideo | str]:
    """Open every ``(line, path, label)`` of a list (:func:`vseg.io.cliplist.read_labelled_lines`): its
    ListedVideo, or the reason it cannot be used, ``"line N: PATH: reason"``."""
    out: list[ListedVideo | str] = []
    for line, path, label in entries:
        try:
            info = probe_video(path)
        except DataError as exc:
            out.append(f"line {line}: {path}: {exc.reason}")
            continue
        out.append(ListedVideo(Path(path), label, line, info))
    return out


def listed_videos(listing: Path, entries: Sequence[tuple[int, Path, int]], env: DistEnv) -> list[ListedVideo]:
    """Every video of a list's ``entries``, opened (:func:`probe_listed`) by the ranks in turn; DataError naming the
    list, its first bad line and how many are bad."""
    shares = gather_objects(probe_listed(entries[env.rank :: env.world_size]), env)
    probed: list[ListedVideo | str] = [""] * len(entries)
    for rank, share in enumerate(shares):
        probed[rank :: env.world_size] = share
    bad = [item for item in probed if isinstance(item, str)]
    if bad:
        more = f" ({len(bad)} bad lines in all)" if len(bad) > 1 else ""
        raise DataError(listing, f"{bad[0]}{more}")
    return [item for item in probed if isinstance(item, ListedVideo)]


@dataclass
class TrimmedClips(Dataset):
    """``(epoch, index, progress)`` -> ``K x 3 x T x S x S`` float32: HiCo's K augmented clips of one trimmed video
    (its DataError when it cannot be decoded, raised by the trainer); with ``crops_only``, their uint8 crops and
    parameters, made into views on the device."""

    videos: Sequence[ListedVideo]
    sampling: ClipSampling
    view: ViewSpec
    seed: int = 0
    crops_only: bool = False  # the device pipeline, as UntrimmedClips

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int, float] | int) -> torch.Tensor | DataError:
        video = self.videos[key[1] if isinstance(key, tuple) else key]
        try:
            reader = open_video(video.path)
        except DataError as exc:
            return exc

        def read(start: float, end: float) -> torch.Tensor:
            return read_span(reader, video.path, start, end, self.sampling.frames)

        return sample_clips(key, video.duration, self.sampling, self.view, self.seed, read, self.crops_only)

    def collate_fn(self, items: list) -> torch.Tensor | CroppedClips | DataError:
        return collate_clips(items, self.crops_only, self.sampling.clips)


@dataclass
class LabelledClips(Dataset):
    """``(epoch, index, progress)`` -> ``(3 x T x S x S float32 clip, label)``: one clip of ``frames`` frames at
    ``sampling_rate`` (at ``target_fps``) from a uniformly random start, HiCo's random interval-based sampling
    (:mod:`vseg.data.video_views`; a video shorter than a clip repeats its last frame), augmented."""

    videos: Sequence[ListedVideo]
    frames: int
    sampling_rate: int
    target_fps: float
    view: ViewSpec
    seed: int = 0

    def __len__(self) -> int:
        return len(self.videos)

    def indices(self, length: int, fps: float, generator: torch.Generator) -> list[int]:
        """The frame indices of a clip of a ``length``-frame video at ``fps``, from a uniform start (the reference's
        ``random.uniform(0, max_idx)``)."""
        span, max_start = interval_span(length, fps, self.frames, self.sampling_rate, self.target_fps)
        start = max_start * torch.rand((), generator=generator, dtype=torch.float64).item()
        return interval_indices(start, span, length, self.frames)

    def __getitem__(self, key: tuple[int, int, float] | int) -> tuple[torch.Tensor, int] | DataError:
        epoch, index, _ = key if isinstance(key, tuple) else (0, key, 0.0)
        video = self.videos[index]
        generator = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        try:
            reader, length, fps = open_frames(video.path)
            frames = torch.from_numpy(decode_frames(reader, self.indices(length, fps, generator), video.path))
        except DataError as exc:
            return exc
        return augment_clip(frames, self.view, generator), video.label
