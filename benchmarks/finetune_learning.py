"""Does HiCo pre-training help fine-tuning at CPU scale? HiCo's evaluation (Qing et al., CVPR 2022, Sec. 4.1) on
synthetic data, in one run.

1. ``vseg pretrain hico`` (``hico/cpu_tiny``) on synthetic untrimmed videos (:mod:`vseg.prep.synth_video`: segments
   of 4 moving-pattern kinds in random colours) cut by ``vseg prep clips``.
2. ``vseg finetune`` (``finetune/cpu_tiny``, the same steps each) on labelled single-segment videos (the kind is the
   label, chance 0.25), tested on held-out ones with 10 views: full fine-tuning from the HiCo checkpoint and from
   random init (the same S3D-G init seed), and the frozen probe (``model.linear=frozen``: the head alone on the
   eval-mode backbone) from each.

    python benchmarks/finetune_learning.py [--videos 16] [--pretrain-epochs 40] [--epochs 10] [--train 32] [--test 32]
        [--modes full frozen] [--hico CKPT]
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
from vseg.presets import preset
from vseg.prep.clips import make_clips
from vseg.prep.synth_video import write_labelled_videos, write_untrimmed_video
from vseg.train.methods.finetune import FinetuneConfig, FinetuneMethod
from vseg.train.methods.hico import HicoConfig, HicoMethod
from vseg.train.trainer import pretrain


def pretrain_hico(work: Path, videos: int, epochs: int) -> Path:
    """``hico/cpu_tiny`` for ``epochs`` on ``videos`` synthetic untrimmed videos of 24 s; its last checkpoint."""
    for i in range(videos):
        write_untrimmed_video(work / "untrimmed" / f"video{i}.mp4", seconds=24, seed=i)
    make_clips([work / "untrimmed"], work / "clips", ClipsConfig(workers=2))
    started = time.perf_counter()
    hico = load_config(HicoConfig, preset("hico/cpu_tiny"), [f"train.epochs={epochs}"])
    hico.data.root = work / "clips"
    report = pretrain(HicoMethod(hico), work / "hico")
    print(f"pretrain hico: {report.steps} steps in {time.perf_counter() - started:.0f} s, last epoch {report.last}")
    return report.checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16, help="untrimmed videos of 24 s for pre-training")
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    parser.add_argument("--train", type=int, default=32, help="labelled training videos")
    parser.add_argument("--test", type=int, default=32, help="labelled test videos")
    parser.add_argument("--modes", nargs="+", choices=["full", "frozen"], default=["full", "frozen"])
    parser.add_argument("--hico", type=Path, help="a HiCo checkpoint to fine-tune instead of pre-training one")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.platform()}, torch threads {torch.get_num_threads()}")
    ui.settings.quiet = True
    work = Path(tempfile.mkdtemp(prefix="vseg-bench-finetune-learning-"))
    (work / "untrimmed").mkdir()
    (work / "labelled").mkdir()
    checkpoint = args.hico or pretrain_hico(work, args.videos, args.pretrain_epochs)
    torch.manual_seed(0)
    save_checkpoint(work / "random.pth", S3DG().state_dict())
    train = write_labelled_videos(work / "labelled", "train", args.train, seed=100)
    test = write_labelled_videos(work / "labelled", "test", args.test, seed=200)
    rows = {}
    for name, init, linear in [
        ("full, HiCo init", checkpoint, None),
        ("full, random init", work / "random.pth", None),
        ("frozen probe, HiCo init", checkpoint, "frozen"),
        ("frozen probe, random init", work / "random.pth", "frozen"),
    ]:
        if (linear or "full") not in args.modes:
            continue
        config = load_config(FinetuneConfig, preset("finetune/cpu_tiny"), [f"train.epochs={args.epochs}"])
        config.data.train_list, config.data.test_list, config.model.init = train, test, init
        config.model.linear = linear
        started = time.perf_counter()
        run = pretrain(FinetuneMethod(config), work / name.replace(", ", "_").replace(" ", "_"))
        rows[name] = {key: run.results[key] for key in ("top1", "top5", "single_view_top1")}
        rows[name].update(train_loss=round(run.last["loss"], 3), steps=run.steps,
                          seconds=round(time.perf_counter() - started))  # fmt: skip
        print(f"{name}: {rows[name]}")
    print(json.dumps({"work": str(work), "runs": rows}))


if __name__ == "__main__":
    main()
