"""Does the data pipeline hold SCRL pre-training back? Shots/s of three runs, measured one after the other:

1. data alone: the trainer's DataLoader (puzzle decode, 16 x 2 views of augmentation, collation), nothing else;
2. step alone: the trainer's optimiser step on random tensors of the batch's shape, already on the device;
3. end to end: the loader feeding the step, as in ``vseg pretrain``.

The figure of merit is the ratio end-to-end / step-alone (1.0: the loader costs nothing; aim >= 0.9), measured in
the same run because these machines are noisy. On CUDA the step runs with bf16 autocast and channels_last, as the
trainer does. Without ``--data`` a synthetic dataset and its puzzles are made in a temporary folder.

    python benchmarks/pretrain_throughput.py [--config scrl/cpu_tiny] [--data PUZZLES] [--steps 20] [--workers N]
        [--set key=value ...]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="scrl/cpu_tiny", help="config file or preset")
    parser.add_argument("--data", type=Path, help="puzzle folder; default: synthetic puzzles in a temporary folder")
    parser.add_argument("--movies", type=int, default=12, help="synthetic movies when --data is not given")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    parser.add_argument("--workers", type=int, help="loader workers (train.workers); default: the config's")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    args = parser.parse_args()

    values = {"data.root": args.data or synthetic_puzzles(args.movies)}
    if args.workers is not None:
        values["train.workers"] = args.workers
    config = load_config(ScrlConfig, resolve_config(Path(args.config)), args.overrides, values)
    method = ScrlMethod(config)
    env = init_distributed(config.train.device)
    torch.manual_seed(0)
    dataset = method.build_dataset(env)
    loader, sampler = build_loader(dataset, config.train, env, samples_per_rank(config.train, env, method))
    needed = args.warmup + args.steps
    if len(loader) < needed:
        raise SystemExit(f"{len(loader)} batches per epoch, {needed} needed: add --movies or lower --steps")
    model = method.build_model(env, config.train.batch_size)
    model = model.to(env.device, memory_format=memory_format(config.train, env))
    model.train()
    optimizer = build_optimizer(model, config.optim)
    shots = config.train.batch_size

    def epoch_batches(epoch: int):
        sampler.set_epoch(epoch)
        return iter(loader)

    batches = epoch_batches(0)
    data_seconds = timed(lambda i: next(batches), args.steps, args.warmup, env.device)

    fixed = next(epoch_batches(1))
    step_seconds = timed(
        lambda i: train_step(method, model, optimizer, fixed, env, config.train.amp),
        args.steps,
        args.warmup,
        env.device,
    )

    batches = epoch_batches(2)
    end_seconds = timed(
        lambda i: train_step(method, model, optimizer, next(batches), env, config.train.amp),
        args.steps,
        args.warmup,
        env.device,
    )
    rates = {name: args.steps * shots / seconds for name, seconds in [
        ("data_alone", data_seconds), ("step_alone", step_seconds), ("end_to_end", end_seconds)
    ]}  # fmt: skip
    device = torch.cuda.get_device_name(env.device) if env.device.type == "cuda" else platform.processor() or "cpu"
    result = {
        "config": args.config,
        "overrides": args.overrides,
        "device": device,
        "cpu_cores": os.cpu_count(),
        "loader_workers": loader.num_workers,
        "batch_shots": shots,
        "image_size": config.data.image_size,
        "arch": config.model.arch,
        "amp_bf16": env.device.type == "cuda" and config.train.amp,
        "channels_last": memory_format(config.train, env) == torch.channels_last,
        **{f"{name}_shots_per_s": round(rate, 1) for name, rate in rates.items()},
        "ratio_end_to_end_over_step": round(rates["end_to_end"] / rates["step_alone"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
