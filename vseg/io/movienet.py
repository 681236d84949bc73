"""The MovieNet / SceneSeg318 data layout (SCRL's ``data/`` and LGSS's SceneSeg318 release, AnyiRao/SceneSeg).

```
<root>/240P/<imdb>/shot_SSSS_img_J.jpg   keyframes: J in 0..2 (first, middle, last frame of the shot)
<root>/label318/<imdb>.txt               "SSSS label" per shot except the last; 1 = last shot of a scene,
                                         0 = same scene as the next shot, -1 = uncertain (read as 1)
<root>/shot_movie318/<imdb>.txt          a row per shot: start frame, end frame (more columns ignored)
<root>/shot_txt/<imdb>.txt               the same, as vseg prep shots (and LGSS's ShotDetect) write it: start frame,
                                         end frame, then the 3 keyframe indices; read when shot_movie318/ has none
<root>/meta/split318.json                {"train": [imdb, ...], "val": [...], "test": [...]}: SceneSeg318, the
                                         split of the scene-boundary stages (190 / 64 / 64 movies)
<root>/meta/<imdb>.json                  optional: {"fps": 23.976, "frames": ..., "width": ..., "height": ...} as vseg
                                         writes it, or the frame rate nested as {"video": {"fps": ...}}
```

Pre-training takes MovieNet's 1,100-movie split instead (660 / 220 / 220 movies), as SCRL's
``data/movie1K.split.v1.json``: a copy ships in ``vseg/io/splits/`` and is named ``movie1K`` wherever a split file is
asked for; ``MovieNet_shot_num.json`` beside it holds MovieNet's shot count of each of those movies.

The readers validate as they read and raise :class:`~vseg.errors.DataError` naming the file and line.
:func:`check_dataset` collects every problem of a whole root instead of stopping at the first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from vseg.errors import DataError

KEYFRAMES_PER_SHOT = 3
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
BUILTIN_SPLITS = {"movie1K": SPLITS_DIR / "movie1K.split.v1.json"}  # name -> the packaged copy
MOVIENET_SHOT_COUNTS = SPLITS_DIR / "MovieNet_shot_num.json"  # {split: {imdb: shots}} of the movie1K movies
KEYFRAME_RE = re.compile(r"^shot_(\d{4,})_img_(\d+)\.jpg$")


def keyframe_name(shot: int, index: int) -> str:
    """File name of keyframe ``index`` of shot ``shot``: ``shot_0012_img_1.jpg``."""
    return f"shot_{shot:04d}_img_{index}.jpg"


@dataclass(frozen=True)
class MovieNetLayout:
    """Paths of a MovieNet-layout root; nothing is read until asked."""

    root: Path

    @property
    def keyframes(self) -> Path:
        return self.root / "240P"

    @property
    def labels(self) -> Path:
        return self.root / "label318"

    @property
    def shot_tables(self) -> Path:
        return self.root / "shot_movie318"

    @property
    def shot_txt(self) -> Path:
        return self.root / "shot_txt"

    @property
    def split_file(self) -> Path:
        return self.root / "meta" / "split318.json"

    def label_file(self, imdb: str) -> Path:
        return self.labels / f"{imdb}.txt"

    def shot_table_file(self, imdb: str) -> Path:
        """``shot_movie318/<imdb>.txt``, or ``shot_txt/<imdb>.txt`` when only that one exists."""
        table, detected = self.shot_tables / f"{imdb}.txt", self.shot_txt / f"{imdb}.txt"
        return detected if not table.is_file() and detected.is_file() else table

    def meta_file(self, imdb: str) -> Path:
        return self.root / "meta" / f"{imdb}.json"


@dataclass(frozen=True)
class MovieKeyframes:
    """The keyframes found in one movie's folder.

    ``num_shots`` is the highest shot index found plus one; ``missing`` lists every (shot, keyframe)
    below it whose file is absent.
    """

    imdb: str
    directory: Path
    num_shots: int
    keyframes_per_shot: int = KEYFRAMES_PER_SHOT
    missing: tuple[tuple[int, int], ...] = field(default=())

    def path(self, shot: int, index: int) -> Path:
        return self.directory / keyframe_name(shot, index)

    def shot_paths(self, shot: int) -> tuple[Path, ...]:
        return tuple(self.path(shot, j) for j in range(self.keyframes_per_shot))


def index_movie(directory: Path, keyframes_per_shot: int = KEYFRAMES_PER_SHOT) -> MovieKeyframes:
    """Index the keyframes of one movie folder with a single directory listing."""
    directory = Path(directory)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise DataError(directory, "movie folder not found") from None
    except NotADirectoryError:
        raise DataError(directory, "not a folder") from None
    found: set[tuple[int, int]] = set()
    for name in names:
        match = KEYFRAME_RE.match(name)
        if match and int(match[2]) < keyframes_per_shot:
            found.add((int(match[1]), int(match[2])))
    num_shots = max((shot for shot, _ in found), default=-1) + 1
    missing = tuple((shot, j) for shot in range(num_shots) for j in range(keyframes_per_shot) if (shot, j) not in found)
    return MovieKeyframes(directory.name, directory, num_shots, keyframes_per_shot, missing)


def list_movies(keyframe_root: Path) -> list[str]:
    """The movie folders under a keyframe root, sorted (hidden folders such as ``.partial`` excluded)."""
    keyframe_root = Path(keyframe_root)
    if not keyframe_root.is_dir():
        raise DataError(keyframe_root, "keyframe folder not found")
    return sorted(e.name for e in os.scandir(keyframe_root) if e.is_dir() and not e.name.startswith("."))


def read_json(path: Path, what: str):
    """Parse a JSON file; DataError naming the file if it is missing or not readable JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, f"{what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not a readable JSON file ({exc})") from None


def read_split(path: Path) -> dict[str, list[str]]:
    """Read a split JSON: an object mapping split names to lists of movie ids."""
    path = Path(path)
    data = read_json(path, "split file")
    if not isinstance(data, dict) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in data.values()
    ):
        raise DataError(path, 'expected {"train": ["tt...", ...], "val": [...], "test": [...]}')
    return data


def resolve_split_file(value: Path | str | None, default: Path) -> Path:
    """A split-file setting as a path: unset gives ``default``; an existing file is taken as given; a built-in name
    (``movie1K``) gives the packaged copy; anything else is a path (read errors will name it)."""
    if value is None:
        return Path(default)
    path = Path(value)
    if path.is_file() or str(value) not in BUILTIN_SPLITS:
        return path
    return BUILTIN_SPLITS[str(value)]


def describe_split_file(path: Path) -> str:
    """How a split file is named to the user: the built-in name, or the path."""
    builtin = {p: name for name, p in BUILTIN_SPLITS.items()}.get(Path(path))
    return f"{builtin} (built-in copy of MovieNet's {Path(path).name})" if builtin else str(path)


def movienet_shot_counts() -> dict[str, int]:
    """MovieNet 1.0's shot count of each of its 1,100 movies (SCRL's ``data/MovieNet_shot_num.json``)."""
    splits = read_json(MOVIENET_SHOT_COUNTS, "shot counts")
    return {imdb: count for counts in splits.values() for imdb, count in counts.items()}


def split_movies(path: Path, split: str) -> list[str]:
    """The movie ids of one split of a split file."""
    splits = read_split(path)
    if split not in splits:
        raise DataError(path, f"has no split '{split}' (it has: {', '.join(splits) or 'none'})")
    return list(splits[split])


def select_movies(
    keyframe_root: Path, split: str | None = None, split_file: Path | str | None = None
) -> tuple[list[str], str]:
    """The movies of ``split`` (from ``split_file``: a path or ``movie1K``, by default
    ``<keyframe root>/../meta/split318.json``), or every movie folder of the keyframe root when no split is named;
    and a line saying where they came from."""
    if split is None:
        movies = list_movies(keyframe_root)
        return movies, f"every movie folder of {keyframe_root} ({len(movies):,} movies)"
    path = resolve_split_file(split_file, Path(keyframe_root).parent / "meta" / "split318.json")
    movies = split_movies(path, split)
    return movies, f"split {split} of {describe_split_file(path)} ({len(movies):,} movies)"


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(path, f"{what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read {what} ({exc})") from None


def read_labels(path: Path) -> np.ndarray:
    """Read a SceneSeg318 label file into an int64 array of 0/1, one per shot except the movie's last.

    Lines are ``SSSS label`` with shot ids 0, 1, 2, ... in order; ``-1`` (uncertain) is read as 1, as
    LGSS and SCRL do.
    """
    labels = []
    for number, line in enumerate(_read_lines(path, "label file"), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in {"0", "1", "-1"}:
            raise DataError(path, f"line {number}: expected 'SHOT LABEL' with LABEL in 0, 1, -1, got {line!r}")
        if int(parts[0]) != len(labels):
            raise DataError(path, f"line {number}: expected shot {len(labels):04d}, got {parts[0]}")
        labels.append(1 if parts[1] == "-1" else int(parts[1]))
    if not labels:
        raise DataError(path, "label file is empty")
    return np.asarray(labels, dtype=np.int64)


def read_shot_table(path: Path) -> np.ndarray:
    """Read a shot frame table into an int64 array (num_shots, 2) of start and end frames."""
    rows = []
    for number, line in enumerate(_read_lines(path, "shot table"), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            start, end = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise DataError(path, f"line {number}: expected 'START END ...' frame numbers, got {line!r}") from None
        if end < start or (rows and start < rows[-1][0]):
            raise DataError(path, f"line {number}: frames {start}-{end} are out of order")
        rows.append((start, end))
    if not rows:
        raise DataError(path, "shot table is empty")
    return np.asarray(rows, dtype=np.int64)


def read_shot_times(path: Path, shots: int) -> list[tuple[Fraction, Fraction]] | None:
    """The ``[first, end)`` presentation times in seconds of each of ``shots`` shots, from ``time_base`` and
    ``shot_pts`` in a movie's ``meta/<imdb>.json`` (written by vseg prep shots); None when it holds none (MovieNet's
    own metadata, or an older vseg). DataError naming the file when they are malformed or not one pair per shot."""
    data = read_json(path, "movie metadata")
    if not isinstance(data, dict) or "shot_pts" not in data:
        return None
    try:
        base = Fraction(data["time_base"])
        pairs = [(int(first) * base, int(end) * base) for first, end in data["shot_pts"]]
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise DataError(path, f"malformed shot_pts or time_base ({type(exc).__name__}: {exc})") from None
    if len(pairs) != shots:
        raise DataError(path, f"shot_pts has {len(pairs)} pairs for {shots} shots")
    if any(end <= first for first, end in pairs):
        raise DataError(path, "shot_pts has a shot that ends before it starts")
    return pairs


def read_movie_fps(path: Path) -> float | None:
    """The frame rate in a movie's ``meta/<imdb>.json``: its ``fps``, else ``video.fps``, else None (not given).

    vseg writes ``fps`` at the top level; metadata that keeps the video's properties in a ``video`` object is read
    there. DataError naming the file when it is not a JSON object or its frame rate is not a positive number.
    """
    data = read_json(path, "movie metadata")
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object, got {type(data).__name__}")
    video = data.get("video")
    nested = video.get("fps") if isinstance(video, dict) else None
    key, value = ("fps", data["fps"]) if "fps" in data else ("video.fps", nested)
    if value is None:
        return None
    try:
        fps = float(value)
    except (TypeError, ValueError):
        raise DataError(path, f"{key} must be a number, got {value!r}") from None
    if not fps > 0:
        raise DataError(path, f"{key} must be positive, got {fps}")
    return fps


def read_shot_frames(path: Path, shots: int) -> np.ndarray:
    """The first ``shots`` rows of a shot table; DataError if it has fewer."""
    rows = read_shot_table(path)
    if len(rows) < shots:
        raise DataError(path, f"has {len(rows)} rows, fewer than the {shots} shots of its movie")
    return rows[:shots]


def format_labels(labels) -> str:
    """The text of a label file: ``SSSS label`` for each shot except the movie's last."""
    return "".join(f"{shot:04d} {int(label)}\n" for shot, label in enumerate(labels))


def format_shot_table(rows) -> str:
    """The text of a shot table: ``start end kf0 kf1 kf2`` per shot (first, middle, last frame)."""
    return "".join(f"{s} {e} {s} {(s + e) // 2} {e}\n" for s, e in rows)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, naming the file it is about."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found: where the movies came from, the movies it indexed and every problem."""

    source: str
    movies: dict[str, MovieKeyframes]
    labelled: int
    problems: list[Problem]

    @property
    def shots(self) -> int:
        return sum(m.num_shots for m in self.movies.values())


def check_dataset(
    layout: MovieNetLayout, split: str | None = None, split_file: Path | str | None = None
) -> DatasetReport:
    """Index a MovieNet-layout root and report every problem found, each with its file named.

    Movies: those of ``split`` of ``split_file`` (a path or ``movie1K``; unset: ``meta/split318.json``), or without a
    split every movie of that file when it exists, else every keyframe folder.
    Checks: each movie exists and has all 3 keyframes of every shot; its label file (when ``label318/`` exists)
    reads and has one label per shot but the last; its shot table (when ``shot_movie318/`` exists) reads and has
    a row per shot; a movie of MovieNet's 1,100 has as many shots as MovieNet lists for it. Labels and shot tables
    are SceneSeg318's: when ``meta/split318.json`` exists, only its movies are expected to have them.
    """
    problems: list[Problem] = []
    split_path = resolve_split_file(split_file, layout.split_file)
    if split is None and split_path.exists():
        movie_ids = sorted({m for ids in read_split(split_path).values() for m in ids})
        source = f"every split of {describe_split_file(split_path)} ({len(movie_ids):,} movies)"
    else:  # the named split, or every keyframe folder: as every stage selects them
        movie_ids, source = select_movies(layout.keyframes, split, split_file)
    known_counts = movienet_shot_counts()
    annotated = _annotated_movies(layout)
    movies: dict[str, MovieKeyframes] = {}
    labelled = 0
    for imdb in movie_ids:
        try:
            movie = index_movie(layout.keyframes / imdb)
        except DataError as exc:
            problems.append(Problem(exc.path, exc.reason))
            continue
        if movie.num_shots == 0:
            problems.append(Problem(movie.directory, "no keyframes named shot_SSSS_img_J.jpg"))
            continue
        movies[imdb] = movie
        problems.extend(Problem(movie.path(s, j), "keyframe missing") for s, j in movie.missing)
        if imdb in known_counts and movie.num_shots != known_counts[imdb]:
            problems.append(
                Problem(
                    movie.directory, f"has keyframes of {movie.num_shots} shots; MovieNet lists {known_counts[imdb]}"
                )
            )
        if annotated is not None and imdb not in annotated:
            continue
        if layout.labels.is_dir():
            labelled += _check_table(
                layout.label_file(imdb), read_labels, movie, extra=1, what="labels", problems=problems
            )
        if layout.shot_tables.is_dir() or layout.shot_txt.is_dir():
            _check_table(layout.shot_table_file(imdb), read_shot_table, movie, extra=0, what="rows", problems=problems)
    return DatasetReport(source, movies, labelled, problems)


def _annotated_movies(layout: MovieNetLayout) -> set[str] | None:
    """The movies of ``meta/split318.json``, which alone have labels and shot tables; None (all) without that file."""
    if not layout.split_file.is_file():
        return None
    return {imdb for ids in read_split(layout.split_file).values() for imdb in ids}


def _check_table(
    path: Path,
    reader: Callable[[Path], np.ndarray],
    movie: MovieKeyframes,
    extra: int,
    what: str,
    problems: list[Problem],
) -> int:
    """Read one per-shot table and check its length against the keyframes; 1 if it is usable."""
    try:
        rows = len(reader(path))
    except DataError as exc:
        problems.append(Problem(exc.path, exc.reason))
        return 0
    if rows + extra != movie.num_shots:
        problems.append(
            Problem(
                path,
                f"has {rows} {what} for {rows + extra} shots, but {movie.directory} has keyframes of "
                f"{movie.num_shots} shots",
            )
        )
        return 0
    return 1
