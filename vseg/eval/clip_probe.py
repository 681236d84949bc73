"""``vseg probe``: what a frozen encoder learned, read off labelled embeddings by a k-NN and a linear classifier.

Both probes take the train and test embeddings of ``vseg embed --clips`` (one row per video, its class label),
e.g. UCF101 or HMDB51 split 1, and report top-1 accuracy on the test set:

- k-NN (Wu et al., CVPR 2018, Sec. 3.4): features centred on the train mean and L2-normalised; a test video's
  ``k`` most similar train videos (cosine) vote for their class with weight ``exp(similarity / temperature)``.
  ``k = 1`` is the nearest-neighbour retrieval score that video SSL papers report (CoCLR, Sec. 4).
- linear: multinomial logistic regression (scikit-learn, L-BFGS) on standardised features; the backbone stays
  frozen, unlike the reference's "linear fine-tuning", whose BN statistics kept updating (HiCo's ``ONLY_LINEAR``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vseg.config import ProbeConfig
from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.embeddings import Embeddings, read_embeddings


def _normalise(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    x = x - mean
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_predict(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, k: int = 20, temperature: float = 0.07
) -> np.ndarray:
    """Weighted k-NN class of each test row (see the module docstring); ties go to the smaller class index."""
    mean = train.mean(0, keepdims=True)
    similarity = _normalise(test, mean) @ _normalise(train, mean).T
    k = min(k, len(train))
    neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    weights = np.exp(np.take_along_axis(similarity, neighbours, axis=1) / temperature)
    classes = int(train_labels.max()) + 1
    votes = np.zeros((len(test), classes))
    np.add.at(votes, (np.arange(len(test))[:, None], train_labels[neighbours]), weights)
    return votes.argmax(1)


def linear_predict(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, c: float = 1.0, max_iter: int = 1000
) -> np.ndarray:
    """Multinomial logistic regression on standardised features: the class of each test row."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train, train_labels)
    return model.predict(test)


@dataclass
class ProbeReport:
    knn_top1: float  # fractions in [0, 1]
    nn_top1: float
    linear_top1: float
    chance: float  # share of the most frequent test class
    train_videos: int
    test_videos: int
    classes: int
    k: int


def _labelled(embeddings: Embeddings, path: Path) -> np.ndarray:
    if embeddings.labels is None:
        raise DataError(path, "has no labels: embed a list with 'path label' lines")
    if np.any(np.diff(embeddings.offsets) != 1):
        raise DataError(path, "not clip embeddings (one row per video): probe works on vseg embed --clips output")
    return embeddings.labels


def run_probe(train_file: Path, test_file: Path, config: ProbeConfig, out: Path | None = None) -> ProbeReport:
    """k-NN (k and 1) and linear top-1 of ``test_file`` given ``train_file``; also written to ``out`` as JSON."""
    train, test = read_embeddings(train_file), read_embeddings(test_file)
    train_labels, test_labels = _labelled(train, Path(train_file)), _labelled(test, Path(test_file))
    if train.dim != test.dim:
        raise DataError(test_file, f"features are {test.dim}-d, the train set's are {train.dim}-d")
    if len(np.unique(train_labels)) < 2:
        raise DataError(train_file, "needs at least two classes")
    knn = knn_predict(train.features, train_labels, test.features, config.k, config.temperature)
    nn = knn_predict(train.features, train_labels, test.features, 1, config.temperature)
    linear = linear_predict(train.features, train_labels, test.features, config.linear_c, config.max_iter)
    report = ProbeReport(
        knn_top1=float((knn == test_labels).mean()),
        nn_top1=float((nn == test_labels).mean()),
        linear_top1=float((linear == test_labels).mean()),
        chance=float(np.bincount(test_labels).max() / len(test_labels)),
        train_videos=len(train_labels),
        test_videos=len(test_labels),
        classes=len(np.unique(np.concatenate([train_labels, test_labels]))),
        k=min(config.k, len(train_labels)),
    )
    if out is not None:
        atomic.write_text(Path(out), json.dumps(asdict(report), indent=2) + "\n")
    return report
