"""Throughput of ``vseg embed`` and of one ``vseg segment`` epoch at MovieNet scale.

embed: shots/s of the encoder forward alone (random input already on the device) against ``vseg embed``'s own loop
(keyframe decode, resize/crop/normalise, collation and the same forward) at the same batch size, measured one after
the other in the same run, for each ``--pipelines`` (cpu: the workers decode and resize; device: they read bytes, the
device decodes and resizes). The ratio end-to-end / forward-alone shows what the loader costs (1.0: nothing).

segment: seconds of one training epoch of the reference-size BiLSTM (vseg/configs/segment/scrl.yaml) on a synthetic set
shaped like SceneSeg318's train split (190 movies x about 1,000 shots of 2048-d embeddings), and of one scoring pass
over a val-sized set (64 movies), with the windows/s of each.

    python benchmarks/embed_throughput.py [--arch resnet50] [--image-size 224] [--batch-size 64] [--batches 4]
        [--workers N] [--device auto] [--bf16] [--data ROOT] [--skip-segment] [--pipelines cpu device]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Subset

from vseg.config import SegmentConfig, SynthConfig, load_config
from vseg.data.shots import shots_for
from vseg.data.windows import training_windows
from vseg.eval.embed import iter_features, keyframe_layout, plan_movie
from vseg.eval.segment import build_model, predict_probabilities, train_epoch
from vseg.io.embeddings import Embeddings
from vseg.io.movienet import list_movies
from vseg.models.encoder import ShotEncoder
from vseg.parallel import default_workers
from vseg.prep.synth import make_synth
from vseg.presets import preset
from vseg.runtime import choose_device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def embed_rates(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    root = args.data
    needed = args.batch_size * (args.batches + 1)
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="vseg-bench-embed-"))
        make_synth(root, SynthConfig(movies=max(4, math.ceil(needed / 159)), shots_per_movie=160, seed=0))
    layout, keyframes = keyframe_layout(root)
    movies = [plan_movie(layout, keyframes, m, 3).keyframes for m in list_movies(keyframes)]
    torch.manual_seed(0)
    encoder = ShotEncoder(args.arch, 9, mlp=False).eval()
    layout_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    encoder.to(device, memory_format=layout_format)
    batch = torch.randn(args.batch_size, 9, args.image_size, args.image_size, device=device)
    batch = batch.contiguous(memory_format=layout_format)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and args.bf16)
    with torch.inference_mode(), autocast:
        encoder.features(batch)  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(args.batches):
            encoder.features(batch).float().cpu()
        sync(device)
        forward = args.batches * args.batch_size / (time.perf_counter() - start)

    workers = default_workers() if args.workers is None else args.workers
    rates: dict = {"forward_shots_per_s": forward, "pipelines": {}}
    for pipeline in args.pipelines:
        kind, collate = shots_for(pipeline, args.image_size)
        shots = ConcatDataset([kind(movie, args.image_size) for movie in movies])
        shots = Subset(shots, range(min(needed, len(shots))))
        stream = iter_features(
            encoder, shots, args.batch_size, workers, device, args.bf16, channels_last=True, collate=collate
        )
        next(stream)  # the first batch pays for starting the workers
        start, done = time.perf_counter(), 0
        for features in stream:
            done += len(features)
        end_to_end = done / (time.perf_counter() - start)
        rates["pipelines"][pipeline] = {"embed_shots_per_s": end_to_end, "ratio": end_to_end / forward}
    return rates


def segment_times(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    rng = np.random.default_rng(0)
    config = load_config(SegmentConfig, preset("segment/scrl"))

    def movies(count: int) -> Embeddings:
        lengths = rng.integers(800, 1201, size=count)
        labels = {f"tt{i:07d}": (rng.random(n) < 0.1).astype(np.int64) for i, n in enumerate(lengths)}
        features = {m: rng.standard_normal((len(v), 2048), dtype=np.float32) for m, v in labels.items()}
        return Embeddings.concat(features, labels)

    train, val = movies(190), movies(64)
    torch.manual_seed(0)
    model = build_model(config, 2048).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    criterion = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 4.0], device=device))
    features = torch.from_numpy(train.features).to(device)
    windows = len(training_windows(train.offsets, train.labels, 40, 0.0, np.random.default_rng(0))[0])
    sync(device)
    start = time.perf_counter()
    train_epoch(model, optimizer, criterion, features, train, config, 0, lambda n=1, status=None: None)
    sync(device)
    epoch = time.perf_counter() - start
    start = time.perf_counter()
    predict_probabilities(model, val, 40, device)
    sync(device)
    scoring = time.perf_counter() - start
    return {
        "train_movies": len(train.movies),
        "train_shots": len(train.features),
        "windows_per_epoch": windows,
        "epoch_seconds": epoch,
        "train_windows_per_s": windows / epoch,
        "val_shots": len(val.features),
        "val_scoring_seconds": scoring,
        "val_shots_per_s": len(val.features) / scoring,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=4, help="timed batches per measurement")
    parser.add_argument("--workers", type=int, help="loader workers; default: one per core")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
    parser.add_argument("--data", type=Path, help="MovieNet-layout root; default: synthetic movies")
    parser.add_argument("--skip-segment", action="store_true")
    parser.add_argument("--pipelines", nargs="+", choices=["cpu", "device"], default=["cpu", "device"])
    args = parser.parse_args()
    device = choose_device(args.device, 0)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "arch": args.arch,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "bf16": args.bf16,
        "embed": embed_rates(args, device),
    }
    if not args.skip_segment:
        result["segment"] = segment_times(args, device)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
