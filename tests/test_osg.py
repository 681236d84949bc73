"""Optimal Sequential Grouping (vseg.eval.osg): the exact optimum of the normalised cost on hand-built distance
matrices, the number of scenes from the cost curve, and the same scenes whatever the features' scale or the order
their chunks arrive in."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scipy.linalg import hadamard

from vseg.config import ScenesConfig, load_config
from vseg.eval.osg import (
    assemble_chunks,
    block_sums,
    distance_matrix,
    elbow,
    full_block_sums,
    fused_grouping,
    group_shots,
    multimodal_grouping,
    normalised_cost,
    optimal_sequential_grouping,
    singular_value_elbow,
)
from vseg.eval.training_free import training_free_boundaries
from vseg.presets import preset


def _block_distances(sizes: list[int], inside: float, outside: float, noise: float = 0.0, seed: int = 0):
    """A symmetric distance matrix with zero diagonal: ``inside`` between shots of one block, ``outside`` between
    blocks, plus symmetric uniform noise; and the boundaries (last shot of every block but the last)."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    distances = np.where(labels[:, None] == labels[None, :], inside, outside).astype(np.float64)
    noisy = np.random.default_rng(seed).uniform(0, noise, distances.shape)
    distances = distances + (noisy + noisy.T) / 2
    np.fill_diagonal(distances, 0.0)
    return distances, [int(b) for b in np.cumsum(sizes)[:-1] - 1]


def _brute_force(
    distances: np.ndarray, scenes: int, min_shots: int, additive: bool = False
) -> tuple[float, list[int]]:
    """The least normalised (or additive) cost over every split into ``scenes`` blocks of at least ``min_shots``
    shots."""
    count = len(distances)
    best = (np.inf, [])
    for cuts in itertools.combinations(range(count - 1), scenes - 1):
        edges = [0, *(c + 1 for c in cuts), count]
        sizes = np.diff(edges)
        if sizes.min() < min_shots:
            continue
        cost = sum(distances[a:b, a:b].sum() for a, b in zip(edges[:-1], edges[1:]))
        cost = cost if additive else cost / float((sizes**2).sum())
        if cost < best[0] - 1e-12:
            best = (cost, list(cuts))
    return best


def test_hand_built_blocks_are_found_exactly_with_their_number():
    distances, truth = _block_distances([4, 3, 6, 2, 5], inside=0.1, outside=0.9, noise=0.05)
    result = group_shots(distances)
    assert result.scenes == 5
    assert result.boundaries == truth == [3, 6, 12, 14]
    assert result.cost == pytest.approx(normalised_cost(block_sums(distances, 20), truth))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("scenes", "min_shots"), [(2, 1), (3, 1), (4, 2)])
def test_the_normalised_cost_is_minimised_exactly(seed, scenes, min_shots):
    """Dinkelbach's rounds of the additive DP reach the global optimum of the ratio, checked by enumerating every
    split of random symmetric matrices (no block structure to help)."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(11, 3))
    distances = np.linalg.norm(points[:, None] - points[None, :], axis=2)
    result = group_shots(distances, min_shots=min_shots, scenes=scenes)
    cost, cuts = _brute_force(distances, scenes, min_shots)
    assert result.cost == pytest.approx(cost, abs=1e-12)
    assert result.boundaries == cuts


def test_scenes_respect_the_shortest_and_longest_scene():
    distances, _ = _block_distances([1, 9, 1, 9], inside=0.1, outside=0.9)
    result = group_shots(distances, min_shots=3, max_shots=8)
    sizes = np.diff([-1, *result.boundaries, len(distances) - 1])
    assert sizes.min() >= 3 and sizes.max() <= 8 and sizes.sum() == 20


def test_the_elbow_of_a_curve_that_falls_then_flattens():
    curve = np.array([1.0, 0.6, 0.3, 0.12, 0.1, 0.09, 0.085, 0.08, np.nan])
    assert elbow(curve) == 4
    assert elbow(np.array([0.5, 0.5, 0.5])) == 1  # does not fall: one scene
    assert elbow(np.array([0.0])) == 1


def _clustered(seed: int, sizes: list[int], dim: int = 24, noise: float = 0.6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    features = np.concatenate([c + noise * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes)])
    return features, [int(b) for b in np.cumsum(sizes)[:-1] - 1]


@pytest.mark.parametrize("seed", range(3))
def test_any_feature_scale_or_offset_gives_the_same_scenes(seed):
    """Histogram-like features (all positive, raw cosines near 1) and embeddings alike: the distances are taken after
    centring, so scaling the features or adding a constant to them changes nothing."""
    features, truth = _clustered(seed, [5, 8, 4, 7, 6, 5, 9])
    plain = optimal_sequential_grouping(features, min_shots=3)
    assert plain.boundaries == truth
    shifted = optimal_sequential_grouping(7.5 * features + 40.0, min_shots=3)
    assert shifted.boundaries == truth and shifted.scenes == plain.scenes


def test_chunk_order_does_not_change_the_scenes():
    features, truth = _clustered(3, [6, 4, 9, 5, 7, 3, 8])
    chunks = [(start, features[start : start + 5]) for start in range(0, len(features), 5)]
    whole = optimal_sequential_grouping(features, min_shots=3)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(chunks))
        assembled = assemble_chunks([chunks[i] for i in order], len(features))
        assert np.array_equal(assembled, features)
        again = optimal_sequential_grouping(assembled, min_shots=3)
        assert again.boundaries == whole.boundaries == truth
        assert np.array_equal(again.curve, whole.curve, equal_nan=True)


def test_chunks_that_overlap_or_leave_a_gap_are_refused():
    features = np.ones((10, 4))
    with pytest.raises(ValueError, match="overlaps"):
        assemble_chunks([(0, features[:6]), (5, features[5:])], 10)
    with pytest.raises(ValueError, match="no features for shot 6"):
        assemble_chunks([(0, features[:6]), (7, features[7:])], 10)


def test_one_shot_and_too_few_shots():
    assert group_shots(np.zeros((1, 1))).boundaries == []
    assert group_shots(np.zeros((1, 1))).scenes == 1
    assert optimal_sequential_grouping(np.ones((4, 3)), min_shots=3).boundaries == []
    with pytest.raises(ValueError, match="no shots"):
        optimal_sequential_grouping(np.zeros((0, 3)))


# ------------------------------------------------------------------------------------ OSG as the papers publish it


def test_raw_distances_by_hand():
    points = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert distance_matrix(points, "euclidean") == pytest.approx(np.array([[0, 5, 10], [5, 0, 5], [10, 5, 0.0]]))
    axes = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])  # cosines 0, 1/sqrt(2), 1/sqrt(2)
    half = (1 - 1 / np.sqrt(2)) / 2
    expected = np.array([[0, 0.5, half], [0.5, 0, half], [half, half, 0]])
    assert distance_matrix(axes, "cosine") == pytest.approx(expected, abs=1e-8)
    # raw, unlike vseg's centred cosine: an offset changes them
    assert distance_matrix(axes + 5.0, "cosine") != pytest.approx(expected, abs=1e-3)
    assert distance_matrix(axes + 5.0, "centred_cosine") == pytest.approx(distance_matrix(axes, "centred_cosine"))
    with pytest.raises(ValueError, match="distance must be"):
        distance_matrix(axes, "manhattan")


def test_the_singular_value_elbow_by_hand():
    """D = H diag(s) H^T / 16 with H a 16 x 16 Hadamard matrix: its singular values are s and its largest entry is
    its diagonal, sum(s) / 16 = 89.5 / 16, so D / max(D) has singular values 16 s / 89.5: 7.2, 3.6, 1.8, 1.4, 1.1 above
    1. Their logs less the first, log(s / 40) = 0, -0.69, -1.39, -1.61, -1.90, lie farthest from their chord at the
    third (distances 0.20, 0.40, 0.17): 3 scenes."""
    h = hadamard(16).astype(np.float64)
    s = np.array([40.0, 20, 10, 8, 6, *[0.5] * 11])
    distances = h @ np.diag(s) @ h.T / 16
    assert distances.max() == pytest.approx(89.5 / 16)
    assert singular_value_elbow(distances) == 3
    assert singular_value_elbow(7.0 * distances) == 3  # D / max(D): the scale does not matter
    flat = h @ np.diag([40.0, 0.2, *[0.1] * 14]) @ h.T / 16  # one singular value above 1: one scene
    assert singular_value_elbow(flat) == 1
    assert singular_value_elbow(np.zeros((4, 4))) == 1


@pytest.mark.parametrize("seed", range(3))
def test_the_additive_cost_is_minimised_exactly(seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(10, 3))
    distances = np.linalg.norm(points[:, None] - points[None, :], axis=2)
    result = group_shots(distances, scenes=3, cost="additive", max_shots=None)
    cost, cuts = _brute_force(distances, 3, 1, additive=True)
    assert result.cost == pytest.approx(cost, abs=1e-12) and result.boundaries == cuts


def test_additive_and_normalised_costs_split_differently():
    """Five shots on a line at 0, 0, 1, 3, 10 (Euclidean distances), two scenes. After shot 2, {0, 0, 1} | {3, 10}:
    H_add = 2 (0 + 1 + 1) + 2 * 7 = 18, H_nrm = 18 / (9 + 4) = 1.385. After shot 3, {0, 0, 1, 3} | {10}: H_add = 2 (0
    + 1 + 3 + 1 + 3 + 2) = 20, H_nrm = 20 / (16 + 1) = 1.176. The additive cost cuts after 2, the normalised after 3."""
    distances = distance_matrix(np.array([[0.0], [0.0], [1.0], [3.0], [10.0]]), "euclidean")
    additive = group_shots(distances, scenes=2, cost="additive", max_shots=None)
    normalised = group_shots(distances, scenes=2, max_shots=None)
    assert (additive.boundaries, additive.cost) == ([2], pytest.approx(18.0))
    assert (normalised.boundaries, normalised.cost) == ([3], pytest.approx(20 / 17))


def test_no_minimum_scene_length_as_the_papers():
    distances, truth = _block_distances([1, 5, 1, 6], inside=0.1, outside=0.9)
    assert group_shots(distances, min_shots=1, max_shots=None, scenes=4, cost="additive").boundaries == truth
    assert group_shots(distances, min_shots=3, scenes=4).boundaries != truth


def _reference_fused(matrices, scenes, metric):
    """The public code's multimodal DP (LearnableOSG ``blockDivide2DSum``) written out loop by loop, for any number
    of modalities: suffix costs per modality, z-scored candidate costs fused, the first best candidate."""
    count = len(matrices[0])
    sums = [full_block_sums(m) for m in matrices]
    costs = [np.zeros((count, scenes)) for _ in matrices]
    ends = np.zeros((count, scenes), dtype=int)
    for cost, block in zip(costs, sums):
        cost[:, 0] = block[:, count - 1]
    ends[:, 0] = count - 1
    for k in range(1, scenes):
        for n in range(count - k):
            tables = [block[n, n : count - k] + cost[n + 1 : count - k + 1, k - 1] for cost, block in zip(costs, sums)]
            for cost, table in zip(costs, tables):
                cost[n, k] = table.min()
            if len(tables[0]) < 2:
                ends[n, k] = n
                continue
            z = np.stack([(t - t.mean()) / t.std() for t in tables])
            fused = {"average": z.sum(0), "min": z.min(0), "max": z.max(0)}[metric]
            ends[n, k] = int(np.argmin(fused)) + n
    boundaries, previous = [], -1
    for k in range(scenes - 1, -1, -1):
        previous = ends[previous + 1, k]
        boundaries.append(int(previous))
    return boundaries[:-1]


@pytest.mark.parametrize("fusion", ["average", "min", "max"])
def test_multimodal_fusion_as_the_public_code(fusion):
    rng = np.random.default_rng(7)
    found = set()
    for trial in range(6):
        points = [rng.normal(size=(14, 3)) for _ in range(3)]
        matrices = [np.linalg.norm(p[:, None] - p[None, :], axis=2) for p in points]
        for count in (2, 3):
            got = fused_grouping(matrices[:count], 4, fusion)
            assert got == _reference_fused(matrices[:count], 4, fusion), (trial, count)
            found.add(tuple(got))
    assert len(found) > 3  # the matrices are not all split alike


def test_multimodal_grouping_finds_scenes_that_one_modality_blurs():
    """Two feature sets of 24 shots: the first separates scenes 1|2 and 3|4 but not 2|3, the second 2|3 but blurs the
    rest. Fused, the three boundaries are found."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 6)
    centres_a = np.array([[0.0, 0], [5, 0], [5, 0.2], [0, 5]])  # scenes 2 and 3 look alike
    centres_b = np.array([[0.0, 0], [0, 0.3], [5, 5], [5, 5.2]])  # scenes 1, 2 and 3, 4 look alike
    a = centres_a[labels] + 0.3 * rng.normal(size=(24, 2))
    b = centres_b[labels] + 0.3 * rng.normal(size=(24, 2))
    assert multimodal_grouping([a, b], scenes=4).boundaries == [5, 11, 17]
    assert optimal_sequential_grouping(a, scenes=4, distance="euclidean", cost="additive").boundaries != [5, 11, 17]
    result = multimodal_grouping([a, b], scenes=4, fusion="min")
    assert result.scenes == 4 and len(result.boundaries) == 3
    with pytest.raises(ValueError, match="two or more feature sets"):
        multimodal_grouping([a])
    with pytest.raises(ValueError, match="the same shots"):
        multimodal_grouping([a, b[:20]])


def test_the_rotman_presets_reach_the_scenes_path():
    features, _ = _clustered(1, [6, 4, 9, 5, 7, 3, 8])
    for name, cost in (("osg_rotman", "additive"), ("osg_rotman_nrm", "normalised")):
        config = load_config(ScenesConfig, preset(f"scenes/{name}"))
        osg = config.osg
        assert (osg.scene_count, osg.distance, osg.cost, osg.max_scene_shots) == (
            "singular_values", "euclidean", cost, None,
        )  # fmt: skip
        assert config.min_scene_shots == 1
        prob, description = training_free_boundaries(features, config)
        expected = optimal_sequential_grouping(features, 1, None, None, "euclidean", cost, "singular_values")
        assert np.flatnonzero(prob).tolist() == expected.boundaries
        assert "log-elbow of the singular values" in description and f"{cost} cost" in description
    default = load_config(ScenesConfig, preset("scenes/default"))
    prob, description = training_free_boundaries(features, default)
    assert np.flatnonzero(prob).tolist() == optimal_sequential_grouping(features, 3).boundaries
    assert "elbow of the cost curve" in description and "centred cosine distance" in description
