"""``vseg scenes INPUT... --out DIR``: the scenes of a whole collection, a video at a time, each in its own folder.

Inputs (:func:`find_videos`): video files, folders (searched recursively for video files by extension, hidden files
and folders skipped) and ``@LIST`` files (a path per line, relative to the list's folder; ``#`` starts a comment).
Each video gets ``DIR/<its path relative to its input folder, extension dropped>/`` holding the files of
:func:`vseg.scenes.write.write_scenes`, and ``DIR`` gets the index (:mod:`vseg.io.scene_index`).

- Shards: ``shard`` ``I/N`` takes every N-th of the sorted videos from the I-th, so every video falls in exactly one
  shard; shard I of N writes ``index-I-of-N.*``.
- Resume: a video's folder is built in a hidden staging folder beside it and moved into place when complete, with a
  stamp (``vseg_done.json``: the video file's size and modification time and a key of the settings that shape the
  results); a run finds a video done when its stamp matches and marks it ``skipped``; ``force`` redoes it.
- Failures: a video that cannot be read fails alone (its row names the file and why) and the others are done.

How the videos are mapped over workers is :mod:`vseg.scenes.engines`' job: worker processes here, or Ray tasks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vseg.config import ScenesConfig, parse_shard
from vseg.errors import DataError, VsegError
from vseg.io import atomic
from vseg.io.scene_index import DONE, FAILED, SKIPPED, IndexRow
from vseg.prep.clips import VIDEO_EXTENSIONS
from vseg.scenes.detect import FoundShots, SceneModels, detect_shots, find_scenes, load_models, shot_features
from vseg.scenes.write import write_scenes

STAMP = "vseg_done.json"
# Settings that change no result: how the work is spread, and where models run.
_RUN_ONLY = {"jobs", "shard", "engine", "ray_address"}
_RUN_ONLY_NESTED = {"shots": {"workers", "shard", "device"}, "embed": {"workers", "device"}}


# ---------------------------------------------------------------------------------------------------- inputs


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def _folder_videos(folder: Path, skip: Path | None) -> list[tuple[Path, Path]]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or Path(root, d) != skip))
        found += [(Path(root, name), Path(root, name).relative_to(folder)) for name in files if _is_video(Path(name))]
    return found


def _list_entries(listing: Path) -> list[Path]:
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(listing, f"cannot read the list of videos ({exc.__class__.__name__})") from None
    entries = [line.split("#", 1)[0].strip() for line in lines]
    return [listing.parent / entry for entry in entries if entry]


def find_videos(inputs: list[str | Path], out: Path | None = None) -> list[tuple[Path, Path]]:
    """``(video, its folder under DIR)`` for every video of ``inputs``, sorted by path, each once. A missing input
    (on the command line) is a DataError; a missing entry of a list stays in, to fail alone as its video."""
    skip = Path(out).resolve() if out is not None else None
    videos: dict[Path, tuple[Path, Path]] = {}

    def add(video: Path, relative: Path) -> None:
        key = video.resolve()
        if skip is None or not key.is_relative_to(skip):
            videos.setdefault(key, (video, relative.with_suffix("")))

    for item in map(str, inputs):
        if item.startswith("@"):
            listing = Path(item[1:])
            if not listing.is_file():
                raise DataError(listing, "no such list of videos")
            for entry in _list_entries(listing):
                if entry.is_dir():
                    for video, relative in _folder_videos(entry, skip):
                        add(video, Path(entry.name) / relative)
                else:
                    add(entry, Path(entry.name))
        elif Path(item).is_dir():
            found = _folder_videos(Path(item), skip)
            if not found:
                raise DataError(item, f"no video files in this folder or below ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            for video, relative in found:
                add(video, relative)
        elif Path(item).is_file():
            add(Path(item), Path(Path(item).name))
        else:
            raise DataError(item, "no such video file, folder or @LIST")
    return _unique_folders(sorted(videos.values(), key=lambda pair: str(pair[0])))


def _unique_folders(videos: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Two videos that would share a folder (``a.mp4`` and ``a.mkv``, or one name in two input folders) keep their
    extension in it (``a.mp4/``), and a number when that is not enough."""
    count: dict[Path, int] = {}
    for _, relative in videos:
        count[relative] = count.get(relative, 0) + 1
    unique, taken = [], set()
    for video, relative in videos:
        folder = relative if count[relative] == 1 else relative.with_name(video.name)
        number = 1
        while folder in taken:
            number += 1
            folder = relative.with_name(f"{video.name}-{number}")
        taken.add(folder)
        unique.append((video, folder))
    return unique


def shard_of(videos: list[Any], shard: str) -> list[Any]:
    """This shard's share of the sorted ``videos``: every COUNT-th from INDEX."""
    index, count = parse_shard(shard)
    return videos[index::count]


# ------------------------------------------------------------------------------------------------------ jobs


def settings_key(config: ScenesConfig, encoder: str | None, segmenter: str | None) -> str:
    """A key of what shapes a video's results: the config but the settings of :data:`_RUN_ONLY`, and the model files
    (path, size, modification time)."""
    data = config.model_dump(mode="json", exclude=_RUN_ONLY | set(_RUN_ONLY_NESTED))
    for section, keys in _RUN_ONLY_NESTED.items():
        data[section] = getattr(config, section).model_dump(mode="json", exclude=keys)
    for name, path in (("encoder", encoder), ("segmenter", segmenter)):
        if path is not None:
            stat = Path(path).stat()
            data[name] = [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class VideoJob:
    """One video of a collection, and everything a worker needs to find and write its scenes."""

    source: Path
    folder: Path  # relative to the collection's DIR
    root: Path  # the collection's DIR
    config: ScenesConfig
    settings: str  # settings_key
    encoder: str | None = None
    segmenter: str | None = None
    threads: int = 1

    @property
    def out(self) -> Path:
        return self.root / self.folder

    @property
    def staging(self) -> Path:
        """Beside ``out`` at the same depth (the report links to the video by a relative path), hidden."""
        return self.out.with_name(f".{self.out.name}.partial")

    def row(self, status: str, reason: str = "", **values: Any) -> IndexRow:
        return IndexRow(str(self.source), status, reason, self.folder.as_posix(), **values)


def _file_stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def finished_row(job: VideoJob) -> IndexRow | None:
    """The row of an earlier run that found this video's scenes with the same file and settings, as ``skipped``;
    None when there is none."""
    try:
        stamp = json.loads((job.out / STAMP).read_text())
        if stamp["settings"] != job.settings or stamp["source"] != _file_stamp(job.source):
            return None
        return IndexRow(**{**stamp["row"], "status": SKIPPED, "seconds": 0.0})
    except (OSError, ValueError, KeyError, TypeError):  # no stamp, or not one vseg wrote
        return None


_LOADED: dict[tuple[str | None, str | None, str, int | None], SceneModels] = {}


def worker_models(encoder: str | None, segmenter: str | None, device: str, image_size: int | None) -> SceneModels:
    """The models of the files named, loaded once per process (a worker's first job loads them)."""
    key = (encoder, segmenter, device, image_size)
    if key not in _LOADED:
        _LOADED[key] = load_models(*key)
    return _LOADED[key]


def keep_models(encoder: str | None, segmenter: str | None, config: ScenesConfig, models: SceneModels) -> None:
    """Let this process's jobs with these files and ``config`` use ``models``, loaded already (for the features,
    the encoder; for the scenes, the segmenter)."""
    device, size = config.embed.device, config.embed.image_size
    for key in ((encoder, segmenter), (encoder, None), (None, segmenter)):
        _LOADED[(*key, device, size)] = models


def failure_reason(job: VideoJob, error: BaseException) -> str:
    """One line naming the video and the problem."""
    if isinstance(error, DataError) and error.path == job.source:
        return str(error)
    if isinstance(error, VsegError):
        return f"{job.source}: {error}"
    return f"{job.source}: {type(error).__name__}: {error}"


def prepare_video(job: VideoJob) -> FoundShots:
    """The shots of a job's video, their keyframes and shot files written in its staging folder."""
    shutil.rmtree(job.staging, ignore_errors=True)
    return detect_shots(
        job.source, job.config, job.staging / "shots", job.encoder is None, job.threads
    )  # fmt: skip


def video_features(job: VideoJob, found: FoundShots) -> tuple[np.ndarray, str]:
    """The shot features of a job's video and what they are (the encoder's name, or colour histograms)."""
    models = worker_models(job.encoder, None, job.config.embed.device, job.config.embed.image_size)
    return shot_features(found, models, job.config), models.encoder_name


def finish_video(job: VideoJob, found: FoundShots, features: tuple[np.ndarray, str], seconds: float) -> IndexRow:
    """Find the scenes, write every file into the staging folder, then move it into place with its stamp."""
    started = time.perf_counter()
    models = worker_models(None, job.segmenter, job.config.embed.device, job.config.embed.image_size)
    result = find_scenes(found, features[0], models, job.config, features_name=features[1])
    write_scenes(result, job.staging)
    seconds += time.perf_counter() - started
    row = job.row(DONE, "; ".join(result.warnings), scenes=len(result), shots=result.shots, frames=result.frames,
                  seconds=round(seconds, 3))  # fmt: skip
    stamp = {"source": _file_stamp(job.source), "settings": job.settings, "row": asdict(row)}
    atomic.write_text(job.staging / STAMP, json.dumps(stamp, indent=1) + "\n")
    _replace_dir(job.staging, job.out)
    return row


def _replace_dir(staging: Path, final: Path) -> None:
    """Move ``staging`` to ``final``, replacing what an earlier run left there."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def failed_row(job: VideoJob, error: BaseException, seconds: float = 0.0) -> IndexRow:
    """The row of a video that failed (it has no folder), its staging folder removed."""
    shutil.rmtree(job.staging, ignore_errors=True)
    return IndexRow(str(job.source), FAILED, failure_reason(job, error), seconds=round(seconds, 3))


def process_video(job: VideoJob) -> IndexRow:
    """A job from its video to its folder (what a worker process or a Ray task runs): a ``done`` row, or a ``failed``
    row naming the problem, with nothing left half-written."""
    started = time.perf_counter()
    try:
        found = prepare_video(job)
        return finish_video(job, found, video_features(job, found), time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - the video fails alone; its row says why
        return failed_row(job, exc, time.perf_counter() - started)


def make_jobs(
    videos: list[tuple[Path, Path]],
    root: Path,
    config: ScenesConfig,
    encoder: Path | None,
    segmenter: Path | None,
    threads: int,
) -> list[VideoJob]:
    key = settings_key(config, str(encoder) if encoder else None, str(segmenter) if segmenter else None)
    return [
        VideoJob(video, folder, root, config, key, str(encoder) if encoder else None,
                 str(segmenter) if segmenter else None, threads)
        for video, folder in videos
    ]  # fmt: skip

