"""Per-shot boundary probabilities and the scene lists made from them, as JSON and CSV.

``predictions.json`` (written by ``vseg segment`` and ``vseg segment predict``; read by ``vseg segment eval``)::

    {"<imdb>": {"prob": [p0, p1, ...],            boundary probability of each shot, in shot order
                "label": [0, 1, ...],             ground truth, when known
                "frames": [[start, end], ...],    shot frame table, when known
                "fps": 24.0}, ...}                frame rate, when known

A scene list (``scenes.json`` / ``scenes.csv``) has one entry per scene of each movie: its index, first and last
shot, and (with a frame table) first and last frame, and (with a frame rate) start and end time in seconds and as
timecodes. A shot whose probability is above the threshold ends its scene (see :func:`select_boundaries`); the last
scene runs to the movie's last shot.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.movienet import read_json


@dataclass
class MoviePrediction:
    prob: np.ndarray
    label: np.ndarray | None = None
    frames: np.ndarray | None = None
    fps: float | None = None


def write_predictions(path: Path, movies: dict[str, MoviePrediction]) -> None:
    """Write ``predictions.json`` atomically (probabilities rounded to 6 decimals)."""
    data = {}
    for imdb, movie in movies.items():
        entry: dict[str, object] = {"prob": [round(float(p), 6) for p in movie.prob]}
        if movie.label is not None:
            entry["label"] = [int(v) for v in movie.label]
        if movie.frames is not None:
            entry["frames"] = np.asarray(movie.frames).tolist()
        if movie.fps is not None:
            entry["fps"] = float(movie.fps)
        data[imdb] = entry
    atomic.write_text(Path(path), json.dumps(data, separators=(",", ":")) + "\n")


def read_predictions(path: Path) -> dict[str, MoviePrediction]:
    """Read and check ``predictions.json``; DataError naming the file and movie on anything malformed."""
    path = Path(path)
    data = read_json(path, "predictions file")
    if not isinstance(data, dict) or not data:
        raise DataError(path, 'expected {"<imdb>": {"prob": [...], "label": [...]}, ...}')
    movies = {}
    for imdb, entry in data.items():
        try:
            prob = np.asarray(entry["prob"], dtype=np.float64).reshape(-1)
            label = np.asarray(entry["label"], dtype=np.int64) if "label" in entry else None
            frames = np.asarray(entry["frames"], dtype=np.int64).reshape(-1, 2) if "frames" in entry else None
            fps = float(entry["fps"]) if "fps" in entry else None
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(path, f"movie {imdb}: malformed entry ({type(exc).__name__}: {exc})") from None
        for name, values in (("label", label), ("frames", frames)):
            if values is not None and len(values) != len(prob):
                raise DataError(path, f"movie {imdb}: {len(values)} {name} entries for {len(prob)} probabilities")
        movies[imdb] = MoviePrediction(prob, label, frames, fps)
    return movies


SCENE_FIELDS = (
    "movie", "scene", "first_shot", "last_shot", "shots", "start_frame", "end_frame",
    "start_time", "end_time", "start_timecode", "end_timecode",
)  # fmt: skip


def timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm``, the timecode PySceneDetect and most players show (milliseconds rounded)."""
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


@dataclass
class Scene:
    """One scene: shots ``first_shot..last_shot`` and, with a frame table, frames ``start_frame..end_frame``
    (both inclusive). ``start_time`` is when its first frame is shown and ``end_time`` when its last frame ends, so a
    scene's end time is the next one's start time (the convention of PySceneDetect and of edit lists): from the
    video's presentation timestamps where the shots carry them (vseg prep shots), else ``start_frame / fps`` and
    ``(end_frame + 1) / fps``."""

    movie: str
    scene: int
    first_shot: int
    last_shot: int
    start_frame: int | None = None
    end_frame: int | None = None
    start_time: float | None = None
    end_time: float | None = None

    @property
    def shots(self) -> int:
        return self.last_shot - self.first_shot + 1

    def as_row(self) -> dict[str, object]:
        """The scene as one row of scenes.json / scenes.csv (keys in :data:`SCENE_FIELDS` order)."""
        row = {**asdict(self), "shots": self.shots}
        row["start_timecode"] = None if self.start_time is None else timecode(self.start_time)
        row["end_timecode"] = None if self.end_time is None else timecode(self.end_time)
        return {key: row[key] for key in SCENE_FIELDS}


def select_boundaries(prob: np.ndarray, threshold: float = 0.5, min_scene_shots: int = 1) -> list[int]:
    """The shots that end a scene: ``prob > threshold``, the strongest first, each kept only if every scene stays at
    least ``min_scene_shots`` long (a greedy non-maximum suppression; with 1 it keeps every shot above the
    threshold). The last shot ends the movie, not a scene, and is never returned."""
    prob = np.nan_to_num(np.asarray(prob, dtype=np.float64))
    count = len(prob)
    kept: list[int] = []
    for shot in sorted(np.flatnonzero(prob > threshold), key=lambda i: (-prob[i], i)):
        shot = int(shot)
        if shot + 1 < min_scene_shots or count - 1 - shot < min_scene_shots:  # (the last shot has 0 after it)
            continue
        if all(abs(shot - other) >= min_scene_shots for other in kept):
            kept.append(shot)
    return sorted(kept)


def scenes_from_probabilities(
    imdb: str,
    prob: np.ndarray,
    threshold: float = 0.5,
    frames: np.ndarray | None = None,
    fps: float | None = None,
    min_scene_shots: int = 1,
    shot_times: list[tuple[Fraction, Fraction]] | None = None,
) -> list[Scene]:
    """A movie's scenes: the shots :func:`select_boundaries` picks end their scenes; the last scene ends with the
    last shot. ``frames`` (the shot frame table) gives frame ranges, and ``shot_times`` (each shot's first and end
    presentation time, :func:`vseg.io.movienet.read_shot_times`) or else ``fps`` with it times."""
    ends = [*select_boundaries(prob, threshold, min_scene_shots), len(prob) - 1]
    scenes, first = [], 0
    for index, last in enumerate(ends):
        scene = Scene(imdb, index, first, last)
        if frames is not None:
            scene.start_frame, scene.end_frame = int(frames[first][0]), int(frames[last][1])
            if shot_times is not None:
                scene.start_time, scene.end_time = float(shot_times[first][0]), float(shot_times[last][1])
            elif fps:
                scene.start_time, scene.end_time = scene.start_frame / fps, (scene.end_frame + 1) / fps
        scenes.append(scene)
        first = last + 1
    return scenes


def write_scene_lists(folder: Path, scenes: list[Scene], kinds: tuple[str, ...] = ("json", "csv")) -> list[Path]:
    """Write ``scenes.json`` (a list of rows) and ``scenes.csv`` (the same rows) into ``folder``, or the one of
    them ``kinds`` names; returns the files written."""
    rows = [scene.as_row() for scene in scenes]
    written = []
    if "json" in kinds:
        written.append(Path(folder) / "scenes.json")
        atomic.write_text(written[-1], json.dumps(rows, indent=1) + "\n")
    if "csv" in kinds:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=SCENE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        written.append(Path(folder) / "scenes.csv")
        atomic.write_text(written[-1], text.getvalue())
    return written
