"""Optimal Sequential Grouping (OSG): a video's scenes as the best split of its shot sequence into contiguous groups.

Rotman, Porat, Ashour, Barzelay: "Optimal Sequential Grouping for Robust Video Scene Detection Using Multiple
Modalities" (International Journal of Semantic Computing, 2017) and "Robust video scene detection using multimodal
fusion of optimally grouped features" (MMSP 2017, published 2018); the normalised cost is from Rotman et al.,
"Optimally Grouped Deep Features Using Normalized Cost for Video Scene Detection" (ICMR 2018).

Shots ``1..N`` have features; ``D`` is their pairwise distance matrix (:func:`distance_matrix`): by default the
cosine distance ``1 - cos`` of the features after subtracting the video's mean feature, so that it works alike on any
feature (colour histograms and ReLU embeddings, whose raw cosines all lie near 1, spread over ``[0, 2]``); as the
public OSG code computes it, the Euclidean distance or ``(1 - cos) / 2`` of the raw features. A split into ``K`` scenes is a sequence of
blocks along the diagonal of ``D``; block ``k`` holds ``D_k``, the sum of the distances inside it, and has area
``A_k = n_k^2`` for its ``n_k`` shots. The normalised cost (ICMR 2018, eq. 4) is

    H_nrm = sum_k D_k / sum_k A_k,

the mean distance between two shots of one scene. The additive cost of the 2016/2017 papers, ``H_add = sum_k D_k``,
is optimised exactly by dynamic programming over the last block (eq. 3 of the 2017 paper):
``C_k(b) = min_a C_{k-1}(a) + D(a, b)`` (``cost="additive"``). The ratio is not additive; the ICMR 2018 DP adds the
area accumulated so far as a table dimension (polynomial, about ``O(K N^4)`` in the public implementation,
ivi-ru/video-scene-detection's ``h_nrm.py``). Here it is optimised exactly by Dinkelbach's method
(Dinkelbach 1967, "On nonlinear fractional programming"): for ``lambda`` the cost of the current split, the additive
DP of ``sum_k (D_k - lambda A_k)`` gives a split of lower ratio, until ``lambda`` stops falling (a few rounds).

The number of scenes, two ways (``scene_count``):

- ``cost_curve`` (vseg's): ``H_nrm(K)`` of the best additive split for every ``K`` falls fast while merged scenes
  are still being separated, then flattens at the mean distance inside a scene. ``K`` is the elbow, the point of the
  curve (both axes scaled to [0, 1]) farthest below the chord from ``K = 1`` to the largest ``K``.
- ``singular_values`` (the 2016/2017 papers): the log-elbow of the singular values of ``D``
  (:func:`singular_value_elbow`, as the public LearnableOSG code computes it).

Scene sizes: every scene has between ``min_shots`` and ``max_shots`` shots (the DP looks back at most ``max_shots``
shots, which bounds its time and memory to ``O(K N max_shots)`` and ``O(N max_shots)``); the papers bound neither
(``min_shots=1, max_shots=None``).

Multimodal fusion (the 2017 papers): :func:`multimodal_grouping` splits the shots by several feature sets at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

MAX_DINKELBACH_ROUNDS = 50
Distance = Literal["centred_cosine", "cosine", "euclidean"]
Cost = Literal["normalised", "additive"]
SceneCount = Literal["cost_curve", "singular_values"]
Fusion = Literal["average", "min", "max"]


@dataclass
class OsgResult:
    """The scenes OSG found: ``boundaries`` are the shots that end a scene (the last shot excluded)."""

    boundaries: list[int]
    scenes: int
    cost: float  # the split's H_nrm, or H_add with the additive cost (multimodal: the modalities' H_add summed)
    curve: np.ndarray  # H_nrm(K) of the best additive split, K = 1, 2, ... (NaN where K is impossible; empty if unused)


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


def distance_matrix(features: np.ndarray, kind: Distance = "centred_cosine") -> np.ndarray:
    """``D`` between every two shots' features, with a zero diagonal:

    - ``centred_cosine``: ``1 - cos`` after subtracting the video's mean feature (vseg's default);
    - ``cosine``: ``(1 - cos) / 2`` of the raw features, the cosine of the public OSG code (LearnableOSG's
      ``DFromX``, with its ``1e-8`` in the denominator);
    - ``euclidean``: ``||x_i - x_j||`` of the raw features, the public code's default.
    """
    x = np.asarray(features, dtype=np.float64)
    if kind == "euclidean":
        squares = (x * x).sum(axis=1)
        distances = np.sqrt(np.maximum(squares[:, None] + squares[None, :] - 2.0 * x @ x.T, 0.0))
    elif kind == "cosine":
        gram = x @ x.T
        norms = np.sqrt(np.diag(gram))
        distances = (1.0 - gram / (norms[:, None] * norms[None, :] + 1e-8)) / 2.0
    elif kind == "centred_cosine":
        centred = x - x.mean(axis=0)
        unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)
        distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    else:
        raise ValueError(f"distance must be centred_cosine, cosine or euclidean, got {kind!r}")
    np.fill_diagonal(distances, 0.0)
    return distances


def singular_value_elbow(distances: np.ndarray) -> int:
    """The number of scenes of Rotman et al. (2016, 2017): the elbow of the log singular values of ``D``, as the
    public LearnableOSG code (``estimate_num_scenes``) computes it: the singular values of ``D / max(D)`` above 1, their
    logs against their rank (unscaled), the point farthest from the chord between the first and the last, + 1. One
    scene when fewer than two singular values are above 1."""
    top = float(np.max(distances)) if np.size(distances) else 0.0
    if top <= 0:
        return 1
    singular = np.linalg.svd(np.asarray(distances, dtype=np.float64) / top, compute_uv=False)
    graph = np.log(singular[singular > 1])
    if len(graph) < 2:
        return 1
    points = np.stack([np.arange(len(graph), dtype=np.float64), graph - graph[0]], axis=1)
    chord = points[-1] / np.linalg.norm(points[-1])
    gaps = np.linalg.norm(points - (points @ chord)[:, None] * chord[None, :], axis=1)
    return int(np.argmax(gaps)) + 1


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
    features: np.ndarray,
    min_shots: int = 1,
    max_shots: int | None = 200,
    scenes: int | None = None,
    distance: Distance = "centred_cosine",
    cost: Cost = "normalised",
    scene_count: SceneCount = "cost_curve",
) -> OsgResult:
    """Split the shots with these features into scenes: :func:`group_shots` of their :func:`distance_matrix`."""
    features = np.asarray(features, dtype=np.float64)
    if len(features) == 0:
        raise ValueError("no shots to group")
    return group_shots(distance_matrix(features, distance), min_shots, max_shots, scenes, cost, scene_count)


def group_shots(
    distances: np.ndarray,
    min_shots: int = 1,
    max_shots: int | None = 200,
    scenes: int | None = None,
    cost: Cost = "normalised",
    scene_count: SceneCount = "cost_curve",
) -> OsgResult:
    """Split the shots into scenes by OSG over their symmetric distance matrix (see the module docstring), minimising
    ``cost`` (``normalised``: H_nrm, ICMR 2018; ``additive``: H_add, 2016/2017); ``scenes`` fixes the number of
    scenes, else ``scene_count`` estimates it (the elbow of the cost curve, or of ``D``'s log singular values). Every
    scene has ``min_shots .. max_shots`` shots (as far as the video's length allows; ``max_shots=None``: no bound)."""
    if cost not in ("normalised", "additive"):
        raise ValueError(f"cost must be normalised or additive, got {cost!r}")
    if scene_count not in ("cost_curve", "singular_values"):
        raise ValueError(f"scene_count must be cost_curve or singular_values, got {scene_count!r}")
    count = len(distances)
    min_shots = max(1, min(min_shots, count))
    max_shots = max(min_shots, min(count if max_shots is None else max_shots, count))
    most = count // min_shots  # the most scenes of at least min_shots shots
    fewest = -(-count // max_shots)
    if scenes is None and scene_count == "singular_values":
        scenes = singular_value_elbow(distances)
    if scenes is not None:
        scenes = min(max(scenes, fewest), most)
    sums = block_sums(np.asarray(distances, dtype=np.float64), max_shots)
    additive, lengths = _additive_dp(sums, 0.0, most if scenes is None else scenes, min_shots, max_shots)
    curve = np.full(len(additive), np.nan)
    for k in np.flatnonzero(np.isfinite(additive)):
        curve[k] = normalised_cost(sums, _backtrack(lengths, k + 1))
    if not np.isfinite(curve).any():
        raise ValueError(f"{count} shots cannot be split into scenes of {min_shots} to {max_shots} shots")
    if scenes is None:
        scenes = elbow(curve)
    boundaries = _backtrack(lengths, scenes)
    if cost == "additive":
        return OsgResult(boundaries, scenes, float(additive[scenes - 1]), curve)
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


def full_block_sums(distances: np.ndarray) -> np.ndarray:
    """``S[i, j]``: the sum of ``D`` over the block of shots ``i .. j`` (``i <= j``; 0 below the diagonal), the
    ``D_sum`` of the public OSG code (its diagonal left out, as there)."""
    inside = np.array(distances, dtype=np.float64)
    np.fill_diagonal(inside, 0.0)
    count = len(inside)
    prefix = np.zeros((count + 1, count + 1))
    prefix[1:, 1:] = np.cumsum(np.cumsum(inside, axis=0), axis=1)
    i, j = np.arange(count)[:, None], np.arange(count)[None, :] + 1
    sums = prefix[j, j] - prefix[i, j] - prefix[j, i] + prefix[i, i]
    return np.where(j > i, sums, 0.0)


def _zscores(rows: np.ndarray) -> np.ndarray:
    """Each row standardised over its finite entries (population std; a row of equal values gives 0s)."""
    finite = np.isfinite(rows)
    values = np.where(finite, rows, np.nan)
    mean = np.nanmean(values, axis=1, keepdims=True)
    std = np.nanstd(values, axis=1, keepdims=True)
    return np.where(finite, (values - mean) / np.where(std > 0, std, 1.0), np.nan)


def fused_grouping(distances: Sequence[np.ndarray], scenes: int, fusion: Fusion = "average") -> list[int]:
    """Multimodal OSG (Rotman et al., IJSC 2017, as the public LearnableOSG code's ``blockDivide2DSum`` does it, for
    any number of modalities): the additive DP of each modality runs side by side over the suffixes of the shot
    sequence; at every step the candidate costs of each modality are z-scored over the candidates and fused by
    ``average`` (their sum), ``min`` or ``max``, and the best fused candidate is where the next scene ends. Each
    modality's table keeps its own best cost. Returns the boundaries (last shot of every scene but the last)."""
    if fusion not in ("average", "min", "max"):
        raise ValueError(f"fusion must be average, min or max, got {fusion!r}")
    sums = [full_block_sums(d) for d in distances]
    count = len(sums[0])
    if any(s.shape != (count, count) for s in sums):
        raise ValueError(f"the distance matrices differ in size: {[s.shape for s in sums]}")
    scenes = max(1, min(scenes, count))
    costs = [np.zeros((count, scenes)) for _ in sums]
    ends = np.zeros((count, scenes), dtype=np.int64)
    for cost, block in zip(costs, sums, strict=True):
        cost[:, 0] = block[:, count - 1]
    ends[:, 0] = count - 1
    starts, last = np.arange(count)[:, None], np.arange(count)[None, :]
    for k in range(1, scenes):
        rows = count - k  # suffixes that still hold k + 1 scenes
        valid = (last[:, : count - k] >= starts[:rows]) & (last[:, : count - k] <= count - k - 1)
        candidates = []
        for cost, block in zip(costs, sums, strict=True):
            follow = np.concatenate([cost[1:, k - 1], [np.inf]])[: count - k]
            table = np.where(valid, block[:rows, : count - k] + follow[None, :], np.inf)
            cost[:rows, k] = table.min(axis=1)
            candidates.append(_zscores(table))
        stacked = np.stack(candidates)
        fused = {"average": np.sum, "min": np.min, "max": np.max}[fusion](stacked, axis=0)
        best = np.argmin(np.where(np.isnan(fused), np.inf, fused), axis=1)
        single = valid.sum(axis=1) < 2
        ends[:rows, k] = np.where(single, np.arange(rows), best)
    boundaries, previous = [], -1
    for k in range(scenes - 1, -1, -1):
        previous = int(ends[previous + 1, k])
        boundaries.append(previous)
    return boundaries[:-1]


def multimodal_grouping(
    features: Sequence[np.ndarray],
    scenes: int | None = None,
    fusion: Fusion = "average",
    distance: Distance = "euclidean",
) -> OsgResult:
    """Scenes from two or more feature sets of the same shots (e.g. visual and audio), by :func:`fused_grouping` over
    each set's :func:`distance_matrix`. ``scenes`` unset: the :func:`singular_value_elbow` of the modalities' mean
    ``D / max(D)`` (the papers' code takes the number as given; this estimate is vseg's). ``cost``: the modalities'
    H_add of the split, summed."""
    matrices = [distance_matrix(f, distance) for f in features]
    if len(matrices) < 2:
        raise ValueError(f"multimodal grouping needs two or more feature sets, got {len(matrices)}")
    counts = {len(m) for m in matrices}
    if len(counts) > 1 or 0 in counts:
        raise ValueError(f"the feature sets must describe the same shots, got {sorted(len(m) for m in matrices)} rows")
    if scenes is None:
        scenes = singular_value_elbow(np.mean([m / max(float(m.max()), 1e-12) for m in matrices], axis=0))
    boundaries = fused_grouping(matrices, scenes, fusion)
    ends = np.asarray([*(b + 1 for b in boundaries), len(matrices[0])])
    sizes = np.diff(ends, prepend=0)
    total = sum(float(block_sums(m, int(sizes.max()))[ends, sizes].sum()) for m in matrices)
    return OsgResult(boundaries, len(boundaries) + 1, total, np.zeros(0))
