"""Colour-histogram shot features: what ``vseg scenes`` uses when no encoder checkpoint is given.

A keyframe is scaled to at most 128 px wide, converted to HSV (Pillow's 8-bit H, S, V) and counted in a joint
histogram of 8 hue x 4 saturation x 4 value bins (128 bins), normalised to sum 1. A shot's histogram is the mean of
its keyframes' (3: first, middle, last frame), and its feature is the element-wise square root, so that the cosine
similarity of two features is the Bhattacharyya coefficient of their histograms (1 for equal colour distributions,
0 for disjoint ones). Colour alone tells scenes in different places and light apart, not scenes in one place.
``vseg scenes`` takes the histograms of the decoded keyframes in memory (:func:`image_histogram`), before they are
written as JPEG files, if they are written at all; :func:`histogram_features` reads keyframe files.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vseg.io.images import load_rgb
from vseg.io.movienet import MovieKeyframes

BINS = (8, 4, 4)  # hue, saturation, value
FEATURE_DIM = int(np.prod(BINS))  # 128
MAX_WIDTH = 128


def keyframe_histogram(path) -> np.ndarray:
    """The normalised 128-bin HSV histogram of one image file."""
    return image_histogram(load_rgb(path))


def image_histogram(image: Image.Image) -> np.ndarray:
    """The normalised 128-bin HSV histogram of one RGB image (see the module docstring)."""
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, max(1, round(image.height * MAX_WIDTH / image.width))))
    hsv = np.asarray(image.convert("HSV"), dtype=np.int64).reshape(-1, 3)
    bins = np.asarray(BINS)
    cells = hsv * bins // 256  # bin of each channel
    flat = (cells[:, 0] * bins[1] + cells[:, 1]) * bins[2] + cells[:, 2]
    counts = np.bincount(flat, minlength=FEATURE_DIM).astype(np.float64)
    return counts / counts.sum()


def histogram_features(movie: MovieKeyframes, num_shots: int | None = None) -> np.ndarray:
    """``num_shots x 128`` float32 features of a movie's shots (see the module docstring)."""
    shots = movie.num_shots if num_shots is None else num_shots
    features = [np.mean([keyframe_histogram(p) for p in movie.shot_paths(shot)], axis=0) for shot in range(shots)]
    return histogram_feature_matrix(features)


def histogram_feature_matrix(shot_histograms) -> np.ndarray:
    """Shots' mean keyframe histograms -> their ``N x 128`` float32 features (the element-wise square root)."""
    return np.sqrt(np.asarray(shot_histograms, dtype=np.float64).reshape(-1, FEATURE_DIM)).astype(np.float32)
