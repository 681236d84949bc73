"""The puzzle folder written by ``vseg prep puzzles`` and read by SCRL pre-training (SCRL's
``data/data_preparation.py``, ``data/movienet_data.py``).

```
<out>/<imdb>/<pppp>.jpg    puzzle p of a movie: shots 16p..16p+15 as rows, keyframes 0..2 as columns
<out>/manifest.json        {"format": "vseg-puzzles/1", "shots_per_puzzle": 16, "keyframes_per_shot": 3,
                            "jpeg_quality": 95, "puzzles": N,
                            "movies": [{"movie": imdb, "keyframe_size": [w, h],
                                        "puzzles": [{"puzzle": p, "file": "<imdb>/<pppp>.jpg",
                                                     "first_shot": 16p, "last_shot": 16p+15}, ...]}, ...]}
```

A puzzle folder made by the original SCRL ``data_preparation.py`` has no manifest; :func:`read_manifest`
then indexes the folder itself, assuming SCRL's 16 x 3 layout.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.images import image_size
from vseg.io.movienet import list_movies

SETTINGS_NAME = "vseg_puzzles.yaml"  # the effective config of the prep puzzles run that wrote the folder
MANIFEST_NAME = "manifest.json"
FORMAT = "vseg-puzzles/1"
PUZZLE_RE = re.compile(r"^(\d{4,})\.jpg$")


def puzzle_name(index: int) -> str:
    """File name of puzzle ``index`` of a movie: ``0007.jpg``."""
    return f"{index:04d}.jpg"


def _puzzle_indices(folder: Path) -> list[int]:
    return sorted(int(m[1]) for name in os.listdir(folder) if (m := PUZZLE_RE.match(name)))


def write_manifest(out: Path, shots_per_puzzle: int, keyframes_per_shot: int, jpeg_quality: int) -> dict:
    """Describe every movie folder in ``out`` (movie, puzzle, file, shot range) in manifest.json, atomically."""
    rows, columns = shots_per_puzzle, keyframes_per_shot
    movies = []
    for movie in list_movies(out):
        indices = _puzzle_indices(out / movie)
        if not indices:
            continue
        width, height = image_size(out / movie / puzzle_name(indices[0]))
        movies.append(
            {
                "movie": movie,
                "keyframe_size": [width // columns, height // rows],
                "puzzles": [
                    {
                        "puzzle": i,
                        "file": f"{movie}/{puzzle_name(i)}",
                        "first_shot": i * rows,
                        "last_shot": (i + 1) * rows - 1,
                    }
                    for i in indices
                ],
            }
        )
    manifest = {
        "format": FORMAT,
        "shots_per_puzzle": rows,
        "keyframes_per_shot": columns,
        "jpeg_quality": jpeg_quality,
        "puzzles": sum(len(m["puzzles"]) for m in movies),
        "movies": movies,
    }
    atomic.write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
    return manifest


@dataclass(frozen=True)
class PuzzleEntry:
    """One puzzle: its file and the movie shots it holds."""

    movie: str
    path: Path
    first_shot: int


@dataclass(frozen=True)
class PuzzleIndex:
    """Every puzzle of a folder, in movie then puzzle order."""

    root: Path
    shots_per_puzzle: int
    keyframes_per_shot: int
    puzzles: tuple[PuzzleEntry, ...]


def is_puzzle_folder(root: Path) -> bool:
    """True for a folder with a manifest.json, or whose movie folders hold ``pppp.jpg`` puzzles (SCRL's own)."""
    root = Path(root)
    if (root / MANIFEST_NAME).is_file():
        return True
    movies = list_movies(root) if root.is_dir() else []
    return bool(movies) and bool(_puzzle_indices(root / movies[0]))


def read_manifest(root: Path, shots_per_puzzle: int = 16, keyframes_per_shot: int = 3) -> PuzzleIndex:
    """Index a puzzle folder from its manifest.json, or by listing it when there is none (SCRL's own folders,
    taken to have ``shots_per_puzzle`` x ``keyframes_per_shot`` puzzles). DataError on a bad manifest."""
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        if not root.is_dir():
            raise DataError(root, "puzzle folder not found")
        entries = tuple(
            PuzzleEntry(movie, root / movie / puzzle_name(i), i * shots_per_puzzle)
            for movie in list_movies(root)
            for i in _puzzle_indices(root / movie)
        )
        return PuzzleIndex(root, shots_per_puzzle, keyframes_per_shot, entries)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise DataError(manifest_path, f"unknown format {manifest.get('format')!r}, expected {FORMAT!r}")
        entries = tuple(
            PuzzleEntry(movie["movie"], root / puzzle["file"], int(puzzle["first_shot"]))
            for movie in manifest["movies"]
            for puzzle in movie["puzzles"]
        )
        return PuzzleIndex(root, int(manifest["shots_per_puzzle"]), int(manifest["keyframes_per_shot"]), entries)
    except json.JSONDecodeError as exc:
        raise DataError(manifest_path, f"not valid JSON (line {exc.lineno})") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(manifest_path, f"malformed manifest ({type(exc).__name__}: {exc})") from None
