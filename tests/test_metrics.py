"""Scene-boundary metrics: hand-computed cases for each reference definition, and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score

from vseg.eval.metrics import (
    SceneMetrics,
    average_precision,
    counts,
    cut_recall_precision,
    evaluate,
    exact_recall,
    interval_iou,
    miou,
    recall_at_seconds,
    scenes_from_labels,
    scrl_f1,
)


def shot_table(lengths: list[int]) -> np.ndarray:
    """A shot frame table of consecutive shots with the given lengths in frames."""
    ends = np.cumsum(lengths)
    return np.stack([ends - np.asarray(lengths), ends], axis=1).astype(np.int64)


def random_movies(seed: int, movies: int = 4) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Seeded random labels (~20% boundaries) and probabilities loosely correlated with them."""
    rng = np.random.default_rng(seed)
    gt, prob = {}, {}
    for m in range(movies):
        n = int(rng.integers(20, 60))
        labels = (rng.random(n) < 0.2).astype(np.int64)
        gt[f"tt{m:03d}"] = labels
        prob[f"tt{m:03d}"] = np.clip(0.4 * labels + 0.7 * rng.random(n), 0, 1)
    return gt, prob


# --- SCRL precision / recall / F1 -------------------------------------------------------------------------------


def test_counts():
    assert counts(np.array([1, 0, 1, 1, 0]), np.array([1, 1, 0, 1, 0])) == (2, 1, 1)


def test_scrl_f1_formula():
    precision, recall, f1 = scrl_f1(2, 1, 1)
    assert precision == 2 / (2 + 1 + 1e-5)
    assert recall == 2 / (2 + 1 + 1e-5)
    assert f1 == 2 * recall * precision / (recall + precision + 1e-5)
    # by hand: p = r = 2 / 3.00001 = 0.6666644; f1 = 2 p^2 / (2p + 1e-5) = 0.8888830 / 1.3333389 = 0.6666594
    assert f1 == pytest.approx(0.6666594, abs=1e-7)
    assert scrl_f1(3, 0, 1) == pytest.approx((3 / 3.00001, 3 / 4.00001, 2 * 0.75 / 1.75), abs=1e-5)


def test_scrl_f1_no_positives_is_zero():
    assert scrl_f1(0, 0, 0) == (0.0, 0.0, 0.0)


# --- AP -----------------------------------------------------------------------------------------------------------


def test_average_precision_by_hand():
    # ranked: 0.9 (boundary, precision 1/1), 0.8, 0.7 (boundary, precision 2/3), 0.1 -> AP = (1 + 2/3) / 2
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(5 / 6)


def test_average_precision_matches_sklearn_and_reads_nan_as_zero():
    gt, prob = random_movies(seed=0)
    for movie in gt:
        assert average_precision(gt[movie], prob[movie]) == average_precision_score(gt[movie], prob[movie])
    with_nan = np.array([0.9, np.nan, 0.2])
    assert average_precision(np.array([1, 0, 0]), with_nan) == average_precision_score([1, 0, 0], [0.9, 0.0, 0.2])


def test_average_precision_without_boundary_is_silent(recwarn):
    assert average_precision(np.zeros(3, dtype=np.int64), np.array([0.1, 0.2, 0.3])) == 0.0
    assert not [w for w in recwarn if "positive class" in str(w.message)]


def test_per_movie_and_pooled_ap_differ():
    # each movie ranks its own boundary first: AP 1 and 1; pooled, movie b's boundary (0.3) ranks below movie a's
    # non-boundary (0.8): ranked 0.9 (P 1/1), 0.8, 0.3 (P 2/3), 0.2 -> AP = 5/6
    gt = {"a": np.array([1, 0]), "b": np.array([1, 0])}
    prob = {"a": np.array([0.9, 0.8]), "b": np.array([0.3, 0.2])}
    result = evaluate(gt, prob)
    assert result.ap_movie == pytest.approx(1.0)
    assert result.ap_pooled == pytest.approx(5 / 6)
    assert result.ap_pooled == pytest.approx(average_precision_score([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.2]))


def test_map_lgss_rounds_each_movie():
    # movie a: AP 5/6 = 0.8333 (rounded 0.83); movie b: AP 1
    gt = {"a": np.array([1, 0, 1, 0]), "b": np.array([1, 0])}
    prob = {"a": np.array([0.9, 0.8, 0.7, 0.1]), "b": np.array([0.9, 0.1])}
    result = evaluate(gt, prob)
    assert result.map_lgss == pytest.approx((0.83 + 1.0) / 2)
    assert result.ap_movie == pytest.approx((5 / 6 + 1.0) / 2)


# --- F1, precision, recall, accuracy in evaluate --------------------------------------------------------------------


def test_pooled_metrics_match_sklearn_and_movie_metrics_match_scrl():
    gt, prob = random_movies(seed=1)
    result = evaluate(gt, prob)
    movies = sorted(gt)
    all_gt = np.concatenate([gt[m] for m in movies])
    all_prob = np.concatenate([prob[m] for m in movies])
    all_pred = all_prob > 0.5
    assert result.f1_pooled == pytest.approx(f1_score(all_gt, all_pred))
    assert result.precision_pooled == pytest.approx(precision_score(all_gt, all_pred))
    assert result.recall_pooled == pytest.approx(recall_score(all_gt, all_pred))
    assert result.accuracy == pytest.approx(accuracy_score(all_gt, all_pred))
    assert result.ap_pooled == pytest.approx(average_precision_score(all_gt, all_prob))
    assert result.ap_movie == pytest.approx(np.mean([average_precision_score(gt[m], prob[m]) for m in movies]))
    per_movie = np.array([scrl_f1(*counts(gt[m], prob[m] > 0.5)) for m in movies])
    assert (result.precision_movie, result.recall_movie, result.f1_movie) == pytest.approx(tuple(per_movie.mean(0)))
    assert result.recall_exact == pytest.approx(np.mean([recall_score(gt[m], prob[m] > 0.5) for m in movies]))
    assert (result.movies, result.shots, result.threshold) == (4, len(all_gt), 0.5)


def test_threshold_is_strict():
    gt = {"a": np.array([1, 1, 0])}
    prob = {"a": np.array([0.5, 0.500001, 0.2])}
    result = evaluate(gt, prob)
    assert (result.precision_pooled, result.recall_pooled) == (1.0, 0.5)
    assert result.f1_pooled == pytest.approx(2 / 3)  # 2TP / (2TP + FP + FN) = 2 / 3
    assert result.accuracy == pytest.approx(2 / 3)
    assert evaluate(gt, prob, threshold=0.4).recall_pooled == 1.0


def test_nan_probability_is_not_a_boundary():
    result = evaluate({"a": np.array([1, 0])}, {"a": np.array([np.nan, 0.9])})
    assert (result.precision_pooled, result.recall_pooled, result.accuracy) == (0.0, 0.0, 0.0)


def test_exact_recall():
    assert exact_recall(np.array([1, 0, 1, 1]), np.array([1, 1, 0, 0])) == pytest.approx(1 / 3)
    assert exact_recall(np.array([0, 0, 0]), np.array([1, 0, 0])) == 0.0


# --- scenes and mIoU ------------------------------------------------------------------------------------------------


def test_scenes_from_labels():
    assert scenes_from_labels(np.array([0, 1, 0, 0, 1, 0, 0])) == [(0, 1), (2, 4)]
    assert scenes_from_labels(np.array([1, 1])) == [(0, 0), (1, 1)]
    assert scenes_from_labels(np.zeros(5, dtype=np.int64)) is None


def test_interval_iou():
    assert interval_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert interval_iou((0, 10), (2, 4)) == pytest.approx(2 / 10)
    assert interval_iou((0, 5), (7, 10)) == 0.0
    assert interval_iou((0, 5), (5, 10)) == 0.0
    assert interval_iou((5, 5), (0, 10)) == 0.0  # a zero-length shot overlaps nothing


def test_miou_no_prediction_or_no_ground_truth_scores_zero():
    assert miou(np.array([0, 1, 0, 1]), np.zeros(4, dtype=np.int64)) == 0.0
    assert miou(np.zeros(4, dtype=np.int64), np.array([0, 1, 0, 1])) == 0.0


def test_miou_perfect_prediction():
    gt = np.array([0, 1, 0, 0, 1, 0])
    assert miou(gt, gt) == 1.0
    assert miou(gt, gt, shot_table([3, 5, 7, 2, 4, 6, 9])) == 1.0


def test_miou_shot_based_by_hand():
    gt = np.array([0, 1, 0, 0, 1, 0])  # scenes [0, 2) and [2, 5); the tail shot 5 is dropped
    # prediction scenes [0, 1) and [1, 5):
    #   [0,1) vs [0,2): 1/2;  [0,1) vs [2,5): 0;  [1,5) vs [0,2): 1/5;  [1,5) vs [2,5): 3/4
    #   over GT: (max(1/2, 1/5) + max(0, 3/4)) / 2 = 0.625; over prediction: (1/2 + 3/4) / 2 = 0.625
    assert miou(gt, np.array([1, 0, 0, 0, 1, 0])) == pytest.approx(0.625)
    # prediction scene [0, 1) only: over GT (1/2 + 0) / 2 = 0.25; over prediction 1/2 -> (0.25 + 0.5) / 2
    assert miou(gt, np.array([1, 0, 0, 0, 0, 0])) == pytest.approx(0.375)


def test_miou_frame_based_by_hand():
    # 4 labelled shots plus the unlabelled last one, of uneven lengths
    frames = np.array([[0, 10], [10, 100], [100, 110], [110, 200], [200, 300]])
    gt = np.array([0, 1, 0, 1])  # scenes: shots 0-1 = (0, 100), shots 2-3 = (100, 200)
    pred = np.array([1, 0, 0, 1])  # scenes: shot 0 = (0, 10), shots 1-3 = (10, 200)
    # (0,10) vs (0,100): 10/100;  (0,10) vs (100,200): 0
    # (10,200) vs (0,100): 90/200;  (10,200) vs (100,200): 100/190 = 10/19
    # over GT: (max(0.1, 0.45) + max(0, 10/19)) / 2;  over prediction: (max(0.1, 0) + max(0.45, 10/19)) / 2
    # mIoU = (0.45 + 10/19 + 0.1 + 10/19) / 4 = 0.1375 + 5/19 = 0.4006579
    assert miou(gt, pred, frames) == pytest.approx(0.4006579, abs=1e-7)
    # in shots the same scenes are [0,2), [2,4) vs [0,1), [1,4): IoUs 1/2, 1/4, 2/3 -> (1/2 + 2/3) / 2 both ways
    assert miou(gt, pred) == pytest.approx(7 / 12)


# --- Recall@3s ------------------------------------------------------------------------------------------------------


def _recall_case(gap: int, fps: float = 24.0) -> float:
    """GT boundary at shot 6, predicted boundary at shot 8, their end frames ``gap`` frames apart."""
    lengths = [10] * 14
    lengths[7] = gap - 10  # end(8) - end(6) = length(7) + length(8)
    gt = np.zeros(13, dtype=np.int64)
    gt[6] = 1
    pred = np.zeros(13, dtype=np.int64)
    pred[8] = 1
    return recall_at_seconds(gt, pred, shot_table(lengths), fps=fps)


def test_recall_at_seconds_within_and_beyond_three_seconds():
    assert _recall_case(gap=48) == pytest.approx(1 / (1 + 1e-5))  # 48 / 24 = 2 s
    assert _recall_case(gap=96) == 0.0  # 4 s
    assert _recall_case(gap=72) == 0.0  # exactly 3 s is not < 3 s


def test_recall_at_seconds_fps_changes_a_borderline_case():
    assert _recall_case(gap=73, fps=24.0) == 0.0  # 73 / 24 = 3.04 s
    assert _recall_case(gap=73, fps=25.0) == pytest.approx(1 / (1 + 1e-5))  # 73 / 25 = 2.92 s


def test_recall_at_seconds_searches_five_shots_each_way():
    frames = shot_table([1] * 14)  # every shot one frame long: always close in time
    gt = np.zeros(13, dtype=np.int64)
    gt[6] = 1
    six_away, five_away, five_before = (np.zeros(13, dtype=np.int64) for _ in range(3))
    six_away[12], five_away[11], five_before[1] = 1, 1, 1
    assert recall_at_seconds(gt, six_away, frames) == 0.0
    assert recall_at_seconds(gt, five_away, frames) == pytest.approx(1 / (1 + 1e-5))
    assert recall_at_seconds(gt, five_before, frames) == pytest.approx(1 / (1 + 1e-5))


def test_recall_at_seconds_counts_each_boundary_once():
    frames = shot_table([10] * 21)
    gt = np.zeros(20, dtype=np.int64)
    gt[[3, 15]] = 1
    pred = np.zeros(20, dtype=np.int64)
    pred[[2, 3, 4]] = 1  # three hits near the first boundary, none near the second
    assert recall_at_seconds(gt, pred, frames) == pytest.approx(1 / (2 + 1e-5))


def test_recall_at_seconds_skips_unlabelled_neighbours():
    # the boundary is the last labelled shot; the table's extra rows have no prediction and are skipped
    gt = np.array([0, 0, 0, 0, 1])
    assert recall_at_seconds(gt, np.zeros(5, dtype=np.int64), shot_table([10] * 7)) == 0.0


def test_recall_at_seconds_needs_frames():
    with pytest.raises(ValueError, match="frame tables"):
        recall_at_seconds(np.array([1, 0]), np.array([1, 0]), None)


# --- cut_recall_precision (scene cuts as times, matched one to one) -------------------------------------------------


def test_cut_recall_precision_by_hand():
    # true cuts at 10 s and 20 s; found at 11, 12 (both near 10) and 30 (near nothing): one pair near 10 s only
    assert cut_recall_precision(np.array([10.0, 20.0]), np.array([11.0, 12.0, 30.0])) == (1 / 2, 1 / 3)
    # one found cut between two true ones within 3 s of both counts for one of them, not for both
    assert cut_recall_precision(np.array([10.0, 14.0]), np.array([12.0])) == (1 / 2, 1.0)
    # the window includes its edge, as the boundary hit rate's does (LGSS's Recall@3s does not)
    assert cut_recall_precision(np.array([10.0]), np.array([13.0])) == (1.0, 1.0)
    assert cut_recall_precision(np.array([10.0]), np.array([13.001])) == (0.0, 0.0)
    assert cut_recall_precision(np.array([10.0]), np.array([10.5]), seconds=0.25) == (0.0, 0.0)


def test_cut_recall_precision_finds_the_largest_matching():
    # Pairing the closest cuts first would pair 13 with 12 (1 s) and leave 10 with only 15.5 (5.5 s): one pair. The
    # largest matching pairs 10 with 12 and 13 with 15.5, in whichever order the cuts come.
    assert cut_recall_precision(np.array([13.0, 10.0]), np.array([15.5, 12.0])) == (1.0, 1.0)
    assert cut_recall_precision(np.array([10.0, 13.0]), np.array([12.0, 15.5])) == (1.0, 1.0)


def test_cut_recall_precision_with_nothing_to_match():
    assert cut_recall_precision(np.zeros(0), np.zeros(0)) == (1.0, 1.0)
    assert cut_recall_precision(np.array([5.0]), np.zeros(0)) == (0.0, 1.0)
    assert cut_recall_precision(np.zeros(0), np.array([5.0])) == (1.0, 0.0)


def test_cut_recall_precision_matches_a_maximum_bipartite_matching():
    """scipy's maximum bipartite matching of the graph "at most 3 s apart", on random cuts, as the oracle."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    rng = np.random.default_rng(0)
    for _ in range(200):
        true = rng.uniform(0, 60, size=int(rng.integers(1, 12)))
        found = rng.uniform(0, 60, size=int(rng.integers(1, 12)))
        graph = csr_matrix(np.abs(true[:, None] - found[None, :]) <= 3.0)
        pairs = int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())
        assert cut_recall_precision(true, found) == (pairs / len(true), pairs / len(found))


# --- evaluate -------------------------------------------------------------------------------------------------------


def test_evaluate_rejects_mismatched_movies():
    with pytest.raises(ValueError, match="tt002"):
        evaluate({"tt001": np.array([1, 0]), "tt002": np.array([1, 0])}, {"tt001": np.array([0.9, 0.1])})


def test_evaluate_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="tt001"):
        evaluate({"tt001": np.array([1, 0, 0])}, {"tt001": np.array([0.9, 0.1])})


def test_evaluate_rejects_short_frame_table():
    with pytest.raises(ValueError, match="tt001"):
        evaluate({"tt001": np.array([1, 0, 0])}, {"tt001": np.array([0.9, 0.1, 0.2])}, {"tt001": shot_table([5, 5])})


def test_evaluate_without_frames_is_shot_based():
    gt = {"a": np.array([0, 1, 0, 0, 1, 0])}
    prob = {"a": np.array([0.9, 0.1, 0.1, 0.1, 0.8, 0.1])}  # the shot-based hand case above: mIoU 0.625
    result = evaluate(gt, prob)
    assert result.miou_basis == "shots"
    assert result.recall_at_3s is None and result.recall_at_3s_true_fps is None
    assert result.miou == pytest.approx(0.625)
    partial = evaluate({**gt, "b": gt["a"]}, {**prob, "b": prob["a"]}, frames={"a": shot_table([10] * 7)})
    assert partial.miou_basis == "shots"
    assert partial.recall_at_3s is None


def test_evaluate_with_frames_and_per_movie_fps():
    lengths = [10] * 14
    lengths[7] = 63  # the borderline case: end frames of shots 6 and 8 are 73 frames apart
    gt = np.zeros(13, dtype=np.int64)
    gt[6] = 1
    prob = np.full(13, 0.1)
    prob[8] = 0.9
    frames = {"a": shot_table(lengths), "b": shot_table(lengths)}
    result = evaluate({"a": gt, "b": gt}, {"a": prob, "b": prob}, frames, fps={"a": 25.0})
    assert result.miou_basis == "frames"
    # true fps: movie a at 25 fps: 2.92 s, found; movie b falls back to 24 fps: 3.04 s, missed
    assert result.recall_at_3s_true_fps == pytest.approx((1 / (1 + 1e-5) + 0.0) / 2)
    # LGSS recall_time.py / BaSSL metric.py: every movie at 24 fps, so both miss
    assert result.recall_at_3s == 0.0
    single = evaluate({"a": gt}, {"a": prob}, {"a": frames["a"]}, fps=25.0)
    assert (single.recall_at_3s, single.recall_at_3s_true_fps) == (0.0, pytest.approx(1 / 1.00001))
    # the GT scene is shots 0-6 = frames (0, 70) (shots 7-12 follow the last boundary and are dropped); the
    # predicted one is shots 0-8 = (0, 143): one IoU, 70/143, both ways
    assert result.miou == pytest.approx(70 / 143)


def test_as_dict():
    result = evaluate({"a": np.array([1, 0])}, {"a": np.array([0.9, 0.1])})
    assert isinstance(result, SceneMetrics)
    values = result.as_dict()
    for key in ("ap_movie", "ap_pooled", "f1_movie", "f1_pooled", "precision_movie", "recall_movie", "miou"):
        assert isinstance(values[key], float)
    assert values["recall_at_3s"] is None and values["recall_at_3s_true_fps"] is None
    assert values["miou_basis"] == "shots"
    assert (values["movies"], values["shots"], values["threshold"]) == (1, 2, 0.5)
