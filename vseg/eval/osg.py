"""Optimal Sequential Grouping (OSG): a video's scenes as the best split of its shot sequence into contiguous groups.

Rotman, Porat, Ashour, Barzelay: "Optimal Sequential Grouping for Robust Video Scene Detection Using Multiple
Modalities" (International Journal of Semantic Computing, 2017) and "Robust video scene detection using multimodal
fusion of optimally grouped features" (MMSP 2017, published 2018); the normalised cost is from Rotman et al.,
"Optimally Grouped Deep Features Using Normalized Cost for Video Scene Detection" (ICMR 2018).

Shots ``1..N`` have features; ``D`` is their pairwise distance matrix (here the cosine distance ``1 - cos`` of the
features after subtracting the video's mean feature, so that it works alike on any feature: colour histograms and
ReLU embeddings, whose raw cosines all lie near 1, spread over ``[0, 2]``). A split into ``K`` scenes is a sequence of
blocks along the diagonal of ``D``; block ``k`` holds ``D_k``, the sum of the distances inside it, and has area
``A_k = n_k^2`` for its ``n_k`` shots. The normalised cost (ICMR 2018, eq. 4) is

    H_nrm = sum_k D_k / sum_k A_k,

the mean distance between two shots of one scene. The additive cost of the 2016/2017 papers, ``H_add = sum_k D_k``,
is optimised exactly by dynamic programming over the last block (eq. 3 of the 2017 paper):
``C_k(b) = min_a C_{k-1}(a) + D(a, b)``. The ratio is not additive; the reference DP adds the area accumulated so far
as a table dimension, which is exponential in practice. Here it is optimised exactly by Dinkelbach's method
(Dinkelbach 1967, "On nonlinear fractional programming"): for ``lambda`` the cost of the current split, the additive
DP of ``sum_k (D_k - lambda A_k)`` gives a split of lower ratio, until ``lambda`` stops falling (a few rounds).

The number of scenes is read off the cost curve: ``H_nrm(K)`` of the best additive split for every ``K`` falls fast
while merged scenes are still being separated, then flattens at the mean distance inside a scene. ``K`` is the elbow,
the point of the curve (both axes scaled to [0, 1]) farthest below the chord from ``K = 1`` to the largest ``K``.

Where vseg differs: every scene has between ``min_shots`` and ``max_shots`` shots (the DP looks back at most
``max_shots`` shots, which bounds its time and memory to ``O(K N max_shots)`` and ``O(N max_shots)``), and the
elbow is of the normalised cost curve, where the 2017 paper takes the log-elbow of ``D``'s singular values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MAX_DINKELBACH_ROUNDS = 50


@dataclass
class OsgResult:
    """The scenes OSG found: ``boundaries`` are the shots that end a scene (the last shot excluded)."""

    boundaries: list[int]
    scenes: int
    cost: float  # H_nrm of the split
    curve: np.ndarray  # H_nrm(K) of the best additive split, K = 1, 2, ... (NaN where K is impossible)


def assemble_chunks(chunks: Iterable[tuple[int, np.ndarray]], count: int) -> np.ndarray:
    """The ``count x d`` feature matrix from ``(first shot, features)`` chunks that arrive in any order; raises
    ValueError when chunks overlap, leave a shot out or disagree in width."""
    features: np.ndarray | None = None
    filled = np.zeros(count, dtype=bool)
    for first, chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float64)
        if features is None:
            features = np.zeros((count, chunk.shape[1]))
        if chunk.ndim != 2 or chunk.shape[1] != features.shape[1] or not 0 <= first <= count - len(chunk):
            raise ValueError(f"chunk at shot {first} of shape {chunk.shape} does not fit {count} x {features.shape[1]}")
        if filled[first : first + len(chunk)].any():
            raise ValueError(f"chunk at shot {first} overlaps an earlier chunk")
        features[first : first + len(chunk)] = chunk
        filled[first : first + len(chunk)] = True
    if features is None or not filled.all():
        missing = 0 if features is None else int(np.flatnonzero(~filled)[0])
        raise ValueError(f"no features for shot {missing}")
    return features


def distance_matrix(features: np.ndarray) -> np.ndarray:
    """``D``: the cosine distance between every two shots' features, centred on the video's mean feature."""
    centred = np.asarray(features, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - unit @ unit.T, 0.0, 2.0)


def block_sums(distances: np.ndarray, max_shots: int) -> np.ndarray:
    """``S[b, n]``: the sum of ``D`` over the block of the ``n`` shots that end before shot ``b`` (``b - n .. b-1``),
    for ``n = 0 .. max_shots`` (NaN where the block would start before shot 0). From the 2-D prefix sums of ``D``."""
    count = len(distances)
    prefix = np.zeros((count + 1, count + 1))
    prefix[1:, 1:] = np.cumsum(np.cumsum(distances, axis=0), axis=1)
    ends = np.arange(count + 1)[:, None]
    starts = ends - np.arange(max_shots + 1)[None, :]
    valid = starts >= 0
    a, b = np.where(valid, starts, 0), np.broadcast_to(ends, starts.shape)
    sums = prefix[b, b] - prefix[a, b] - prefix[b, a] + prefix[a, a]
    return np.where(valid, sums, np.nan)


def _additive_dp(
    sums: np.ndarray, lam: float, scenes: int, min_shots: int, max_shots: int
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``sum_k (D_k - lam A_k)`` over splits of the shots into ``1..scenes`` blocks of ``min_shots ..
    max_shots`` shots: ``cost[k - 1]`` is the best cost with ``k`` blocks (inf where impossible) and ``lengths[k - 1,
    b]`` the length of the last block of the best ``k``-block split of the shots before ``b``."""
    count = len(sums) - 1
    sizes = np.arange(min_shots, max_shots + 1)
    weights = sums[:, sizes] - lam * sizes.astype(np.float64) ** 2  # (count + 1, sizes), NaN before shot 0
    weights = np.where(np.isnan(weights), np.inf, weights)
    starts = np.arange(count + 1)[:, None] - sizes[None, :]
    previous = np.full(count + 1, np.inf)
    previous[0] = 0.0
    cost = np.full(scenes, np.inf)
    lengths = np.zeros((scenes, count + 1), dtype=np.int32)
    for k in range(scenes):
        candidates = np.where(starts >= 0, previous[np.maximum(starts, 0)], np.inf) + weights
        best = np.argmin(candidates, axis=1)
        previous = candidates[np.arange(count + 1), best]
        lengths[k] = sizes[best]
        cost[k] = previous[count]
    return cost, lengths


def _backtrack(lengths: np.ndarray, scenes: int) -> list[int]:
    """The boundaries (last shot of every scene but the last) of the best ``scenes``-block split."""
    ends, end = [], lengths.shape[1] - 1
    for k in range(scenes - 1, -1, -1):
        ends.append(end)
        end -= int(lengths[k, end])
    return [e - 1 for e in sorted(ends)[:-1]]


def normalised_cost(sums: np.ndarray, boundaries: list[int]) -> float:
    """``H_nrm`` of the split that ends scenes after ``boundaries``: within-scene distance sum over area sum
    (``sums`` from :func:`block_sums`, wide enough for the longest scene)."""
    ends = np.asarray([*(b + 1 for b in boundaries), len(sums) - 1])
    sizes = np.diff(ends, prepend=0)
    return float(sums[ends, sizes].sum() / (sizes.astype(np.float64) ** 2).sum())


def elbow(curve: np.ndarray) -> int:
    """The ``K`` (1-based) of the point of ``curve`` farthest below the chord from its first to its last finite point,
    both axes scaled to [0, 1]; 1 when the curve has fewer than 3 finite points or does not fall."""
    finite = np.flatnonzero(np.isfinite(curve))
    if len(finite) < 3 or curve[finite[0]] <= curve[finite[-1]]:
        return int(finite[0]) + 1 if len(finite) else 1
    x = (finite - finite[0]) / (finite[-1] - finite[0])
    y = (curve[finite] - curve[finite[-1]]) / (curve[finite[0]] - curve[finite[-1]])
    return int(finite[np.argmax(1.0 - x - y)]) + 1


def optimal_sequential_grouping(
    features: np.ndarray, min_shots: int = 1, max_shots: int = 200, scenes: int | None = None
) -> OsgResult:
    """Split the shots with these features into scenes: :func:`group_shots` of their :func:`distance_matrix`."""
    features = np.asarray(features, dtype=np.float64)
    if len(features) == 0:
        raise ValueError("no shots to group")
    return group_shots(distance_matrix(features), min_shots, max_shots, scenes)


def group_shots(
    distances: np.ndarray, min_shots: int = 1, max_shots: int = 200, scenes: int | None = None
) -> OsgResult:
    """Split the shots into scenes by OSG with the normalised cost over their symmetric distance matrix (see the
    module docstring); ``scenes`` fixes the number of scenes, else it is the elbow of the cost curve. Every scene has
    ``min_shots .. max_shots`` shots (as far as the video's length allows)."""
    count = len(distances)
    min_shots = max(1, min(min_shots, count))
    max_shots = max(min_shots, min(max_shots, count))
    most = count // min_shots  # the most scenes of at least min_shots shots
    fewest = -(-count // max_shots)
    if scenes is not None:
        scenes = min(max(scenes, fewest), most)
    sums = block_sums(np.asarray(distances, dtype=np.float64), max_shots)
    cost, lengths = _additive_dp(sums, 0.0, most if scenes is None else scenes, min_shots, max_shots)
    curve = np.full(len(cost), np.nan)
    for k in np.flatnonzero(np.isfinite(cost)):
        curve[k] = normalised_cost(sums, _backtrack(lengths, k + 1))
    if not np.isfinite(curve).any():
        raise ValueError(f"{count} shots cannot be split into scenes of {min_shots} to {max_shots} shots")
    if scenes is None:
        scenes = elbow(curve)
    boundaries = _backtrack(lengths, scenes)
    ratio = curve[scenes - 1]
    for _ in range(MAX_DINKELBACH_ROUNDS):  # Dinkelbach: each round lowers the ratio until it is optimal
        _, rounds_lengths = _additive_dp(sums, ratio, scenes, min_shots, max_shots)
        candidate = _backtrack(rounds_lengths, scenes)
        lower = normalised_cost(sums, candidate)
        if lower >= ratio - 1e-12:
            break
        boundaries, ratio = candidate, lower
    return OsgResult(boundaries, scenes, float(ratio), curve)


def boundary_indicator(count: int, boundaries: list[int]) -> np.ndarray:
    """``count`` values, 1.0 at the shots that end a scene and 0.0 elsewhere (the form of boundary probabilities)."""
    prob = np.zeros(count)
    prob[list(boundaries)] = 1.0
    return prob
