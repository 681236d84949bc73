"""Windows of consecutive shots for the boundary model: random training windows and sliding inference windows.

Training (SCRL's ``SceneSeg/movienet_seg_data.py``): a movie of ``N`` labelled shots gives
``G = N // L - 1`` windows of ``L`` shots on a grid shifted by a random offset in ``[0, N - L*G - 1]``, drawn anew every
epoch; the last label of each window is forced to 0 (its next shot is outside), and the scenes inside a window are
shuffled (:func:`scene_shuffle`). A movie with ``L <= N < 2L`` gives one window here, where the reference gives none.

Inference (SCRL's ``SceneSeg/main.py``): windows of ``L`` shots with stride ``S = L/2``, padded at both ends by
repeating the first and last shot ``L/4`` times; the central ``S`` scores of each window are kept, so every shot is
scored once, with at least ``L/4`` shots of context on each side. Every window needed is a full one, so a whole movie
runs as one batch.
"""

from __future__ import annotations

import numpy as np


def training_window_starts(num_shots: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """First shots of one movie's training windows for one epoch (none when the movie is shorter than a window)."""
    if num_shots < seq_len:
        return np.zeros(0, dtype=np.int64)
    windows = max(num_shots // seq_len - 1, 1)
    span = num_shots - seq_len * windows
    offset = int(rng.integers(max(span, 1)))
    return offset + seq_len * np.arange(windows, dtype=np.int64)


def scene_shuffle(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """SCRL's scene-level shuffle of one window: ``(order, labels)`` with ``window[order]`` the shuffled shots.

    The window is cut after every shot labelled 1; the trailing piece counts as a scene too. The scenes are put in
    a random order, each ending with a boundary, and the last label of the result is 0 again.
    """
    ends = np.flatnonzero(labels[:-1] == 1) + 1
    scenes = np.split(np.arange(len(labels)), ends)
    scenes = [scenes[i] for i in rng.permutation(len(scenes))]
    shuffled = np.zeros(len(labels), dtype=np.int64)
    shuffled[np.cumsum([len(scene) for scene in scenes]) - 1] = 1
    shuffled[-1] = 0
    return np.concatenate(scenes), shuffled


def training_windows(
    offsets: np.ndarray, labels: np.ndarray, seq_len: int, shuffle_rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of training windows over movies concatenated at ``offsets``: ``(rows, labels)``, each ``W x L``.

    ``rows`` index the concatenated shots; ``labels`` are the window's labels after the forced last 0 and the scene
    shuffle (applied to a window with probability ``shuffle_rate``).
    """
    rows, targets = [], []
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        for first in training_window_starts(int(end - start), seq_len, rng):
            window = np.arange(start + first, start + first + seq_len)
            window_labels = labels[window].copy()
            window_labels[-1] = 0
            if rng.random() < shuffle_rate:
                order, window_labels = scene_shuffle(window_labels, rng)
                window = window[order]
            rows.append(window)
            targets.append(window_labels)
    if not rows:
        return np.zeros((0, seq_len), np.int64), np.zeros((0, seq_len), np.int64)
    return np.stack(rows), np.stack(targets)


def inference_windows(num_shots: int, seq_len: int) -> np.ndarray:
    """``ceil(N / S) x L`` shot indices of a movie's sliding windows (stride ``S = L/2``; ends repeat the edge shot)."""
    stride = seq_len // 2
    starts = np.arange(-(-num_shots // stride)) * stride - seq_len // 4
    return np.clip(starts[:, None] + np.arange(seq_len), 0, num_shots - 1)


def central_scores(window_scores: np.ndarray, num_shots: int) -> np.ndarray:
    """The scores each shot gets from the window where it is central: ``W x L`` -> ``N``."""
    stride = window_scores.shape[1] // 2
    return window_scores[:, stride // 2 : stride // 2 + stride].reshape(-1)[:num_shots]
