"""MovieNet at full size, dry run: build MovieNet's shape and measure every stage at that size.

Nobody here has MovieNet, so this writes a tree of its exact shape: the 1,100 movies of the movie1K split with
MovieNet's shot count of each (``vseg/io/splits/MovieNet_shot_num.json``, 1,599,471 shots), 3 keyframes per shot
named as MovieNet names them (4.8 M files, hard links to a few real 426x240 JPEGs, so the tree takes ~60 MB), a
SceneSeg318 split picked from them (190 / 64 / 64 movies) with ``label318/`` labels and ``shot_movie318/`` shot
tables, ``meta/<imdb>.json`` for every movie, and random 2048-d embeddings of the 318 labelled movies.

Then it runs each stage in its own process and reports wall time and peak memory (the largest resident set of any
one process of the stage: a stage's worker processes are measured separately, not summed):

- ``vseg prep check`` of all 1,100 movies, and of the movie1K train split (660 movies, 963,142 shots);
- ``vseg prep puzzles --config puzzles/scrl``: planning every puzzle of the 660 movies, then writing a shard;
- ``vseg pretrain scrl`` (``scrl/cpu_tiny``) for 2 steps on the keyframes of the train split;
- ``vseg embed`` of a few labelled movies with that run's encoder;
- ``vseg segment`` (``segment/cpu_tiny``) for one epoch on the random SceneSeg318-sized embeddings.

    python benchmarks/movienet_scale.py [--root DIR --keep] [--json PATH] [--stage NAME ...]

With ``--root`` a tree built before (``DIR/meta/scale.json``) is reused. Without ``--keep`` the tree this run built
and the stages' outputs are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from vseg import ui
from vseg.io import atomic
from vseg.io.embeddings import Embeddings, write_npz
from vseg.io.movienet import (
    BUILTIN_SPLITS,
    KEYFRAMES_PER_SHOT,
    MovieNetLayout,
    format_labels,
    format_shot_table,
    keyframe_name,
    movienet_shot_counts,
    read_split,
)

SCENESEG_SIZES = {"train": 190, "val": 64, "test": 64}  # SceneSeg318, picked from the same movie1K split
KEYFRAME_SIZE = (426, 240)  # MovieNet's 240P keyframes
EMBEDDING_DIM = 2048
FPS = 24.0
SAMPLE_SPLIT = "sample"  # meta/sample.json: the few movies vseg embed is run on
TREE_INFO = "scale.json"


# ------------------------------------------------------------------------------------------------- the tree


def keyframe_jpegs(count: int, seed: int) -> list[bytes]:
    """``count`` small real JPEGs of MovieNet's keyframe size: smooth noise, so they decode like photographs."""
    rng = np.random.default_rng(seed)
    width, height = KEYFRAME_SIZE
    images = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize(KEYFRAME_SIZE, Image.BILINEAR)
        buffer = BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def pick_sceneseg(movie1k: dict[str, list[str]], seed: int) -> dict[str, list[str]]:
    """SceneSeg318's 190 / 64 / 64 movies, drawn (seeded) from movie1K's train / val / test."""
    rng = np.random.default_rng(seed)
    return {name: sorted(rng.choice(movie1k[name], size, replace=False)) for name, size in SCENESEG_SIZES.items()}


def movie_rng(imdb: str, seed: int) -> np.random.Generator:
    """The generator of one movie's labels, frames and embeddings: the same whichever file asks."""
    return np.random.default_rng((seed, int(imdb.removeprefix("tt"))))


def movie_frames(imdb: str, shots: int, seed: int) -> np.ndarray:
    """``shots x 2`` start and end frames: shots of 1-10 s at 24 fps, back to back."""
    lengths = movie_rng(imdb, seed).integers(24, 240, shots)
    ends = np.cumsum(lengths) - 1
    return np.stack([ends - lengths + 1, ends], axis=1)


def movie_labels(imdb: str, shots: int, seed: int) -> np.ndarray:
    """A 0/1 label per shot but the last; about one shot in 12 ends a scene (SceneSeg318's rate)."""
    rng = movie_rng(imdb, seed)
    rng.integers(24, 240, shots)  # the frames' draws, so labels are independent of them
    return (rng.random(shots - 1) < 1 / 12).astype(np.int64)


def link_keyframes(directory: Path, sources: list[Path], shots: int) -> None:
    """Keyframe ``j`` of every shot as a hard link to ``sources[j]`` (ext4 allows 65,000 links to one file)."""
    directory.mkdir(parents=True, exist_ok=True)
    for j, source in enumerate(sources):
        for shot in range(shots):
            os.link(source, directory / keyframe_name(shot, j))


def write_movie(layout: MovieNetLayout, imdb: str, shots: int, jpegs: list[bytes], labelled: bool, seed: int) -> None:
    """One movie: its keyframe links (and their 3 source files), meta JSON, and for SceneSeg318 labels and shots."""
    sources = []
    for j in range(KEYFRAMES_PER_SHOT):
        source = layout.root / ".sources" / f"{imdb}_{j}.jpg"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(jpegs[(int(imdb.removeprefix("tt")) + j) % len(jpegs)])
        sources.append(source)
    link_keyframes(layout.keyframes / imdb, sources, shots)
    frames = movie_frames(imdb, shots, seed)
    width, height = KEYFRAME_SIZE
    meta = {"fps": FPS, "frames": int(frames[-1, 1]) + 1, "width": width, "height": height}
    atomic.write_text(layout.meta_file(imdb), json.dumps(meta) + "\n")
    if labelled:
        atomic.write_text(layout.label_file(imdb), format_labels(movie_labels(imdb, shots, seed)))
        atomic.write_text(layout.shot_table_file(imdb), format_shot_table(frames))


def write_embeddings(path: Path, movies: list[str], counts: dict[str, int], seed: int) -> None:
    """Random 2048-d float32 embeddings of ``movies`` with their labels, frames and fps, as ``vseg embed`` writes
    them (every shot but the last)."""
    shots = [counts[m] - 1 for m in movies]
    offsets = np.concatenate([[0], np.cumsum(shots)])
    features = np.empty((offsets[-1], EMBEDDING_DIM), np.float32)
    for i, movie in enumerate(movies):
        movie_rng(movie, seed + 1).standard_normal(out=features[offsets[i] : offsets[i + 1]], dtype=np.float32)
    labels = np.concatenate([movie_labels(m, counts[m], seed) for m in movies])
    frames = np.concatenate([movie_frames(m, counts[m], seed)[:-1] for m in movies])
    write_npz(path, Embeddings(movies, offsets, features, labels, frames, np.full(len(movies), FPS)))


def build_tree(root: Path, seed: int, sample_movies: int) -> dict:
    """Write the MovieNet-shaped tree under ``root`` (see the module docstring); return what it holds."""
    layout = MovieNetLayout(root)
    counts = movienet_shot_counts()
    movie1k = read_split(BUILTIN_SPLITS["movie1K"])
    sceneseg = pick_sceneseg(movie1k, seed)
    labelled = {m for ids in sceneseg.values() for m in ids}
    jpegs = keyframe_jpegs(4, seed)
    with ui.progress("movies", len(counts), "movies") as advance:
        for imdb, shots in counts.items():
            write_movie(layout, imdb, shots, jpegs, imdb in labelled, seed)
            advance()
    atomic.write_text(layout.split_file, json.dumps(sceneseg) + "\n")
    sample = sorted(sceneseg["test"], key=counts.get)[:sample_movies]  # the shortest: a sample, not the bulk
    atomic.write_text(layout.root / "meta" / f"{SAMPLE_SPLIT}.json", json.dumps({SAMPLE_SPLIT: sample}) + "\n")
    for name, movies in sceneseg.items():
        write_embeddings(root / "embeddings" / f"{name}.npz", movies, counts, seed)
    info = {
        "seed": seed,
        "movies": len(counts),
        "shots": sum(counts.values()),
        "keyframes": KEYFRAMES_PER_SHOT * sum(counts.values()),
        "sceneseg_shots": {name: sum(counts[m] for m in movies) for name, movies in sceneseg.items()},
        "sample": {m: counts[m] for m in sample},
    }
    atomic.write_text(layout.root / "meta" / TREE_INFO, json.dumps(info, indent=1) + "\n")
    return info


# ----------------------------------------------------------------------------------------------- the stages


@dataclass
class StageResult:
    """One measured stage: its command, wall time, peak resident set (MiB) and exit status."""

    name: str
    command: str
    seconds: float
    peak_mib: float
    returncode: int
    note: str = ""


def measure(name: str, argv: list, log: Path, note: str = "") -> StageResult:
    """Run ``argv`` in its own process; its wall time and the peak RSS of its largest process (``wait4``)."""
    argv = [str(arg) for arg in argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    ui.info(f"{name}: {' '.join(argv)}")
    started = time.perf_counter()
    with open(log, "wb") as stream:
        process = subprocess.Popen(argv, stdout=stream, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        ui.warn(f"{name} exited with {process.returncode}; its output is in {log}")
    return StageResult(name, " ".join(argv[2:]), seconds, usage.ru_maxrss / 1024, process.returncode, note)


def vseg(*args: object) -> list[str]:
    return [sys.executable, "-m", "vseg", *map(str, args)]


PLAN_PUZZLES = """
import sys, time
from pathlib import Path
from vseg.config import PuzzlesConfig, load_config
from vseg.presets import preset
from vseg.prep.puzzles import PuzzlesReport, plan_puzzles, select_shard
config = load_config(PuzzlesConfig, preset("puzzles/scrl"))
started = time.perf_counter()
movies, _ = select_shard(Path(sys.argv[1]), config)
todo = plan_puzzles(sys.argv[1], movies, Path(sys.argv[2]), config, PuzzlesReport(Path(sys.argv[2])))
puzzles = sum(len(plan.indices) for plan in todo.values())
print(f"{len(todo)} movies, {puzzles} puzzles planned in {time.perf_counter() - started:.2f} s")
"""


def stages(root: Path, work: Path, info: dict) -> dict[str, Callable[[], StageResult]]:
    """Every stage, by name, as a function that runs and measures it."""
    keyframes, logs = root / "240P", work / "logs"
    run = work / "scrl"
    checkpoint = run / "checkpoints" / "last.pth"
    embeddings = root / "embeddings"
    sample = ", ".join(f"{m} ({n:,} shots)" for m, n in info["sample"].items())
    return {
        "check all": lambda: measure(
            "check all", vseg("prep", "check", root, "--split-file", "movie1K"), logs / "check_all.txt",
            f"{info['movies']:,} movies, {info['shots']:,} shots",
        ),
        "check train": lambda: measure(
            "check train", vseg("prep", "check", root, "--split", "train", "--split-file", "movie1K"),
            logs / "check_train.txt", "movie1K train: 660 movies, 963,142 shots",
        ),
        "puzzles plan": lambda: measure(
            "puzzles plan", [sys.executable, "-c", PLAN_PUZZLES, keyframes, work / "puzzles_plan"],
            logs / "puzzles_plan.txt", "plan_puzzles of puzzles/scrl: 660 movies, nothing written",
        ),
        "puzzles write": lambda: measure(
            "puzzles write",
            vseg("prep", "puzzles", keyframes, "--out", work / "puzzles", "--config", "puzzles/scrl",
                 "--shard", "0/220"),
            logs / "puzzles_write.txt", "shard 0/220: 3 movies written",
        ),
        "pretrain": lambda: measure(
            "pretrain",
            vseg(
                "pretrain", "scrl", "--config", "scrl/cpu_tiny", "--data", keyframes, "--out", run,
                *_sets("data.synthetic=false", "data.split=train", "data.split_file=movie1K",
                       "train.steps_per_epoch=2", "train.epochs=1"),
            ),
            logs / "pretrain.txt", "scrl/cpu_tiny, 2 steps of 64 shots; indexes the 660 train movies",
        ),
        "embed": lambda: measure(
            "embed",
            vseg("embed", checkpoint, "--data", root, "--out", work / "embed",
                 *_sets(f"split={SAMPLE_SPLIT}", f"split_file={root / 'meta' / (SAMPLE_SPLIT + '.json')}")),
            logs / "embed.txt", f"the pretrain run's ResNet-18, 224 px: {sample}",
        ),
        "segment": lambda: measure(
            "segment",
            vseg("segment", "--train", embeddings / "train.npz", "--val", embeddings / "val.npz",
                 "--test", embeddings / "test.npz", "--config", "segment/cpu_tiny", "--epochs", 1,
                 "--out", work / "segment"),
            logs / "segment.txt",
            "segment/cpu_tiny, 1 epoch; 318 movies, "
            + ", ".join(f"{k} {v:,}" for k, v in info["sceneseg_shots"].items()) + " shots, 2048-d",
        ),
    }  # fmt: skip


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="where to build the tree (reused if built); default: a temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the tree (and the stages' outputs) afterwards")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--stage", action="append", help="run only this stage (repeatable); default: all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-movies", type=int, default=3, help="movies vseg embed runs on")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="vseg-movienet-"))
    work = Path(tempfile.mkdtemp(prefix="vseg-movienet-runs-"))
    info_file = root / "meta" / TREE_INFO
    built = not info_file.is_file()
    results = []
    try:
        if not built:
            info = json.loads(info_file.read_text())
            ui.info(f"reusing the tree in {root}")
        else:
            started = time.perf_counter()
            info = build_tree(root, args.seed, args.sample_movies)
            results.append(StageResult("build tree", "(in process)", time.perf_counter() - started, 0.0, 0,
                                       f"{info['keyframes']:,} keyframe links + 318 movies' embeddings"))  # fmt: skip
        for name, stage in stages(root, work, info).items():
            if not args.stage or name in args.stage:
                results.append(stage())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if built:  # a tree reused from an earlier run stays
                shutil.rmtree(root, ignore_errors=True)
    ui.info(f"machine: {machine()}")
    rows = [
        (r.name, f"{r.seconds:.1f}", f"{r.peak_mib:,.0f}" if r.peak_mib else "-", r.returncode, r.note)
        for r in results
    ]
    ui.table("MovieNet at full size (dry run)", ("stage", "wall s", "peak MiB", "exit", "what"), rows)
    if args.json:
        payload = {"machine": machine(), "tree": info, "stages": [asdict(r) for r in results]}
        atomic.write_text(args.json, json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
