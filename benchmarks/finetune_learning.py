"""Does HiCo pre-training help fine-tuning at CPU scale? HiCo's evaluation (Qing et al., CVPR 2022, Sec. 4.1) on
synthetic data, in one run, for each seed:

1. ``vseg pretrain hico`` (``hico/cpu_tiny``, ``train.seed`` = seed) on synthetic untrimmed videos
   (:mod:`vseg.prep.synth_video`: segments of 4 moving-pattern kinds) cut by ``vseg prep clips``.
2. ``vseg finetune`` (``finetune/cpu_tiny``, the same steps each) on labelled single-segment videos (the kind is the
   label, chance 0.25), tested on held-out ones with 10 views: full fine-tuning from the HiCo checkpoint and from
   random init (one S3D-G init per seed), and the probes (``model.linear``: ``frozen``, the head alone on the
   eval-mode backbone; ``reference``, the head alone with the backbone's BN in train mode) from each.

``--palette bw`` (the default) renders every segment of every video in black and white: with a random pair of
colours per segment (``--palette random``) colour tells segments apart, so HiCo's objective is met from colour alone
and nothing about the pattern is learned in a few hundred CPU steps (BENCHMARKS.md).

CPU-scale settings (the defaults, BENCHMARKS.md): pre-training with Adam (lr 1e-3, weight decay 1e-4) instead of
LARS, which at a batch of 12 clips either barely moves or collapses, for 200 epochs (800 steps); fine-tuning at
lr 2.5e-4 (HiCo's UCF101 lr 0.002 at batch 128, scaled to the batch of 8 and doubled) for 10 epochs (40 steps),
where the two inits differ most (after 160 steps both reach about 0.9).

    python benchmarks/finetune_learning.py [--seeds 0 1 2] [--palette bw] [--videos 16] [--pretrain-epochs 200]
        [--epochs 10] [--train 32] [--test 32] [--modes full frozen reference] [--hico CKPT]
        [--pretrain-set KEY=VALUE ...] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from vseg import ui
from vseg.config import ClipsConfig, load_config
from vseg.io.checkpoints import save_checkpoint
from vseg.models.s3dg import S3DG
from vseg.prep.clips import make_clips
from vseg.prep.synth_video import Palette, write_labelled_videos, write_untrimmed_video
from vseg.presets import preset
from vseg.train.methods.finetune import FinetuneConfig, FinetuneMethod
from vseg.train.methods.hico import HicoConfig, HicoMethod
from vseg.train.trainer import pretrain

PALETTES: dict[str, Palette | None] = {"bw": ((0, 0, 0), (255, 255, 255)), "random": None}
RUNS = [("full", None), ("frozen probe", "frozen"), ("linear (reference BN)", "reference")]
PRETRAIN_SET = ["optim.optimizer=adam", "optim.lr=1e-3", "optim.weight_decay=1e-4"]
FINETUNE_SET = ["optim.lr=2.5e-4", "optim.warmup_start_lr=2.5e-5"]


def pretrain_hico(work: Path, args: argparse.Namespace, seed: int) -> Path:
    """``hico/cpu_tiny`` for ``--pretrain-epochs`` on ``--videos`` synthetic untrimmed videos of 24 s; its last
    checkpoint."""
    videos = work / "untrimmed"
    for i in range(args.videos):
        write_untrimmed_video(videos / f"video{i}.mp4", seconds=24, seed=1000 * seed + i, colours=args.colours)
    make_clips([videos], work / "clips", ClipsConfig(workers=2))
    started = time.perf_counter()
    overrides = [f"train.epochs={args.pretrain_epochs}", f"train.seed={seed}", *args.pretrain_set]
    hico = load_config(HicoConfig, preset("hico/cpu_tiny"), overrides)
    hico.data.root = work / "clips"
    report = pretrain(HicoMethod(hico), work / "hico")
    print(f"seed {seed}: pretrain hico, {report.steps} steps in {time.perf_counter() - started:.0f} s, "
          f"last epoch {report.last}")  # fmt: skip
    return report.checkpoint


def finetune_runs(work: Path, args: argparse.Namespace, seed: int, checkpoint: Path) -> dict[str, dict]:
    """Every run of ``--modes`` from the HiCo checkpoint and from random init; name -> results."""
    torch.manual_seed(seed)
    save_checkpoint(work / "random.pth", S3DG().state_dict())
    folder = work / "labelled"
    train = write_labelled_videos(folder, "train", args.train, seed=100 + seed, colours=args.colours)
    test = write_labelled_videos(folder, "test", args.test, seed=200 + seed, colours=args.colours)
    rows = {}
    for mode, linear in RUNS:
        if (linear or "full") not in args.modes:
            continue
        for init_name, init in (("HiCo init", checkpoint), ("random init", work / "random.pth")):
            name = f"{mode}, {init_name}"
            overrides = [f"train.epochs={args.epochs}", f"train.seed={seed}", *args.set]
            config = load_config(FinetuneConfig, preset("finetune/cpu_tiny"), overrides)
            config.data.train_list, config.data.test_list, config.model.init = train, test, init
            config.model.linear = linear
            started = time.perf_counter()
            run = pretrain(FinetuneMethod(config), work / f"{mode}_{init_name}".replace(" ", "_"))
            rows[name] = {key: run.results[key] for key in ("top1", "single_view_top1")}
            rows[name].update(train_loss=round(run.last["loss"], 3), steps=run.steps,
                              seconds=round(time.perf_counter() - started))  # fmt: skip
            print(f"seed {seed}: {name}: {rows[name]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one whole run (data, init) each")
    parser.add_argument("--palette", choices=sorted(PALETTES), default="bw", help="colours of every segment")
    parser.add_argument("--videos", type=int, default=16, help="untrimmed videos of 24 s for pre-training")
    parser.add_argument("--pretrain-epochs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    parser.add_argument("--train", type=int, default=32, help="labelled training videos (the kinds in turn)")
    parser.add_argument("--test", type=int, default=32, help="labelled test videos")
    parser.add_argument("--modes", nargs="+", choices=["full", "frozen", "reference"], default=["full", "frozen"])
    parser.add_argument("--hico", type=Path, help="a HiCo checkpoint to fine-tune instead of pre-training one")
    parser.add_argument("--pretrain-set", nargs="*", default=PRETRAIN_SET, help="overrides of hico/cpu_tiny")
    parser.add_argument("--set", nargs="*", default=FINETUNE_SET, help="overrides of finetune/cpu_tiny")
    args = parser.parse_args()
    args.colours = PALETTES[args.palette]
    print(f"machine: {platform.machine()}, {platform.platform()}, torch threads {torch.get_num_threads()}")
    ui.settings.quiet = True
    runs = {}
    for seed in args.seeds:
        work = Path(tempfile.mkdtemp(prefix=f"vseg-bench-finetune-learning-{seed}-"))
        checkpoint = args.hico or pretrain_hico(work, args, seed)
        runs[seed] = finetune_runs(work, args, seed, checkpoint)
    print(json.dumps({"runs": runs}))
    print("| run | 10-view top-1, per seed | mean | centre-view top-1, mean | last epoch's train loss, mean |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name in runs[args.seeds[0]]:
        rows = [runs[seed][name] for seed in args.seeds]
        mean = {key: sum(row[key] for row in rows) / len(rows) for key in ("top1", "single_view_top1", "train_loss")}
        per_seed = " / ".join(f"{row['top1']:.3f}" for row in rows)
        print(f"| {name} | {per_seed} | {mean['top1']:.3f} | {mean['single_view_top1']:.3f} | "
              f"{mean['train_loss']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
