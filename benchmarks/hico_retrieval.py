"""Has a HiCo backbone learned VCL's invariance? Same-video retrieval on held-out untrimmed videos, against random
init (issue 28).

For every video of a held-out ``vseg prep clips`` root, ``--samples`` draws of HiCo's VCL pair (2 clips of the
video whose centres are at most ``max_dis`` apart, at the end of training's distance, each with its own crop, colour
jitter, grayscale and flip as ``hico/cpu_tiny`` draws them; ``--set`` changes the augmentation). Each clip's
feature is the backbone's pooled 1024-d output in eval mode, standardised per dimension over all clips (the
projection heads' BatchNorm sees the same; without it a random-init S3D-G's features differ only in the 17th
digit). The score is the share of clips whose nearest other clip (cosine, after centring:
:func:`vseg.eval.probe.same_scene_precision`, k = 1) is the other clip of its pair; chance is 1 / (clips - 1).
Colour cannot give the answer when the videos are black and white (``synth_video``'s ``colours``) or when the
jitter is drawn per clip.

    python benchmarks/hico_retrieval.py HELD_OUT_CLIP_ROOT CHECKPOINT... [--random 0 1 2] [--samples 3]
        [--set data.jitter_p=0 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vseg.config import load_config
from vseg.data.untrimmed import UntrimmedClips
from vseg.eval.clip_embed import load_clip_encoder
from vseg.eval.probe import same_scene_precision
from vseg.io.cliplist import read_training_list
from vseg.models.s3dg import S3DG
from vseg.presets import preset
from vseg.train.methods.hico import HicoConfig, clip_sampling, hico_view


def held_out_pairs(root: Path, overrides: list[str], samples: int, seed: int = 7) -> tuple[torch.Tensor, np.ndarray]:
    """``2 * videos * samples`` augmented clips and the pair index of each."""
    pair_only = ["data.clips_per_video=2", "data.topical=false"]
    config = load_config(HicoConfig, preset("hico/cpu_tiny"), [*pair_only, *overrides])
    videos = read_training_list(root / "training.txt")
    dataset = UntrimmedClips(videos, root / "training", clip_sampling(config.data), hico_view(config.data), seed)
    clips = [dataset[(draw, index, 1.0)] for draw in range(samples) for index in range(len(videos))]
    return torch.cat(clips), np.repeat(np.arange(len(clips)), 2)


def retrieval(backbone: torch.nn.Module, clips: torch.Tensor, pairs: np.ndarray) -> float:
    """The same-pair nearest-neighbour score of the backbone's standardised eval-mode features."""
    with torch.no_grad():
        features = backbone.eval()(clips).double().numpy()
    features = (features - features.mean(0)) / (features.std(0) + 1e-30)
    return same_scene_precision(features, pairs, k=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="held-out output of vseg prep clips")
    parser.add_argument("checkpoints", type=Path, nargs="*", help="vseg pretrain hico checkpoints")
    parser.add_argument("--random", type=int, nargs="*", default=[0, 1, 2], help="random-init S3D-G seeds")
    parser.add_argument("--samples", type=int, default=3, help="VCL pairs drawn per video")
    parser.add_argument("--set", nargs="*", default=[], help="overrides of hico/cpu_tiny (the augmentation)")
    args = parser.parse_args()
    clips, pairs = held_out_pairs(args.root, args.set, args.samples)
    print(f"{len(clips)} clips, chance {1 / (len(clips) - 1):.3f}")
    for path in args.checkpoints:
        print(f"{path}: {retrieval(load_clip_encoder(path).encoder.backbone, clips, pairs):.3f}")
    for seed in args.random:
        torch.manual_seed(seed)
        print(f"random init, seed {seed}: {retrieval(S3DG(), clips, pairs):.3f}")


if __name__ == "__main__":
    main()
