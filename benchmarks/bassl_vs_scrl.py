"""BaSSL against SCRL on the same synthetic movies, under both boundary protocols.

One synthetic set (``synth/cpu_tiny`` with ``--movies`` movies: half train, a quarter val, a quarter test) is used
three ways: SCRL pre-trained on its train movies' puzzles (``scrl/cpu_tiny``), BaSSL pre-trained on the same movies
(``bassl/cpu_tiny``), and BaSSL's encoder and CRN at initialisation (random init). Each encoder embeds every movie
(``vseg embed``; BaSSL's own evaluation view for BaSSL checkpoints); then

- SCRL's BiLSTM protocol (``vseg segment``, the demo's settings: ``segment/cpu_tiny`` with the paper's 200-epoch
  schedule, standardised features, windows of 20 shots), scored on the test movies: SCRL's per-movie AP and F1, mIoU;
- BaSSL's protocol (``vseg segment bassl``, ``segment_bassl/cpu_tiny``), from the pre-trained CRN for BaSSL (and its
  random-init CRN for random init) and from a fresh CRN for SCRL's features: BaSSL's pooled AP and F1, mIoU.

Pre-training is shortened by ``--epochs`` and ``--steps`` (steps per epoch), so the numbers compare methods at equal
(small) compute, not the methods at convergence. Prints one JSON object.

    python benchmarks/bassl_vs_scrl.py [--movies 12] [--epochs 2] [--steps 30] [--segment-epochs 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vseg import ui
from vseg.config import BasslSegmentConfig, EmbedConfig, PuzzlesConfig, load_config
from vseg.demo import stage_configs
from vseg.eval.bassl_segment import run_bassl_segment
from vseg.eval.embed import run_embed
from vseg.eval.segment import run_segment
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth
from vseg.presets import preset
from vseg.runtime import init_distributed
from vseg.train.methods.bassl import BasslConfig, BasslMethod
from vseg.train.methods.scrl import ScrlConfig, ScrlMethod
from vseg.train.trainer import pretrain


def pretrained(out: Path, root: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Checkpoints of SCRL, BaSSL and BaSSL at initialisation."""
    short = [f"train.epochs={args.epochs}", f"train.steps_per_epoch={args.steps}", "train.workers=1"]
    make_puzzles(root / "240P", out / "puzzles", PuzzlesConfig(split="train", split_file=None))
    scrl = load_config(ScrlConfig, preset("scrl/cpu_tiny"), short, {"data.root": str(out / "puzzles")})
    bassl = load_config(BasslConfig, preset("bassl/cpu_tiny"), short, {"data.root": str(root)})
    checkpoints = {
        "scrl": pretrain(ScrlMethod(scrl), out / "scrl", resume="auto").checkpoint,
        "bassl": pretrain(BasslMethod(bassl), out / "bassl", resume="auto").checkpoint,
    }
    torch.manual_seed(0)
    model = BasslMethod(bassl).build_model(init_distributed("cpu"), bassl.train.batch_size)
    checkpoints["random init"] = out / "bassl_init.ckpt"
    torch.save({"state_dict": model.state_dict()}, checkpoints["random init"])  # BaSSL's Lightning layout
    return checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movies", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--segment-epochs", type=int, default=200, help="BiLSTM epochs (the demo: 200)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ui.settings.quiet = True
    started = time.perf_counter()
    out = args.out or Path(tempfile.mkdtemp(prefix="vseg-bench-bassl-scrl-"))
    root = out / "movienet"
    epochs = args.segment_epochs  # the demo's schedule, shortened: select from half way, lr steps at 80 and 90 %
    shorter = [f"segment.train.epochs={epochs}", f"segment.train.val_from={epochs // 2}",
               f"segment.optim.milestones=[{int(0.8 * epochs)},{int(0.9 * epochs)}]"]  # fmt: skip
    configs = stage_configs([f"synth.movies={args.movies}", *shorter])  # the demo's synthetic set and BiLSTM
    make_synth(root, configs["synth"])
    checkpoints = pretrained(out, root, args)
    bilstm = configs["segment"]
    bassl_protocol = load_config(BasslSegmentConfig, preset("segment_bassl/cpu_tiny"))
    results: dict = {"movies": args.movies, "pretrain_epochs": args.epochs, "steps_per_epoch": args.steps,
                     "segment_epochs": epochs, "rows": {}}  # fmt: skip
    for name, checkpoint in checkpoints.items():
        size = 64 if name == "scrl" else 48  # the size each cpu_tiny trains at
        embedded = out / "embeddings" / name.replace(" ", "_")
        run_embed(checkpoint, root, embedded, EmbedConfig(image_size=size, workers=1))
        files = [embedded / f"{split}.npz" for split in ("train", "val", "test")]
        test = run_segment(*files, out / "segment" / name.replace(" ", "_"), bilstm, None).test
        init = None if name == "scrl" else checkpoint
        fine = run_bassl_segment(files[0], files[2], out / "segment_bassl" / name.replace(" ", "_"), bassl_protocol,
                                 init, files[1]).scores["test"]  # fmt: skip
        results["rows"][name] = {
            "bilstm": {"AP": 100 * test.ap_movie, "F1": 100 * test.f1_movie, "mIoU": 100 * test.miou},
            "bassl_protocol": {key: fine[key] for key in ("AP", "F1", "mIoU")},
        }
        print(name, json.dumps(results["rows"][name]), flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
