"""How hard are the synthetic scenes for features that learned nothing?

For every shot of every synthetic movie, find its most similar other shot of the same movie (cosine
similarity of centred features) and check whether it is from the same scene. Two untrained features:

- a random-init torchvision ResNet-18 (no weights loaded), averaged over the shot's 3 keyframes;
- a 16-bin RGB colour histogram of the 3 keyframes.

A good synthetic set leaves both well above chance (scenes are visible in the pixels) and well below
100% (a trained encoder has something to learn). Chance is 1 / (scenes per movie).

    python benchmarks/synth_difficulty.py [--movies 4] [--shots-per-movie 120] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from vseg.config import SynthConfig
from vseg.data.augment import IMAGENET_MEAN, IMAGENET_STD
from vseg.eval.probe import same_scene_precision
from vseg.prep.synth import make_synth

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movies", type=int, default=4)
    parser.add_argument("--shots-per-movie", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="vseg-synth-difficulty-"))
    make_synth(root, SynthConfig(movies=args.movies, shots_per_movie=args.shots_per_movie, seed=args.seed))
    truth = json.loads((root / "meta" / "synth.json").read_text())["movies"]
    torch.manual_seed(0)
    network = torchvision.models.resnet18()
    network.fc = torch.nn.Identity()
    network.eval()
    rates: dict[str, list[float]] = {"random-init ResNet-18": [], "colour histogram": []}
    scenes_per_movie = []
    for imdb, movie in truth.items():
        scene = np.concatenate([[i] * (last - first + 1) for i, (first, last) in enumerate(movie["scenes"])])
        scenes_per_movie.append(len(movie["scenes"]))
        shots = [
            [Image.open(root / "240P" / imdb / f"shot_{s:04d}_img_{j}.jpg").convert("RGB") for j in range(3)]
            for s in range(len(scene))
        ]
        with torch.no_grad():
            batch = torch.stack(
                [
                    (torchvision.transforms.functional.to_tensor(frame.resize((224, 126))) - MEAN) / STD
                    for shot in shots
                    for frame in shot
                ]
            )
            deep = network(batch).view(len(shots), 3, -1).mean(1).numpy()
        histogram = np.stack(
            [
                np.concatenate([np.histogram(np.asarray(f)[..., c], 16, (0, 256))[0] for f in shot for c in range(3)])
                for shot in shots
            ]
        ).astype(np.float64)
        rates["random-init ResNet-18"].append(same_scene_precision(deep, scene))
        rates["colour histogram"].append(same_scene_precision(histogram, scene))
    print(f"{args.movies} synthetic movies x {args.shots_per_movie} shots, seed {args.seed}")
    print(f"chance: {1 / np.mean(scenes_per_movie):.3f}")
    for name, values in rates.items():
        print(f"nearest other shot is from the same scene, {name}: {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
