"""A training-free scene-boundary scorer: how much the shots before a cut differ from the shots after it.

For shot features ``f`` (each scaled to unit length) and a window of ``w`` shots, the change after shot ``i`` is

    d_i = 1 - cos(mean(f[i-w+1 .. i]), mean(f[i+1 .. i+w]))          (windows cut short at the ends)

the cosine distance between the average shot before and after the cut, the windowed similarity that BaSSL and
ShotCoL use to find pseudo-boundaries. Inside a scene both sides show the same place and people and d is small; at a
scene boundary it peaks. What counts as large depends on the features (an encoder's or colour histograms) and on the
video, so d is measured against its own video: the robust z-score ``z_i = (d_i - median(d)) / (1.4826 MAD(d))``
(MAD: the median absolute deviation; 1.4826 MAD is the standard deviation for normal data), and the boundary
probability is ``p_i = sigmoid(z_i - offset)``: 0.5 at ``offset`` robust standard deviations above the median change.
Above ``p = sigmoid(10)`` (0.99995) the logit ``x = z_i - offset`` is compressed to ``10 + log(1 + x - 10)``, so that
``p`` never rounds to 1 and a stronger change always scores higher (otherwise, with clean features, a boundary and
the cuts next to it all score exactly 1.0 and the strongest-first choice of boundaries cannot tell them apart).
The last shot ends the video, not a scene: its probability is 0.
"""

from __future__ import annotations

import numpy as np

MAD_TO_STD = 1.4826
MIN_SPREAD = 1e-6
LOGIT_KNEE = 10.0  # logits above this grow logarithmically: sigmoid stays below 1 and keeps the changes' order


def window_change(features: np.ndarray, window: int) -> np.ndarray:
    """``d``: the cosine distance between the mean unit feature of the ``window`` shots before and after each cut
    (``N - 1`` values for ``N`` shots)."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    cumulative = np.concatenate([np.zeros((1, unit.shape[1])), np.cumsum(unit, axis=0)])
    count = len(unit)
    ends = np.arange(1, count)  # a cut before shot i: left = [i - w, i), right = [i, i + w)
    left = cumulative[ends] - cumulative[np.maximum(ends - window, 0)]
    right = cumulative[np.minimum(ends + window, count)] - cumulative[ends]
    cosine = np.sum(left * right, axis=1) / np.maximum(
        np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1), 1e-12
    )
    return 1.0 - cosine


def boundary_probabilities(features: np.ndarray, window: int = 2, offset: float = 1.5) -> np.ndarray:
    """``p``: the probability that each shot ends a scene (see the module docstring); ``N`` values, the last 0."""
    features = np.asarray(features, dtype=np.float64)
    prob = np.zeros(len(features))
    if len(features) < 2:
        return prob
    change = window_change(features, window)
    median = np.median(change)
    spread = max(MAD_TO_STD * np.median(np.abs(change - median)), MIN_SPREAD)
    logit = (change - median) / spread - offset
    logit = np.where(logit > LOGIT_KNEE, LOGIT_KNEE + np.log1p(np.maximum(logit - LOGIT_KNEE, 0.0)), logit)
    prob[:-1] = 1.0 / (1.0 + np.exp(-logit))
    return prob
