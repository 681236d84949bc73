"""Windows of the boundary model: every shot scored once at inference, SCRL's training windows and scene shuffle."""

from __future__ import annotations

import numpy as np
import pytest

from vseg.data.windows import (
    central_scores,
    inference_windows,
    scene_shuffle,
    training_window_starts,
    training_windows,
)


def reference_sliding_scores(values: np.ndarray, seq_len: int, score) -> np.ndarray:
    """SCRL's val/test alignment written out as SCRL's ``SceneSeg/main.py`` does it (padding, windows, central half)."""
    stride = seq_len // 2
    n = len(values)
    pad_right = seq_len // 4 + (stride - n % stride if n % stride else 0)
    padded = np.concatenate([np.repeat(values[:1], seq_len // 4), values, np.repeat(values[-1:], pad_right)])
    kept = []
    for w in range(len(padded) // stride):
        window = padded[w * stride : w * stride + seq_len]
        kept.append(score(window)[stride // 2 : stride // 2 + stride])
    return np.concatenate(kept)[:n]


def _context_score(window: np.ndarray) -> np.ndarray:
    """A stand-in model whose output for a shot depends on the whole window (its position and the other shots)."""
    return window * 1000.0 + np.arange(len(window)) + window.sum() * 1e-3


@pytest.mark.parametrize("num_shots", [1, 7, 19, 20, 21, 39, 40, 41, 59, 61, 100, 137])
@pytest.mark.parametrize("seq_len", [8, 40])
def test_every_shot_scored_exactly_once_as_the_reference_does(num_shots, seq_len):
    windows = inference_windows(num_shots, seq_len)
    assert windows.shape == (-(-num_shots // (seq_len // 2)), seq_len)
    # the central halves cover each shot exactly once, in order
    central = central_scores(windows, num_shots)
    np.testing.assert_array_equal(central, np.arange(num_shots))
    # and give what the reference's padded sliding windows give, shot for shot
    values = np.arange(num_shots, dtype=np.float64) + 1.0
    ours = central_scores(np.stack([_context_score(values[w]) for w in windows]), num_shots)
    np.testing.assert_allclose(ours, reference_sliding_scores(values, seq_len, _context_score))


def test_training_window_grid_matches_scrl():
    rng = np.random.default_rng(0)
    offsets = set()
    for _ in range(300):
        starts = training_window_starts(130, 40, rng)  # G = 130 // 40 - 1 = 2, span = 130 - 80 = 50
        assert len(starts) == 2 and starts[1] - starts[0] == 40
        offsets.add(int(starts[0]))
    assert min(offsets) == 0 and max(offsets) == 49 and len(offsets) > 40
    assert len(training_window_starts(39, 40, rng)) == 0
    assert training_window_starts(40, 40, rng).tolist() == [0]  # one window where the reference has none


def test_scene_shuffle_keeps_scenes_whole_and_labels_consistent():
    labels = np.array([0, 0, 1, 0, 1, 0, 0, 0, 1, 0])  # scenes 0-2, 3-4, 5-8 and the tail 9
    for seed in range(20):
        order, shuffled = scene_shuffle(labels, np.random.default_rng(seed))
        assert sorted(order.tolist()) == list(range(10)) and shuffled[-1] == 0
        pieces = np.split(order, np.flatnonzero(shuffled[:-1] == 1) + 1)
        assert sorted(tuple(p.tolist()) for p in pieces) == [(0, 1, 2), (3, 4), (5, 6, 7, 8), (9,)]
        assert shuffled.sum() == 3  # a boundary after each scene but the window's last


def test_training_windows_force_the_last_label_to_zero_and_gather_rows_of_their_movie():
    lengths = [100, 85, 30]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = np.ones(offsets[-1], dtype=np.int64)
    rows, targets = training_windows(offsets, labels, 40, 0.0, np.random.default_rng(1))
    assert rows.shape == targets.shape == (2, 40)  # 1 window each for 100 and 85 shots, none for 30
    assert (targets[:, -1] == 0).all() and (targets[:, :-1] == 1).all()
    assert rows[0].max() < 100 and 100 <= rows[1].min() and rows[1].max() < 185
    labels[np.arange(0, 185, 4)] = 0  # scenes of 4 shots, then the shuffle moves them around
    labels[np.arange(1, 185, 4)] = 0
    labels[np.arange(2, 185, 4)] = 0
    shuffled_rows, shuffled_targets = training_windows(offsets, labels, 40, 1.0, np.random.default_rng(2))
    for window, target in zip(shuffled_rows, shuffled_targets, strict=True):
        assert sorted(window.tolist()) == list(range(window.min(), window.min() + 40))  # the same shots, reordered
        original = labels[np.sort(window)]
        scenes = int(original[:-1].sum()) + 1  # cut after each boundary; the tail is a scene too
        assert target[-1] == 0 and target.sum() == scenes - 1
