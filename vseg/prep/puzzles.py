"""``vseg prep puzzles``: MovieNet keyframes into SCRL's puzzle images (SCRL's ``data/data_preparation.py``).

A puzzle holds ``shots_per_puzzle`` (16) consecutive shots of one movie as rows, each row the shot's
3 keyframes side by side, with no resize: 426x240 keyframes give a 1278x3840 JPEG (quality 95). Puzzle
``p`` holds shots ``16p .. 16p+15``; the ``shots % 16`` tail shots are dropped, as in SCRL.

Output: ``<out>/<imdb>/<pppp>.jpg``, ``<out>/manifest.json`` (every puzzle with its shot range) and the
effective config ``<out>/vseg_puzzles.yaml``. A movie's puzzles are built in ``<out>/.partial/<imdb>``
and moved into place when all are written, so a movie folder in ``<out>`` is always complete; each
puzzle file is itself written atomically, so an interrupted run resumes from the last finished puzzle.
A movie with a missing, corrupt or odd-sized keyframe is reported and left out (nothing of it is kept).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from vseg import ui
from vseg.config import PuzzlesConfig, check_same_settings, config_to_yaml, parse_shard, parse_size
from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.images import load_rgb
from vseg.io.movienet import MovieKeyframes, index_movie, select_movies
from vseg.io.puzzles import SETTINGS_NAME, puzzle_name, write_manifest
from vseg.parallel import default_workers, run_jobs

# Settings that change the bytes of a puzzle: a resumed run must use the same ones.
LAYOUT_KEYS = ("shots_per_puzzle", "keyframes_per_shot", "jpeg_quality", "resize")


@dataclass(frozen=True)
class PuzzleJob:
    """One puzzle to write: the keyframe paths as rows (shots) x columns (keyframes)."""

    movie: str
    index: int
    keyframes: tuple[tuple[str, ...], ...]
    out: str
    resize: tuple[int, int] | None
    quality: int


def make_puzzle(job: PuzzleJob) -> tuple[int, int]:
    """Decode each keyframe once, paste it into place, write the JPEG atomically; return the keyframe size."""
    canvas = None
    size = (0, 0)
    first = job.keyframes[0][0]
    for row, shot in enumerate(job.keyframes):
        for column, path in enumerate(shot):
            image = load_rgb(path, job.resize)
            if canvas is None:
                size = image.size
                # color=None: no fill, every cell is pasted over (or the job fails before writing).
                canvas = Image.new("RGB", (size[0] * len(shot), size[1] * len(job.keyframes)), color=None)
            elif image.size != size:
                raise DataError(path, _size_mismatch(image.size, size, first))
            canvas.paste(image, (column * size[0], row * size[1]))
    with atomic.atomic_path(Path(job.out)) as tmp:
        canvas.save(tmp, format="JPEG", quality=job.quality)
    return size


def _size_mismatch(size: tuple[int, int], expected: tuple[int, int], first: str | Path) -> str:
    return (
        f"keyframe is {size[0]}x{size[1]} but {Path(first).name} of the same movie is "
        f"{expected[0]}x{expected[1]}; keyframes of a movie must share one size (or pass --resize WIDTHxHEIGHT)"
    )


@dataclass
class PuzzlesReport:
    """What a run did; ``failed`` maps each movie left out to its error (which names the file)."""

    out: Path
    source: str = ""  # where the movies came from: the split and its file, or every movie folder
    movies: int = 0
    written: int = 0
    skipped: int = 0
    shots: int = 0
    dropped_shots: int = 0
    too_short: list[str] = field(default_factory=list)
    failed: dict[str, DataError] = field(default_factory=dict)
    seconds: float = 0.0


def select_shard(keyframe_root: Path, config: PuzzlesConfig) -> tuple[list[str], str]:
    """The movies of the configured split (or every movie folder), then this machine's shard of them; and a line
    saying where they came from."""
    index, count = parse_shard(config.shard)
    movies, source = select_movies(keyframe_root, config.split, config.split_file)
    if count > 1:
        source = f"{source}, shard {index}/{count}: {len(movies[index::count]):,} movies"
    return movies[index::count], source


def make_puzzles(keyframe_root: Path, out: Path, config: PuzzlesConfig) -> PuzzlesReport:
    """Write the puzzles of the selected movies; see the module docstring. Resumes where a run stopped.

    Raises DataError at the first bad movie when ``config.strict``; otherwise bad movies are listed in
    the report's ``failed`` and the others are written.
    """
    keyframe_root, out = Path(keyframe_root), Path(out)
    started = time.perf_counter()
    movies, source = select_shard(keyframe_root, config)
    ui.info(f"movies: {source}")
    check_same_settings(out / SETTINGS_NAME, config, LAYOUT_KEYS, "puzzles")
    atomic.write_text(out / SETTINGS_NAME, config_to_yaml(config, "prep puzzles"))
    report = PuzzlesReport(out=out, source=source, movies=len(movies))
    try:
        _write_puzzles(plan_puzzles(keyframe_root, movies, out, config, report), out, config, report)
    finally:
        for movie in report.failed:  # a failed movie leaves nothing behind
            atomic.discard_dir(atomic.staging_dir(out / movie))
        write_manifest(out, config.shots_per_puzzle, config.keyframes_per_shot, config.jpeg_quality)
        report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class MoviePuzzles:
    """The puzzles of one movie still to write (by index), built into ``staging``; jobs are made as they run."""

    keyframes: MovieKeyframes
    indices: list[int]
    staging: Path

    def jobs(self, rows: int, resize: tuple[int, int] | None, quality: int) -> Iterator[PuzzleJob]:
        """One job per puzzle: the keyframe paths of its ``rows`` shots."""
        for index in self.indices:
            shots = range(index * rows, (index + 1) * rows)
            paths = tuple(tuple(str(p) for p in self.keyframes.shot_paths(shot)) for shot in shots)
            out = str(self.staging / puzzle_name(index))
            yield PuzzleJob(self.keyframes.imdb, index, paths, out, resize, quality)


def plan_puzzles(
    keyframe_root: Path, movies: list[str], out: Path, config: PuzzlesConfig, report: PuzzlesReport
) -> dict[str, MoviePuzzles]:
    """Index each movie and find its puzzles still to write; a movie with a missing keyframe goes to
    ``report.failed`` (DataError at once when ``config.strict``). Counts shots and skipped puzzles in ``report``."""
    todo: dict[str, MoviePuzzles] = {}
    for movie in movies:
        try:
            keyframes = index_movie(Path(keyframe_root) / movie, config.keyframes_per_shot)
        except DataError as exc:
            _fail(report, config, movie, exc)
            continue
        if keyframes.missing:
            shot, j = keyframes.missing[0]
            missing = f"keyframe missing ({len(keyframes.missing)} missing in this movie)"
            _fail(report, config, movie, DataError(keyframes.path(shot, j), missing))
            continue
        plan = _plan_movie(keyframes, Path(out), config.shots_per_puzzle, report)
        if plan is not None:
            todo[movie] = plan
    return todo


def _fail(report: PuzzlesReport, config: PuzzlesConfig, movie: str, error: DataError) -> None:
    """Leave ``movie`` out with its first error; raise it when ``config.strict``."""
    report.failed.setdefault(movie, error)
    if config.strict:
        raise error


def _write_puzzles(todo: dict[str, MoviePuzzles], out: Path, config: PuzzlesConfig, report: PuzzlesReport) -> None:
    """Run the puzzle jobs in parallel; move each movie into place when its last puzzle is written."""
    rows = config.shots_per_puzzle
    resize = parse_size(config.resize) if config.resize else None
    remaining = {movie: len(plan.indices) for movie, plan in todo.items()}
    first_size: dict[str, tuple[tuple[int, int], str]] = {}
    pending = (
        job
        for movie, plan in todo.items()
        for job in plan.jobs(rows, resize, config.jpeg_quality)
        if movie not in report.failed
    )
    with (
        ui.progress("puzzles", total=sum(remaining.values()) * rows, unit="shots") as advance,
        closing(run_jobs(make_puzzle, pending, config.workers or default_workers())) as results,
    ):
        for job, size, error in results:
            if isinstance(error, DataError):
                _fail(report, config, job.movie, error)
            elif error is not None:
                raise error
            else:
                first = job.keyframes[0][0]
                expected, expected_path = first_size.setdefault(job.movie, (size, first))
                if size != expected:
                    _fail(report, config, job.movie, DataError(first, _size_mismatch(size, expected, expected_path)))
            advance(rows)
            remaining[job.movie] -= 1
            if remaining[job.movie] == 0 and job.movie not in report.failed:
                report.written += len(todo[job.movie].indices)
                final = out / job.movie
                atomic.commit_dir(atomic.staging_dir(final), final)


def _plan_movie(keyframes: MovieKeyframes, out: Path, rows: int, report: PuzzlesReport) -> MoviePuzzles | None:
    """The puzzles of one movie still to write (None when there are none); finished ones are counted in
    ``report.skipped``."""
    count = keyframes.num_shots // rows
    report.shots += count * rows
    report.dropped_shots += keyframes.num_shots - count * rows
    if count == 0:
        report.too_short.append(keyframes.imdb)
        return None
    final = out / keyframes.imdb
    if final.is_dir():
        report.skipped += count
        return None
    staging = atomic.staging_dir(final)
    atomic.clean_staging(staging)  # the folder itself is made by the first puzzle written into it
    done = set(os.listdir(staging)) if staging.is_dir() else set()
    indices = [index for index in range(count) if puzzle_name(index) not in done]
    report.skipped += count - len(indices)
    if not indices:  # a run stopped after the movie's last puzzle but before moving the folder into place
        atomic.commit_dir(staging, final)
        return None
    return MoviePuzzles(keyframes, indices, staging)
