"""Writing a :class:`~vseg.scenes.detect.Scenes` value as the files ``vseg scenes`` leaves in its output folder.

Each format is one name of :data:`FORMATS`; :func:`write_scenes` writes all (or those named), each file atomically::

    json, csv     scenes.json, scenes.csv: a row per scene (vseg.io.predictions)
    predictions   predictions.json: every shot's boundary probability, its frames and the frame rate
    features      embedding/all.npz: the shot features (vseg embed's format, set "all")
    shots         shots/shot_txt/<id>.txt and shots/meta/<id>.json (vseg prep shots' shot table and meta file)
    otio, edl,    scenes.otio, scenes.edl (CMX 3600), scenes.xml (FCP 7 XML): timelines for editors
    xml             (vseg.io.timeline)
    chapters      chapters.vtt, chapters.ffmetadata, chapters.txt
    timeline      timeline.png: the boundary probabilities and the scenes, as a picture
    report        report.html: a player, the notes, the timeline and a row per scene with thumbnails
    thumbnail     thumbnail.jpg: the middle keyframe of the video's middle shot (a collection's index shows it)
    config        vseg_scenes.yaml: the effective config
    split         scenes/<id>-scene-NNN.mp4: one video per scene (ffmpeg, frame-exact)
    embed_chapters  <video name>-chapters.<ext>: a copy of the video with a chapter per scene (stream copy)

``split`` and ``embed_chapters`` write videos: they are written by default only when the config asks
(``split``, ``embed_chapters``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

from vseg.config import config_to_yaml
from vseg.io import atomic
from vseg.io.embeddings import Embeddings, write_npz
from vseg.io.movienet import MovieNetLayout, format_shot_table
from vseg.io.predictions import MoviePrediction, Scene, write_predictions, write_scene_lists
from vseg.io.scene_report import write_report, write_timeline
from vseg.io.timeline import editing_rate, scene_timeline, write_chapters, write_timelines
from vseg.io.video import CONTAINERS, embed_chapters, quiet_ffmpeg, run_ffmpeg
from vseg.scenes.detect import Progress, Scenes

CONFIG_NAME = "vseg_scenes.yaml"
FEATURES_FILE = Path("embedding") / "all.npz"  # the set "all" of vseg embed
SEEK_LEAD = Fraction(1, 2000)  # split seeks this long before a scene's first frame (see split_scenes)
TIMELINES = {"otio": "scenes.otio", "edl": "scenes.edl", "xml": "scenes.xml"}
VIDEO_FORMATS = ("split", "embed_chapters")


def _predictions(result: Scenes, out: Path) -> list[Path]:
    prediction = MoviePrediction(result.prob, None, result.shot_frames, result.fps)
    write_predictions(out / "predictions.json", {result.video_id: prediction})
    return [out / "predictions.json"]


def _features(result: Scenes, out: Path) -> list[Path]:
    embeddings = Embeddings.concat({result.video_id: result.features}, None, {result.video_id: result.shot_frames})
    write_npz(out / FEATURES_FILE, embeddings)
    return [out / FEATURES_FILE]


def _shots(result: Scenes, out: Path) -> list[Path]:
    layout = MovieNetLayout(out / "shots")
    table, meta = layout.shot_txt / f"{result.video_id}.txt", layout.meta_file(result.video_id)
    atomic.write_text(table, format_shot_table(result.shot_frames.tolist()))
    atomic.write_text(meta, json.dumps(result.meta, indent=1) + "\n")
    return [table, meta]


def _timelines(result: Scenes, out: Path, names: set[str]) -> list[Path]:
    timeline = scene_timeline(result.scenes, editing_rate(result.fps), result.video, result.frames, result.video.stem)
    return write_timelines(out, timeline, [TIMELINES[name] for name in TIMELINES if name in names])


def _picture(result: Scenes, out: Path) -> list[Path]:
    boundaries = [scene.last_shot for scene in result.scenes[:-1]]
    title = f"{result.video.name}: {result.scoring}"
    return [write_timeline(out / "timeline.png", result.prob, result.threshold, boundaries, title, truth=result.truth)]


def _report(result: Scenes, out: Path) -> list[Path]:
    config = result.config
    notes = [
        f"video: {result.video} ({result.shots} shots, {result.frames} frames, {result.fps:g} fps on average)",
        *result.warnings,
        f"shots: vseg prep shots, {config.shots.detector} detector",
        f"features: {result.features_name}",
        f"boundaries: {result.scoring}, threshold {result.threshold:g}, scenes of at least {config.min_scene_shots} "
        "shots",
    ]
    picture = out / "timeline.png"
    report = write_report(
        out / "report.html", result.scenes, result.thumbnails, result.prob, f"Scenes of {result.video.name}", notes,
        picture if picture.is_file() else None, config.thumbs_per_scene, video=result.video, truth=result.truth,
        poster=result.poster or None,
    )  # fmt: skip
    return [report]


def _thumbnail(result: Scenes, out: Path) -> list[Path]:
    atomic.write_bytes(out / "thumbnail.jpg", result.thumbnails[len(result.thumbnails) // 2])
    return [out / "thumbnail.jpg"]


def _config(result: Scenes, out: Path) -> list[Path]:
    atomic.write_text(out / CONFIG_NAME, config_to_yaml(result.config, "scenes"))
    return [out / CONFIG_NAME]


def _split(result: Scenes, out: Path, progress: Progress | None = None) -> list[Path]:
    advance = None if progress is None else lambda done: progress("split", done, len(result.scenes))
    return split_scenes(result.video, result.scenes, result.shot_times, out / "scenes", result.video_id, advance)


def _embedded_chapters(result: Scenes, out: Path) -> list[Path]:
    video = result.video
    chapters = out / "chapters.ffmetadata"
    if not chapters.is_file():
        write_chapters(out, result.scenes)
    suffix = video.suffix.lower() if CONTAINERS.get(video.suffix.lower(), "avi") != "avi" else ".mkv"
    return [embed_chapters(video, chapters, out / f"{video.stem}-chapters{suffix}")]


# Writers in the order they run (the report embeds timeline.png, so the picture comes first).
_WRITERS: dict[str, Callable[[Scenes, Path], list[Path]]] = {
    "config": _config,
    "shots": _shots,
    "features": _features,
    "predictions": _predictions,
    "json": lambda result, out: write_scene_lists(out, result.scenes, ("json",)),
    "csv": lambda result, out: write_scene_lists(out, result.scenes, ("csv",)),
    **{name: (lambda result, out, name=name: _timelines(result, out, {name})) for name in TIMELINES},
    "chapters": lambda result, out: write_chapters(out, result.scenes),
    "timeline": _picture,
    "report": _report,
    "thumbnail": _thumbnail,
    "split": _split,
    "embed_chapters": _embedded_chapters,
}
FORMATS = tuple(_WRITERS)


def default_formats(result: Scenes) -> list[str]:
    """Every format but the videos, which only a config that asks for them adds (``split``, ``embed_chapters``)."""
    return [name for name in FORMATS if name not in VIDEO_FORMATS or getattr(result.config, name)]


def write_scenes(
    result: Scenes, out: str | Path, formats: Iterable[str] | None = None, progress: Progress | None = None
) -> list[Path]:
    """Write ``result`` into the folder ``out`` in the ``formats`` named (see the module docstring; None: every
    format but the videos unless the config asks for them); returns the files written. ValueError naming an unknown
    format. ``progress("split", done, total)`` is called as the scenes are split."""
    out = Path(out)
    names = default_formats(result) if formats is None else list(formats)
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown scene formats {', '.join(unknown)} (formats: {', '.join(FORMATS)})")
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for name in FORMATS:
        if name == "split" and name in names:
            files += _split(result, out, progress)
        elif name in names:
            files += _WRITERS[name](result, out)
    return files


def split_scenes(
    video: Path,
    scenes: list[Scene],
    shot_times: list[tuple[Fraction, Fraction]],
    folder: Path,
    video_id: str,
    advance: Callable[[int], None] | None = None,
) -> list[Path]:
    """One video file per scene, ``folder/<id>-scene-NNN.mp4``, holding exactly the scene's frames.

    ffmpeg seeks by presentation timestamp (``-seek_timestamp 1``, so a first timestamp other than 0 is no offset) to
    half a millisecond before the scene's first frame, so that the frame before it (at least a millisecond earlier:
    frame rates stay under 1000 fps) is dropped and the first one kept, then writes the scene's frame count
    (``-frames:v``) with every frame's own timestamp on the video's own clock (``-fps_mode passthrough
    -enc_time_base demux``, ffmpeg 7 or later: a variable frame rate stays variable, no frame is duplicated, dropped
    or moved) re-encoded with x264 (crf 18); audio as AAC over the scene's duration. ``advance(done)`` is called as
    each scene is written.
    """
    files = []
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
        if advance is not None:
            advance(len(files))
    return files
