"""``vseg segment bassl``: BaSSL's fine-tuning protocol, beside SCRL's BiLSTM (:mod:`vseg.eval.segment`).

BaSSL's published AP comes from fine-tuning its pre-trained contextual relation network, not a fresh BiLSTM
(``bassl/finetune/``): for every labelled shot, the window of its ``2 * 8 + 1`` neighbours' frozen features
(``NeighborShotSampler``, indices clipped at the movie's ends) goes through the CRN; a linear head on the centre
shot's output predicts boundary or not. The loss is cross-entropy with the two classes weighted equally per batch; Adam
with lr 2.5e-6 per 256 windows (1e-5 at the batch of 1024), no weight decay, a cosine to 0 over 20 epochs (no
warm-up), the incomplete last batch dropped; fp32. After the last epoch the test set is scored with BaSSL's metrics
(:func:`vseg.eval.metrics.bassl_scores`): AP, F1, mIoU, Recall, Recall@3s (and AUC, Acc), in percent.

The inputs are shot features from ``vseg embed`` (a BaSSL checkpoint gives BaSSL's 2048-d ones; with ``--data`` the
keyframes of a MovieNet root are embedded first by ``--init``'s encoder, :func:`embed_splits`) and, with ``--init``,
the BaSSL checkpoint whose CRN is fine-tuned: a vseg bassl run's or a released Lightning one; every CRN tensor is
mapped and shape-checked. Without ``--init`` a fresh CRN is trained (BaSSL's shot-level baselines, lr 2.5e-5).

Output folder::

    OUT/config.yaml      the effective config
    OUT/metrics.json     {"test": {"AP": ..., ...}, "val": {...}} (val when given), epochs, init
    OUT/model.pth        the fine-tuned CRN and head (state_dict crn.*, head_sbd.*)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vseg import ui
from vseg.config import BasslSegmentConfig, EmbedConfig, config_to_yaml
from vseg.errors import ConfigError, DataError
from vseg.eval.embed import run_embed
from vseg.eval.metrics import bassl_scores
from vseg.eval.segment import load_split
from vseg.io import atomic
from vseg.io.checkpoints import FORMAT, bassl_weights, fill_all_weights, load_checkpoint, method_note, save_checkpoint
from vseg.io.embeddings import Embeddings
from vseg.models.bassl import BoundaryCRN, ContextualRelationNetwork, CrnConfig, balanced_cross_entropy
from vseg.runtime import choose_device

CRN_CONSTANTS = ("attention_mask",)  # BaSSL's TransformerCRN buffer of zeros (every position attends to every other)


@dataclass
class BasslSegmentReport:
    out: Path
    init: str
    epochs: int
    steps: int
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    seconds: float = 0.0


def linear_warmup_decay(step: int, warmup: int, total: int) -> float:
    """pl_bolts' ``linear_warmup_decay(warmup, total, cosine=True)``, BaSSL's LambdaLR factor at ``step``: linear from
    0 over ``warmup`` steps, then a cosine from 1 to 0 over the rest."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def neighbour_windows(shots: int, neighbor_size: int) -> np.ndarray:
    """``shots x (2N + 1)`` indices: shot i and its N neighbours on each side, clipped to the movie
    (``NeighborShotSampler``)."""
    offsets = np.arange(-neighbor_size, neighbor_size + 1)
    return np.clip(np.arange(shots)[:, None] + offsets[None], 0, shots - 1)


def all_windows(embeddings: Embeddings, neighbor_size: int) -> np.ndarray:
    """The windows of every shot of every movie, as rows of ``embeddings.features``."""
    return np.concatenate(
        [embeddings.offsets[i] + neighbour_windows(len(f), neighbor_size) for i, (_, f) in enumerate(embeddings)]
    )


def crn_from_checkpoint(path: Path, config: BasslSegmentConfig) -> ContextualRelationNetwork:
    """The pre-trained CRN of a BaSSL checkpoint, its sizes read from the weights; DataError naming the file for any
    other checkpoint, or a CRN tensor missing, misshapen or unknown."""
    checkpoint = load_checkpoint(path)
    weights = bassl_weights(checkpoint, path)
    if weights is None:
        raise DataError(path, f"{method_note(checkpoint)}not a BaSSL checkpoint (no shot_encoder.conv1.weight)")
    state = {k: v for k, v in weights.crn.items() if k not in CRN_CONSTANTS}
    prefix = f"{weights.prefix}crn."
    if "shot_embedding.shot_embedding.weight" not in state:
        raise DataError(path, f"has no CRN ({prefix}shot_embedding.shot_embedding.weight): a shot-level model")
    hidden, input_dim = state["shot_embedding.shot_embedding.weight"].shape
    layers = len({name.split(".")[2] for name in state if name.startswith("encoder.layer.")})
    intermediate = state.get("encoder.layer.0.intermediate.dense.weight", torch.zeros(config.crn_intermediate, 0))
    positions = state.get("shot_embedding.position_embedding.weight", torch.zeros(2 * config.neighbor_size + 2, 0))
    if len(positions) != 2 * config.neighbor_size + 2:
        raise DataError(
            path, f"its CRN has {len(positions)} positions, windows of neighbor_size {config.neighbor_size} need "
            f"{2 * config.neighbor_size + 2}",
        )  # fmt: skip
    if hidden % config.crn_heads:
        raise ConfigError(f"crn_heads {config.crn_heads} must divide the checkpoint's CRN width {hidden}")
    cfg = CrnConfig(input_dim, hidden, layers, config.crn_heads, len(intermediate), config.dropout, config.dropout,
                    len(positions) - 1)  # fmt: skip
    crn = ContextualRelationNetwork(cfg)
    crn.load_state_dict(fill_all_weights(path, crn.state_dict(), state, prefix, "CRN"))
    ui.info(f"CRN from {path} ({weights.layout}): {layers} layers, {hidden}-d")
    return crn


def fresh_crn(config: BasslSegmentConfig, input_dim: int) -> ContextualRelationNetwork:
    cfg = CrnConfig(input_dim, config.crn_hidden, config.crn_layers, config.crn_heads, config.crn_intermediate,
                    config.dropout, config.dropout, 2 * config.neighbor_size + 1)  # fmt: skip
    return ContextualRelationNetwork(cfg)


@torch.no_grad()
def boundary_probabilities(
    model: BoundaryCRN, embeddings: Embeddings, neighbor_size: int, device: torch.device, batch: int = 1024
) -> dict[str, np.ndarray]:
    """The softmax boundary probability of every shot (eval mode), per movie."""
    model.eval()
    features = torch.from_numpy(embeddings.features)
    windows = torch.from_numpy(all_windows(embeddings, neighbor_size))
    prob = torch.cat(
        [
            torch.softmax(model(features[windows[i : i + batch]].to(device)).float(), dim=1)[:, 1].cpu()
            for i in range(0, len(windows), batch)
        ]
    ).numpy()
    return {movie: prob[embeddings.rows(i)] for i, movie in enumerate(embeddings.movies)}


def score_split(model: BoundaryCRN, embeddings: Embeddings, config: BasslSegmentConfig, device: torch.device) -> dict:
    prob = boundary_probabilities(model, embeddings, config.neighbor_size, device)
    frames = embeddings.per_movie(embeddings.frames) or None
    return bassl_scores(embeddings.per_movie(embeddings.labels), prob, frames, config.fps)


def embed_splits(init: Path, root: Path, out: Path, config: BasslSegmentConfig) -> dict[str, Path]:
    """The shot features of a MovieNet root's splits (train, val, test of ``meta/split318.json``) by the encoder of
    the BaSSL checkpoint ``init`` (``vseg embed``, BaSSL's view at ``config.image_size``), written under
    ``OUT/embeddings``: ``{split: .npz}``. The checkpoint's CRN is checked first, so a wrong file writes nothing."""
    crn_from_checkpoint(Path(init), config)
    embed = EmbedConfig(split="all", image_size=config.image_size, device=config.device)
    report = run_embed(init, root, Path(out) / "embeddings", embed)
    files = {split.name: split.files[0] for split in report.splits}
    missing = [name for name in ("train", "test") if name not in files]
    if missing:
        raise DataError(root, f"has no {missing[0]} split to fine-tune and score on (meta/split318.json)")
    return files


def run_bassl_segment(
    train: Path,
    test: Path,
    out: Path,
    config: BasslSegmentConfig,
    init: Path | None = None,
    val: Path | None = None,
    shot_tables: Path | None = None,
) -> BasslSegmentReport:
    """Fine-tune (see the module docstring) on ``train``, score ``test`` (and ``val``) after the last epoch; inputs
    are checked before anything is written."""
    started = time.perf_counter()
    out = Path(out)
    sets = {"train": load_split(train, shot_tables), "test": load_split(test, shot_tables)}
    if val is not None:
        sets["val"] = load_split(val, shot_tables)
    paths = {"train": train, "test": test, "val": val}
    torch.manual_seed(config.seed)
    crn = crn_from_checkpoint(Path(init), config) if init is not None else fresh_crn(config, sets["train"].dim)
    for name, embeddings in sets.items():
        if embeddings.dim != crn.cfg.input_dim:
            raise DataError(paths[name], f"has {embeddings.dim}-d features, the CRN takes {crn.cfg.input_dim}-d")
    windows = all_windows(sets["train"], config.neighbor_size)
    steps = len(windows) // config.batch_size
    if steps == 0:
        raise ConfigError(
            f"{train}: {len(windows)} training shots, fewer than one batch of batch_size {config.batch_size}"
        )
    device = choose_device(config.device, 0)
    model = BoundaryCRN(crn).to(device)
    lr0 = config.lr * config.batch_size / config.reference_batch
    total = config.epochs * steps
    warmup = int(total * config.warmup)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr0)
    atomic.write_text(out / "config.yaml", config_to_yaml(config, "segment bassl"))
    features = torch.from_numpy(sets["train"].features)
    labels = torch.from_numpy(sets["train"].labels)
    generator = torch.Generator().manual_seed(config.seed)
    with ui.progress("fine-tune", config.epochs * steps * config.batch_size, "windows") as advance:
        for epoch in range(config.epochs):
            model.train()
            order = torch.randperm(len(windows), generator=generator)
            for step in range(steps):
                rows = order[step * config.batch_size : (step + 1) * config.batch_size]
                for group in optimizer.param_groups:
                    group["lr"] = lr0 * linear_warmup_decay(epoch * steps + step, warmup, total)
                shots = features[torch.from_numpy(windows[rows.numpy()])].to(device)
                loss = balanced_cross_entropy(model(shots), (labels[rows] != 0).long().to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                advance(config.batch_size, status=f"epoch {epoch + 1} loss {float(loss.detach()):.4f}")
    report = BasslSegmentReport(out, str(init) if init else "fresh CRN", config.epochs, config.epochs * steps)
    report.scores = {name: score_split(model, sets[name], config, device) for name in sets if name != "train"}
    save_checkpoint(
        out / "model.pth",
        {"format": FORMAT, "method": "bassl_segment", "state_dict": model.state_dict(),
         "config": config.model_dump(mode="json"), "init": report.init},
    )  # fmt: skip
    metrics = {**report.scores, "epochs": config.epochs, "steps": report.steps, "init": report.init}
    atomic.write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    report.seconds = time.perf_counter() - started
    return report
