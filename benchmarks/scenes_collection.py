"""A collection through ``vseg scenes DIR --out OUT``, against PySceneDetect's CLI on every file of the same folder.

A folder of synthetic movies of mixed sizes is rendered (``vseg.prep.synth.write_movie_video``: real hard cuts, a
moving camera), then, one after the other in this run, each command as its own process (start-up and imports
included, as a user runs it):

- ``scenedetect -i V -q detect-adaptive`` on every file, one after the other: shot detection alone (OpenCV decodes
  with its own threads), the baseline;
- ``vseg scenes DIR --out O --jobs 1`` and ``--jobs 2``: shots, keyframes, histograms, scenes and every output file
  of every video (scene lists, timelines, chapters, report, timeline picture, index);
- ``vseg scenes DIR --out O --engine ray --jobs 2``: the same on a local Ray runtime (its start included), when Ray
  is installed.

For each: videos per minute, decoded frames per second, the ratio of its rate to PySceneDetect's, and the peak
memory of its largest process (``ru_maxrss`` from ``os.wait4``: the command and the workers it waited for; with
``--jobs 2`` two workers hold about that much each).

``startup``: importing what the training-free scenes path imports (``vseg.cli`` and ``vseg.scenes``) against
importing the libraries it uses (numpy, cv2, scenedetect, av, PIL, pydantic, typer, rich, yaml), best of 5 each,
and ``vseg scenes --help``. ``memory``: ``vseg scenes`` on 1920x1080 test-pattern videos of growing length (ffmpeg's
``testsrc2``), peak memory against the video's length.

    python benchmarks/scenes_collection.py [--videos 6] [--shots 30] [--lengths 30,90,270] [--parts ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vseg.config import SynthConfig
from vseg.io.video import ffmpeg_exe, read_frame_times
from vseg.prep.synth import write_movie_video

BIN = Path(sys.executable).parent
SIZES = ((640, 360), (1280, 720), (426, 240), (1920, 1080), (640, 360), (1280, 720))
LIBRARIES = "import numpy, cv2, scenedetect, av, PIL.Image, pydantic, typer, rich, yaml"


def run(command: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Run ``command``; (wall seconds, peak resident memory in MB of its largest process)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        raise SystemExit(f"{' '.join(command)} exited with {code}:\n{process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def render_folder(folder: Path, videos: int, shots: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(videos):
        size = SIZES[index % len(SIZES)]
        path = folder / f"movie{index}_{size[1]}p.mp4"
        if not path.is_file():
            synth = SynthConfig(movies=videos, shots_per_movie=shots, shot_frames=(24, 72), scene_shots=(3, 8), seed=3)
            write_movie_video(synth, index, path, size=size)
        paths.append(path)
    return paths


def collection(work: Path, videos: list[Path]) -> None:
    frames = sum(len(read_frame_times(path)) for path in videos)
    print(f"\n{len(videos)} videos ({', '.join(p.name for p in videos)}), {frames:,} frames in all:\n")
    print("| command | seconds | videos/min | frames/s | vs PySceneDetect | peak MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    seconds, peak = 0.0, 0.0
    for path in videos:
        took, memory = run([str(BIN / "scenedetect"), "-i", str(path), "-q", "detect-adaptive"])
        seconds, peak = seconds + took, max(peak, memory)
    baseline = frames / seconds
    _row("`scenedetect -i V detect-adaptive`, each file", seconds, peak, len(videos), frames, baseline)
    commands = {"`vseg scenes DIR --jobs 1`": ["--jobs", "1"], "`vseg scenes DIR --jobs 2`": ["--jobs", "2"]}
    try:
        import ray  # noqa: F401

        commands["`vseg scenes DIR --engine ray --jobs 2`"] = ["--engine", "ray", "--jobs", "2"]
    except ImportError:
        print("(Ray is not installed: pip install 'vseg[ray]')")
    for index, (name, options) in enumerate(commands.items()):
        out = work / f"out{index}"
        shutil.rmtree(out, ignore_errors=True)
        took, memory = run([str(BIN / "vseg"), "-q", "scenes", str(videos[0].parent), "--out", str(out), *options])
        _row(name, took, memory, len(videos), frames, baseline)


def _row(name: str, seconds: float, peak: float, videos: int, frames: int, baseline: float) -> None:
    rate = frames / seconds
    print(f"| {name} | {seconds:.1f} | {videos / seconds * 60:.1f} | {rate:,.0f} | {rate / baseline:.2f} | {peak:.0f} |")


def startup() -> None:
    python = sys.executable
    best = {
        name: min(run([python, "-c", code])[0] for _ in range(5))
        for name, code in (("libraries", LIBRARIES), ("vseg", "import vseg.cli, vseg.scenes"))
    }
    helps = min(run([str(BIN / "vseg"), "scenes", "--help"])[0] for _ in range(5))
    print("\nStart-up, best of 5 (seconds):\n")
    print("| import the libraries | import vseg.cli, vseg.scenes | ratio | `vseg scenes --help` |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {best['libraries']:.2f} | {best['vseg']:.2f} | {best['vseg'] / best['libraries']:.2f} | {helps:.2f} |")


def memory(work: Path, lengths: list[int]) -> None:
    print("\n`vseg scenes` on a 1920x1080 24 fps test pattern, peak memory against length:\n")
    print("| seconds of video | frames | wall s | peak MB |")
    print("| ---: | ---: | ---: | ---: |")
    for length in lengths:
        path = work / f"pattern_{length}s.mp4"
        if not path.is_file():
            pattern = "testsrc2=size=1920x1080:rate=24,hue=H=t*0.5"
            subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", pattern, "-t", str(length),
                            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True)  # fmt: skip
        out = work / f"pattern_{length}s"
        shutil.rmtree(out, ignore_errors=True)
        took, peak = run([str(BIN / "vseg"), "-q", "scenes", str(path), "--out", str(out)])
        print(f"| {length} | {length * 24:,} | {took:.1f} | {peak:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6, help="synthetic movies in the folder")
    parser.add_argument("--shots", type=int, default=30, help="shots per movie")
    parser.add_argument("--lengths", default="30,90,270", help="seconds of the test-pattern videos (memory)")
    parser.add_argument("--parts", default="startup,collection,memory", help="which tables to make")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    work = args.keep or Path(tempfile.mkdtemp(prefix="vseg-collection-bench-"))
    print(f"{os.cpu_count()} CPU cores; work folder {work}")
    if "startup" in parts:
        startup()
    if "collection" in parts:
        collection(work, render_folder(work / "videos", args.videos, args.shots))
    if "memory" in parts:
        memory(work, [int(length) for length in args.lengths.split(",")])
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
