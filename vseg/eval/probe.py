"""A training-free probe of a shot encoder: are a shot's nearest neighbours from its own scene?

For every shot of a movie, take the ``k`` most similar *other* shots of the same movie (cosine similarity of the
movie-centred features) and count how many share its scene; average over shots, then over movies. Chance is about
1 / (scenes per movie). It needs scene labels only for scoring, so it compares encoders (random init, pre-trained)
without training anything on top, as the k-NN monitors of self-supervised learning do (Wu et al., 2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vseg.data.shots import MovieShots
from vseg.eval.embed import iter_features
from vseg.io.movienet import MovieNetLayout, index_movie, read_labels
from vseg.models.encoder import ShotEncoder


def scene_ids(labels: np.ndarray) -> np.ndarray:
    """Per-shot scene index from boundary labels (label i = 1: shot i ends its scene); one more shot than labels."""
    return np.concatenate([[0], np.cumsum(np.asarray(labels) != 0)]).astype(np.int64)


def same_scene_precision(features: np.ndarray, scenes: np.ndarray, k: int = 1) -> float:
    """Mean share of each shot's ``k`` nearest other shots (cosine, after centring) that are in its scene."""
    x = features - features.mean(0, keepdims=True)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(scenes) - 1)
    neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return float((scenes[neighbours] == scenes[:, None]).mean())


def encode_movie(
    encoder: ShotEncoder,
    shots: Sequence[torch.Tensor] | MovieShots,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """The pooled backbone features (before the head) of every shot of a movie, in eval mode: ``shots x D``."""
    return np.concatenate(list(iter_features(encoder, shots, batch_size, device=torch.device(device))))


def scene_probe(
    encoders: Sequence[ShotEncoder],
    root: Path,
    movies: Sequence[str],
    image_size: int = 224,
    k: int = 1,
    device: str | torch.device = "cpu",
) -> list[float]:
    """:func:`same_scene_precision` of each encoder, averaged over ``movies`` of a MovieNet-layout ``root`` (keyframes
    and labels). Each movie's keyframes are decoded once and given to every encoder (random inits beside a trained
    one)."""
    layout = MovieNetLayout(Path(root))
    scores = np.zeros((len(movies), len(encoders)))
    for m, movie in enumerate(movies):
        scenes = scene_ids(read_labels(layout.label_file(movie)))
        shots = MovieShots(index_movie(layout.keyframes / movie), image_size, num_shots=len(scenes))
        decoded = [shots[i] for i in range(len(shots))]
        for e, encoder in enumerate(encoders):
            scores[m, e] = same_scene_precision(encode_movie(encoder, decoded, device=device), scenes, k)
    return scores.mean(0).tolist()
