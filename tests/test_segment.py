"""``vseg segment``: the BiLSTM protocol learns separable scenes, stays at chance on noise, and writes what it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vseg.cli import app
from vseg.config import SegmentConfig, load_config
from vseg.eval.segment import load_model, run_segment
from vseg.io.embeddings import Embeddings, write_npz, write_scrl_pickle
from vseg.io.predictions import read_predictions
from vseg.models.boundary import BoundaryBiLSTM
from vseg.presets import preset

METRIC_KEYS = (
    "ap_movie",
    "ap_pooled",
    "f1_movie",
    "f1_pooled",
    "precision_movie",
    "recall_movie",
    "miou",
    "recall_at_3s",
    "recall_at_3s_true_fps",
)


def synthetic_embeddings(
    movies: int, shots: int, seed: int, separable: bool = True, dim: int = 32, frames: bool = False
) -> Embeddings:
    """Movies of scenes of 3-11 shots; with ``separable``, a scene's shots scatter around the scene's own centre."""
    rng = np.random.default_rng(seed)
    features, labels, tables = {}, {}, {}
    for m in range(movies):
        lengths = []
        while sum(lengths) < shots + 1:
            lengths.append(int(rng.integers(3, 12)))
        rows, label = [], []
        for n in lengths:
            centre = rng.normal(size=dim) if separable else np.zeros(dim)
            rows.append(centre + (0.5 if separable else 1.0) * rng.normal(size=(n, dim)))
            label += [0] * (n - 1) + [1]
        features[f"tt{seed}{m:03d}"] = np.concatenate(rows)[:shots]
        labels[f"tt{seed}{m:03d}"] = np.array(label[:shots])
        ends = np.cumsum(rng.integers(24, 100, size=shots))
        tables[f"tt{seed}{m:03d}"] = np.stack([np.concatenate([[0], ends[:-1] + 1]), ends], axis=1)
    return Embeddings.concat(
        features, labels, tables if frames else None, dict.fromkeys(tables, 12.0) if frames else None
    )


@pytest.fixture(scope="module")
def separable(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("separable")
    write_npz(folder / "train.npz", synthetic_embeddings(40, 200, seed=1))
    write_scrl_pickle(folder / "val.pkl", synthetic_embeddings(4, 200, seed=2))  # the other format, detected
    write_npz(folder / "test.npz", synthetic_embeddings(4, 187, seed=3, frames=True))
    return folder


@pytest.fixture(scope="module")
def trained(separable, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("run") / "segment"
    args = ["--train", separable / "train.npz", "--val", separable / "val.pkl", "--test", separable / "test.npz"]
    result = CliRunner().invoke(
        app, ["segment", *map(str, args), "--seq-len", "40", "-c", "segment/cpu_tiny", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_reference_model_sizes():
    model = BoundaryBiLSTM()
    assert model.project.in_features == 2048 and model.project.out_features == 1024
    assert model.lstm.hidden_size == 512 and model.lstm.num_layers == 2 and model.lstm.bidirectional
    assert model.lstm.dropout == 0.6 and model.input_drop.p == 0.2 and model.project_drop.p == 0.7
    assert model.head.in_features == 1024 and model.head.out_features == 512 and model.classifier.out_features == 2
    assert model(torch.zeros(3, 40, 2048)).shape == (3, 40, 2)
    defaults = SegmentConfig()
    assert defaults.optim.class_weights == (1.0, 4.0) and defaults.optim.milestones == [160, 180]
    assert (defaults.train.epochs, defaults.train.val_from, defaults.data.batch_size) == (200, 100, 12)


def test_learns_separable_scenes(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["ap_movie"] > 0.9 and metrics["ap_pooled"] > 0.9 and metrics["f1_movie"] > 0.7
    for key in METRIC_KEYS:
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["miou_basis"] == "frames" and metrics["split"] == "test"
    assert metrics["selected_by"] == "best val f1_movie" and 10 <= metrics["epoch"] <= 40
    assert metrics["val"]["f1_movie"] > 0.7
    # the test movies run at 12 fps: 3 s is 36 frames at their rate, 72 at LGSS's 24, so the two recalls differ
    # (test_eval_rescores_saved_probabilities then ties each key to the hand case below)
    assert metrics["recall_at_3s"] > metrics["recall_at_3s_true_fps"]


def test_predictions_file_covers_every_test_shot(trained, separable):
    predictions = read_predictions(trained / "predictions.json")
    assert len(predictions) == 4
    for movie in predictions.values():
        assert len(movie.prob) == len(movie.label) == 187 and ((movie.prob >= 0) & (movie.prob <= 1)).all()
        assert movie.frames.shape == (187, 2) and movie.fps == 12.0
    model, config = load_model(trained / "model.pth")
    assert model.input_dim == 32 and config.model.hidden == 128 and not model.training


def test_recall_at_3s_is_lgss_24_fps_and_the_true_fps_variant_is_kept_apart(runner, tmp_path):
    """``segment eval`` on hand-made predictions: recall_at_3s times every movie at 24 fps (LGSS recall_time.py,
    BaSSL metric.py), recall_at_3s_true_fps at the movie's own rate; the two disagree in opposite directions."""
    from vseg.io.predictions import MoviePrediction, write_predictions

    def movie(fps: float, shot_frames: int, true: list[int], found: list[int]) -> MoviePrediction:
        label, prob = np.zeros(10, dtype=np.int64), np.full(10, 0.1)
        label[true], prob[found] = 1, 0.9
        starts = np.arange(10) * shot_frames
        return MoviePrediction(prob, label, np.stack([starts, starts + shot_frames - 1], axis=1), fps)

    # tt01 at 30 fps, shots of 40 frames: boundaries after shots 1 and 5, found after 3 and 5. Shot 3 ends 80 frames
    # after shot 1: 80 / 24 = 3.33 s (missed at 24 fps), 80 / 30 = 2.67 s (found at the true rate).
    # tt02 at 20 fps, shots of 33 frames: a boundary after shot 1, found after shot 3, 66 frames later:
    # 66 / 24 = 2.75 s (found at 24 fps), 66 / 20 = 3.3 s (missed at the true rate).
    write_predictions(tmp_path / "p.json", {"tt01": movie(30.0, 40, [1, 5], [3, 5]), "tt02": movie(20.0, 33, [1], [3])})
    result = runner.invoke(app, ["segment", "eval", "--pred", str(tmp_path / "p.json"), "-o", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    # cal_Recall_time: hits / (boundaries + 1e-5) per movie, then the mean over movies
    assert metrics["recall_at_3s"] == pytest.approx((1 / (2 + 1e-5) + 1 / (1 + 1e-5)) / 2, abs=1e-9)
    assert metrics["recall_at_3s_true_fps"] == pytest.approx((2 / (2 + 1e-5) + 0 / (1 + 1e-5)) / 2, abs=1e-9)


def test_eval_rescores_saved_probabilities(trained, runner, tmp_path):
    saved = json.loads((trained / "metrics.json").read_text())
    pred = ["segment", "eval", "--pred", str(trained / "predictions.json")]
    result = runner.invoke(app, [*pred, "-o", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "m.json").read_text())
    for key in METRIC_KEYS:
        assert again[key] == pytest.approx(saved[key], abs=1e-6), key  # probabilities are saved to 6 decimals
    runner.invoke(app, [*pred, "--threshold", "0.99", "-o", str(tmp_path / "hi.json")])
    strict = json.loads((tmp_path / "hi.json").read_text())
    assert strict["ap_movie"] == again["ap_movie"] and strict["recall_movie"] < again["recall_movie"]
    assert strict["threshold"] == 0.99


def test_predict_writes_scene_lists(trained, separable, runner, tmp_path):
    out = tmp_path / "pred"
    args = ["segment", "predict", "-m", str(trained / "model.pth"), "-e", str(separable / "test.npz"), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    scenes = json.loads((out / "scenes.json").read_text())
    probabilities = read_predictions(out / "predictions.json")
    for movie, prediction in probabilities.items():
        own = [s for s in scenes if s["movie"] == movie]
        assert own[0]["first_shot"] == 0 and own[-1]["last_shot"] == 186
        assert all(a["last_shot"] + 1 == b["first_shot"] for a, b in zip(own, own[1:], strict=False))
        assert len(own) == int((prediction.prob[:-1] > 0.5).sum()) + 1
        assert own[0]["start_frame"] == 0 and own[-1]["end_frame"] == int(prediction.frames[-1][1])
    header = "movie,scene,first_shot,last_shot,shots,start_frame,end_frame,start_time,end_time,"
    header += "start_timecode,end_timecode"
    assert (out / "scenes.csv").read_text().splitlines()[0] == header
    assert len((out / "scenes.csv").read_text().splitlines()) == len(scenes) + 1


def test_random_embeddings_stay_near_the_positive_rate(tmp_path):
    for name, seed in (("train", 11), ("val", 12), ("test", 13)):
        write_npz(tmp_path / f"{name}.npz", synthetic_embeddings(12 if name == "train" else 6, 200, seed, False))
    config = load_config(SegmentConfig, preset("segment/cpu_tiny"), ["train.epochs=12", "train.val_from=4"])
    report = run_segment(tmp_path / "train.npz", tmp_path / "val.npz", tmp_path / "test.npz", tmp_path / "out", config)
    positives = np.mean([s.sum() / len(s) for s in _labels(tmp_path / "test.npz")])
    assert abs(report.test.ap_movie - positives) < 0.1 and abs(report.test.ap_pooled - positives) < 0.1
    assert report.test.miou_basis == "shots" and report.test.recall_at_3s is None


def _labels(path: Path) -> list[np.ndarray]:
    from vseg.io.embeddings import read_embeddings

    embeddings = read_embeddings(path)
    return list(embeddings.per_movie(embeddings.labels).values())


def test_resume_gives_the_same_model(separable, tmp_path):
    base = ["train.val_from=1", "optim.milestones=[2, 3]"]
    files = (separable / "train.npz", separable / "val.pkl", None)
    straight = load_config(SegmentConfig, preset("segment/cpu_tiny"), [*base, "train.epochs=4"])
    run_segment(*files, tmp_path / "straight", straight)
    half = load_config(SegmentConfig, preset("segment/cpu_tiny"), [*base, "train.epochs=2"])
    run_segment(*files, tmp_path / "resumed", half)
    with pytest.raises(Exception, match="already holds a run"):
        run_segment(*files, tmp_path / "resumed", straight)
    report = run_segment(*files, tmp_path / "resumed", straight, resume="auto")
    assert report.start_epoch == 2
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pth", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]


def test_lr_drops_at_the_reference_epochs():
    """SceneSeg main.py: 1-based epochs, lr x0.1 once epoch >= 160 and again once epoch >= 180."""
    from vseg.config import SegmentOptimConfig
    from vseg.eval.segment import epoch_lr

    lrs = {epoch: epoch_lr(SegmentOptimConfig(), epoch) for epoch in (1, 159, 160, 161, 179, 180, 181, 200)}
    assert lrs == pytest.approx({1: 0.1, 159: 0.1, 160: 0.01, 161: 0.01, 179: 0.01, 180: 1e-3, 181: 1e-3, 200: 1e-3})


def test_training_uses_the_lr_of_each_1_based_epoch(separable, tmp_path):
    config = load_config(SegmentConfig, preset("segment/cpu_tiny"), ["train.epochs=3", "optim.milestones=[2, 3]"])
    run_segment(separable / "train.npz", None, None, tmp_path / "lr", config)
    rows = [json.loads(line) for line in (tmp_path / "lr" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["lr"] for r in rows] == pytest.approx([0.3, 0.03, 0.003])


class SceneSegBiLSTM(torch.nn.Module):
    """SceneSeg ``BiLSTM_protocol.py``'s module names and eval-mode forward, written out here."""

    def __init__(self, dim: int, fc_dim: int, hidden: int):
        super().__init__()
        self.embed_fc = torch.nn.Linear(dim, fc_dim)
        self.lstm = torch.nn.LSTM(fc_dim, hidden, num_layers=2, batch_first=True, dropout=0.6, bidirectional=True)
        self.fc1 = torch.nn.Linear(2 * hidden, hidden)
        self.fc2 = torch.nn.Linear(hidden, 2)
        self.bn1 = torch.nn.BatchNorm1d(fc_dim)
        self.bn2 = torch.nn.BatchNorm1d(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_fc(x)
        x = self.bn1(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        out, _ = self.lstm(x)
        out = self.fc1(out)
        out = self.bn2(out.reshape(-1, out.shape[-1])).reshape(out.shape)
        return torch.softmax(self.fc2(torch.relu(out)), dim=2)


def _scene_seg_checkpoint(path: Path, dim: int = 32) -> SceneSegBiLSTM:
    """Random weights and BN statistics in the layout SCRL released its BiLSTMs in: {'state_dict': ...}."""
    torch.manual_seed(4)
    reference = SceneSegBiLSTM(dim, 48, 16)
    for bn in (reference.bn1, reference.bn2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    torch.save({"state_dict": reference.state_dict()}, path)
    return reference.eval()


def test_scene_seg_checkpoint_loads_and_scores_as_the_reference(tmp_path):
    from vseg.models.boundary import boundary_probability

    reference = _scene_seg_checkpoint(tmp_path / "bilstm.pth.tar")
    model, config = load_model(tmp_path / "bilstm.pth.tar")
    sizes = (model.input_dim, config.model.hidden, config.model.lstm_hidden, config.model.head_hidden)
    assert sizes == (32, 48, 16, 16)
    assert config.model.lstm_layers == 2 and config.data.seq_len == 40 and not model.training
    x = torch.randn(3, 40, 32) * 2
    with torch.no_grad():
        torch.testing.assert_close(boundary_probability(model(x)), reference(x)[..., 1], atol=1e-6, rtol=1e-5)


def test_scene_seg_checkpoint_in_eval_and_predict(separable, runner, tmp_path):
    _scene_seg_checkpoint(tmp_path / "bilstm.pth.tar")
    model = str(tmp_path / "bilstm.pth.tar")
    evaluated = runner.invoke(
        app, ["segment", "eval", "-m", model, "-e", str(separable / "test.npz"), "-o", str(tmp_path / "m.json")]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "m.json").read_text())["movies"] == 4
    predicted = runner.invoke(
        app, ["segment", "predict", "-m", model, "-e", str(separable / "test.npz"), "-o", str(tmp_path / "p")]
    )
    assert predicted.exit_code == 0, predicted.output
    assert len(read_predictions(tmp_path / "p" / "predictions.json")) == 4


def test_scene_seg_checkpoint_is_mapped_strictly(separable, runner, tmp_path):
    _scene_seg_checkpoint(tmp_path / "good.pth")
    state = torch.load(tmp_path / "good.pth", weights_only=True)["state_dict"]
    cases = {
        "extra": ({**state, "fc3.weight": torch.zeros(2, 2)}, "unexpected entry fc3.weight for a SceneSeg BiLSTM"),
        "missing": (
            {k: v for k, v in state.items() if k != "bn2.running_var"},
            "1 BiLSTM weights missing: bn2.running_var",
        ),
        "shape": ({**state, "fc2.weight": torch.zeros(3, 16)}, "fc2.weight has shape (3, 16), expected (2, 16)"),
        "no_lstm": (
            {k: v for k, v in state.items() if k != "lstm.weight_hh_l0"},
            "SceneSeg BiLSTM weight missing: lstm.weight_hh_l0",
        ),
    }
    for name, (broken, message) in cases.items():
        torch.save({"state_dict": broken}, tmp_path / f"{name}.pth")
        args = ["segment", "predict", "-m", str(tmp_path / f"{name}.pth"), "-e", str(separable / "test.npz")]
        result = runner.invoke(app, [*args, "-o", str(tmp_path / "p")])
        assert result.exit_code == 2 and f"{name}.pth: {message}" in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_inputs_get_one_line(separable, runner, tmp_path):
    write_npz(tmp_path / "unlabelled.npz", Embeddings.concat({"tt1": np.zeros((50, 32))}))
    write_npz(tmp_path / "wide.npz", synthetic_embeddings(2, 100, seed=5, dim=16))
    write_npz(tmp_path / "short.npz", synthetic_embeddings(3, 30, seed=6))
    cases = [
        (["--train", str(tmp_path / "short.npz")], "short.npz: no movie has 40 shots"),
        (["--train", str(tmp_path / "unlabelled.npz")], "unlabelled.npz: has no labels"),
        (
            ["--train", str(separable / "train.npz"), "--val", str(tmp_path / "wide.npz")],
            "wide.npz: embeddings are 16-d",
        ),
        (["--train", str(tmp_path / "missing.npz")], "missing.npz: embedding file not found"),
        (["--train", str(separable / "train.npz"), "--set", "data.seq_len=42"], "data.seq_len"),
        (["--val", str(separable / "val.pkl")], "needs --train"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["segment", *args, "-o", str(tmp_path / "out")])
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_standardize_keeps_the_training_statistics_in_the_model(separable, tmp_path):
    model = BoundaryBiLSTM(input_dim=8, hidden=16, lstm_hidden=8, head_hidden=8).eval()
    x = torch.randn(2, 12, 8) * 5 + 3
    mean, std = x.reshape(-1, 8).mean(0), x.reshape(-1, 8).std(0)
    plain = model((x - mean) / std)
    model.set_input_statistics(mean, std)
    assert torch.allclose(model(x), plain, atol=1e-5)  # the model standardises its input itself

    config = load_config(SegmentConfig, preset("segment/cpu_tiny"), ["train.epochs=2", "data.standardize=true"])
    run_segment(separable / "train.npz", None, separable / "test.npz", tmp_path / "z", config)
    saved, _ = load_model(tmp_path / "z" / "model.pth")
    train = np.load(separable / "train.npz")["features"]
    assert np.allclose(saved.input_mean.numpy(), train.mean(0), atol=1e-5)
    assert np.allclose(saved.input_std.numpy(), train.std(0) + 1e-6, atol=1e-5)
    default = load_config(SegmentConfig, preset("segment/cpu_tiny"), ["train.epochs=1"])
    run_segment(separable / "train.npz", None, None, tmp_path / "raw", default)
    raw, _ = load_model(tmp_path / "raw" / "model.pth")  # the reference: raw features, identity statistics
    assert torch.equal(raw.input_mean, torch.zeros(raw.input_dim)) and torch.equal(
        raw.input_std, torch.ones(raw.input_dim)
    )
