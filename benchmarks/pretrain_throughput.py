"""Does the data pipeline hold SCRL pre-training back? For each pipeline (``data.pipeline``: ``cpu``, where loader
workers decode and augment every shot, and ``device``, where they ship JPEG bytes and drawn parameters and the
training device decodes and augments whole batches), measured one after the other in one process:

0. worker cost: CPU seconds per shot of one dataset item in one thread, as a DataLoader worker runs it;
1. data alone: the trainer's DataLoader and, for the device pipeline, the batch decode and views on the device;
2. end to end: the loader feeding the step, as in ``vseg pretrain``;

and once, step alone (model only): the trainer's optimiser step on one batch of views already on the device.

The figures of merit are the ratio end-to-end / step-alone (1.0: the loader costs nothing; aim >= 0.9) and the ratio
of the two pipelines' worker costs, measured in the same run because these machines are noisy. On CUDA the step runs
with bf16 autocast and channels_last, as the trainer does. Without ``--data`` a synthetic dataset and its puzzles are
made in a temporary folder. Importable: ``measure`` is what ``benchmarks/gpu_check.py`` runs.

    python benchmarks/pretrain_throughput.py [--config scrl/cpu_tiny] [--data PUZZLES] [--steps 20] [--workers N]
        [--pipelines cpu device] [--worker-clips 4] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from vseg.config import PuzzlesConfig, SynthConfig, load_config
from vseg.train.methods.scrl import ScrlConfig
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth
from vseg.presets import resolve_config
from vseg.runtime import init_distributed
from vseg.train.methods.scrl import ScrlMethod
from vseg.train.trainer import build_loader, build_optimizer, memory_format, samples_per_rank, train_step


def synthetic_puzzles(movies: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="vseg-bench-pretrain-"))
    make_synth(root / "movienet", SynthConfig(movies=movies, shots_per_movie=160, seed=0))
    make_puzzles(root / "movienet" / "240P", root / "puzzles", PuzzlesConfig())
    return root / "puzzles"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds for ``steps`` calls of ``run(i)`` after ``warmup`` untimed ones."""
    for i in range(warmup):
        run(i)
    sync(device)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        run(i)
    sync(device)
    return time.perf_counter() - start


def worker_seconds_per_shot(dataset, clips: int, shots_per_clip: int) -> float:
    """CPU seconds per shot of ``clips`` dataset items made in one thread (as in a DataLoader worker)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset[(0, 0)]  # warm up
        start = time.process_time()
        for i in range(clips):
            dataset[(0, i % len(dataset))]
        return (time.process_time() - start) / (clips * shots_per_clip)
    finally:
        torch.set_num_threads(threads)


def measure(config: ScrlConfig, steps: int, warmup: int, pipelines: list[str], worker_clips: int) -> dict:
    """Worker cost, data-alone and end-to-end rates for each pipeline, and the step-alone rate (see the docstring)."""
    method = ScrlMethod(config)
    env = init_distributed(config.train.device)
    torch.manual_seed(0)
    shots = config.train.batch_size
    per_rank = samples_per_rank(config.train, env, method)
    model = method.build_model(env, shots)
    model = model.to(env.device, memory_format=memory_format(config.train, env))
    model.train()
    optimizer = build_optimizer(model, config.optim)

    def step(batch) -> None:
        train_step(method, model, optimizer, batch, env, config.train.amp)

    config.data.pipeline = "cpu"
    loader, _ = build_loader(method.build_dataset(env), config.train, env, per_rank)
    fixed = next(iter(loader))  # views already made: the step alone is the model alone
    fixed = tuple(view.to(env.device) for view in fixed)
    del loader
    rates = {"step_alone": steps * shots / timed(lambda i: step(fixed), steps, warmup, env.device)}
    result: dict = {"loader_workers": None, "pipelines": {}}
    for pipeline in pipelines:
        config.data.pipeline = pipeline
        dataset = method.build_dataset(env)
        cost = worker_seconds_per_shot(dataset, worker_clips, config.data.shots_per_clip)
        loader, sampler = build_loader(dataset, config.train, env, per_rank)
        result["loader_workers"] = loader.num_workers
        if len(loader) < steps + warmup:
            raise SystemExit(f"{len(loader)} batches per epoch, {steps + warmup} needed: add --movies or lower --steps")

        def epoch_batches(epoch: int):
            sampler.set_epoch(epoch)
            return iter(loader)

        def data(batch):
            return method.decoder(batch, env.device) if pipeline == "device" else batch

        batches = epoch_batches(0)
        data_seconds = timed(lambda i: data(next(batches)), steps, warmup, env.device)
        batches = epoch_batches(1)
        end_seconds = timed(lambda i: step(next(batches)), steps, warmup, env.device)
        end = steps * shots / end_seconds
        result["pipelines"][pipeline] = {
            "worker_cpu_ms_per_shot": round(1000 * cost, 3),
            "data_alone_shots_per_s": round(steps * shots / data_seconds, 1),
            "end_to_end_shots_per_s": round(end, 1),
            "ratio_end_to_end_over_step": round(end / rates["step_alone"], 3),
        }
        del loader, batches
    costs = {name: row["worker_cpu_ms_per_shot"] for name, row in result["pipelines"].items()}
    device = torch.cuda.get_device_name(env.device) if env.device.type == "cuda" else platform.processor() or "cpu"
    return {
        "device": device,
        "cpu_cores": os.cpu_count(),
        "batch_shots": shots,
        "image_size": config.data.image_size,
        "arch": config.model.arch,
        "amp_bf16": env.device.type == "cuda" and config.train.amp,
        "channels_last": memory_format(config.train, env) == torch.channels_last,
        "step_alone_shots_per_s": round(rates["step_alone"], 1),
        **result,
        **(
            {"worker_cost_ratio_cpu_over_device": round(costs["cpu"] / max(costs["device"], 1e-9), 2)}
            if {"cpu", "device"} <= set(costs)
            else {}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="scrl/cpu_tiny", help="config file or preset")
    parser.add_argument("--data", type=Path, help="puzzle folder; default: synthetic puzzles in a temporary folder")
    parser.add_argument("--movies", type=int, default=12, help="synthetic movies when --data is not given")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    parser.add_argument("--workers", type=int, help="loader workers (train.workers); default: the config's")
    parser.add_argument("--pipelines", nargs="+", default=["cpu", "device"], choices=["cpu", "device"])
    parser.add_argument("--worker-clips", type=int, default=4, help="clips timed for the worker cost")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    args = parser.parse_args()

    values = {"data.root": args.data or synthetic_puzzles(args.movies)}
    if args.workers is not None:
        values["train.workers"] = args.workers
    config = load_config(ScrlConfig, resolve_config(Path(args.config)), args.overrides, values)
    result = measure(config, args.steps, args.warmup, args.pipelines, args.worker_clips)
    print(json.dumps({"config": args.config, "overrides": args.overrides, **result}))


if __name__ == "__main__":
    main()
