"""``vseg embed``: checkpoint layouts, the reference preprocessing, both output formats, errors and resume."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

from vseg.cli import app
from vseg.config import EmbedConfig, load_config
from vseg.errors import DataError
from vseg.eval.embed import LoadedEncoder, load_shot_encoder, resolve_image_size, run_embed
from vseg.io.checkpoints import FORMAT
from vseg.io.embeddings import read_embeddings
from vseg.io.movienet import read_labels, read_shot_table, read_split
from vseg.models.encoder import ShotEncoder
from vseg.presets import preset
from vseg.train.methods.scrl import ScrlConfig, ScrlMethod

from .synthetic_video import make_cut_video

TINY = EmbedConfig(image_size=64, workers=0, batch_size=16)


def _release_resnet50(path: Path) -> torch.nn.Module:
    """A checkpoint laid out like the SCRL release: torchvision ResNet-50 with a 9-channel stem as encoder_q,
    with its MLP head, a key encoder and a queue; BN statistics randomised so that eval mode matters."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    net.conv1 = torch.nn.Conv2d(9, 64, 7, 2, 3, bias=False)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = {f"module.encoder_q.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    state["module.encoder_q.fc.0.weight"] = torch.zeros(2048, 2048)
    state["module.encoder_q.fc.2.weight"] = torch.zeros(2048, 2048)
    state["module.encoder_k.conv1.weight"] = torch.zeros(64, 9, 7, 7)
    state["module.queue"] = torch.zeros(2048, 8)
    torch.save({"state_dict": state, "epoch": 100, "arch": "resnet50"}, path)
    net.fc = torch.nn.Identity()
    return net.eval()


def _tiny_encoder(seed: int = 0) -> ShotEncoder:
    torch.manual_seed(seed)
    return ShotEncoder("resnet18", 9, 32)


def test_scrl_release_checkpoint_gives_the_torchvision_features(synth_root, tmp_path):
    net = _release_resnet50(tmp_path / "release.pth")
    report = run_embed(tmp_path / "release.pth", synth_root, tmp_path / "out", EmbedConfig(split="test", workers=0))
    assert report.checkpoint.layout == "SCRL release" and report.checkpoint.arch == "resnet50"
    embeddings = read_embeddings(tmp_path / "out" / "test.npz")
    movie = embeddings.movies[0]
    # The reference's preprocessing, written out with torchvision's PIL transforms (extract_embeddings.py).
    transform = T.Compose(
        [T.Resize(224), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
    )
    keyframes = synth_root / "240P" / movie
    shots = torch.stack(
        [
            torch.cat([transform(Image.open(keyframes / f"shot_{s:04d}_img_{j}.jpg").convert("RGB")) for j in range(3)])
            for s in range(6)
        ]
    )
    with torch.no_grad():
        expected = net(shots).numpy()
    assert embeddings.features.shape == (39, 2048) and embeddings.features.dtype == np.float32
    scale = np.abs(expected).max()
    np.testing.assert_allclose(embeddings.features[:6], expected, rtol=1e-3, atol=1e-3 * scale)


def test_keyframe_preprocessing_is_the_reference_pipeline(tmp_path):
    """extract_embeddings.py: cv2.imread, BGR -> RGB, ToPILImage, Resize(224) (426x240 -> 397x224), CenterCrop(224),
    ToTensor, Normalize, on a 426x240 JPEG with detail at every scale."""
    import cv2

    from vseg.data.shots import eval_view
    from vseg.io.images import load_rgb_opencv

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:240, 0:426]
    smooth = np.stack([(x * 0.6 + 30 * np.sin(y / 7)) % 256, (y + 20 * np.cos(x / 5)) % 256, (x + y) % 256], -1)
    pixels = np.clip(smooth + rng.integers(-40, 40, smooth.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "shot_0000_img_0.jpg", quality=90)
    reference = T.Compose(
        [
            T.ToPILImage(),
            T.Resize(224),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    decoded = cv2.cvtColor(cv2.imread(str(tmp_path / "shot_0000_img_0.jpg")), cv2.COLOR_BGR2RGB)
    assert T.Resize(224)(T.ToPILImage()(decoded)).size == (397, 224)
    expected = reference(decoded)
    ours = eval_view([load_rgb_opencv(tmp_path / "shot_0000_img_0.jpg")], 224)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)


def test_outputs_per_split_in_both_formats(synth_root, tmp_path):
    state = {f"module.encoder_q.{k}": v for k, v in _tiny_encoder().state_dict().items()}
    torch.save({"format": FORMAT, "state_dict": state}, tmp_path / "ours.pth")
    report = run_embed(tmp_path / "ours.pth", synth_root, tmp_path / "out", TINY)
    assert [s.name for s in report.splits] == ["train", "test", "val"]  # extract_embeddings.py --Type all order
    assert report.checkpoint.layout == "vseg"
    split = read_split(synth_root / "meta" / "split318.json")
    for name in ("train", "val", "test"):
        npz = read_embeddings(tmp_path / "out" / f"{name}.npz")
        assert npz.movies == split[name]
        with open(tmp_path / "out" / f"{name}.pkl", "rb") as stream:
            raw = pickle.load(stream)  # our own file: plain pickle is fine here
        assert list(raw) == split[name]
        for i, movie in enumerate(npz.movies):
            labels = read_labels(synth_root / "label318" / f"{movie}.txt")
            entries = raw[movie]
            assert len(entries) == len(labels) == 39  # every shot but the last
            emb, label = entries[0]
            assert emb.shape == (1, 512) and emb.dtype == np.float32
            assert label.shape == () and label.dtype == np.int64
            np.testing.assert_array_equal([int(lab) for _, lab in entries], labels)  # -1 already read as 1
            np.testing.assert_array_equal(np.concatenate([e for e, _ in entries]), npz.features[npz.rows(i)])
            np.testing.assert_array_equal(npz.labels[npz.rows(i)], labels)
            table = read_shot_table(synth_root / "shot_movie318" / f"{movie}.txt")
            np.testing.assert_array_equal(npz.frames[npz.rows(i)], table[:39])
        assert npz.movie_fps() == dict.fromkeys(npz.movies, 24.0)  # from meta/<imdb>.json
    assert not (tmp_path / "out" / ".partial").exists()


def test_bare_state_dict_and_keyframe_folder_without_labels(synth_root, tmp_path):
    encoder = _tiny_encoder()
    torch.save(encoder.state_dict(), tmp_path / "bare.pth")
    report = run_embed(tmp_path / "bare.pth", synth_root / "240P", tmp_path / "out", TINY)
    assert report.checkpoint.layout == "state dict" and [s.name for s in report.splits] == ["all"]
    embeddings = read_embeddings(tmp_path / "out" / "all.npz")
    assert not embeddings.labelled and not (tmp_path / "out" / "all.pkl").exists()
    assert len(embeddings.movies) == 3 and np.diff(embeddings.offsets).tolist() == [40, 40, 40]  # every shot
    loaded = load_shot_encoder(tmp_path / "bare.pth").encoder
    from vseg.data.shots import eval_view
    from vseg.io.images import load_rgb_opencv

    movie = embeddings.movies[1]
    frames = [load_rgb_opencv(synth_root / "240P" / movie / f"shot_0039_img_{j}.jpg") for j in range(3)]
    with torch.no_grad():
        last = encoder.eval().features(eval_view(frames, 64)[None]).numpy()
    np.testing.assert_allclose(embeddings.features[embeddings.rows(1)][-1:], last, rtol=1e-4, atol=1e-4)
    assert loaded.fc is not None


def test_movie_metadata_without_fps_falls_back_with_one_warning(dataset, tmp_path, capsys):
    """MovieNet-style meta/<imdb>.json: the frame rate nested under "video", or none at all (then one warning)."""
    movies = sorted(p.name for p in (dataset / "240P").iterdir())
    (dataset / "meta" / f"{movies[0]}.json").write_text(json.dumps({"video": {"fps": 25.0}}))
    for movie in movies[1:]:
        (dataset / "meta" / f"{movie}.json").write_text(json.dumps({"imdb_id": movie, "title": "a film"}))
    torch.save(_tiny_encoder().state_dict(), tmp_path / "bare.pth")
    run_embed(tmp_path / "bare.pth", dataset, tmp_path / "out", TINY)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "2 movies have no 'fps' or 'video.fps'" in warnings[0], warnings
    for split in ("train", "val", "test"):
        embeddings = read_embeddings(tmp_path / "out" / f"{split}.npz")
        assert all(embeddings.movie_fps().get(m, 25.0) == 25.0 for m in embeddings.movies)
        assert (movies[0] in embeddings.movies) == (movies[0] in embeddings.movie_fps())


def test_missing_backbone_weights_are_listed(tmp_path):
    dropped = ("layer3.0.downsample.0.weight", "layer4.1.bn2.weight", "layer4.1.bn2.bias", "fc.weight", "fc.bias")
    state = {f"module.encoder_q.{k}": v for k, v in _tiny_encoder().state_dict().items() if k not in dropped}
    torch.save({"state_dict": state, "arch": "resnet18"}, tmp_path / "partial.pth")
    expected = (
        "3 backbone weights missing: module.encoder_q.layer3.0.downsample.0.weight, module.encoder_q.layer4.1.bn2"
    )
    with pytest.raises(DataError, match=re.escape(expected)):
        load_shot_encoder(tmp_path / "partial.pth")
    # a whole block missing and no arch named: the depth cannot be read from the weights
    state = {k: v for k, v in state.items() if not k.startswith("module.encoder_q.layer4.1")}
    torch.save({"state_dict": state}, tmp_path / "no_block.pth")
    with pytest.raises(DataError, match=re.escape("not a known ResNet: basic blocks per stage [2, 2, 2, 1]")):
        load_shot_encoder(tmp_path / "no_block.pth")
    # the head alone may be absent
    assert load_shot_encoder(_save_without_head(tmp_path)).arch == "resnet18"


def _save_without_head(tmp_path: Path) -> Path:
    state = {k: v for k, v in _tiny_encoder().state_dict().items() if not k.startswith("fc.")}
    torch.save(state, tmp_path / "headless.pth")
    return tmp_path / "headless.pth"


def test_checkpoint_without_state_dict_is_explained(tmp_path):
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "odd.pth")
    with pytest.raises(
        DataError, match="has no 'state_dict' and is not a state dict of tensors .top-level keys: epoch"
    ):
        load_shot_encoder(tmp_path / "odd.pth")


def test_bad_keyframe_is_named_and_nothing_half_written(dataset, tmp_path, runner):
    torch.save(_tiny_encoder().state_dict(), tmp_path / "bare.pth")
    split = read_split(dataset / "meta" / "split318.json")
    broken = dataset / "240P" / split["val"][0] / "shot_0005_img_1.jpg"
    broken.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    args = ["embed", str(tmp_path / "bare.pth"), "--data", str(dataset), "--out", str(out), "-j", "0"]
    result = runner.invoke(app, [*args, "--image-size", "64"])
    assert result.exit_code == 2
    assert "shot_0005_img_1.jpg" in result.stderr and "Traceback" not in result.stderr
    # train and test were finished and kept; val has no file, half-written or not
    assert sorted(p.name for p in out.glob("*.npz")) == ["test.npz", "train.npz"]
    assert not list(out.glob("val*")) and not list(out.rglob("*.tmp"))
    # the finished movies of the failed run are cached, and the rerun after the fix reuses them
    (dataset / "240P" / split["val"][0] / "shot_0005_img_1.jpg").unlink()
    result = runner.invoke(app, [*args, "--image-size", "64"])
    assert result.exit_code == 2 and "keyframe missing" in result.stderr


def test_an_interrupted_run_resumes_from_cached_movies(synth_root, tmp_path, monkeypatch):
    import vseg.eval.embed as embed_module

    torch.save(_tiny_encoder().state_dict(), tmp_path / "bare.pth")
    reference = run_embed(tmp_path / "bare.pth", synth_root, tmp_path / "reference", TINY)
    original, calls = embed_module._embed_movies, []

    def interrupted_in_second_set(encoder, plans, *args, **kwargs):
        calls.append([p.imdb for p in plans])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(encoder, plans, *args, **kwargs)

    monkeypatch.setattr(embed_module, "_embed_movies", interrupted_in_second_set)
    with pytest.raises(KeyboardInterrupt):
        run_embed(tmp_path / "bare.pth", synth_root, tmp_path / "out", TINY)
    assert list((tmp_path / "out").glob("*.npz")) == [tmp_path / "out" / "train.npz"]

    def recording(encoder, plans, *args, **kwargs):
        calls.append([p.imdb for p in plans])
        return original(encoder, plans, *args, **kwargs)

    monkeypatch.setattr(embed_module, "_embed_movies", recording)
    calls.clear()
    resumed = run_embed(tmp_path / "bare.pth", synth_root, tmp_path / "out", TINY)
    assert calls[0] == []  # train: every movie came from the cache
    assert [s.resumed_movies for s in resumed.splits] == [reference.splits[0].movies, 0, 0]
    for name in ("train", "test", "val"):
        expected = read_embeddings(tmp_path / "reference" / f"{name}.npz").features
        np.testing.assert_array_equal(read_embeddings(tmp_path / "out" / f"{name}.npz").features, expected)
    assert not (tmp_path / "out" / ".partial").exists()


def test_cli_embed_help_shows_defaults(runner):
    result = runner.invoke(app, ["embed", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    shown = ("--split", "default: all", "--batch-size", "default: 64", "--image-size", "the size the encoder was", "--bf16")
    for text in shown:
        assert text in result.stdout


# ------------------------------------------------------------------------------- the encoder's training size


def _scrl_run_checkpoint(path: Path, **recorded) -> Path:
    """A vseg SCRL run's checkpoint of :func:`_tiny_encoder`, with ``recorded`` (image_size, config) at top level."""
    state = {f"module.encoder_q.{k}": v for k, v in _tiny_encoder().state_dict().items()}
    torch.save({"format": FORMAT, "method": "scrl", "arch": "resnet18", "state_dict": state, **recorded}, path)
    return path


def test_checkpoints_record_the_training_size(tmp_path):
    assert ScrlMethod(load_config(ScrlConfig, preset("scrl/cpu_tiny"))).describe()["image_size"] == 64
    assert load_shot_encoder(_scrl_run_checkpoint(tmp_path / "run.pth", image_size=32)).image_size == 32
    # an SCRL run written before checkpoints held the size: its config's
    old = _scrl_run_checkpoint(tmp_path / "old.pth", config={"data": {"image_size": 48}})
    assert load_shot_encoder(old).image_size == 48
    torch.save(_tiny_encoder().state_dict(), tmp_path / "bare.pth")
    assert load_shot_encoder(tmp_path / "bare.pth").image_size is None  # as the release: no size recorded
    _release_resnet50(tmp_path / "release.pth")
    assert load_shot_encoder(tmp_path / "release.pth").image_size is None


def test_resolve_image_size_prefers_the_option_and_warns_when_it_differs(capsys):
    loaded = LoadedEncoder(_tiny_encoder(), "resnet18", 3, "vseg", "module.encoder_q.", image_size=64)
    release = LoadedEncoder(_tiny_encoder(), "resnet18", 3, "SCRL release", "module.encoder_q.")
    assert (resolve_image_size(None, loaded), resolve_image_size(None, release), resolve_image_size(None, None)) == (
        64, 224, 224,
    )  # fmt: skip
    assert (resolve_image_size(64, loaded), resolve_image_size(96, release)) == (64, 96)
    assert "warning" not in capsys.readouterr().err
    assert resolve_image_size(96, loaded) == 96
    err = capsys.readouterr().err
    assert "embedding at 96 px, but the encoder was trained at 64 px" in err


def test_embed_uses_the_recorded_size(synth_root, tmp_path, runner):
    recorded = _scrl_run_checkpoint(tmp_path / "run.pth", image_size=32)
    torch.save(_tiny_encoder().state_dict(), tmp_path / "bare.pth")
    config = EmbedConfig(workers=0, batch_size=16, split="test")
    report = run_embed(recorded, synth_root, tmp_path / "recorded", config)
    assert report.image_size == 32
    at_32 = config.model_copy(update={"image_size": 32})
    explicit = run_embed(tmp_path / "bare.pth", synth_root, tmp_path / "explicit", at_32)
    assert explicit.image_size == 32
    features = read_embeddings(tmp_path / "recorded" / "test.npz").features
    np.testing.assert_array_equal(features, read_embeddings(tmp_path / "explicit" / "test.npz").features)
    result = runner.invoke(app, ["embed", str(recorded), "--data", str(synth_root), "--out", str(tmp_path / "cli"),
                                 "--split", "test", "--image-size", "48", "--workers", "0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "embedding at 48 px, but the encoder was trained at 32 px" in result.output
    assert "48 px" in result.stdout


def test_scenes_embeds_at_the_encoders_recorded_size(runner, tmp_path):
    video = make_cut_video(tmp_path / "video.mp4", 240, [30, 60, 90, 120, 150, 180, 210])
    encoder = _scrl_run_checkpoint(tmp_path / "run.pth", image_size=32)
    common = ["--encoder", str(encoder), "--device", "cpu", "--set", "embed.workers=0"]
    default = runner.invoke(app, ["scenes", str(video), "--out", str(tmp_path / "default"), *common])
    assert default.exit_code == 0, default.output
    assert "warning: embedding at" not in default.output
    explicit = runner.invoke(app, ["scenes", str(video), "--out", str(tmp_path / "explicit"), *common,
                                   "--image-size", "32"])  # fmt: skip
    assert explicit.exit_code == 0, explicit.output
    features = [read_embeddings(tmp_path / run / "embedding" / "all.npz").features for run in ("default", "explicit")]
    assert features[0].shape[0] >= 2
    np.testing.assert_array_equal(*features)
