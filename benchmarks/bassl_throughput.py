"""BaSSL pre-training throughput beside SCRL's, measured one after the other in one process: windows/s of the step
alone (model only: the trainer's optimiser step on one batch already on the device) and end to end (the trainer's
loader feeding the step), and their ratio. A BaSSL window is 2 x neighbor_size + 3 images (19 in the paper); SCRL's
figures come from :func:`pretrain_throughput.measure` (its ``cpu`` pipeline) on the same synthetic movies, in shots/s
(one shot is 3 keyframes stacked as 9 channels). Without ``--data`` synthetic movies are made in a temporary folder.
Importable: ``measure`` is what ``benchmarks/gpu_check.py`` runs.

    python benchmarks/bassl_throughput.py [--config bassl/cpu_tiny] [--scrl-config scrl/cpu_tiny] [--movies 4]
        [--steps 10] [--warmup 2] [--set key=value ...] [--skip-scrl]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pretrain_throughput  # noqa: E402  (a sibling script)

from vseg import ui  # noqa: E402
from vseg.config import PuzzlesConfig, SynthConfig, load_config  # noqa: E402
from vseg.prep.puzzles import make_puzzles  # noqa: E402
from vseg.prep.synth import make_synth  # noqa: E402
from vseg.presets import resolve_config  # noqa: E402
from vseg.runtime import init_distributed  # noqa: E402
from vseg.train.methods.bassl import BasslConfig, BasslMethod  # noqa: E402
from vseg.train.methods.scrl import ScrlConfig  # noqa: E402
from vseg.train.trainer import build_loader, build_optimizer, memory_format, samples_per_rank, train_step  # noqa: E402


def measure(config: BasslConfig, steps: int, warmup: int) -> dict:
    """Step-alone and end-to-end windows/s of ``config`` (see the module docstring)."""
    method = BasslMethod(config)
    env = init_distributed(config.train.device)
    torch.manual_seed(0)
    windows = config.train.batch_size
    model = method.build_model(env, windows).to(env.device, memory_format=memory_format(config.train, env))
    model.train()
    optimizer = build_optimizer(model, config.optim)
    per_rank = samples_per_rank(config.train, env, method)
    loader, _ = build_loader(method.build_dataset(env), config.train, env, per_rank)
    if len(loader) < 2 * (steps + warmup):
        raise SystemExit(f"{len(loader)} batches per epoch, {2 * (steps + warmup)} needed: add --movies, fewer --steps")

    def step(batch) -> None:
        train_step(method, model, optimizer, batch, env, config.train.amp)

    batches = iter(loader)
    fixed = tuple(part.to(env.device) for part in next(batches))
    alone = steps * windows / pretrain_throughput.timed(lambda i: step(fixed), steps, warmup, env.device)
    end = steps * windows / pretrain_throughput.timed(lambda i: step(next(batches)), steps, warmup, env.device)
    images = 2 * config.data.neighbor_size + 3
    return {
        "device": torch.cuda.get_device_name(env.device) if env.device.type == "cuda" else platform.machine(),
        "loader_workers": loader.num_workers,
        "batch_windows": windows,
        "images_per_window": images,
        "image_size": config.data.image_size,
        "arch": config.model.arch,
        "step_alone_windows_per_s": round(alone, 2),
        "end_to_end_windows_per_s": round(end, 2),
        "end_to_end_images_per_s": round(end * images, 1),
        "ratio_end_to_end_over_step": round(end / alone, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="bassl/cpu_tiny")
    parser.add_argument("--scrl-config", default="scrl/cpu_tiny")
    parser.add_argument("--data", type=Path, help="a MovieNet-layout root; default: synthetic movies")
    parser.add_argument("--movies", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="BaSSL config override")
    parser.add_argument("--skip-scrl", action="store_true")
    args = parser.parse_args()
    ui.settings.quiet = True
    root = args.data
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="vseg-bench-bassl-")) / "movienet"
        make_synth(root, SynthConfig(movies=args.movies, shots_per_movie=160, seed=0))
    values = {"data.root": str(root), "data.split": None}
    bassl = load_config(BasslConfig, resolve_config(args.config), args.overrides, values)
    result = {"bassl": {"config": args.config, "overrides": args.overrides, **measure(bassl, args.steps, args.warmup)}}
    if not args.skip_scrl:
        puzzles = root.parent / "puzzles"
        make_puzzles(root / "240P", puzzles, PuzzlesConfig())
        scrl = load_config(ScrlConfig, resolve_config(args.scrl_config), [], {"data.root": str(puzzles)})
        measured = pretrain_throughput.measure(scrl, args.steps, args.warmup, ["cpu"], worker_clips=2)
        result["scrl"] = {"config": args.scrl_config, **measured}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
