"""HiCo's training samples: K clips of one untrimmed video, decoded across its 5 s pieces (HiCo's ``long_video.py``).

One sample is one *video* (not one piece). For each sample, :func:`clip_centres` draws the clip centres:

    U(a, b) = a + (b - a) * rand()              (b < a gives a)
    lo, hi  = clip_time, duration - clip_time
    c0      = U(lo, hi)
    c_j     = U(max(c_{j-1} - d, lo), min(c_{j-1} + d, hi))    j = 1 .. K-1   (d = max_dis; unconstrained: U(lo, hi))
    c_{K-1} = U(lo, hi)                                              when topical (TCL's far clip)

Gradual sampling grows ``d`` linearly from ``max_dis[0]`` to ``max_dis[1]`` over training (0 to 1 s): at the start
clips 0 and 1 cover the same window (plain SimCLR), at the end they may be 1 s apart. The training progress comes
with every index from the sampler (:class:`~vseg.data.sampler.EpochSampler` yields ``(epoch, index, progress)``), so
it is exact in every loader worker and on every rank; the reference passed it through files in the working
directory, which raced and mixed up concurrent runs (fixed on purpose).

A clip covers ``frames * sampling_rate / target_fps`` seconds (16 * 4 / 30 = 2.133 s) around its centre; its
``frames`` frames are spread evenly over that window at the pieces' real frame rate (:func:`frame_positions`), and
the pieces it overlaps are read as one frame sequence. Each clip is augmented on its own, with one parameter set for
all its frames (a :class:`~vseg.data.augment.ViewSpec`). A piece that cannot be decoded is an error naming the file;
the reference silently trained on a neighbouring sample instead (fixed on purpose).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from vseg.data.augment import ViewSpec, apply_view, sample_view_params
from vseg.data.batch_augment import apply_views, crop_item, pack_params, stack_crops
from vseg.data.sampler import collate_or_error, item_seed
from vseg.errors import DataError
from vseg.io.cliplist import UntrimmedVideo, clip_file_name
from vseg.io.video import decode_frames, open_video


def max_distance(max_dis: tuple[float, float] | None, progress: float) -> float | None:
    """Gradual sampling's bound on the centre distance of clips 0 and 1 at ``progress`` in [0, 1]; None: none."""
    if max_dis is None:
        return None
    r = min(max(progress, 0.0), 1.0)
    return max_dis[0] + (max_dis[1] - max_dis[0]) * r


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    high = max(high, low)
    return low + (high - low) * torch.rand((), generator=generator, dtype=torch.float64).item()


def clip_centres(
    duration: float,
    clips: int,
    clip_seconds: float,
    max_dis: float | None,
    topical: bool,
    generator: torch.Generator | None = None,
) -> list[float]:
    """The centres (seconds) of a sample's clips, by the formula in the module docstring."""
    lo, hi = clip_seconds, duration - clip_seconds
    centres = [_uniform(lo, hi, generator)]
    for _ in range(1, clips):
        previous = centres[-1]
        if max_dis is None:
            centres.append(_uniform(lo, hi, generator))
        else:
            centres.append(_uniform(max(previous - max_dis, lo), min(previous + max_dis, hi), generator))
    if topical:
        centres[-1] = _uniform(lo, hi, generator)
    return centres


def clip_window(centre: float, clip_seconds: float, duration: float) -> tuple[float, float]:
    """``[centre - clip/2, centre + clip/2]`` clipped to the video."""
    return max(centre - clip_seconds / 2, 0.0), min(centre + clip_seconds / 2, duration)


def frame_positions(start: float, end: float, fps: float, total: int, frames: int) -> np.ndarray:
    """Frame indices of a clip spanning ``[start, end]`` seconds of a ``total``-frame sequence at ``fps``.

    The reference's ``linspace(int(start * fps), min(int(end * fps), total), frames)``, clamped to
    ``[first, last - 1]`` and truncated to integers.
    """
    first, last = int(start * fps), min(int(end * fps), total)
    positions = np.linspace(first, last, frames)
    return np.clip(positions, first, max(last - 1, first)).astype(np.int64).clip(0, max(total - 1, 0))


def read_span(reader, path: Path, start: float, end: float, frames: int) -> torch.Tensor:
    """``frames`` frames spread over ``[start, end]`` seconds of one open video file (a decord reader of ``path``):
    a ``frames x H x W x 3`` uint8 tensor."""
    positions = frame_positions(start, end, float(reader.get_avg_fps()), len(reader), frames).tolist()
    return torch.from_numpy(decode_frames(reader, positions, path))


def read_window(video: UntrimmedVideo, clip_dir: Path, start: float, end: float, frames: int) -> torch.Tensor:
    """``frames`` frames spread over ``[start, end]`` seconds of ``video``: a ``frames x H x W x 3`` uint8 tensor.

    The pieces overlapping the window are opened with decord (:func:`vseg.io.video.open_video`) and read as one
    sequence; the frame rate is the first piece's (as the reference).
    """
    pieces = [(s, e) for s, e in video.pieces if s < end * 1000 and e > start * 1000] or [video.pieces[-1]]
    readers, counts, fps = [], [], None
    for s, e in pieces:
        path = clip_dir / clip_file_name(video.id, s, e)
        try:
            reader = open_video(path)
        except DataError as exc:
            raise DataError(path, f"cannot decode this piece ({exc.reason})") from None
        count = len(reader)
        if count == 0:
            raise DataError(path, "piece has no frames")
        readers.append((path, reader))
        counts.append(count)
        fps = fps or reader.get_avg_fps()
    origin = pieces[0][0] / 1000
    positions = frame_positions(start - origin, end - origin, fps, sum(counts), frames)
    bounds = np.cumsum([0, *counts])
    owner = np.searchsorted(bounds, positions, side="right") - 1
    out = []
    for k, (path, reader) in enumerate(readers):
        local = (positions[owner == k] - bounds[k]).tolist()
        if local:
            out.append(torch.from_numpy(decode_frames(reader, local, path)))
    sizes = {tuple(part.shape[1:3]) for part in out}
    if len(sizes) > 1:
        raise DataError(readers[0][0], f"pieces of video {video.id} differ in frame size: {sorted(sizes)}")
    return torch.cat(out)


def augment_clip(frames: torch.Tensor, spec: ViewSpec, generator: torch.Generator | None = None) -> torch.Tensor:
    """``T x H x W x 3`` uint8 -> ``3 x T x S x S`` float32, one parameter set for every frame of the clip."""
    batch = frames.permute(0, 3, 1, 2)
    params = sample_view_params(batch.shape[-2], batch.shape[-1], spec, generator)
    view = apply_view(batch, params, spec.size, spec.mean, spec.std, spec.antialias)
    return view.view(len(batch), 3, spec.size, spec.size).permute(1, 0, 2, 3)


def crop_clip(
    frames: torch.Tensor, spec: ViewSpec, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The device pipeline's :func:`augment_clip`: the same draws, but only the crop is cut here; returns the
    ``T x 3 x h x w`` uint8 crop and its packed parameters (:func:`vseg.data.batch_augment.apply_views` does the
    rest on the training device)."""
    batch = frames.permute(0, 3, 1, 2)
    params = sample_view_params(batch.shape[-2], batch.shape[-1], spec, generator)
    return crop_item(batch, pack_params(params))


class CroppedClips(NamedTuple):
    """A batch of the device pipeline: ``videos * K x T x 3 x h x w`` uint8 crops (zero-padded to the largest),
    their ``videos * K x PARAMS`` parameters, and K."""

    frames: torch.Tensor
    params: torch.Tensor
    clips_per_video: int


def clip_views(batch: CroppedClips, spec: ViewSpec, device: torch.device) -> torch.Tensor:
    """A :class:`CroppedClips` batch -> ``videos x K x 3 x T x S x S`` float32 on ``device``, as the per-clip path
    (:func:`augment_clip`) would have made it."""
    frames = batch.frames.to(device, non_blocking=True)
    views = apply_views(frames, batch.params, spec.size, spec.mean, spec.std)  # videos * K x T x 3 x S x S
    return views.transpose(1, 2).unflatten(0, (-1, batch.clips_per_video))


@dataclass(frozen=True)
class ClipSampling:
    """Which clips one sample holds (HiCo's ``_get_hico_clips_time_stamp``): ``clips`` clips of ``frames`` frames spread
    over ``seconds`` each; ``max_dis`` the gradual-sampling range of the distance between clips 0 and 1 (None:
    independent clips), and ``topical``: the last clip is drawn anywhere in the video."""

    clips: int
    frames: int
    seconds: float
    max_dis: tuple[float, float] | None
    topical: bool


@dataclass
class UntrimmedClips(Dataset):
    """``(epoch, index, progress)`` -> ``K x 3 x T x S x S`` float32: the augmented clips of video ``index``; with
    ``crops_only``, the K clips' uint8 crops and parameters (:func:`crop_clip`), made into views on the device.

    A piece that cannot be read is returned as its DataError, raised in the training process by the trainer.
    """

    videos: Sequence[UntrimmedVideo]
    clip_dir: Path
    sampling: ClipSampling
    view: ViewSpec
    seed: int = 0
    crops_only: bool = False  # the device pipeline: items are (crops, parameters), batches CroppedClips

    def __len__(self) -> int:
        return len(self.videos)

    def centres(self, epoch: int, index: int, progress: float) -> list[float]:
        """The clip centres of one sample, as drawn by ``__getitem__``."""
        generator = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        return sample_centres(self.videos[index].duration, self.sampling, progress, generator)

    def __getitem__(self, key: tuple[int, int, float] | int) -> torch.Tensor | DataError:
        video = self.videos[key[1] if isinstance(key, tuple) else key]

        def read(start: float, end: float) -> torch.Tensor:
            return read_window(video, self.clip_dir, start, end, self.sampling.frames)

        return sample_clips(key, video.duration, self.sampling, self.view, self.seed, read, self.crops_only)

    def collate_fn(self, items: list) -> torch.Tensor | CroppedClips | DataError:
        return collate_clips(items, self.crops_only, self.sampling.clips)


def sample_centres(duration: float, sampling: ClipSampling, progress: float, generator: torch.Generator) -> list[float]:
    """The clip centres of one sample of a ``duration``-second video at training ``progress``."""
    max_dis = max_distance(sampling.max_dis, progress)
    return clip_centres(duration, sampling.clips, sampling.seconds, max_dis, sampling.topical, generator)


def sample_clips(
    key: tuple[int, int, float] | int,
    duration: float,
    sampling: ClipSampling,
    view: ViewSpec,
    seed: int,
    read: Callable[[float, float], torch.Tensor],
    crops_only: bool = False,
) -> torch.Tensor | list[tuple[torch.Tensor, torch.Tensor]] | DataError:
    """``K x 3 x T x S x S``: the augmented clips of the sample ``key`` (``(epoch, index, progress)``, or an index) of a
    ``duration``-second video whose window ``[start, end]`` seconds ``read`` decodes; with ``crops_only`` the K clips'
    uint8 crops and parameters (:func:`crop_clip`) instead; its DataError when it fails."""
    epoch, index, progress = key if isinstance(key, tuple) else (0, key, 0.0)
    generator = torch.Generator().manual_seed(item_seed(seed, epoch, index))
    clips = []
    try:
        for centre in sample_centres(duration, sampling, progress, generator):
            start, end = clip_window(centre, sampling.seconds, duration)
            clips.append((crop_clip if crops_only else augment_clip)(read(start, end), view, generator))
    except DataError as exc:
        return exc
    return clips if crops_only else torch.stack(clips)


def collate_clips(items: list, crops_only: bool, clips_per_video: int) -> torch.Tensor | CroppedClips | DataError:
    """A batch of :func:`sample_clips` items: stacked views, or with ``crops_only`` one :class:`CroppedClips`; a failed
    item's DataError."""
    if not crops_only:
        return collate_or_error(items)

    def batch(samples: list) -> CroppedClips:
        crops, params = zip(*(clip for sample in samples for clip in sample), strict=True)
        return CroppedClips(*stack_crops(crops, params), clips_per_video)

    return collate_or_error(items, batch)


def check_pieces(videos: Sequence[UntrimmedVideo], clip_dir: Path) -> None:
    """DataError naming the first listed piece that is not in ``clip_dir`` (and how many are missing)."""
    paths = (clip_dir / clip_file_name(video.id, s, e) for video in videos for s, e in video.pieces)
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise DataError(missing[0], f"piece listed in the training list is missing ({len(missing)} missing in all)")
