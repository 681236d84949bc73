"""Per-shot boundary probabilities and the scene lists made from them, as JSON and CSV.

``predictions.json`` (written by ``vseg segment`` and ``vseg segment predict``; read by ``vseg segment eval``)::

    {"<imdb>": {"prob": [p0, p1, ...],            boundary probability of each shot, in shot order
                "label": [0, 1, ...],             ground truth, when known
                "frames": [[start, end], ...],    shot frame table, when known
                "fps": 24.0}, ...}                frame rate, when known

A scene list (``scenes.json`` / ``scenes.csv``) has one entry per scene of each movie: its index, first and last
shot, and (with a frame table) first and last frame. A shot whose probability is above the threshold ends its scene;
the last scene runs to the movie's last shot.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
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


@dataclass
class Scene:
    movie: str
    scene: int
    first_shot: int
    last_shot: int
    start_frame: int | None = None
    end_frame: int | None = None


def scenes_from_probabilities(
    imdb: str, prob: np.ndarray, threshold: float = 0.5, frames: np.ndarray | None = None
) -> list[Scene]:
    """A movie's scenes: a shot with ``prob > threshold`` ends its scene; the last scene ends with the last shot."""
    ends = [int(i) for i in np.flatnonzero(np.nan_to_num(prob) > threshold) if i < len(prob) - 1] + [len(prob) - 1]
    scenes, first = [], 0
    for index, last in enumerate(ends):
        scene = Scene(imdb, index, first, last)
        if frames is not None:
            scene.start_frame, scene.end_frame = int(frames[first][0]), int(frames[last][1])
        scenes.append(scene)
        first = last + 1
    return scenes


def write_scene_lists(folder: Path, scenes: list[Scene]) -> list[Path]:
    """Write ``scenes.json`` and ``scenes.csv`` into ``folder``; returns their paths."""
    rows = [asdict(scene) for scene in scenes]
    json_path, csv_path = Path(folder) / "scenes.json", Path(folder) / "scenes.csv"
    atomic.write_text(json_path, json.dumps(rows, indent=1) + "\n")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(Scene.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    atomic.write_text(csv_path, text.getvalue())
    return [json_path, csv_path]
