"""Optimal Sequential Grouping (vseg.eval.osg): the exact optimum of the normalised cost on hand-built distance
matrices, the number of scenes from the cost curve, and the same scenes whatever the features' scale or the order
their chunks arrive in."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vseg.eval.osg import (
    assemble_chunks,
    block_sums,
    elbow,
    group_shots,
    normalised_cost,
    optimal_sequential_grouping,
)


def _block_distances(sizes: list[int], inside: float, outside: float, noise: float = 0.0, seed: int = 0):
    """A symmetric distance matrix with zero diagonal: ``inside`` between shots of one block, ``outside`` between
    blocks, plus symmetric uniform noise; and the boundaries (last shot of every block but the last)."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    distances = np.where(labels[:, None] == labels[None, :], inside, outside).astype(np.float64)
    noisy = np.random.default_rng(seed).uniform(0, noise, distances.shape)
    distances = distances + (noisy + noisy.T) / 2
    np.fill_diagonal(distances, 0.0)
    return distances, [int(b) for b in np.cumsum(sizes)[:-1] - 1]


def _brute_force(distances: np.ndarray, scenes: int, min_shots: int) -> tuple[float, list[int]]:
    """The least normalised cost over every split into ``scenes`` blocks of at least ``min_shots`` shots."""
    count = len(distances)
    best = (np.inf, [])
    for cuts in itertools.combinations(range(count - 1), scenes - 1):
        edges = [0, *(c + 1 for c in cuts), count]
        sizes = np.diff(edges)
        if sizes.min() < min_shots:
            continue
        cost = sum(distances[a:b, a:b].sum() for a, b in zip(edges[:-1], edges[1:])) / float((sizes**2).sum())
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
