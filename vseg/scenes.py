"""``vseg scenes VIDEO``: a raw video to its scenes, in one command.

Stages, each through files a user can open (everything under ``DIR``)::

    shots      vseg prep shots on the video              DIR/shots/ (240P/<id>/, shot_txt/<id>.txt, meta/<id>.json)
    features   an encoder checkpoint's shot embeddings,  DIR/embedding/all.npz
               or colour histograms without one
    scoring    a vseg segment model's boundary           DIR/predictions.json
               probabilities, or a training-free method
               (optimal sequential grouping or the
               window scorer)
    scenes     the boundaries (probability > threshold,  DIR/scenes.json, scenes.csv, report.html, timeline.png;
               at least min_scene_shots apart)           scenes.otio, scenes.edl, scenes.xml (vseg.io.timeline);
                                                         chapters.vtt, chapters.ffmetadata, chapters.txt;
                                                         with split: DIR/scenes/<id>-scene-NNN.mp4;
                                                         with embed_chapters: DIR/<video name>-chapters.<ext>

Features: with ``encoder`` the frozen backbone of a vseg SCRL run, the SCRL release or a bare encoder state dict
(:func:`vseg.eval.embed.run_embed`); without it the colour histograms of :mod:`vseg.eval.histogram`. Scoring: with
``segmenter`` a ``vseg segment`` model (``model.pth``), trained on features of the same kind; without it the
config's ``method`` (:mod:`vseg.eval.training_free`). A second run reuses the shots of the first (prep shots resumes).
When the true scenes are known (``truth_frames``: the first frame of every true scene after the first; the demo and
tests know them), the timeline and the report draw them beside the found ones.

Times are the video's presentation timestamps (vseg prep shots reads them), so a scene's ``start_time`` is when a
player shows its first frame, on any video: variable frame rate, a first timestamp other than 0, 29.97 fps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vseg import ui
from vseg.config import ScenesConfig, config_to_yaml
from vseg.errors import DataError, VsegError
from vseg.eval.embed import load_shot_encoder, run_embed
from vseg.eval.histogram import FEATURE_DIM as HISTOGRAM_DIM
from vseg.eval.histogram import histogram_features
from vseg.eval.segment import load_model, predict_probabilities
from vseg.eval.training_free import training_free_boundaries
from vseg.io import atomic
from vseg.io.embeddings import Embeddings, read_embeddings, write_npz
from vseg.io.movienet import MovieNetLayout, index_movie, read_movie_fps, read_shot_table, read_shot_times
from vseg.io.predictions import MoviePrediction, Scene, scenes_from_probabilities, write_predictions, write_scene_lists
from vseg.io.scene_report import write_report, write_timeline
from vseg.io.timeline import editing_rate, scene_timeline, write_chapters, write_timelines
from vseg.io.video import CONTAINERS, embed_chapters, quiet_ffmpeg, run_ffmpeg
from vseg.prep.clips import collect_videos
from vseg.prep.shots import make_shots
from vseg.runtime import choose_device

CONFIG_NAME = "vseg_scenes.yaml"
FEATURES_FILE = Path("embedding") / "all.npz"  # the set "all" of vseg embed
SEEK_LEAD = Fraction(1, 2000)  # --split seeks this long before a scene's first frame (see split_scenes)


@dataclass
class ScenesReport:
    out: Path
    video: Path
    video_id: str
    fps: float
    frames: int
    shots: int
    scenes: list[Scene]
    features: str
    scoring: str
    threshold: float
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.stage_seconds.values())


def run_scenes(
    video: Path,
    out: Path,
    config: ScenesConfig,
    encoder: Path | None = None,
    segmenter: Path | None = None,
    truth_frames: Sequence[int] | None = None,
) -> ScenesReport:
    """Find the scenes of ``video`` and write them under ``out`` (see the module docstring).

    The inputs (the video's path, the encoder and segmenter files, the device) are checked before anything is
    written; when the shots stage refuses the video, what this run made is removed again.
    """
    video, out = Path(video), Path(out)
    video_id = collect_videos([video])[0][0]
    loaded = load_shot_encoder(encoder) if encoder is not None else None
    boundary_model = load_model(segmenter) if segmenter is not None else None
    device = choose_device(config.embed.device, 0) if encoder is not None or segmenter is not None else None
    if loaded is not None:
        features, dim = f"encoder {encoder} ({loaded.arch})", loaded.encoder.feature_dim
    else:
        features, dim = "colour histograms (no --encoder given; see vseg.eval.histogram)", HISTOGRAM_DIM
    if boundary_model is not None and boundary_model[0].input_dim != dim:
        raise DataError(
            segmenter, f"takes {boundary_model[0].input_dim}-d features, the shots have {dim}-d ({features})"
        )
    timer = _StageTimer()
    with atomic.removed_on_error([out / CONFIG_NAME, out / "shots"], VsegError), timer("shots"):
        atomic.write_text(out / CONFIG_NAME, config_to_yaml(config, "scenes"))
        shots = make_shots([video], out / "shots", config.shots)
        if shots.failed:
            raise next(iter(shots.failed.values()))
        layout = MovieNetLayout(out / "shots")
        table = read_shot_table(layout.shot_table_file(video_id))
        fps = read_movie_fps(layout.meta_file(video_id))
        if fps is None:
            raise DataError(layout.meta_file(video_id), "has no fps (vseg prep shots writes one)")
        shot_times = read_shot_times(layout.meta_file(video_id), len(table))
        if shot_times is None:
            raise DataError(layout.meta_file(video_id), "has no shot_pts: run vseg prep shots again into a new folder")
        keyframes = index_movie(layout.keyframes / video_id)
        frames = int(table[-1][1]) + 1

    with timer("features"):
        if loaded is not None:
            run_embed(encoder, layout.root, out / "embedding", config.embed, loaded)
            embeddings = read_embeddings(out / FEATURES_FILE)
            embeddings = Embeddings.concat({video_id: dict(embeddings)[video_id]}, None, {video_id: table})
        else:
            embeddings = Embeddings.concat({video_id: histogram_features(keyframes)}, None, {video_id: table})
            write_npz(out / FEATURES_FILE, embeddings)

    with timer("scoring"):
        if boundary_model is not None:
            model, segment_config = boundary_model
            prob = predict_probabilities(model.to(device), embeddings, segment_config.data.seq_len, device)[video_id]
            own_threshold = segment_config.train.threshold
            scoring = f"segmenter {segmenter}"
        else:
            prob, scoring = training_free_boundaries(embeddings.features, config)
            own_threshold = 0.5
        threshold = own_threshold if config.threshold is None else config.threshold
        write_predictions(out / "predictions.json", {video_id: MoviePrediction(prob, None, table, fps)})

    with timer("outputs"):
        scenes = scenes_from_probabilities(video_id, prob, threshold, table, fps, config.min_scene_shots, shot_times)
        files = [out / "predictions.json", *write_scene_lists(out, scenes)]
        timeline_otio = scene_timeline(scenes, editing_rate(fps), video, frames, video.stem)
        files += write_timelines(out, timeline_otio)
        files += write_chapters(out, scenes)
        boundaries = [scene.last_shot for scene in scenes[:-1]]
        truth = None if truth_frames is None else true_boundaries(table, truth_frames)
        timeline = write_timeline(
            out / "timeline.png", prob, threshold, boundaries, title=f"{video.name}: {scoring}", truth=truth
        )
        notes = [
            f"video: {video} ({len(table)} shots, {frames} frames, {fps:g} fps on average)",
            *shots.warnings.values(),
            f"shots: vseg prep shots, {config.shots.detector} detector",
            f"features: {features}",
            f"boundaries: {scoring}, threshold {threshold:g}, scenes of at least {config.min_scene_shots} shots",
        ]
        shot_keyframes = [list(keyframes.shot_paths(shot)) for shot in range(len(table))]
        report_file = write_report(
            out / "report.html", scenes, shot_keyframes, prob, f"Scenes of {video.name}", notes, timeline,
            config.thumbs_per_scene, video=video, truth=truth,
        )  # fmt: skip
        files += [timeline, report_file]

    if config.split:
        with timer("split"):
            files += split_scenes(video, scenes, shot_times, out / "scenes", video_id)
    if config.embed_chapters:
        with timer("chapters"):
            suffix = video.suffix.lower() if CONTAINERS.get(video.suffix.lower(), "avi") != "avi" else ".mkv"
            files.append(embed_chapters(video, out / "chapters.ffmetadata", out / f"{video.stem}-chapters{suffix}"))

    return ScenesReport(
        out, video, video_id, fps, frames, len(table), scenes, features, scoring, threshold, files,
        list(shots.warnings.values()), timer.seconds,
    )  # fmt: skip


def true_boundaries(table: np.ndarray, truth_frames: Sequence[int]) -> list[int]:
    """The shots that end a true scene: for each true scene's first frame, the detected shot whose end is nearest
    to the frame before it (a shot detector may miss or move a cut by a few frames)."""
    ends = np.asarray(table)[:-1, 1].astype(np.int64)  # the last shot ends the video, not a scene
    if len(ends) == 0:
        return []
    return sorted({int(np.argmin(np.abs(ends + 1 - frame))) for frame in truth_frames})


class _StageTimer:
    """``with timer("name"):`` announces a stage and adds its wall time to ``seconds["name"]``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        ui.info(f"[bold]{name}[/bold] ...")
        started = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - started


def split_scenes(
    video: Path, scenes: list[Scene], shot_times: list[tuple[Fraction, Fraction]], folder: Path, video_id: str
) -> list[Path]:
    """One video file per scene, ``folder/<id>-scene-NNN.mp4``, holding exactly the scene's frames.

    ffmpeg seeks by presentation timestamp (``-seek_timestamp 1``, so a first timestamp other than 0 is no offset) to
    half a millisecond before the scene's first frame, so that the frame before it (at least a millisecond earlier:
    frame rates stay under 1000 fps) is dropped and the first one kept, then writes the scene's frame count
    (``-frames:v``) with every frame's own timestamp on the video's own clock (``-fps_mode passthrough
    -enc_time_base demux``, ffmpeg 7 or later: a variable frame rate stays variable, no frame is duplicated, dropped
    or moved) re-encoded with x264 (crf 18); audio as AAC over the scene's duration.
    """
    files = []
    with ui.progress("split", total=len(scenes), unit="scenes") as advance:
        for scene in scenes:
            path = folder / f"{video_id}-scene-{scene.scene + 1:03d}.mp4"
            start, end = shot_times[scene.first_shot][0], shot_times[scene.last_shot][1]
            frames = scene.end_frame - scene.start_frame + 1
            with atomic.atomic_path(path) as tmp:
                command = quiet_ffmpeg(
                    "-seek_timestamp", "1", "-ss", f"{float(start - SEEK_LEAD):.6f}", "-i", str(video),
                    "-map", "0:v:0", "-map", "0:a:0?", "-frames:v", str(frames), "-t", f"{float(end - start):.6f}",
                    "-fps_mode", "passthrough", "-enc_time_base:v", "demux", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mp4", str(tmp),
                )  # fmt: skip
                run_ffmpeg(command, video, f"writing {path.name}")
            files.append(path)
            advance()
    return files
