"""``vseg prep clips``: long untrimmed videos cut into HiCo's clip files and ``training.txt`` (read by HiCo's
``datasets/base/long_video.py``).

Each video ``<id>`` is cut, in order, into ``clip_seconds`` (5 s) clips ``<out>/training/v_<id>_<s>_<e>.mp4``
(milliseconds, 7 digits); the last clip holds the remainder and ends at the video's duration, frames / fps
as decord reads them, rounded to the millisecond. A remainder that holds no frame (shorter than the gap to
the next frame) makes no clip of its own: the clip before it ends at the duration instead.

Cutting, one ffmpeg process per clip, in parallel over the clips of all videos (:func:`vseg.io.video.ffmpeg_exe`
picks the binary):

- re-encode (default): ``-ss START`` before ``-i`` and ``-t LENGTH``, libx264 (``crf``, ``preset``), yuv420p, the
  source's frame rate, no audio. ffmpeg seeks to the keyframe before START, then decodes and drops the frames
  before START (``-accurate_seek``, on by default when transcoding), so a clip starts exactly on the first frame
  at or after its boundary and holds the frames of ``[start, end)``. A source of odd width or height loses its
  last column or row (yuv420p needs even sizes).
- ``stream_copy``: the packets are copied, no decoding. A copied clip must start on a keyframe, so each boundary
  moves back to the source's last keyframe at or before it; the clips still hold every frame once, in order,
  but start up to one keyframe interval early. A video whose keyframes are further apart than a clip cannot be
  stream-copied (it is reported; re-encode it).

With ``verify`` each clip is opened with decord before it takes its name: its frame count must be the expected
one (one frame of tolerance) and its frame rate the source's. Every clip is written to a temporary name and
renamed when verified, so a clip file is always complete: a second run skips the clips that exist and cleans
the temporary files an interrupted run left. A video that cannot be read, or whose clip fails, is reported and
left out: it is not listed and none of its clips is kept.

The list, written atomically at the end for the videos of this run in input order: ``<out>/training.txt``, or
``<out>/training.shard-<i>-of-<n>.txt`` with ``shard`` ``i/n`` (run once more without a shard when all are done:
every clip is skipped and ``training.txt`` lists all videos). ``<out>/vseg_clips.yaml`` holds the effective config.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from vseg import ui
from vseg.config import ClipsConfig, check_same_settings, config_to_yaml, parse_shard
from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.cliplist import (
    CLIP_PREFIX,
    UntrimmedVideo,
    clip_file_name,
    format_training_list,
    video_id_problem,
)
from vseg.io.video import (
    VideoInfo,
    keyframe_indices,
    open_video,
    probe_video,
    quiet_decoder_logs,
    quiet_ffmpeg,
    run_ffmpeg,
)
from vseg.parallel import default_workers, run_jobs

CONFIG_NAME = "vseg_clips.yaml"
CLIP_DIR = "training"
LIST_NAME = "training.txt"
# Extensions taken from an input folder (a file named on the command line is taken whatever its extension).
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".flv", ".mpg", ".mpeg", ".ts", ".wmv", ".3gp", ".ogv"}
)
# Settings that change the clips' names or bytes: a resumed run must use the same ones.
LAYOUT_KEYS = ("clip_seconds", "stream_copy", "crf", "preset")
_TMP_RE = re.compile(rf"^\.(?P<name>.+)\.\d+{re.escape(atomic.TMP_SUFFIX)}$")


def list_name(shard: str) -> str:
    """``training.txt``, or ``training.shard-<i>-of-<n>.txt`` for a shard of several."""
    index, count = parse_shard(shard)
    return LIST_NAME if count == 1 else f"training.shard-{index}-of-{count}.txt"


def video_id(path: Path) -> str:
    """The id of a video file: its name without the extension and without a leading ``v_`` (HACS names its
    videos ``v_<youtube id>.mp4``; the clip names add the ``v_`` back)."""
    stem = path.stem
    return stem[len(CLIP_PREFIX) :] if stem.startswith(CLIP_PREFIX) else stem


def collect_videos(inputs: Iterable[Path]) -> list[tuple[str, Path]]:
    """``(id, path)`` of every input video in order: files as given, folders as their video files sorted by name
    (not recursive, hidden files skipped). DataError naming the file for a missing input, a folder without
    videos, an id that cannot name clips, or two inputs with the same id."""
    videos: list[tuple[str, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(
                p for p in item.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
            )
            if not found:
                raise DataError(item, f"no video files in this folder ({', '.join(sorted(VIDEO_EXTENSIONS))})")
            videos.extend((video_id(p), p) for p in found if p.is_file())
        elif item.is_file():
            videos.append((video_id(item), item))
        else:
            raise DataError(item, "no such video file or folder")
    if not videos:
        raise DataError(Path("."), "no input videos given")
    seen: dict[str, Path] = {}
    for vid, path in videos:
        problem = video_id_problem(vid)
        if problem:
            raise DataError(path, f"{problem}; rename the file (the id is its name without extension and 'v_')")
        if vid in seen:
            same = "is given twice" if seen[vid].resolve() == path.resolve() else f"has the same id as {seen[vid]}"
            raise DataError(path, f"{same} ({vid!r}); clip names must be unique, rename one of them")
        seen[vid] = path
    return videos


# ------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Piece:
    """One clip of a video: its times (names) and the source frames ``[first, end)`` it must hold."""

    start_ms: int
    end_ms: int
    first: int
    end: int


def first_frame_at(seconds: float, fps: float, frames: int) -> int:
    """Index of the first frame shown at or after ``seconds`` (frame k is shown at k / fps)."""
    return min(max(math.ceil(seconds * fps - 1e-6), 0), frames)


def plan_pieces(info: VideoInfo, clip_ms: int, keyframes: list[int] | None = None) -> list[Piece]:
    """The clips of a video: ``[k*clip_ms, (k+1)*clip_ms)``, the last ending at the duration; a final remainder
    holding no frame is merged into the clip before it. With ``keyframes`` (stream copy), each boundary's first
    frame moves back to the last keyframe at or before it. ValueError when a clip would hold no frame."""
    duration_ms = round(info.frames / info.fps * 1000)
    starts = list(range(0, duration_ms, clip_ms))
    firsts = [first_frame_at(s / 1000, info.fps, info.frames) for s in starts]
    if len(starts) > 1 and firsts[-1] >= info.frames:  # the remainder holds no frame
        starts.pop()
        firsts.pop()
    if keyframes is not None:
        keys = sorted({0, *keyframes})
        firsts = [max(k for k in keys if k <= f) for f in firsts]
    ends_ms = [*starts[1:], duration_ms]
    ends = [*firsts[1:], info.frames]
    pieces = [Piece(s, e, f, n) for s, e, f, n in zip(starts, ends_ms, firsts, ends, strict=True)]
    for piece in pieces:
        if piece.end <= piece.first:
            if keyframes is not None:
                gap = max(b - a for a, b in zip(keys, [*keys[1:], info.frames], strict=True)) / info.fps
                raise ValueError(
                    f"keyframes up to {gap:.1f} s apart, longer than a clip ({clip_ms / 1000:g} s): the clip "
                    f"{piece.start_ms}-{piece.end_ms} ms would be empty when stream-copied; re-encode it "
                    "(no --stream-copy)"
                )
            raise ValueError(
                f"the clip {piece.start_ms}-{piece.end_ms} ms holds no frame at {info.fps:g} fps; use longer clips"
            )
    return pieces


# -------------------------------------------------------------------------------------------- cutting


@dataclass(frozen=True)
class ClipJob:
    """One clip to cut from ``source`` into ``out``, with what is needed to check it."""

    video_id: str
    source: str
    out: str
    piece: Piece
    last: bool
    fps: float
    odd_size: bool
    stream_copy: bool
    crf: int
    preset: str
    verify: bool


def ffmpeg_command(job: ClipJob, target: str | Path) -> list[str]:
    """The ffmpeg command that writes the clip of ``job`` to ``target`` (an MP4 whatever the name)."""
    piece = job.piece
    command = quiet_ffmpeg()
    if job.stream_copy:
        # Seek a quarter frame past the keyframe: the demuxer lands on it, and no packet before it is copied.
        if piece.first > 0:
            command += ["-ss", f"{(piece.first + 0.25) / job.fps:.6f}"]
        command += ["-i", job.source, "-map", "0:v:0", "-an", "-sn", "-dn"]
        if not job.last:  # a keyframe-to-keyframe run: the first (end - first) packets are exactly its frames
            command += ["-frames:v", str(piece.end - piece.first)]
        command += ["-c:v", "copy", "-avoid_negative_ts", "make_zero"]
    else:
        if piece.start_ms > 0:
            command += ["-ss", f"{piece.start_ms / 1000:.3f}"]
        command += ["-i", job.source, "-map", "0:v:0", "-an", "-sn", "-dn"]
        if not job.last:  # the last clip runs to the end of the video
            command += ["-t", f"{(piece.end_ms - piece.start_ms) / 1000:.3f}"]
        if job.odd_size:
            command += ["-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0"]
        command += ["-c:v", "libx264", "-preset", job.preset, "-crf", str(job.crf), "-pix_fmt", "yuv420p"]
    return [*command, "-f", "mp4", str(target)]


def cut_clip(job: ClipJob) -> float:
    """Cut one clip, check it, and move it into place; returns the seconds of video it holds.

    Raises DataError naming the source video when ffmpeg fails or the clip is not what was asked for.
    """
    quiet_decoder_logs()
    name = Path(job.out).name
    with atomic.atomic_path(Path(job.out)) as tmp:
        run_ffmpeg(ffmpeg_command(job, tmp), job.source, f"cutting {name}")
        if job.verify:
            _verify(job, tmp, name)
    return (job.piece.end_ms - job.piece.start_ms) / 1000


def _verify(job: ClipJob, clip: Path, name: str) -> None:
    expected = job.piece.end - job.piece.first
    try:
        reader = open_video(clip)
        frames, fps = len(reader), float(reader.get_avg_fps())
    except DataError as exc:
        raise DataError(job.source, f"the cut clip {name} cannot be read back ({exc.reason})") from None
    if abs(frames - expected) > 1 or not abs(fps - job.fps) <= 0.01 * job.fps:
        raise DataError(
            job.source,
            f"the cut clip {name} has {frames} frames at {fps:g} fps, expected {expected} at {job.fps:g} fps",
        )


# ----------------------------------------------------------------------------------------------- stage


@dataclass
class ClipsReport:
    """What a run did; ``failed`` maps each video id left out to its error (which names the file)."""

    out: Path
    list_file: Path
    videos: int = 0
    clips: int = 0
    written: int = 0
    skipped: int = 0
    video_seconds: float = 0.0
    cut_seconds: float = 0.0
    failed: dict[str, DataError] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Seconds of video cut per second of this run."""
        return self.cut_seconds / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ProbeJob:
    video_id: str
    source: str
    keyframes: bool


def probe_job(job: ProbeJob) -> tuple[VideoInfo, list[int] | None]:
    """Frames, fps and size of a video, and its keyframe indices when asked (stream copy)."""
    quiet_decoder_logs()
    info = probe_video(job.source)
    return info, (keyframe_indices(job.source) if job.keyframes else None)


def make_clips(inputs: list[Path], out: Path, config: ClipsConfig) -> ClipsReport:
    """Cut the input videos (this shard's) into clips and write their list; see the module docstring.

    Bad input paths and ids raise DataError before anything is written; videos that cannot be read or cut are
    listed in the report's ``failed`` and the others are cut. Resumes where a run stopped.
    """
    out = Path(out)
    started = time.perf_counter()
    index, count = parse_shard(config.shard)
    videos = collect_videos(inputs)[index::count]
    check_same_settings(out / CONFIG_NAME, config, LAYOUT_KEYS, "clips")
    clip_dir = out / CLIP_DIR
    clip_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / CONFIG_NAME, config_to_yaml(config, "prep clips"))
    report = ClipsReport(out=out, list_file=out / list_name(config.shard), videos=len(videos))
    workers = config.workers or default_workers()
    clip_ms = round(config.clip_seconds * 1000)

    plans: dict[str, tuple[VideoInfo, list[Piece]]] = {}
    probes = [ProbeJob(vid, str(path), config.stream_copy) for vid, path in videos]
    with (
        ui.progress("probing", total=len(probes), unit="videos") as advance,
        closing(run_jobs(probe_job, probes, workers)) as results,
    ):
        for job, result, error in results:
            advance()
            if isinstance(error, DataError):
                report.failed[job.video_id] = error
            elif error is not None:
                raise error
            else:
                info, keyframes = result
                try:
                    plans[job.video_id] = info, plan_pieces(info, clip_ms, keyframes)
                except ValueError as exc:
                    report.failed[job.video_id] = DataError(job.source, str(exc))

    sources = dict(videos)
    existing = set(os.listdir(clip_dir))
    todo: list[ClipJob] = []
    skipped: dict[str, int] = {}
    for vid, _ in videos:
        if vid not in plans:
            continue
        info, pieces = plans[vid]
        for k, piece in enumerate(pieces):
            name = clip_file_name(vid, piece.start_ms, piece.end_ms)
            if name in existing:
                skipped[vid] = skipped.get(vid, 0) + 1
                continue
            odd = bool(info.width % 2 or info.height % 2)
            todo.append(
                ClipJob(vid, str(sources[vid]), str(clip_dir / name), piece, k == len(pieces) - 1, info.fps, odd,
                        config.stream_copy, config.crf, config.preset, config.verify)
            )  # fmt: skip
    _clean_leftovers(clip_dir, existing, {Path(job.out).name for job in todo})
    written: dict[str, int] = {}
    try:
        _cut(todo, workers, report, written)
    finally:
        for vid in report.failed:  # a failed video leaves none of its clips behind
            for piece in plans.get(vid, (None, []))[1]:
                (clip_dir / clip_file_name(vid, piece.start_ms, piece.end_ms)).unlink(missing_ok=True)
    report.failed = {vid: report.failed[vid] for vid, _ in videos if vid in report.failed}  # in input order
    report.written = sum(n for vid, n in written.items() if vid not in report.failed)
    report.skipped = sum(n for vid, n in skipped.items() if vid not in report.failed)
    listed = [
        UntrimmedVideo(vid, [(p.start_ms, p.end_ms) for p in plans[vid][1]])
        for vid, _ in videos
        if vid in plans and vid not in report.failed
    ]
    report.clips = sum(len(v.pieces) for v in listed)
    report.video_seconds = sum(v.duration for v in listed)
    atomic.write_text(report.list_file, format_training_list(listed))
    report.seconds = time.perf_counter() - started
    return report


def _clean_leftovers(clip_dir: Path, entries: set[str], names: set[str]) -> None:
    """Remove the temporary files an interrupted run left for the clips about to be cut (only those: another
    shard may be writing its own clips into the same folder right now)."""
    for entry in entries:
        match = _TMP_RE.match(entry)
        if match and match["name"] in names:
            (clip_dir / entry).unlink(missing_ok=True)


def _cut(todo: list[ClipJob], workers: int, report: ClipsReport, written: dict[str, int]) -> None:
    """Cut the clips in parallel, video after video (``written`` counts each video's new clips); the clips of a
    video that failed are not started."""
    if not todo:
        return
    remaining: dict[str, int] = {}
    for job in todo:
        remaining[job.video_id] = remaining.get(job.video_id, 0) + 1
    videos_done = clips_done = 0
    total = sum((job.piece.end_ms - job.piece.start_ms) / 1000 for job in todo)
    pending = (job for job in todo if job.video_id not in report.failed)
    with (
        ui.progress("clips", total=max(1, round(total)), unit="video s") as advance,
        closing(run_jobs(cut_clip, pending, workers)) as results,
    ):
        for job, seconds, error in results:
            if isinstance(error, DataError):
                report.failed.setdefault(job.video_id, error)
            elif error is not None:
                raise error
            else:
                written[job.video_id] = written.get(job.video_id, 0) + 1
                report.cut_seconds += seconds
            clips_done += 1
            remaining[job.video_id] -= 1
            videos_done += remaining[job.video_id] == 0
            status = f"{clips_done}/{len(todo)} clips, {videos_done}/{len(remaining)} videos"
            advance((job.piece.end_ms - job.piece.start_ms) / 1000, status)
