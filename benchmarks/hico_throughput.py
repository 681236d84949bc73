"""Throughput of HiCo's data path, measured in one run, section by section.

Section ``clips`` (:func:`bench_prep_clips`): ``vseg prep clips`` in seconds of video cut per second, on synthetic
videos (a textured camera pan, default 2 videos of 60 s at 640x360, 30 fps, a keyframe every 2 s), against the
plain way: one ffmpeg process per video with the segment muxer, re-encoding with keyframes forced every 5 s
(``-f segment -segment_time 5 -force_key_frames expr:gte(t,n_forced*5) -reset_timestamps 1``). Each run's clips
are checked with decord against the frames they should hold (the frames of ``[5k, 5k+5)``); "exact" counts the
clips that do. vseg is run re-encoding (the default) and stream-copying, with 1 and with N workers. The ratios
(vseg / baseline) are what to compare across machines; absolute rates depend on the CPU.

Section ``loader`` (:func:`bench_loader`): clips per second that ``vseg pretrain hico``'s loader decodes (decord,
across piece boundaries) and augments, with 0 and with N worker processes, against the training step alone (S3D-G
forward and backward with the HiCo heads and losses, and a LARS step) on a batch already in memory, for a preset's
clip geometry (``cpu_tiny``: 8 x 32^2; ``hacs_s``: the paper's 16 x 112^2), on synthetic videos at 340x256,
30 fps (HACS's typical size) cut into 5 s pieces. A loader rate above the step rate means the GPU (or CPU) never
waits for data.

Section ``finetune`` (:func:`bench_finetune`): the same for ``vseg finetune`` (one random-start clip per trimmed
video; S3D-G with the linear head and an Adam step), for ``finetune/cpu_tiny`` (8 x 32^2) and ``finetune/ucf101``
(16 x 112^2), on 8 trimmed synthetic videos of 10 s at 340x256, 30 fps.

    python benchmarks/hico_throughput.py [--section clips|loader|finetune|all] [--videos 2] [--seconds 60]
        [--repeats 1] [--workers N] [--presets cpu_tiny hacs_s] [--finetune-presets cpu_tiny ucf101] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from vseg import ui
from vseg.config import ClipsConfig
from vseg.io.cliplist import parse_clip_file_name
from vseg.io.video import ffmpeg_exe, open_video, write_video
from vseg.parallel import default_workers
from vseg.prep.clips import make_clips

# ----------------------------------------------------------------------------------------- prep clips


def pan_frames(seconds: float, width: int, height: int, fps: float, seed: int) -> Iterator[np.ndarray]:
    """A camera pan over a smooth random texture: real motion for the encoder, cheap to draw."""
    count = round(seconds * fps)
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 1, (width + 2 * count) // 8 + 1, 3), dtype=np.uint8)
    canvas = np.repeat(np.repeat(small, 8, 0), 8, 1)[:height]  # 8x8 blocks: texture with edges
    for i in range(count):
        yield canvas[:, 2 * i : 2 * i + width]


def make_sources(folder: Path, videos: int, seconds: float, width: int, height: int, fps: float) -> list[Path]:
    paths = []
    for v in range(videos):
        path = folder / f"v_bench{v}.mp4"
        write_video(path, pan_frames(seconds, width, height, fps, seed=v), fps, gop=round(2 * fps))
        paths.append(path)
    return paths


def segment_muxer(sources: list[Path], out: Path, clip_seconds: float) -> None:
    """The plain way: one ffmpeg per video, segment muxer, re-encoding with a keyframe forced every clip."""
    for source in sources:
        folder = out / source.stem
        folder.mkdir(parents=True)
        subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(source), "-an",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
             "-force_key_frames", f"expr:gte(t,n_forced*{clip_seconds:g})",
             "-f", "segment", "-segment_time", f"{clip_seconds:g}", "-reset_timestamps", "1",
             str(folder / "%05d.mp4")],
            check=True,
        )  # fmt: skip


def clip_frame_counts(out: Path) -> dict[str, list[int]]:
    """Frames of each clip, per video, in time order (vseg's names, or the segment muxer's numbers)."""
    counts: dict[str, list[tuple[int, int]]] = {}
    for path in out.rglob("*.mp4"):
        if path.parent.name == "training":
            video, start, _ = parse_clip_file_name(path.name)
        else:
            video, start = path.parent.name.removeprefix("v_"), int(path.stem)
        counts.setdefault(video, []).append((start, len(open_video(path))))
    return {video: [n for _, n in sorted(pieces)] for video, pieces in counts.items()}


def exact_clips(counts: dict[str, list[int]], frames: int, fps: float, clip_seconds: float) -> tuple[int, int]:
    """(clips holding exactly the frames of their [5k, 5k+5) window, clips expected) over all videos."""
    bounds = [
        min(math.ceil(k * clip_seconds * fps - 1e-6), frames) for k in range(math.ceil(frames / fps / clip_seconds))
    ]
    expected = [b - a for a, b in zip(bounds, [*bounds[1:], frames], strict=True)]
    exact = sum(sum(a == b for a, b in zip(got, expected, strict=False)) for got in counts.values())
    return exact, len(expected) * len(counts)


def bench_prep_clips(
    videos: int = 2,
    seconds: float = 60.0,
    width: int = 640,
    height: int = 360,
    fps: float = 30.0,
    clip_seconds: float = 5.0,
    repeats: int = 1,
    workers: int | None = None,
) -> dict[str, dict[str, float | str]]:
    """Seconds of video cut per second: the segment-muxer baseline and vseg prep clips (see the module docstring)."""
    workers = workers or default_workers()
    data = Path(tempfile.mkdtemp(prefix="vseg-bench-clips-"))
    quiet, ui.settings.quiet = ui.settings.quiet, True
    try:
        sources = make_sources(data, videos, seconds, width, height, fps)
        total = videos * round(seconds * fps) / fps

        def vseg(**settings) -> Callable[[Path], None]:
            return lambda out: make_clips(sources, out, ClipsConfig(clip_seconds=clip_seconds, **settings))

        runs = {"baseline: ffmpeg segment muxer, re-encode, 1 process per video": lambda out: segment_muxer(
            sources, out, clip_seconds
        )}  # fmt: skip
        for copy in (False, True):
            for n in sorted({1, workers}):
                runs[f"vseg prep clips{' --stream-copy' if copy else ''} --workers {n}"] = vseg(
                    stream_copy=copy, workers=n
                )
        results: dict[str, dict[str, float | str]] = {}
        for name, run in runs.items():
            times = []
            for _ in range(repeats):
                out = data / "out"
                shutil.rmtree(out, ignore_errors=True)
                started = time.perf_counter()
                run(out)
                times.append(time.perf_counter() - started)
            exact, expected = exact_clips(clip_frame_counts(out), round(seconds * fps), fps, clip_seconds)
            results[name] = {"seconds": round(min(times), 2), "video_s_per_s": round(total / min(times), 1),
                             "exact_clips": f"{exact}/{expected}"}  # fmt: skip
        return results
    finally:
        ui.settings.quiet = quiet
        shutil.rmtree(data, ignore_errors=True)


def print_clips(results: dict[str, dict[str, float | str]], args: argparse.Namespace) -> None:
    print(
        f"prep clips: {args.videos} videos x {args.seconds:g} s of {args.width}x{args.height} at {args.fps:g} fps, "
        f"keyframe every 2 s, clips of 5 s, best of {args.repeats}"
    )
    base = next(iter(results.values()))["seconds"]
    print(f"{'run':66s} {'seconds':>8s} {'video s/s':>10s} {'vs baseline':>12s} {'exact clips':>12s}")
    for name, row in results.items():
        print(
            f"{name:66s} {row['seconds']:8.2f} {row['video_s_per_s']:10.1f} {base / row['seconds']:11.2f}x "
            f"{row['exact_clips']:>12s}"
        )


# --------------------------------------------------------------------------------------------- loader


def _clip_count(batch) -> int:
    """Clips in a batch: ``videos x K x ...`` (pre-training) or ``(clips, labels)`` (fine-tuning)."""
    return batch[0].shape[0] if isinstance(batch, (list, tuple)) else batch.shape[0] * batch.shape[1]


def loader_vs_step(method, dataset, per_step: int, workers: int, steps: int, batches: int) -> dict[str, float]:
    """Clips/s of the method's loader (0 and ``workers`` processes, start-up included: it is paid once per epoch)
    over ``batches`` batches of ``per_step`` samples, and of its training step on one batch in memory."""
    import torch

    from vseg.data.sampler import collate_or_error
    from vseg.runtime import DistEnv
    from vseg.train.trainer import build_optimizer, train_step

    env = DistEnv(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
    row: dict[str, float] = {}
    items = [(epoch, index, 0.0) for epoch in range(batches * per_step // len(dataset) + 1)
             for index in range(len(dataset))][: batches * per_step]  # fmt: skip
    for n in sorted({0, workers}):
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=per_step, sampler=items, num_workers=n, collate_fn=collate_or_error
        )
        started, clips = time.perf_counter(), 0
        for batch in loader:
            clips += _clip_count(batch)
        row[f"loader_{n}_workers_clips_per_s"] = round(clips / (time.perf_counter() - started), 2)
    model = method.build_model(env, per_step * method.items_per_sample)
    optimizer = build_optimizer(model, method.config.optim)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=per_step, collate_fn=collate_or_error)))
    train_step(method, model, optimizer, batch, env, amp=False)  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        train_step(method, model, optimizer, batch, env, amp=False)
    row["step_clips_per_s"] = round(steps * _clip_count(batch) / (time.perf_counter() - started), 2)
    row["ratio_loader_to_step"] = round(
        max(v for k, v in row.items() if k.startswith("loader")) / row["step_clips_per_s"], 2
    )
    return row


def bench_loader(
    presets: list[str], workers: int, steps: int, videos: int = 8, seconds: float = 30.0, batches: int = 30
) -> dict:
    """Loader clips/s (0 and ``workers`` processes) against the training step's clips/s, per preset."""
    import torch

    from vseg.config import load_config
    from vseg.presets import preset
    from vseg.runtime import DistEnv
    from vseg.train.methods.hico import HicoConfig, HicoMethod

    data = Path(tempfile.mkdtemp(prefix="vseg-bench-loader-"))
    quiet, ui.settings.quiet = ui.settings.quiet, True
    results: dict[str, dict[str, float]] = {}
    try:
        sources = make_sources(data, videos, seconds, 340, 256, 30.0)
        make_clips(sources, data / "clips", ClipsConfig())
        env = DistEnv(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
        for name in presets:
            config = load_config(HicoConfig, preset(f"hico/{name}"))
            config.data.root = data / "clips"
            method = HicoMethod(config)
            dataset = method.build_dataset(env)
            results[name] = loader_vs_step(method, dataset, min(4, len(dataset)), workers, steps, batches)
        return results
    finally:
        ui.settings.quiet = quiet
        shutil.rmtree(data, ignore_errors=True)


def bench_finetune(
    presets: list[str], workers: int, steps: int, videos: int = 8, seconds: float = 10.0, batches: int = 8
) -> dict:
    """``vseg finetune``'s loader (one random-start clip per trimmed video, decoded and augmented) against its
    training step (S3D-G and the linear head, forward and backward, an Adam step), clips/s, per preset; 8 clips a
    batch, on trimmed synthetic videos at 340x256, 30 fps (UCF101's size is 320x240)."""
    import torch

    from vseg.config import load_config
    from vseg.presets import preset
    from vseg.runtime import DistEnv
    from vseg.train.methods.finetune import FinetuneConfig, FinetuneMethod

    data = Path(tempfile.mkdtemp(prefix="vseg-bench-finetune-"))
    quiet, ui.settings.quiet = ui.settings.quiet, True
    results: dict[str, dict[str, float]] = {}
    try:
        sources = make_sources(data, videos, seconds, 340, 256, 30.0)
        listing = data / "videos.txt"
        listing.write_text("".join(f"{path.name} {i % 2}\n" for i, path in enumerate(sources)))
        env = DistEnv(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
        for name in presets:
            config = load_config(FinetuneConfig, preset(f"finetune/{name}"))
            config.data.train_list = config.data.test_list = listing
            config.model.classes = 2
            method = FinetuneMethod(config)
            dataset = method.build_dataset(env)
            results[name] = loader_vs_step(method, dataset, 8, workers, steps, batches)
        return results
    finally:
        ui.settings.quiet = quiet
        shutil.rmtree(data, ignore_errors=True)


def print_loader(results: dict, title: str) -> None:
    print(title)
    for name, row in results.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in row.items()))


# ----------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", choices=["clips", "loader", "finetune", "all"], default="all")
    parser.add_argument("--presets", nargs="+", default=["cpu_tiny", "hacs_s"])
    parser.add_argument("--finetune-presets", nargs="+", default=["cpu_tiny", "ucf101"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {default_workers()} cores, {platform.platform()}")
    print(f"ffmpeg: {ffmpeg_exe()}")
    report = {}
    if args.section in ("clips", "all"):
        report["prep_clips"] = bench_prep_clips(
            args.videos, args.seconds, args.width, args.height, args.fps, repeats=args.repeats, workers=args.workers
        )
        print_clips(report["prep_clips"], args)
    if args.section in ("loader", "all"):
        report["loader"] = bench_loader(args.presets, args.workers, args.steps)
        print_loader(report["loader"], "pretrain hico: loader vs training step, clips/s, 4 videos x K clips a batch")
    if args.section in ("finetune", "all"):
        report["finetune"] = bench_finetune(args.finetune_presets, args.workers, args.steps)
        print_loader(report["finetune"], "finetune: loader vs training step, clips/s, 8 clips a batch")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
