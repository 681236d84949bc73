"""``vseg segment``: SCRL's BiLSTM scene-boundary protocol on frozen shot embeddings (SCRL's ``SceneSeg/main.py``).

Training follows ``SceneSeg/main.py``: windows of 40 shots at a random per-movie offset each epoch with the scene
shuffle (:mod:`vseg.data.windows`), cross-entropy with class weights [1, 4] over every shot of every window, SGD
(lr 0.1, momentum 0.9, weight decay 1e-4) for 200 epochs with the lr x0.1 from epoch 160 and again from epoch 180
(1-based, :func:`epoch_lr`). From epoch 100
the model is scored on val every epoch; whenever the mean per-movie F1 on val strictly improves, the test set is
scored and that model, its test metrics and its test probabilities are kept. Scoring uses sliding windows in which
every shot is scored exactly once. Two changes: the first validation always selects (the reference keeps nothing if
val F1 never rises above 0), and the last epoch is always validated (so a short run selects too).

Output folder::

    OUT/config.yaml            the effective config
    OUT/metrics.jsonl          a row per epoch: loss, lr, seconds, and the val metrics where scored
    OUT/metrics.json           the test metrics of the selected model (fractions), its val metrics and epoch
    OUT/predictions.json       test probabilities and labels of the selected model (vseg segment eval reads it)
    OUT/model.pth              the selected model (vseg segment predict reads it)
    OUT/checkpoints/last.pth   for --resume auto
"""

from __future__ import annotations

import bisect
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vseg import __version__, ui
from vseg.config import SegmentConfig, SegmentEvalConfig, SegmentModelConfig, SegmentOptimConfig, config_to_yaml
from vseg.data.windows import central_scores, inference_windows, training_windows
from vseg.errors import DataError, VsegError
from vseg.eval.metrics import REFERENCE_FPS, SceneMetrics, evaluate
from vseg.io import atomic
from vseg.io import checkpoints as ckpt
from vseg.io.checkpoints import fill_weights
from vseg.io.embeddings import Embeddings, read_embeddings
from vseg.io.movienet import read_shot_frames
from vseg.io.predictions import (
    MoviePrediction,
    read_predictions,
    scenes_from_probabilities,
    write_predictions,
    write_scene_lists,
)
from vseg.io.runs import CONFIG_FILE, MetricsLog, check_resumable, find_resume_checkpoint
from vseg.models.boundary import BoundaryBiLSTM, boundary_probability, reference_name
from vseg.runtime import capture_rng, choose_device, restore_rng

MODEL_FORMAT = "vseg-segmenter/1"
MODEL_FILE = "model.pth"
METRICS_JSON = "metrics.json"
PREDICTIONS_FILE = "predictions.json"
STD_FLOOR = 1e-6  # added to every feature's standard deviation with data.standardize (constant features stay 0)


# ---------------------------------------------------------------------------------------------------- data


def attach_shot_tables(embeddings: Embeddings, folder: Path | None) -> Embeddings:
    """Give ``embeddings`` the frame rows of ``folder/<imdb>.txt`` when it has none of its own."""
    if embeddings.frames is not None or folder is None:
        return embeddings
    embeddings.frames = np.concatenate(
        [read_shot_frames(Path(folder) / f"{movie}.txt", len(shots)) for movie, shots in embeddings]
    )
    return embeddings


def load_split(path: Path, shot_tables: Path | None = None, labelled: bool = True) -> Embeddings:
    """An embedding file (``.npz`` or SCRL ``.pkl``), with shot tables attached; labels required if ``labelled``."""
    embeddings = read_embeddings(path)
    if labelled and not embeddings.labelled:
        raise DataError(path, "has no labels; training and scoring need labelled embeddings (label318/)")
    if not embeddings.movies:
        raise DataError(path, "holds no movies")
    return attach_shot_tables(embeddings, shot_tables)


# --------------------------------------------------------------------------------------------- the model


def build_model(config: SegmentConfig, input_dim: int) -> BoundaryBiLSTM:
    return BoundaryBiLSTM(input_dim=input_dim, **config.model.model_dump())


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, embeddings: Embeddings, seq_len: int, device: torch.device, windows_per_batch: int = 512
) -> dict[str, np.ndarray]:
    """Boundary probability of every shot of every movie: sliding windows, the central half of each kept."""
    model.eval()
    features = torch.from_numpy(embeddings.features)
    per_movie = [embeddings.offsets[i] + inference_windows(len(f), seq_len) for i, (_, f) in enumerate(embeddings)]
    rows = torch.from_numpy(np.concatenate(per_movie))
    scores = torch.cat(
        [
            boundary_probability(model(features[rows[i : i + windows_per_batch]].to(device))).cpu()
            for i in range(0, len(rows), windows_per_batch)
        ]
    ).numpy()
    result, first = {}, 0
    for (movie, shots), windows in zip(embeddings, per_movie, strict=True):
        result[movie] = central_scores(scores[first : first + len(windows)], len(shots))
        first += len(windows)
    return result


def score(embeddings: Embeddings, prob: dict[str, np.ndarray], config: SegmentConfig) -> SceneMetrics:
    """Every metric of ``prob`` against the labels of ``embeddings`` (frame-based where it carries frames)."""
    frames = embeddings.per_movie(embeddings.frames) or None
    known = embeddings.movie_fps()
    fps = {movie: known.get(movie, config.data.fps) for movie in embeddings.movies}
    return evaluate(embeddings.per_movie(embeddings.labels), prob, frames, fps, config.train.threshold)


def _predictions(embeddings: Embeddings, prob: dict[str, np.ndarray]) -> dict[str, MoviePrediction]:
    labels, frames = embeddings.per_movie(embeddings.labels), embeddings.per_movie(embeddings.frames)
    fps = embeddings.movie_fps()
    return {m: MoviePrediction(prob[m], labels.get(m), frames.get(m), fps.get(m)) for m in embeddings.movies}


def save_model(path: Path, model: nn.Module, config: SegmentConfig, epoch: int, val: SceneMetrics | None) -> None:
    ckpt.save_checkpoint(
        path,
        {
            "format": MODEL_FORMAT,
            "state_dict": model.state_dict(),
            "input_dim": model.input_dim,
            "config": config.model_dump(mode="json"),
            "epoch": epoch,
            "val": val.as_dict() if val else None,
            "vseg_version": __version__,
        },
    )


def load_model(path: Path) -> tuple[BoundaryBiLSTM, SegmentConfig]:
    """A boundary model, in eval mode, with its config: a ``vseg segment`` ``model.pth``, or a SceneSeg BiLSTM
    checkpoint (``{'state_dict': ...}`` with ``BiLSTM_protocol.py``'s names, as SCRL released them)."""
    saved = ckpt.load_checkpoint(path)
    state = saved.get("state_dict")
    if saved.get("format") != MODEL_FORMAT and isinstance(state, dict) and "embed_fc.weight" in state:
        return load_reference_model(path, state)
    if saved.get("format") != MODEL_FORMAT:
        raise DataError(
            path,
            f"not a vseg segment model (format {saved.get('format')!r}, expected {MODEL_FORMAT!r}) nor a SceneSeg "
            "BiLSTM checkpoint (a 'state_dict' with embed_fc.weight)",
        )
    config = SegmentConfig.model_validate(saved["config"])
    model = build_model(config, int(saved["input_dim"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval(), config


def reference_sizes(path: Path, state: dict[str, torch.Tensor]) -> tuple[int, SegmentModelConfig]:
    """Input width and model sizes of a SceneSeg BiLSTM, read from its weights (SCRL's ``BiLSTM_protocol.py``)."""
    try:
        project, recurrent, head = state["embed_fc.weight"], state["lstm.weight_hh_l0"], state["fc1.weight"]
    except KeyError as exc:
        raise DataError(path, f"SceneSeg BiLSTM weight missing: {exc.args[0]}") from None
    layers = sum(1 for name in state if re.fullmatch(r"lstm\.weight_ih_l\d+", name))
    sizes = SegmentModelConfig(
        hidden=project.shape[0], lstm_hidden=recurrent.shape[1], lstm_layers=layers, head_hidden=head.shape[0]
    )
    return project.shape[1], sizes


def load_reference_model(path: Path, state: dict[str, torch.Tensor]) -> tuple[BoundaryBiLSTM, SegmentConfig]:
    """A SceneSeg BiLSTM checkpoint as our model: every tensor mapped (:func:`reference_name`) and shape-checked.

    The sizes come from the weights; windows, threshold and dropouts are the reference's defaults (``--seq-len 40``,
    as SCRL's README trains). DataError naming the first unexpected entry, or the missing or misshapen ones.
    """
    input_dim, sizes = reference_sizes(path, state)
    config = SegmentConfig(model=sizes)
    model = build_model(config, input_dim)
    own = model.state_dict()
    names = {reference_name(name): name for name in own if reference_name(name)}
    unexpected = sorted(set(state) - set(names))
    if unexpected:
        raise DataError(path, f"unexpected entry {unexpected[0]} for a SceneSeg BiLSTM ({len(unexpected)} in all)")
    expected = {theirs: own[mine] for theirs, mine in names.items()}
    weights = fill_weights(path, expected, state, list(names), "", "BiLSTM")
    model.load_state_dict({**own, **{mine: weights[theirs] for theirs, mine in names.items()}})
    return model.eval(), config


# ------------------------------------------------------------------------------------------------ training


@dataclass
class SegmentReport:
    out: Path
    epochs: int
    start_epoch: int
    best_epoch: int | None
    test: SceneMetrics | None
    val: SceneMetrics | None
    windows_per_epoch: int
    epoch_seconds: float
    seconds: float


def epoch_lr(optim: SegmentOptimConfig, epoch: int) -> float:
    """The lr of 1-based ``epoch``: ``lr * gamma ** (milestones <= epoch)``.

    ``SceneSeg/main.py::adjust_learning_rate`` counts epochs from 1 and multiplies by 0.1 for each milestone with
    ``epoch >= milestone`` (SCRL's ``SceneSeg/main.py``): epochs 1-159 at 0.1, 160-179 at 0.01, 180-200 at 0.001.
    """
    return optim.lr * optim.gamma ** bisect.bisect_right(sorted(optim.milestones), epoch)


def _validates(config: SegmentConfig, epoch: int) -> bool:
    """Whether the model is scored on val after 1-based ``epoch``."""
    train = config.train
    return epoch == train.epochs or (epoch >= train.val_from and (epoch - train.val_from) % train.val_every == 0)


def run_segment(
    train_path: Path,
    val_path: Path | None,
    test_path: Path | None,
    out: Path,
    config: SegmentConfig,
    resume: str | None = None,
) -> SegmentReport:
    """Train the boundary model on ``train_path`` and select it on ``val_path``; score ``test_path`` (see above)."""
    started = time.perf_counter()
    out = Path(out)
    tables = config.data.shot_tables
    train = load_split(train_path, tables)
    val = load_split(val_path, tables) if val_path else None
    test = load_split(test_path, tables) if test_path else None
    for path, split in ((val_path, val), (test_path, test)):
        if split is not None and split.dim != train.dim:
            raise DataError(path, f"embeddings are {split.dim}-d, the training set's are {train.dim}-d")
    windows_per_epoch = len(training_windows(train.offsets, train.labels, config.data.seq_len, 0.0, _rng(config, 0))[0])
    if windows_per_epoch == 0:
        raise DataError(train_path, f"no movie has {config.data.seq_len} shots, the length of one training window")
    resume_from = find_resume_checkpoint(out, resume)
    device = choose_device(config.train.device, 0)
    torch.manual_seed(config.train.seed)
    model = build_model(config, train.dim)
    if config.data.standardize:
        model.set_input_statistics(
            torch.from_numpy(train.features.mean(0)), torch.from_numpy(train.features.std(0) + STD_FLOOR)
        )
    model = model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.optim.lr, momentum=config.optim.momentum, weight_decay=config.optim.weight_decay
    )
    criterion = nn.CrossEntropyLoss(weight=torch.tensor(config.optim.class_weights, dtype=torch.float32, device=device))
    best: dict[str, Any] = {"epoch": None, "f1": -1.0, "val": None, "test": None}
    start_epoch = 0
    if resume_from is not None:
        start_epoch, best = _restore(resume_from, model, optimizer, config, device)
    atomic.write_text(out / CONFIG_FILE, config_to_yaml(config, "segment"))
    features = torch.from_numpy(train.features).to(device)
    log = MetricsLog(out, start_epoch, tensorboard=False)
    epoch_seconds = []
    try:
        with ui.progress("segment", (config.train.epochs - start_epoch) * windows_per_epoch, "windows") as advance:
            for epoch in range(start_epoch, config.train.epochs):
                tick = time.perf_counter()
                lr = epoch_lr(config.optim, epoch + 1)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = train_epoch(model, optimizer, criterion, features, train, config, epoch, advance)
                row = {"event": "epoch", "epoch": epoch + 1, "loss": loss, "lr": lr}
                if val is not None and _validates(config, epoch + 1):
                    metrics = score(val, predict_probabilities(model, val, config.data.seq_len, device), config)
                    row.update({f"val_{k}": v for k, v in metrics.as_dict().items() if isinstance(v, float)})
                    if metrics.f1_movie > best["f1"]:
                        best = _select(model, config, epoch + 1, metrics, test, out, device)
                epoch_seconds.append(time.perf_counter() - tick)
                log.write({**row, "seconds": epoch_seconds[-1]}, epoch + 1)
                if (epoch + 1) % config.train.checkpoint_every == 0 or epoch + 1 == config.train.epochs:
                    _save(out, model, optimizer, config, epoch + 1, best)
                advance(0, status=f"loss {loss:.3f}" + _best_status(best))
    finally:
        log.close()
    if val is None and start_epoch < config.train.epochs:  # no model selection: keep the last epoch
        best = _select(model, config, config.train.epochs, None, test, out, device)
        _save(out, model, optimizer, config, config.train.epochs, best)
    _write_metrics(out, best, config)
    return SegmentReport(
        out=out,
        epochs=config.train.epochs,
        start_epoch=start_epoch,
        best_epoch=best["epoch"],
        test=_metrics_from(best["test"]),
        val=_metrics_from(best["val"]),
        windows_per_epoch=windows_per_epoch,
        epoch_seconds=float(np.mean(epoch_seconds)) if epoch_seconds else 0.0,
        seconds=time.perf_counter() - started,
    )


def _rng(config: SegmentConfig, epoch: int) -> np.random.Generator:
    """The windows of an epoch depend on (seed, epoch) alone, so a resumed run sees the windows it would have seen."""
    return np.random.default_rng((config.train.seed, epoch))


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    features: torch.Tensor,
    train: Embeddings,
    config: SegmentConfig,
    epoch: int,
    advance,
) -> float:
    """One pass over this epoch's windows in random order, ``data.batch_size`` at a time; returns the mean loss."""
    model.train()
    rng = _rng(config, epoch)
    rows, targets = training_windows(train.offsets, train.labels, config.data.seq_len, config.data.shuffle_rate, rng)
    order = rng.permutation(len(rows))
    rows, targets = torch.from_numpy(rows[order]), torch.from_numpy(targets[order])
    total, batches = torch.zeros((), device=features.device), 0
    for first in range(0, len(rows), config.data.batch_size):
        batch = rows[first : first + config.data.batch_size].to(features.device)
        target = targets[first : first + config.data.batch_size].to(features.device)
        loss = criterion(model(features[batch]).reshape(-1, 2), target.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach()
        batches += 1
        advance(len(batch))
    return float(total) / max(batches, 1)


def _select(
    model: nn.Module,
    config: SegmentConfig,
    epoch: int,
    val: SceneMetrics | None,
    test: Embeddings | None,
    out: Path,
    device: torch.device,
) -> dict[str, Any]:
    """Keep the model of ``epoch``: score the test set, write model.pth and the test predictions."""
    test_metrics = None
    if test is not None:
        prob = predict_probabilities(model, test, config.data.seq_len, device)
        test_metrics = score(test, prob, config)
        write_predictions(out / PREDICTIONS_FILE, _predictions(test, prob))
    save_model(out / MODEL_FILE, model, config, epoch, val)
    return {
        "epoch": epoch,
        "f1": val.f1_movie if val else -1.0,
        "val": val.as_dict() if val else None,
        "test": test_metrics.as_dict() if test_metrics else None,
    }


def _best_status(best: dict[str, Any]) -> str:
    if best["val"] is None:
        return ""
    return f" val F1 {best['val']['f1_movie']:.3f} @{best['epoch']}"


def _metrics_from(values: dict[str, Any] | None) -> SceneMetrics | None:
    return SceneMetrics(**values) if values else None


def _save(
    out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: SegmentConfig, epoch: int, best: dict
) -> None:
    ckpt.save_checkpoint(
        out / "checkpoints" / ckpt.LAST,
        {
            "format": ckpt.FORMAT,
            "method": "segment",
            "epoch": epoch,
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "best": best,
            "rng": [capture_rng(model_device(model))],
            "config": config.model_dump(mode="json"),
            "vseg_version": __version__,
        },
    )


def _restore(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: SegmentConfig, device: torch.device
) -> tuple[int, dict[str, Any]]:
    saved = ckpt.load_checkpoint(path)
    if saved.get("method") != "segment":
        raise DataError(path, f"a {saved.get('method')!r} checkpoint cannot resume a vseg segment run")
    check_resumable(saved.get("config", {}), config, path)
    model.load_state_dict(saved["state_dict"])
    optimizer.load_state_dict(saved["optimizer"])
    restore_rng(saved["rng"][0], device)
    ui.info(f"resuming from {path}: {saved['epoch']} epochs done")
    return int(saved["epoch"]), saved["best"]


def _write_metrics(out: Path, best: dict[str, Any], config: SegmentConfig) -> None:
    """metrics.json: the selected model's test metrics at the top level, then its val metrics and how it was chosen."""
    selected = best["test"] or {}
    payload = {
        **selected,
        "split": "test" if best["test"] else None,
        "epoch": best["epoch"],
        "selected_by": "best val f1_movie" if best["val"] else "last epoch (no val set)",
        "fps_default": config.data.fps,
        "val": best["val"],
    }
    atomic.write_text(out / METRICS_JSON, json.dumps(payload, indent=1) + "\n")


# ------------------------------------------------------------------------------------- eval and predict


def evaluate_predictions(
    predictions: dict[str, MoviePrediction], threshold: float = 0.5, fps: float = REFERENCE_FPS
) -> SceneMetrics:
    """Every metric of saved probabilities at ``threshold``; frame-based where every movie carries frames."""
    unlabelled = [movie for movie, p in predictions.items() if p.label is None]
    if unlabelled:
        raise ValueError(f"movies without labels cannot be scored: {', '.join(unlabelled[:5])}")
    frames = {m: p.frames for m, p in predictions.items() if p.frames is not None}
    rates = {m: p.fps if p.fps is not None else fps for m, p in predictions.items()}
    return evaluate(
        {m: p.label for m, p in predictions.items()},
        {m: p.prob for m, p in predictions.items()},
        frames if len(frames) == len(predictions) else None,
        rates,
        threshold,
    )


def _model_and_embeddings(
    model_path: Path, embeddings_path: Path, shot_tables: Path | None, labelled: bool
) -> tuple[BoundaryBiLSTM, SegmentConfig, Embeddings]:
    """A boundary model (:func:`load_model`) and embeddings of the width it takes."""
    model, config = load_model(model_path)
    embeddings = load_split(embeddings_path, shot_tables, labelled=labelled)
    if embeddings.dim != model.input_dim:
        raise DataError(embeddings_path, f"embeddings are {embeddings.dim}-d, the model takes {model.input_dim}-d")
    return model, config, embeddings


def evaluate_model(
    model_path: Path,
    embeddings_path: Path,
    threshold: float = 0.5,
    fps: float = REFERENCE_FPS,
    shot_tables: Path | None = None,
    device: str = "auto",
) -> SceneMetrics:
    """Every metric of a boundary model (ours or a SceneSeg checkpoint) on labelled embeddings, scored as
    ``vseg segment`` scores its test set (sliding windows, :func:`score`)."""
    model, config, embeddings = _model_and_embeddings(model_path, embeddings_path, shot_tables, labelled=True)
    config.train.threshold, config.data.fps = threshold, fps
    target = choose_device(device, 0)
    return score(embeddings, predict_probabilities(model.to(target), embeddings, config.data.seq_len, target), config)


def run_segment_eval(
    config: SegmentEvalConfig,
    pred: Path | None = None,
    model_path: Path | None = None,
    embeddings_path: Path | None = None,
    shot_tables: Path | None = None,
    out: Path | None = None,
) -> SceneMetrics:
    """``vseg segment eval``: every metric of saved probabilities (``pred``, a predictions.json) or of a boundary model
    on labelled embeddings (``model_path`` with ``embeddings_path``); also written to the JSON file ``out``."""
    if (pred is None) == (model_path is None) or (model_path is not None) != (embeddings_path is not None):
        raise VsegError("vseg segment eval needs either --pred PREDICTIONS or --model MODEL with --embeddings FILE")
    if model_path is not None:
        metrics = evaluate_model(model_path, embeddings_path, config.threshold, config.fps, shot_tables)
    else:
        try:
            metrics = evaluate_predictions(read_predictions(pred), config.threshold, config.fps)
        except ValueError as exc:
            raise VsegError(f"{pred}: {exc}") from None
    if out is not None:
        atomic.write_text(out, json.dumps(metrics.as_dict(), indent=1) + "\n")
    return metrics


@dataclass
class PredictReport:
    out: Path
    movies: int
    shots: int
    scenes: int
    threshold: float
    files: list[Path]


def run_segment_predict(
    model_path: Path,
    embeddings_path: Path,
    out: Path,
    threshold: float | None = None,
    shot_tables: Path | None = None,
    device: str = "auto",
) -> PredictReport:
    """Boundary probabilities and scene lists of (unlabelled) movies: ``predictions.json``, ``scenes.json``/``.csv``."""
    model, config, embeddings = _model_and_embeddings(model_path, embeddings_path, shot_tables, labelled=False)
    threshold = config.train.threshold if threshold is None else threshold
    target = choose_device(device, 0)
    prob = predict_probabilities(model.to(target), embeddings, config.data.seq_len, target)
    frames, fps = embeddings.per_movie(embeddings.frames), embeddings.movie_fps()
    scenes = [
        scene
        for movie in embeddings.movies
        for scene in scenes_from_probabilities(movie, prob[movie], threshold, frames.get(movie), fps.get(movie))
    ]
    out = Path(out)
    write_predictions(out / PREDICTIONS_FILE, _predictions(embeddings, prob))
    files = [out / PREDICTIONS_FILE, *write_scene_lists(out, scenes)]
    return PredictReport(out, len(embeddings.movies), len(embeddings.features), len(scenes), threshold, files)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
