"""Throughput of ``vseg prep puzzles`` against the reference way, measured in one run.

- baseline: what SCRL's ``data_preparation.py`` does, in one process, one image at a time: read each
  keyframe into an array, concatenate the 3 of a shot horizontally and the 16 rows vertically, encode
  (the reference uses OpenCV; here Pillow + numpy do the same work with the same libjpeg-turbo codec);
- vseg with 1 worker and with one worker per core;
- the codec floor: only decoding every keyframe and encoding every puzzle once, in one process. A
  prep bound by JPEG work, not by Python, runs at about this speed per worker.

Each is run ``--repeats`` times on the same synthetic keyframes and the best time is kept. The ratios
(vseg / baseline) are what to compare across machines; absolute shots/s depend on the CPU.

    python benchmarks/prep_puzzles.py [--movies 6] [--shots-per-movie 320] [--repeats 3] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vseg.config import PuzzlesConfig, SynthConfig
from vseg.io.movienet import index_movie, list_movies
from vseg.parallel import default_workers
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth


def reference_style(keyframe_root: Path, out: Path) -> int:
    """One process, one image at a time, numpy concatenation: the reference script's way."""
    shots = 0
    for movie in list_movies(keyframe_root):
        keyframes = index_movie(keyframe_root / movie)
        for puzzle in range(keyframes.num_shots // 16):
            rows = []
            for shot in range(puzzle * 16, puzzle * 16 + 16):
                frames = [np.asarray(Image.open(keyframes.path(shot, j)).convert("RGB")) for j in range(3)]
                rows.append(np.concatenate(frames, axis=1))
            (out / movie).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate(rows, axis=0)).save(out / movie / f"{puzzle:04d}.jpg", quality=95)
            shots += 16
    return shots


def codec_floor(keyframe_root: Path, out: Path) -> int:
    """Only the JPEG work: decode each keyframe once, encode each puzzle once (assembly not timed)."""
    movies = list_movies(keyframe_root)
    first = index_movie(keyframe_root / movies[0])
    # One real puzzle, assembled up front: encoding real content costs what the real run pays.
    puzzle_image = Image.fromarray(
        np.concatenate(
            [np.concatenate([np.asarray(Image.open(first.path(s, j))) for j in range(3)], 1) for s in range(16)], 0
        )
    )
    shots = 0
    for movie in movies:
        keyframes = index_movie(keyframe_root / movie)
        for puzzle in range(keyframes.num_shots // 16):
            for shot in range(puzzle * 16, puzzle * 16 + 16):
                for j in range(3):
                    with Image.open(keyframes.path(shot, j)) as image:
                        image.load()
            puzzle_image.save(out / f"{movie}_{puzzle:04d}.jpg", quality=95)
            shots += 16
    return shots


def best_of(repeats: int, fn, keyframe_root: Path) -> tuple[float, int]:
    times = []
    for _ in range(repeats):
        out = Path(tempfile.mkdtemp(prefix="vseg-bench-out-"))
        try:
            started = time.perf_counter()
            shots = fn(keyframe_root, out)
            times.append(time.perf_counter() - started)
        finally:
            shutil.rmtree(out)
    return min(times), shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movies", type=int, default=6)
    parser.add_argument("--shots-per-movie", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="vseg-bench-data-"))
    try:
        make_synth(data, SynthConfig(movies=args.movies, shots_per_movie=args.shots_per_movie, workers=args.workers))
        keyframes = data / "240P"

        def vseg(workers):
            return lambda root, out: make_puzzles(root, out, PuzzlesConfig(workers=workers)).shots

        runs = {
            "baseline (reference-style, 1 process)": reference_style,
            "vseg prep puzzles --workers 1": vseg(1),
            f"vseg prep puzzles --workers {args.workers}": vseg(args.workers),
            "codec floor (decode + encode only, 1 process)": codec_floor,
        }
        results = {name: best_of(args.repeats, fn, keyframes) for name, fn in runs.items()}
    finally:
        shutil.rmtree(data)

    base_seconds, _ = results["baseline (reference-style, 1 process)"]
    print(f"machine: {platform.processor() or platform.machine()}, {default_workers()} cores, {platform.platform()}")
    print(f"data: {args.movies} movies x {args.shots_per_movie} shots of 426x240 keyframes, best of {args.repeats}")
    print(f"{'run':50s} {'seconds':>8s} {'shots/s':>9s} {'vs baseline':>12s}")
    table = {}
    for name, (seconds, shots) in results.items():
        table[name] = {"seconds": round(seconds, 3), "shots_per_s": round(shots / seconds, 1)}
        print(f"{name:50s} {seconds:8.2f} {shots / seconds:9.1f} {base_seconds / seconds:11.2f}x")
    floor_seconds, _ = results["codec floor (decode + encode only, 1 process)"]
    single, _ = results["vseg prep puzzles --workers 1"]
    print(f"share of one vseg worker's time spent in the JPEG codec: {floor_seconds / single:.0%}")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
