"""Every combination of shot features and scene-boundary method, on the held-out test movies of `vseg demo` runs.

Features: colour histograms (vseg.eval.histogram), the random-init and the SCRL pre-trained encoder of the demo
(``DIR/embeddings/{random_init,pretrained}/``) and, where a run folder has them, ``DIR/embeddings/adapted/``.
Methods: the window scorer and optimal sequential grouping (training-free, as `vseg scenes` runs them: boundaries
at p > 0.5, scenes of at least 3 shots), and the BiLSTM boundary model (the demo's: its test predictions of seeds
100-102 for the encoders; for histograms the same config trained here on the histograms of the train and val
movies). Metrics: AP (where the method scores every shot), F1 and mIoU (SCRL / LGSS, per movie), and the recall
and precision of scene cuts within 3 s (vseg.eval.metrics.cut_recall_precision), averaged over movies, then over
the runs given (one per synthetic data seed).

    python benchmarks/scene_methods.py DIR [DIR ...] [--train] [--osg-variants] [--json FILE]

where each DIR is the output of ``vseg demo --out DIR`` (``--set synth.seed=1`` for a second data seed).
``--osg-variants`` adds OSG as the papers publish it, one choice at a time and as the ``scenes/osg_rotman*`` presets
(each with its own ``min_scene_shots``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vseg.config import ScenesConfig, load_config
from vseg.demo import SEGMENT_SEEDS, stage_configs
from vseg.eval.histogram import histogram_features
from vseg.eval.metrics import cut_recall_precision, cut_times, evaluate
from vseg.eval.segment import run_segment
from vseg.eval.training_free import training_free_boundaries
from vseg.io.embeddings import Embeddings, read_embeddings, write_npz
from vseg.io.movienet import MovieNetLayout, index_movie, read_labels, read_shot_table, read_split
from vseg.io.predictions import read_predictions, select_boundaries
from vseg.presets import preset

FPS = 24.0
MIN_SCENE_SHOTS = 3
FEATURES = ("histogram", "random_init", "pretrained", "adapted")
METHODS = ("window", "osg", "bilstm")
OSG_VARIANTS = {  # the papers' choices (vseg.eval.osg), one at a time on vseg's OSG, then all together
    "osg, K from singular values": {"osg.scene_count": "singular_values"},
    "osg, Euclidean distance": {"osg.distance": "euclidean"},
    "osg, (1 - cos) / 2 distance": {"osg.distance": "cosine"},
    "osg, additive cost": {"osg.cost": "additive"},
    "osg, no scene-length bounds": {"min_scene_shots": 1, "osg.max_scene_shots": None},
}
OSG_PRESETS = ("osg_rotman", "osg_rotman_nrm")


def training_free_configs(variants: bool) -> dict[str, ScenesConfig]:
    """The window scorer and OSG as `vseg scenes` runs them; with ``variants``, the OSG variants and presets too."""
    configs = {method: ScenesConfig(method=method, min_scene_shots=MIN_SCENE_SHOTS) for method in ("window", "osg")}
    if variants:
        for name, values in OSG_VARIANTS.items():
            configs[name] = load_config(ScenesConfig, None, values={"min_scene_shots": MIN_SCENE_SHOTS, **values})
        for name in OSG_PRESETS:
            configs[name] = load_config(ScenesConfig, preset(f"scenes/{name}"))
    return configs


def _histograms(run: Path, layout: MovieNetLayout, splits: tuple[str, ...]) -> Path:
    """Histogram features of ``splits`` as embeddings files under ``run/embeddings/histogram/`` (made once)."""
    folder = run / "embeddings" / "histogram"
    for split, movies in read_split(layout.split_file).items():
        path = folder / f"{split}.npz"
        if path.is_file() or split not in splits:
            continue
        labels = {m: read_labels(layout.label_file(m)) for m in movies}  # every shot but the last, as vseg embed
        features = {m: histogram_features(index_movie(layout.keyframes / m), len(labels[m])) for m in movies}
        tables = {m: read_shot_table(layout.shot_table_file(m))[: len(labels[m])] for m in movies}
        write_npz(path, Embeddings.concat(features, labels, tables))
    return folder


def _bilstm(run: Path, feature: str, train: bool) -> list[dict]:
    """The test predictions of the demo's boundary models on ``feature`` (with ``train``, trained here where missing:
    for histograms)."""
    config = stage_configs()["segment"]
    predictions = []
    for seed in range(config.train.seed, config.train.seed + SEGMENT_SEEDS):
        out = run / "segment" / feature / f"seed{seed}"
        if not (out / "predictions.json").is_file():
            if not train:
                return []
            files = [run / "embeddings" / feature / f"{split}.npz" for split in ("train", "val", "test")]
            seeded = config.model_copy(deep=True)
            seeded.train.seed = seed
            run_segment(*files, out, seeded, "auto")
        predictions.append({m: p.prob for m, p in read_predictions(out / "predictions.json").items()})
    return predictions


def _scores(
    prob: dict, labels: dict, tables: dict, threshold: float, has_ap: bool, min_shots: int = MIN_SCENE_SHOTS
) -> dict[str, float]:
    """The metrics of one method's per-movie boundary probabilities (scenes of at least ``min_shots`` shots)."""
    binary, recalls, precisions = {}, [], []
    for movie, p in prob.items():
        ends = select_boundaries(p, threshold, min_shots)
        binary[movie] = np.zeros(len(p))
        binary[movie][ends] = 1.0
        true = cut_times(np.flatnonzero(labels[movie] == 1), tables[movie], FPS)
        recall, precision = cut_recall_precision(true, cut_times(ends, tables[movie], FPS))
        recalls.append(recall)
        precisions.append(precision)
    metrics = evaluate(labels, binary, tables, FPS)
    ap = evaluate(labels, prob, tables, FPS).ap_movie if has_ap else float("nan")
    return {"ap": ap, "f1": metrics.f1_movie, "miou": metrics.miou, "recall_3s": float(np.mean(recalls)),
            "precision_3s": float(np.mean(precisions))}  # fmt: skip


def measure(run: Path, train: bool, variants: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics of every feature x method on the test movies of one demo run folder."""
    layout = MovieNetLayout(run / "movienet")
    _histograms(run, layout, ("train", "val", "test") if train else ("test",))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for feature in FEATURES:
        test_file = run / "embeddings" / feature / "test.npz"
        if not test_file.is_file():
            continue
        test = read_embeddings(test_file)
        features = dict(test)
        labels = test.per_movie(test.labels)
        tables = {m: read_shot_table(layout.shot_table_file(m))[: len(f)] for m, f in features.items()}
        rows = {}
        for method, config in training_free_configs(variants).items():
            prob = {m: training_free_boundaries(f, config)[0] for m, f in features.items()}
            rows[method] = _scores(prob, labels, tables, 0.5, method == "window", config.min_scene_shots)
        seeds = [_scores(p, labels, tables, 0.5, True) for p in _bilstm(run, feature, train)]
        if seeds:
            rows["bilstm"] = {key: float(np.mean([s[key] for s in seeds])) for key in seeds[0]}
        results[feature] = rows
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="vseg demo output folders")
    parser.add_argument("--json", type=Path, help="also write the table here")
    parser.add_argument("--train", action="store_true", help="train the boundary models a run lacks (histograms)")
    parser.add_argument("--osg-variants", action="store_true", help="add OSG as the papers publish it")
    args = parser.parse_args()
    per_run = [measure(run, args.train, args.osg_variants) for run in args.runs]
    methods = list(training_free_configs(args.osg_variants)) + ["bilstm"]
    print("| features | method | AP | F1 | mIoU | recall 3 s | precision 3 s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    table = {}
    for feature in FEATURES:
        for method in methods:
            found = [r[feature][method] for r in per_run if method in r.get(feature, {})]
            if not found:
                continue
            mean = {key: float(np.mean([f[key] for f in found])) for key in found[0]}
            table[f"{feature}/{method}"] = mean
            cells = ["-" if np.isnan(v) else f"{v:.3f}" for v in mean.values()]
            print(f"| {feature} | {method} | {' | '.join(cells)} |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
