"""``vseg segment bassl``: BaSSL's metrics by hand, its fine-tuning protocol end to end, and its bad inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vseg.cli import app
from vseg.config import BasslSegmentConfig
from vseg.errors import DataError
from vseg.eval.bassl_segment import crn_from_checkpoint, neighbour_windows
from vseg.eval.metrics import bassl_scores
from vseg.io.embeddings import Embeddings, write_npz
from vseg.models.bassl import CrnConfig, balanced_cross_entropy, build_bassl

CRN = CrnConfig(input_dim=512, hidden=32, heads=4, intermediate=64, shots=9)


def test_bassl_scores_by_hand():
    gt = {"a": np.array([0, 1, 0, 0, 1]), "b": np.array([0, 0, 1, 0])}
    prob = {"a": np.array([0.1, 0.9, 0.5, 0.2, 0.3]), "b": np.array([0.6, 0.1, 0.7, 0.2])}
    frames = {"a": np.array([[0, 9], [10, 19], [20, 99], [100, 109], [110, 119]]),
              "b": np.array([[0, 9], [10, 19], [20, 29], [30, 39]])}  # fmt: skip
    scores = bassl_scores(gt, prob, frames)
    # pooled at prob >= 0.5 (torchmetrics): TP 2 (a1, b2), FP 2 (a2 at exactly 0.5, b0), FN 1 (a4) -> F1 = 4 / 7
    assert scores["F1"] == pytest.approx(100 * 4 / 7)
    assert scores["Acc"] == pytest.approx(100 * 6 / (9 + 1e-5))
    # per movie on the argmax (prob > 0.5): a finds 1 of 2 boundaries, b 1 of 1
    assert scores["Recall"] == pytest.approx(100 * (0.5 + 1.0) / 2)
    # Recall@3s (24 fps): a's missed boundary (end 119) is 100 frames from the found one (end 19): > 3 s
    assert scores["Recall@3s"] == pytest.approx(100 * (0.5 / (2 + 1e-5) * 2 + 1 / (1 + 1e-5)) / 2)
    from sklearn.metrics import average_precision_score, roc_auc_score

    pooled_gt = np.concatenate([gt["a"], gt["b"]])
    pooled = np.concatenate([prob["a"], prob["b"]])
    assert scores["AP"] == pytest.approx(100 * average_precision_score(pooled_gt, pooled))
    assert scores["AUC"] == pytest.approx(100 * roc_auc_score(pooled_gt, pooled))
    assert scores["mIoU"] is not None and 0 < scores["mIoU"] < 100
    assert bassl_scores(gt, prob)["Recall@3s"] is None


def test_windows_and_balanced_loss_are_the_references():
    assert neighbour_windows(5, 2).tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 4],
                                                [2, 3, 4, 4, 4]]  # fmt: skip
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -0.5]])
    labels = torch.tensor([0, 1, 0, 0])
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    expected = 0.5 * ce[1] / (1 + 1e-5) + 0.5 * (ce[0] + ce[2] + ce[3]) / (3 + 1e-5)
    assert torch.allclose(balanced_cross_entropy(logits, labels), expected)


def _checkpoint(path: Path, seed: int = 0, **edits) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    state = dict(build_bassl("resnet18", CRN, head_hidden=32, head_dim=8).state_dict())
    state["crn.attention_mask"] = torch.zeros(1, 1, 1, 10)
    for name, value in edits.items():
        if value is None:
            state.pop(name)
        else:
            state[name] = value
    torch.save({"state_dict": state, "epoch": 9, "global_step": 10}, path)
    return state


def test_the_crn_of_a_release_checkpoint_is_loaded_tensor_for_tensor(tmp_path):
    state = _checkpoint(tmp_path / "bassl.ckpt")
    config = BasslSegmentConfig(neighbor_size=4, crn_heads=4)
    crn = crn_from_checkpoint(tmp_path / "bassl.ckpt", config)
    assert (crn.cfg.hidden, crn.cfg.layers, crn.cfg.intermediate, crn.cfg.shots) == (32, 2, 64, 9)
    for name, tensor in crn.state_dict().items():
        assert torch.equal(tensor, state[f"crn.{name}"]), name


def _embeddings(path: Path, seed: int, movies: int = 4, shots: int = 60) -> None:
    """Movies of scenes whose shots share one of 8 locations (the same 8 in every file), the next scene elsewhere, and
    whose last shot fades out (a direction shared by every file); label 1 on the last shot of each scene."""
    locations, fade = np.random.default_rng(0).normal(size=(8, 512)), np.random.default_rng(1).normal(size=512)
    rng = np.random.default_rng(seed)
    features, labels = {}, {}
    for m in range(movies):
        rows, marks, where = [], [], 0
        while len(rows) < shots:
            length = int(rng.integers(3, 8))
            where = (where + int(rng.integers(1, 8))) % 8
            rows += [locations[where] + 0.5 * rng.normal(size=512) + (k == length - 1) * fade for k in range(length)]
            marks += [0] * (length - 1) + [1]
        features[f"tt{seed}{m:03d}"] = np.array(rows[:shots], dtype=np.float32)
        labels[f"tt{seed}{m:03d}"] = np.array(marks[:shots])
    write_npz(path, Embeddings.concat(features, labels))


def test_fine_tuning_finds_boundaries_and_writes_its_files(tmp_path):
    _checkpoint(tmp_path / "bassl.ckpt")
    _embeddings(tmp_path / "train.npz", 1)
    _embeddings(tmp_path / "test.npz", 2, movies=2)
    out = tmp_path / "run"
    args = ["segment", "bassl", "--train", str(tmp_path / "train.npz"), "--test", str(tmp_path / "test.npz"),
            "--init", str(tmp_path / "bassl.ckpt"), "--out", str(out), "--config", "segment_bassl/cpu_tiny",
            "--epochs", "3", "--set", "lr=0.024", "--set", "batch_size=32"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"AP", "F1", "mIoU", "Recall", "Recall@3s", "AUC", "Acc"}
    assert metrics["test"]["Recall@3s"] is None  # no shot tables
    positives = np.load(tmp_path / "test.npz")["labels"].mean()
    assert metrics["test"]["AP"] > 100 * positives + 30, metrics  # chance AP is the share of boundaries
    assert metrics["steps"] == 3 * (240 // 32) and metrics["init"] == str(tmp_path / "bassl.ckpt")
    saved = torch.load(out / "model.pth", weights_only=True)
    assert "head_sbd.weight" in saved["state_dict"] and "crn.encoder.layer.1.output.dense.weight" in saved["state_dict"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"crn.encoder.layer.0.output.dense.weight": torch.zeros(32, 32)},
         "crn.encoder.layer.0.output.dense.weight has shape (32, 32), expected (32, 64)"),
        ({"crn.shot_embedding.LayerNorm.weight": None}, "1 CRN weights missing: crn.shot_embedding.LayerNorm.weight"),
        ({"crn.pooler.weight": torch.zeros(3)}, "crn.pooler.weight is no tensor of the CRN"),
    ],
)
def test_a_wrong_crn_is_one_line_and_nothing_is_written(tmp_path, edit, message):
    _checkpoint(tmp_path / "bassl.ckpt", **edit)
    with pytest.raises(DataError, match=re.escape(message)):
        crn_from_checkpoint(tmp_path / "bassl.ckpt", BasslSegmentConfig(neighbor_size=4, crn_heads=4))


def test_another_methods_checkpoint_or_window_is_refused(tmp_path):
    _embeddings(tmp_path / "train.npz", 1, movies=1)
    torch.save({"format": "vseg-checkpoint/1", "method": "scrl", "state_dict": {"module.encoder_q.conv1.weight":
               torch.zeros(64, 9, 7, 7)}}, tmp_path / "scrl.pth")  # fmt: skip
    _checkpoint(tmp_path / "bassl.ckpt")
    for init, config, message in (
        ("scrl.pth", "segment_bassl/cpu_tiny", "a vseg scrl checkpoint, not a BaSSL checkpoint"),
        ("bassl.ckpt", "segment_bassl/paper", "its CRN has 10 positions, windows of neighbor_size 8 need 18"),
    ):
        out = tmp_path / "out"
        args = ["segment", "bassl", "--train", str(tmp_path / "train.npz"), "--test", str(tmp_path / "train.npz"),
                "--init", str(tmp_path / init), "--out", str(out), "--config", config]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert not out.exists()


def test_the_fine_tuning_schedule_is_pl_bolts_linear_warmup_decay():
    from vseg.eval.bassl_segment import linear_warmup_decay

    assert [linear_warmup_decay(s, 0, 100) for s in (0, 50, 100)] == pytest.approx([1.0, 0.5, 0.0])
    assert [linear_warmup_decay(s, 10, 110) for s in (0, 5, 10, 60)] == pytest.approx([0.0, 0.5, 1.0, 0.5])


def test_keyframes_are_embedded_by_the_checkpoints_encoder_first(synth_root, tmp_path):
    _checkpoint(tmp_path / "bassl.ckpt")
    out = tmp_path / "run"
    args = ["segment", "bassl", "--data", str(synth_root), "--init", str(tmp_path / "bassl.ckpt"), "--out", str(out),
            "--config", "segment_bassl/cpu_tiny", "--epochs", "1", "--set", "batch_size=8",
            "--set", "image_size=32"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "embeddings" / "train.npz").is_file()
    assert np.load(out / "embeddings" / "test.npz")["features"].shape[1] == 512
    metrics = json.loads((out / "metrics.json").read_text())
    assert "AP" in metrics["test"] and metrics["epochs"] == 1
    refused = CliRunner().invoke(app, [*args[:6], "--out", str(tmp_path / "other"), "--train", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "no --train or --test" in refused.output
