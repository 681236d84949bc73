"""The clip probes (k-NN, linear) on hand-made embeddings, and clip-encoder checkpoint loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vseg.cli import app
from vseg.config import ProbeConfig, load_config
from vseg.errors import DataError
from vseg.eval.clip_embed import REFERENCE_CLIP_SIZE, load_clip_encoder
from vseg.eval.embed import resolve_image_size
from vseg.eval.clip_probe import knn_predict, run_probe
from vseg.io.embeddings import Embeddings, write_npz
from vseg.models.hico import HiCo
from vseg.models.s3dg import S3DG
from vseg.io.checkpoints import FORMAT, with_prefix
from vseg.presets import preset
from vseg.train.methods.finetune import FinetuneConfig, FinetuneMethod
from vseg.train.methods.hico import HicoConfig, HicoMethod


def test_weighted_knn_votes_by_similarity():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    labels = np.array([0, 0, 1, 2])
    # after centring on the train mean (-0.025, 0.275): the test row is closest to rows 0 and 1 (class 0)
    assert knn_predict(train, labels, np.array([[1.0, -0.2]]), k=1).tolist() == [0]
    assert knn_predict(train, labels, np.array([[-0.1, 1.5]]), k=1).tolist() == [1]
    # k=3 with a cold temperature: the nearest neighbour's weight dominates the two others
    assert knn_predict(train, labels, np.array([[-0.1, 1.5]]), k=3, temperature=0.01).tolist() == [1]
    # k larger than the train set is clamped
    assert knn_predict(train, labels, np.array([[1.0, -0.2]]), k=50).shape == (1,)


def _clip_file(path, features, labels):
    n = len(features)
    write_npz(path, Embeddings([f"v{i}.mp4" for i in range(n)], np.arange(n + 1), features, labels))
    return path


def test_probe_scores_separable_classes_perfectly_and_writes_json(tmp_path, runner):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    labels = np.repeat(np.arange(3), 10)
    train = _clip_file(tmp_path / "train.npz", centres[labels] + rng.normal(size=(30, 16)), labels)
    test = _clip_file(tmp_path / "test.npz", centres[labels] + rng.normal(size=(30, 16)), labels)
    report = run_probe(train, test, ProbeConfig(k=5))
    assert (report.knn_top1, report.nn_top1, report.linear_top1) == (1.0, 1.0, 1.0)
    assert report.chance == pytest.approx(1 / 3) and report.classes == 3 and report.k == 5
    shuffled = _clip_file(tmp_path / "noise.npz", rng.normal(size=(30, 16)), labels)
    assert run_probe(train, shuffled, ProbeConfig(k=5)).knn_top1 < 0.7
    result = runner.invoke(app, ["probe", "--train", str(train), "--test", str(test), "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "p.json").read_text())["linear_top1"] == 1.0
    assert "linear top-1" in result.output and "100.00" in result.output


def test_probe_refuses_unlabelled_or_shot_embeddings(tmp_path, runner):
    unlabelled = tmp_path / "u.npz"
    write_npz(unlabelled, Embeddings(["a", "b"], [0, 1, 2], np.zeros((2, 4))))
    result = runner.invoke(app, ["probe", "--train", str(unlabelled), "--test", str(unlabelled)])
    assert result.exit_code == 2 and f"{unlabelled}: has no labels" in result.output
    shots = tmp_path / "shots.npz"
    write_npz(shots, Embeddings(["movie"], [0, 3], np.zeros((3, 4)), np.array([0, 1, 0])))
    with pytest.raises(DataError, match="not clip embeddings"):
        run_probe(shots, shots, ProbeConfig())


def test_clip_encoders_load_from_hico_runs_and_bare_state_dicts(tmp_path):
    torch.manual_seed(0)
    model = HiCo(S3DG(gating=False))
    run = tmp_path / "run.pth"
    torch.save({"method": "hico", "state_dict": with_prefix(model.state_dict())}, run)
    loaded = load_clip_encoder(run)
    assert loaded.layout == "vseg hico" and loaded.gating is False
    assert torch.equal(loaded.encoder.backbone.Conv_1a.conv1.weight, model.backbone.Conv_1a.conv1.weight)
    bare = tmp_path / "bare.pth"
    torch.save(S3DG().state_dict(), bare)
    assert load_clip_encoder(bare).gating is True
    views = torch.randn(2, 3, 3, 8, 32, 32)  # 2 videos x 3 views
    features = load_clip_encoder(bare).encoder.features(views)
    assert features.shape == (2, 1024)
    partial = tmp_path / "partial.pth"
    state = S3DG().state_dict()
    del state["Mixed_5c.branch0.0.conv.weight"]
    torch.save(state, partial)
    with pytest.raises(DataError, match="1 S3D-G weights missing: Mixed_5c.branch0.0.conv.weight"):
        load_clip_encoder(partial)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(DataError, match="no S3D-G backbone in it"):
        load_clip_encoder(other)


def test_clip_encoders_know_their_training_crop(tmp_path):
    hico = HicoMethod(load_config(HicoConfig, preset("hico/cpu_tiny")))
    finetune = FinetuneMethod(load_config(FinetuneConfig, preset("finetune/hmdb51")))
    assert (hico.describe()["image_size"], finetune.describe()["image_size"]) == (32, 112)
    run = tmp_path / "run.pth"
    torch.save({"format": FORMAT, "method": "hico", "image_size": 32, "state_dict": with_prefix(S3DG().state_dict())},
               run)  # fmt: skip
    bare = tmp_path / "bare.pth"
    torch.save(S3DG().state_dict(), bare)
    older = tmp_path / "older.pth"  # a run written before checkpoints held the size: its config's crop
    torch.save({"format": FORMAT, "method": "finetune", "config": {"data": {"crop_size": 48}},
                "state_dict": with_prefix(S3DG().state_dict())}, older)  # fmt: skip
    trained, plain = load_clip_encoder(run), load_clip_encoder(bare)
    assert (trained.image_size, plain.image_size, load_clip_encoder(older).image_size) == (32, None, 48)
    # vseg embed --clips views at the recorded crop, else at HiCo's 112
    sizes = [resolve_image_size(None, loaded, reference=REFERENCE_CLIP_SIZE) for loaded in (trained, plain)]
    assert sizes == [32, 112]


def test_embed_needs_exactly_one_source(runner, tmp_path):
    result = runner.invoke(app, ["embed", str(tmp_path / "c.pth"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "needs one of --data ROOT (shots) or --clips LIST" in result.output
