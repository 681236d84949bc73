"""``vseg prep shots``: raw videos to shots and their keyframes, in the MovieNet layout the rest of vseg reads.

For each video ``<id>`` (the file name without extension and a leading ``v_``)::

    ROOT/240P/<id>/shot_SSSS_img_J.jpg   J = 0, 1, 2: the first, middle ((start + end) // 2) and last frame of shot
                                         SSSS, scaled to keyframe_height (240) high, all of one video one size
    ROOT/shot_txt/<id>.txt               a line per shot: start frame, end frame (inclusive), the 3 keyframe indices
    ROOT/meta/<id>.json                  fps, frames, width, height, keyframe size, source and detector settings,
                                         and the times of the shots: time_base ("1/12800") and shot_pts, a
                                         [first, end] pair per shot: the presentation timestamp of its first frame
                                         and of the frame after its last (the video's end for the last shot)
    ROOT/vseg_shots.yaml                 the effective config

Times come from the stream's presentation timestamps, read with PyAV from the packets alone
(:func:`vseg.io.video.read_frame_times`), never from ``frame / fps``: variable frame rates, a first timestamp other
than 0 and 29.97 / 23.976 fps all give each shot the time a player shows its first frame. A video that ends early
(fewer frames in the file than its header announces) is cut where its frames end, with a warning.

Each video is decoded once, in order, with PyAV (frame threads) and scaled to the keyframe size by swscale
(:class:`vseg.io.video.FrameReader`); the detector (:mod:`vseg.prep.shot_detectors`) sees the frames scaled down
again. Keyframes are kept from the stream as the cuts come in: only the frames that may still become the middle or
last frame of the open shot are held (at most ``MAX_HELD`` frames), and a middle frame that was not held (a long
shot) is read again by seeking at the end, so memory stays flat whatever the video's length.

Videos run in parallel (one process each); a video's keyframes are written into ``240P/.partial/<id>`` and moved into
place when complete, and its ``meta/<id>.json`` is written last, so a video with a meta file is finished: a second run
skips it. A video that cannot be read is reported and left out, and the others are done.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vseg import __version__, ui
from vseg.config import ShotsConfig, check_same_settings, config_to_yaml, parse_shard
from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.movienet import MovieNetLayout, format_shot_table, keyframe_name
from vseg.io.video import FrameReader, FrameTimes, VideoInfo, probe_video, read_frame_times
from vseg.parallel import default_workers, run_jobs
from vseg.prep.clips import collect_videos
from vseg.prep.shot_detectors import detection_size, make_detector, transnet_class

CONFIG_NAME = "vseg_shots.yaml"
BATCH_FRAMES = 32  # progress is reported every this many frames
MAX_HELD = 128  # frames held back for a shot's middle frame before it is read again by seeking instead
# Settings that change what is written: a resumed run must use the same ones.
LAYOUT_KEYS = (
    "detector", "threshold", "adaptive_threshold", "min_content_val", "window_width", "transnet_threshold",
    "min_shot_frames", "detect_width", "keyframe_height", "jpeg_quality",
)  # fmt: skip


def keyframe_width(info: VideoInfo, height: int) -> int:
    """Keyframe width for ``height``: the video's aspect ratio, even (what decord's scaler wants)."""
    return max(2, round(info.width * height / info.height / 2) * 2)


# --------------------------------------------------------------------------------------------- one video


@dataclass(frozen=True)
class ShotJob:
    video_id: str
    source: str
    folder: str  # where the keyframes are written (a staging folder)
    info: VideoInfo
    config: ShotsConfig
    threads: int = 1


@dataclass
class VideoShots:
    shots: list[tuple[int, int]]
    keyframe_size: tuple[int, int]
    times: FrameTimes
    ends_early: str = ""  # why the file seems cut short (see _ends_early), or ""

    def shot_pts(self) -> list[list[int]]:
        """A ``[first, end]`` presentation timestamp pair per shot (see the module docstring)."""
        return [[self.times.frame_pts(first), self.times.frame_pts(last + 1)] for first, last in self.shots]


KeyframeSink = Callable[[int, int, np.ndarray], None]
"""Takes the keyframes of a video as they are found: ``sink(shot, j, frame)``, frame an ``H x W x 3`` uint8 RGB array.
Keyframes come mostly in shot order; a middle frame read again by seeking comes at the end."""


class JpegKeyframes:
    """A :data:`KeyframeSink` that writes ``folder/shot_SSSS_img_J.jpg`` (what ``vseg prep shots`` keeps)."""

    def __init__(self, folder: Path, quality: int):
        self.folder, self.quality = Path(folder), quality
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, shot: int, j: int, frame: np.ndarray) -> None:
        Image.fromarray(frame).save(self.folder / keyframe_name(shot, j), format="JPEG", quality=self.quality)


class _Keyframes:
    """Hands the 3 keyframes of each shot to a sink as the shots close, from the frames held back or, late, by
    seeking."""

    def __init__(self, sink: KeyframeSink):
        self.sink = sink
        self.late: dict[tuple[int, int], int] = {}  # (shot, j) -> frame index still to be read

    def save(self, shot: int, j: int, index: int, held: deque) -> None:
        first = held[0][0] if held else index + 1
        if first <= index < first + len(held):
            self.sink(shot, j, held[index - first][1])
        else:
            self.late[(shot, j)] = index


def shot_video(
    job: ShotJob,
    advance: Callable[[int], None] | None = None,
    sink: KeyframeSink | None = None,
    times: FrameTimes | None = None,
) -> VideoShots:
    """Detect the shots of one video and hand their keyframes to ``sink`` (by default JPEG files in ``job.folder``);
    DataError naming the video when it cannot be decoded. ``advance(frames)`` is called as frames are decoded;
    ``times``: the video's frame times when the caller has read them already."""
    config, info = job.config, job.info
    times = read_frame_times(job.source) if times is None else times
    frames = len(times)  # fewer than info.frames when the file ends early
    size = (keyframe_width(info, config.keyframe_height), config.keyframe_height)
    reader = FrameReader(job.source, times, *size, threads=job.threads)
    detector = make_detector(config, info.fps)
    small = detection_size(config, *size)
    keyframes = _Keyframes(sink or JpegKeyframes(Path(job.folder), config.jpeg_quality))
    held: deque[tuple[int, np.ndarray]] = deque()
    shots: list[tuple[int, int]] = []
    start = 0

    def close_shots(cuts: Iterable[int], frames: int) -> None:
        nonlocal start
        for cut in sorted(cuts):
            if start < cut < frames:
                _close(len(shots), start, cut - 1)
                shots.append((start, cut - 1))
                start = cut
                keyframes.save(len(shots), 0, cut, held)

    def _close(shot: int, first: int, last: int) -> None:
        keyframes.save(shot, 1, (first + last) // 2, held)
        keyframes.save(shot, 2, last, held)

    decoded = 0
    for index, frame in zip(range(frames), reader.frames()):
        held.append((index, frame))
        if index == 0:
            keyframes.save(0, 0, 0, held)
        close_shots(detector.push(index, _scaled(frame, small)), frames)
        earliest_end = max(start, index - detector.lag - 1)
        keep_from = max((start + earliest_end) // 2, index - MAX_HELD)
        while held and held[0][0] < keep_from:
            held.popleft()
        decoded = index + 1
        if advance is not None and decoded % BATCH_FRAMES == 0:
            advance(BATCH_FRAMES)
    if advance is not None and decoded % BATCH_FRAMES:
        advance(decoded % BATCH_FRAMES)
    if decoded < frames:  # the last packets do not decode: the video ends with the last frame that does
        frames, times = decoded, times.first(decoded)
    close_shots(detector.finish(frames), frames)
    _close(len(shots), start, frames - 1)
    shots.append((start, frames - 1))
    if keyframes.late:
        again = reader.read(keyframes.late.values())
        for (shot, j), index in keyframes.late.items():
            keyframes.sink(shot, j, again[index])
    return VideoShots(shots, size, times, _ends_early(times, info.frames))


def _ends_early(times: FrameTimes, announced_frames: int) -> str:
    """Why the video seems to end before its header says ("" when it does not): decord counts more frames than the
    file holds, or the header's duration runs past the last frame by more than a second (audio may outlast the
    picture by less)."""
    if announced_frames > len(times):
        return f"{announced_frames - len(times)} of the {announced_frames} frames its header announces are missing"
    last = times.end * times.time_base
    if times.announced_end is not None and times.announced_end - last > 1:
        return f"its frames stop at {float(last):.3f} s, its header says {float(times.announced_end):.3f} s"
    return ""


def _scaled(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    import cv2

    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)  # what PySceneDetect's own downscale uses


def _run_job(job: ShotJob) -> VideoShots:
    return shot_video(job)


# ------------------------------------------------------------------------------------------------ stage


@dataclass
class ShotsReport:
    out: Path
    videos: int
    done: int = 0
    skipped: int = 0
    shots: int = 0
    frames: int = 0
    seconds: float = 0.0
    failed: dict[str, DataError] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def is_done(layout: MovieNetLayout, video_id: str) -> bool:
    """A video is finished when its meta file (written last) exists."""
    return layout.meta_file(video_id).is_file() and (layout.keyframes / video_id).is_dir()


def make_shots(inputs: list[Path], out: Path, config: ShotsConfig) -> ShotsReport:
    """Detect the shots of the input videos (this shard's) and write their keyframes, shot tables and meta files
    under ``out`` (see the module docstring). Bad input paths raise DataError before anything is written; videos
    that cannot be read are listed in the report's ``failed``. Resumes where a run stopped."""
    started = time.perf_counter()
    layout = MovieNetLayout(Path(out))
    index, count = parse_shard(config.shard)
    videos = collect_videos(inputs)[index::count]
    if config.detector == "transnetv2":
        transnet_class()  # a missing package fails here, before this run's settings are recorded in ROOT
    check_same_settings(layout.root / CONFIG_NAME, config, LAYOUT_KEYS, "shots")
    atomic.write_text(layout.root / CONFIG_NAME, config_to_yaml(config, "prep shots"))
    report = ShotsReport(out=layout.root, videos=len(videos))
    todo = [(vid, path) for vid, path in videos if not is_done(layout, vid)]
    report.skipped = len(videos) - len(todo)
    workers = min(config.workers or default_workers(), max(len(todo), 1))
    infos = _probe(todo, workers, report)
    threads = max(1, default_workers() // workers)  # decoder threads per video
    jobs = []
    for vid, path in todo:
        if vid in infos:
            shutil.rmtree(layout.keyframes / vid, ignore_errors=True)  # an unfinished earlier attempt
            staging = atomic.staging_dir(layout.keyframes / vid)
            shutil.rmtree(staging, ignore_errors=True)
            jobs.append(ShotJob(vid, str(path), str(staging), infos[vid], config, threads))
    total = sum(job.info.frames for job in jobs)
    with ui.progress("shots", total=total, unit="frames") as advance:
        if workers == 1:
            results = ((job, *_attempt(job, advance)) for job in jobs)
            for job, result, error in results:
                _finish(layout, job, result, error, report, None)
        else:
            with closing(run_jobs(_run_job, jobs, workers)) as results:
                for job, result, error in results:
                    _finish(layout, job, result, error, report, advance)
    report.failed = {vid: report.failed[vid] for vid, _ in videos if vid in report.failed}  # in input order
    report.seconds = time.perf_counter() - started
    return report


def _attempt(job: ShotJob, advance) -> tuple[VideoShots | None, BaseException | None]:
    try:
        return shot_video(job, advance), None
    except Exception as exc:  # noqa: BLE001 - handed to _finish, which decides
        return None, exc


def _probe(todo: list[tuple[str, Path]], workers: int, report: ShotsReport) -> dict[str, VideoInfo]:
    infos: dict[str, VideoInfo] = {}
    ids = {str(path): vid for vid, path in todo}
    with (
        ui.progress("probing", total=len(todo), unit="videos") as advance,
        closing(run_jobs(probe_video, list(ids), workers)) as results,
    ):
        for source, info, error in results:
            advance()
            if isinstance(error, DataError):
                report.failed[ids[source]] = error
            elif error is not None:
                raise error
            else:
                infos[ids[source]] = info
    return infos


def shot_meta(job: ShotJob, result: VideoShots) -> dict:
    """What ``meta/<id>.json`` records of a video and its shots (see the module docstring)."""
    info, config = job.info, job.config
    return {
        "fps": info.fps,
        "frames": len(result.times),
        "ends_early": result.ends_early,
        "time_base": str(result.times.time_base),
        "shot_pts": result.shot_pts(),
        "width": info.width,
        "height": info.height,
        "shots": len(result.shots),
        "keyframe_width": result.keyframe_size[0],
        "keyframe_height": result.keyframe_size[1],
        "source": str(Path(job.source).resolve()),
        "detector": {key: getattr(config, key) for key in LAYOUT_KEYS},
        "vseg_version": __version__,
    }


def finish_video(layout: MovieNetLayout, job: ShotJob, result: VideoShots, staging: Path | None) -> None:
    """Make a video's shots final in ``layout``: its keyframes moved from ``staging`` into place (none: there are
    no keyframe files), its shot table, then its meta file (last: a video with a meta file is finished)."""
    if staging is not None:
        atomic.commit_dir(staging, layout.keyframes / job.video_id)
    atomic.write_text(layout.shot_txt / f"{job.video_id}.txt", format_shot_table(result.shots))
    atomic.write_text(layout.meta_file(job.video_id), json.dumps(shot_meta(job, result), indent=1) + "\n")


def _finish(
    layout: MovieNetLayout,
    job: ShotJob,
    result: VideoShots | None,
    error: BaseException | None,
    report: ShotsReport,
    advance: Callable[[int], None] | None,
) -> None:
    """Move a finished video's keyframes into place and write its shot table and meta file (last)."""
    staging = Path(job.folder)
    if error is not None:
        atomic.discard_dir(staging)
        if not isinstance(error, DataError):
            raise error
        report.failed[job.video_id] = error
        return
    finish_video(layout, job, result, staging)
    report.done += 1
    report.shots += len(result.shots)
    report.frames += len(result.times)
    if result.ends_early:
        report.warnings[job.video_id] = ends_early_warning(job, result)
    if advance is not None:
        advance(job.info.frames)


def ends_early_warning(job: ShotJob, result: VideoShots) -> str:
    """The one-line warning for a video that ends before its header says (``result.ends_early`` set)."""
    return f"{job.source}: ends early ({result.ends_early}): its shots end with its last frame, {len(result.times) - 1}"
