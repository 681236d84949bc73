"""Scene-boundary metrics, each defined exactly as in the reference code it is named after.

Every movie gives ``gt``, one 0/1 label per shot (1: this shot is the last shot of its scene), ``prob``, a boundary
probability per shot, and optionally ``frames``, the movie's shot table of ``(start_frame, end_frame)`` rows (it may
have one more row than ``gt``: the movie's last shot has no label). A shot is predicted a boundary when
``nan_to_num(prob) > threshold`` (strictly greater; 0.5 by default).

The papers report the "same" metric under different averaging, so each variant is kept apart and named:

* AP. SCRL (``SceneSeg/main.py::inference``) averages the per-movie AP over movies (``ap_movie``); BaSSL
  (``bassl/finetune/utils/metric.py``) and LGSS ``get_ap`` (``lgss/utilis/dataset_utilis.py``) take the AP of all shots
  of all movies pooled (``ap_pooled``); LGSS ``get_mAP_seq`` rounds each movie's AP to 2 decimals before averaging
  (``map_lgss``). The AP itself is scikit-learn's ``average_precision_score``.
* F1. SCRL computes precision, recall and F1 per movie with an epsilon of 1e-5 in every denominator and averages them
  over movies (``scrl_f1``, ``*_movie``); the pooled variant (``*_pooled``) is scikit-learn's F1 on all shots.
* Recall. LGSS ``cal_Recall`` (``lgss/utilis/recall_time.py``) and BaSSL: scikit-learn's recall per movie, averaged
  (``exact_recall``).
* Recall@3s. LGSS ``cal_Recall_time`` (``lgss/utilis/recall_time.py``) and BaSSL ``_compute_recall_at_second``
  (``bassl/finetune/utils/metric.py``): a ground-truth boundary is found if a predicted boundary at most 5 shots away
  ends less than 3 seconds from it (``recall_at_seconds``); it needs the shot tables. Both turn frames into seconds
  at 24 fps for every movie, so ``recall_at_3s`` does too and is comparable with their numbers;
  ``recall_at_3s_true_fps`` times each movie at its own frame rate.
* mIoU. LGSS ``cal_miou`` (``lgss/utilis/iou.py``): the scenes of the ground truth and of the prediction (LGSS
  ``get_pair_list``, ``scenes_from_labels``) are matched both ways by best temporal IoU (LGSS ``getRatio``,
  ``interval_iou``), in frames when the shot tables are given, else in shots (``miou``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, recall_score, roc_auc_score

REFERENCE_FPS = 24.0  # the frame rate LGSS and BaSSL hard-code for every MovieNet movie
EPS = 1e-5  # SCRL's and LGSS's epsilon in denominators


def _binary(labels: np.ndarray) -> np.ndarray:
    """0/1 int array from labels or predictions (any non-zero value is a 1)."""
    return (np.asarray(labels) != 0).astype(np.int64)


def _predict(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Boundary predictions: ``nan_to_num(prob) > threshold`` (strict), as 0/1 ints."""
    return (np.nan_to_num(np.asarray(prob, dtype=np.float64)) > threshold).astype(np.int64)


def _frame_table(frames: np.ndarray, shots: int) -> np.ndarray:
    """The shot table as an int64 ``(rows, 2)`` array, checked to cover ``shots`` labelled shots."""
    table = np.asarray(frames, dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 2:
        raise ValueError(f"a shot frame table must have shape (shots, 2), got {table.shape}")
    if len(table) < shots:
        raise ValueError(f"the shot frame table has {len(table)} rows for {shots} labelled shots")
    return table


def average_precision(gt: np.ndarray, prob: np.ndarray) -> float:
    """scikit-learn's average precision of ``prob`` against ``gt`` (NaNs read as 0).

    A movie without any boundary gets whatever scikit-learn returns (0.0); its warning about it is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive class found in y_true")
        return float(average_precision_score(np.nan_to_num(gt), np.nan_to_num(prob)))


def counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of 0/1 predictions against 0/1 labels."""
    g, p = _binary(gt).astype(bool), _binary(pred).astype(bool)
    return int(np.sum(g & p)), int(np.sum(~g & p)), int(np.sum(g & ~p))


def scrl_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """SCRL's per-movie ``(precision, recall, f1)``, with 1e-5 added to every denominator."""
    recall = tp / (tp + fn + EPS)
    precision = tp / (tp + fp + EPS)
    f1 = 2 * recall * precision / (recall + precision + EPS)
    return precision, recall, f1


def scenes_from_labels(labels: np.ndarray) -> list[tuple[int, int]] | None:
    """Scenes as ``(first_shot, last_shot)`` pairs (LGSS ``get_pair_list``), or None if no label is 1.

    A shot labelled 1 closes the current scene; shots after the last 1 belong to no closed scene and are dropped.
    """
    scenes = []
    first = 0
    for shot, label in enumerate(_binary(labels)):
        if label == 1:
            scenes.append((first, shot))
            first = shot + 1
    return scenes or None


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Temporal IoU of two ``(start, end)`` intervals (LGSS ``getRatio``); 0 when they do not overlap."""
    intersection = min(a[1], b[1]) - max(a[0], b[0]) if max(a[0], b[0]) < min(a[1], b[1]) else 0
    if intersection == 0:
        return 0.0
    return intersection / (max(a[1], b[1]) - min(a[0], b[0]))


def _scene_intervals(scenes: list[tuple[int, int]], frames: np.ndarray | None) -> list[tuple[int, int]]:
    """Scenes as frame intervals (start of first shot, end of last shot), or shot intervals ``(first, last + 1)``."""
    if frames is None:
        return [(first, last + 1) for first, last in scenes]
    return [(int(frames[first][0]), int(frames[last][1])) for first, last in scenes]


def _best_match_mean(targets: list[tuple[int, int]], candidates: list[tuple[int, int]]) -> float:
    """Mean over ``targets`` of the best IoU with any of ``candidates``."""
    return float(np.mean([max(interval_iou(c, t) for c in candidates) for t in targets]))


def miou(gt: np.ndarray, pred: np.ndarray, frames: np.ndarray | None = None) -> float:
    """LGSS's scene mIoU of one movie: best-match IoU averaged over GT scenes and over predicted scenes, halved.

    Scenes are frame intervals when ``frames`` is given, else shot intervals. A prediction without any boundary scores
    0, as in LGSS; so does a movie whose ground truth has no boundary (where LGSS would crash).
    """
    pred_scenes, gt_scenes = scenes_from_labels(pred), scenes_from_labels(gt)
    if pred_scenes is None or gt_scenes is None:
        return 0.0
    if frames is not None:
        frames = _frame_table(frames, max(len(gt), len(pred)))
    pred_intervals, gt_intervals = _scene_intervals(pred_scenes, frames), _scene_intervals(gt_scenes, frames)
    return (_best_match_mean(gt_intervals, pred_intervals) + _best_match_mean(pred_intervals, gt_intervals)) / 2


def recall_at_seconds(
    gt: np.ndarray,
    pred: np.ndarray,
    frames: np.ndarray | None,
    fps: float = REFERENCE_FPS,
    seconds: float = 3.0,
    neighbours: int = 5,
) -> float:
    """Share of GT boundaries with a predicted boundary within ``neighbours`` shots ending < ``seconds`` from it.

    LGSS ``cal_Recall_time`` / BaSSL ``_compute_recall_at_second``: shots are timed by their end frame, and the result
    is ``hits / (boundaries + 1e-5)``. ``frames`` is the movie's shot table; None raises ValueError.
    """
    if frames is None:
        raise ValueError("Recall@3s needs shot frame tables")
    gt, pred = _binary(gt), _binary(pred)
    frames = _frame_table(frames, len(gt))
    hits = total = 0
    for shot in np.flatnonzero(gt == 1):
        total += 1
        end = frames[shot][1]
        for candidate in range(shot - neighbours, shot + neighbours + 1):
            if candidate < 0 or candidate >= len(frames) or candidate >= len(pred):
                continue
            if pred[candidate] == 1 and abs(frames[candidate][1] - end) / fps < seconds:
                hits += 1
                break
    return hits / (total + EPS)


def cut_times(boundaries: Sequence[int], frames: np.ndarray, fps: float) -> np.ndarray:
    """The times in seconds of the cuts after the shots ``boundaries``: the end of each shot (its last frame + 1)."""
    table = np.asarray(frames).reshape(-1, 2)
    return (table[np.asarray(boundaries, dtype=np.int64), 1] + 1) / fps if len(boundaries) else np.zeros(0)


def cut_recall_precision(true: np.ndarray, found: np.ndarray, seconds: float = 3.0) -> tuple[float, float]:
    """``(recall, precision)`` of found scene cuts against true ones, given as times in seconds, matched one to one.

    A found cut and a true cut may pair when they are at most ``seconds`` apart, each cut in at most one pair, and the
    pairs are as many as can be (the boundary hit rate of music and video segmentation, e.g. mir_eval's
    ``segment.detection``: a maximum bipartite matching within the window). Recall is pairs / true cuts, precision
    pairs / found cuts; each is 1 when it has nothing to match. Unlike LGSS's Recall@3s (``recall_at_seconds``),
    cuts are timed directly, a found cut never counts for two true ones, and the window includes its edge.
    """
    true = np.sort(np.asarray(true, dtype=np.float64).ravel())
    found = np.sort(np.asarray(found, dtype=np.float64).ravel())
    # Every true cut's window covers a run of the sorted found cuts, and the runs move right with the true cut, so
    # pairing each true cut in order with the earliest found cut still free in its window is a maximum matching.
    pairs = candidate = 0
    for time in true:
        while candidate < len(found) and found[candidate] < time - seconds:
            candidate += 1
        if candidate < len(found) and found[candidate] <= time + seconds:
            pairs += 1
            candidate += 1
    recall = pairs / len(true) if len(true) else 1.0
    precision = pairs / len(found) if len(found) else 1.0
    return recall, precision


def exact_recall(gt: np.ndarray, pred: np.ndarray) -> float:
    """LGSS ``cal_Recall`` / BaSSL "Recall": scikit-learn's recall of one movie, 0 when it has no boundary."""
    return float(recall_score(_binary(gt), _binary(pred), zero_division=0))


@dataclass
class SceneMetrics:
    """Every metric of a set of movies; ``*_movie`` are averaged over movies, ``*_pooled`` over all shots."""

    ap_movie: float  # SCRL: mean over movies of per-movie AP
    ap_pooled: float  # BaSSL / LGSS get_ap: AP of all shots of all movies concatenated
    map_lgss: float  # LGSS get_mAP_seq: per-movie AP rounded to 2 decimals, then averaged
    f1_movie: float  # SCRL: mean of per-movie scrl_f1
    precision_movie: float  # SCRL: mean of per-movie precision
    recall_movie: float  # SCRL: mean of per-movie recall
    f1_pooled: float  # 2TP / (2TP + FP + FN) of pooled counts (0 if the denominator is 0)
    precision_pooled: float  # TP / (TP + FP), 0 if nothing is predicted
    recall_pooled: float  # TP / (TP + FN), 0 if there is no boundary
    recall_exact: float  # LGSS / BaSSL "Recall": mean over movies of exact_recall
    accuracy: float  # share of all shots where prediction and label agree
    miou: float  # LGSS: mean over movies of miou
    miou_basis: str  # "frames" if every movie had a shot table, else "shots"
    recall_at_3s: float | None  # LGSS / BaSSL: mean over movies at 24 fps; None without a shot table for every movie
    recall_at_3s_true_fps: float | None  # the same with each movie's own frame rate
    movies: int
    shots: int
    threshold: float

    def as_dict(self) -> dict[str, float | str | int | None]:
        """The metrics as a flat dict, field name to value."""
        return asdict(self)


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator``, 0 when the denominator is 0."""
    return numerator / denominator if denominator else 0.0


def _check_inputs(
    gt: Mapping[str, np.ndarray], prob: Mapping[str, np.ndarray], frames: Mapping[str, np.ndarray] | None
) -> list[str]:
    """The movie ids in sorted order, after checking that labels, probabilities and shot tables agree."""
    if set(gt) != set(prob):
        raise ValueError(f"labels and probabilities cover different movies: {sorted(set(gt) ^ set(prob))}")
    if not gt:
        raise ValueError("no movies to evaluate")
    movies = sorted(gt)
    for movie in movies:
        if len(gt[movie]) != len(prob[movie]):
            raise ValueError(f"movie {movie}: {len(gt[movie])} labels but {len(prob[movie])} probabilities")
        if frames is not None and movie in frames:
            try:
                _frame_table(frames[movie], len(gt[movie]))
            except ValueError as error:
                raise ValueError(f"movie {movie}: {error}") from error
    return movies


def _mean_recall_at_3s(
    labels: Mapping[str, np.ndarray],
    preds: Mapping[str, np.ndarray],
    tables: Mapping[str, np.ndarray] | None,
    fps: Mapping[str, float] | float,
) -> float | None:
    """Recall@3s averaged over movies, each timed at ``fps`` (24 where a mapping lacks it); None without tables."""
    if tables is None:
        return None
    rates = {m: fps.get(m, REFERENCE_FPS) if isinstance(fps, Mapping) else fps for m in labels}
    return float(np.mean([recall_at_seconds(labels[m], preds[m], tables[m], fps=rates[m]) for m in labels]))


def evaluate(
    gt: Mapping[str, np.ndarray],
    prob: Mapping[str, np.ndarray],
    frames: Mapping[str, np.ndarray] | None = None,
    fps: Mapping[str, float] | float = REFERENCE_FPS,
    threshold: float = 0.5,
) -> SceneMetrics:
    """All metrics of a set of movies, given per-movie labels, probabilities and (optionally) shot tables.

    With a shot table for every movie, mIoU is measured in frames and Recall@3s is computed twice: at the reference
    24 fps (``recall_at_3s``) and at ``fps``, the movies' true frame rates (``recall_at_3s_true_fps``: one rate for
    all movies, or a mapping where missing movies get 24 fps); otherwise mIoU is measured in shots and both are None.
    Movies are taken in sorted order. Raises ValueError, naming the movie, on mismatched inputs.
    """
    movies = _check_inputs(gt, prob, frames)
    tables = frames if frames is not None and all(movie in frames for movie in movies) else None
    labels = {movie: _binary(gt[movie]) for movie in movies}
    preds = {movie: _predict(prob[movie], threshold) for movie in movies}

    aps = [average_precision(labels[movie], prob[movie]) for movie in movies]
    scrl = np.array([scrl_f1(*counts(labels[movie], preds[movie])) for movie in movies])
    all_gt = np.concatenate([labels[movie] for movie in movies])
    all_pred = np.concatenate([preds[movie] for movie in movies])
    all_prob = np.concatenate([np.asarray(prob[movie], dtype=np.float64) for movie in movies])
    tp, fp, fn = counts(all_gt, all_pred)

    return SceneMetrics(
        ap_movie=float(np.mean(aps)),
        ap_pooled=average_precision(all_gt, all_prob),
        map_lgss=float(np.mean([round(ap, 2) for ap in aps])),
        f1_movie=float(scrl[:, 2].mean()),
        precision_movie=float(scrl[:, 0].mean()),
        recall_movie=float(scrl[:, 1].mean()),
        f1_pooled=_ratio(2 * tp, 2 * tp + fp + fn),
        precision_pooled=_ratio(tp, tp + fp),
        recall_pooled=_ratio(tp, tp + fn),
        recall_exact=float(np.mean([exact_recall(labels[movie], preds[movie]) for movie in movies])),
        accuracy=float(np.mean(all_gt == all_pred)),
        miou=float(np.mean([miou(labels[m], preds[m], None if tables is None else tables[m]) for m in movies])),
        miou_basis="shots" if tables is None else "frames",
        recall_at_3s=_mean_recall_at_3s(labels, preds, tables, REFERENCE_FPS),
        recall_at_3s_true_fps=_mean_recall_at_3s(labels, preds, tables, fps),
        movies=len(movies),
        shots=len(all_gt),
        threshold=threshold,
    )


BASSL_METRICS = ("AP", "F1", "mIoU", "Recall", "Recall@3s", "AUC", "Acc")


def bassl_scores(
    gt: Mapping[str, np.ndarray],
    prob: Mapping[str, np.ndarray],
    frames: Mapping[str, np.ndarray] | None = None,
    fps: float = REFERENCE_FPS,
) -> dict[str, float | None]:
    """The scores of BaSSL's fine-tuning (``finetune/utils/metric.py``, ``validation_epoch_end``), in percent, under the
    names of its paper's tables:

    - ``AP``: scikit-learn's AP of all shots pooled (``SklearnAPMetric``); ``AUC``: ROC AUC pooled;
    - ``F1``: torchmetrics' binary F1 of all shots pooled, a shot a boundary when ``prob >= 0.5``;
    - ``Acc``: pooled accuracy at ``prob >= 0.5``, with BaSSL's 1e-5 in the denominator (``AccuracyMetric``);
    - ``Recall``, ``Recall@3s``, ``mIoU``: per movie, then averaged (``MovieNetMetric``), on the argmax of the two
      logits, i.e. ``prob > 0.5``; Recall@3s at 24 fps and mIoU in frames from the shot tables (None / in shots
      without them).
    """
    movies = _check_inputs(gt, prob, frames)
    tables = frames if frames is not None and all(movie in frames for movie in movies) else None
    labels = {movie: _binary(gt[movie]) for movie in movies}
    argmax = {movie: _predict(prob[movie], 0.5) for movie in movies}
    all_gt = np.concatenate([labels[movie] for movie in movies])
    all_prob = np.nan_to_num(np.concatenate([np.asarray(prob[movie], dtype=np.float64) for movie in movies]))
    at_least = (all_prob >= 0.5).astype(np.int64)
    tp, fp, fn = counts(all_gt, at_least)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Only one class present in y_true")
        auc = float(roc_auc_score(all_gt, all_prob)) if 0 < all_gt.sum() < len(all_gt) else float("nan")
    scores = {
        "AP": average_precision(all_gt, all_prob),
        "F1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mIoU": float(np.mean([miou(labels[m], argmax[m], None if tables is None else tables[m]) for m in movies])),
        "Recall": float(np.mean([exact_recall(labels[m], argmax[m]) for m in movies])),
        "Recall@3s": _mean_recall_at_3s(labels, argmax, tables, fps),
        "AUC": auc,
        "Acc": float(np.sum(all_gt == at_least)) / (len(all_gt) + EPS),
    }
    return {name: None if value is None else 100 * value for name, value in scores.items()}
