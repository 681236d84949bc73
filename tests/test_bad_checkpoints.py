"""Files that are not the checkpoint a command takes (text, random bytes, a truncated or empty file, another method's
checkpoint) get one line naming the file and exit code 2 from every command that takes a checkpoint, and the
refused run writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vseg.cli import app
from vseg.config import SegmentConfig, load_config
from vseg.eval.segment import build_model, save_model
from vseg.io.checkpoints import FORMAT, save_checkpoint, with_prefix
from vseg.io.embeddings import Embeddings, write_npz
from vseg.models.encoder import ShotEncoder
from vseg.models.s3dg import S3DG
from vseg.presets import preset

from .test_pretrain import SMALL, TINY
from .test_scenes import _scenes


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One file of every kind: the bad ones, and good checkpoints of each method (bad where another is expected)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    encoder = {f"encoder_q.{k}": v for k, v in ShotEncoder("resnet18", 9, 32).state_dict().items()}
    save_checkpoint(
        folder / "scrl.pth",
        {"format": FORMAT, "method": "scrl", "arch": "resnet18", "epoch": 1,
         "state_dict": with_prefix({**encoder, "_extra_state": {"steps": 3}})},
    )  # fmt: skip
    backbone = {f"backbone.{k}": v for k, v in S3DG(gating=False).state_dict().items()}
    save_checkpoint(folder / "hico.pth", {"format": FORMAT, "method": "hico", "state_dict": with_prefix(backbone)})
    config = load_config(SegmentConfig, preset("segment/cpu_tiny"))
    save_model(folder / "segmenter.pth", build_model(config, input_dim=128), config, epoch=1, val=None)
    (folder / "text.pth").write_text("epoch 3 loss 0.25\nhello, world\n")
    (folder / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    whole = (folder / "scrl.pth").read_bytes()
    (folder / "truncated.pth").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.pth").write_bytes(b"")
    embeddings = folder / "embeddings.npz"
    write_npz(embeddings, Embeddings(["movie"], [0, 50], np.zeros((50, 128), np.float32), np.zeros(50, np.int64)))
    (folder / "videos.txt").write_text("a.mp4 0\n")
    return {path.stem: path for path in folder.iterdir()}


def _refused(result, path: Path) -> str:
    """The one line of a refused command, which names ``path``."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.output
    return lines[0]


NOT_CHECKPOINTS = ["text", "random", "truncated", "empty"]


@pytest.mark.parametrize("kind", [*NOT_CHECKPOINTS, "hico", "segmenter"])
def test_embed_refuses_a_file_that_is_no_shot_encoder(kind, files, synth_root, runner, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["embed", str(files[kind]), "--data", str(synth_root), "--out", str(out)])
    line = _refused(result, files[kind])
    if kind == "hico":
        assert "a vseg hico checkpoint, no ResNet encoder in it" in line
    assert not out.exists()


@pytest.mark.parametrize("kind", [*NOT_CHECKPOINTS, "scrl", "hico"])
def test_segment_predict_refuses_a_file_that_is_no_boundary_model(kind, files, runner, tmp_path):
    out = tmp_path / "out"
    args = ["segment", "predict", "--model", str(files[kind]), "--embeddings", str(files["embeddings"])]
    result = runner.invoke(app, [*args, "--out", str(out)])
    line = _refused(result, files[kind])
    if kind in ("scrl", "hico"):
        assert "not a vseg segment model" in line
    assert not out.exists()


@pytest.mark.parametrize("kind", ["random", "scrl"])
def test_embed_clips_refuses_a_file_that_is_no_clip_encoder(kind, files, runner, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["embed", str(files[kind]), "--clips", str(files["videos"]), "--out", str(out)])
    line = _refused(result, files[kind])
    if kind == "scrl":
        assert "a vseg scrl checkpoint, no S3D-G backbone in it" in line
    assert not out.exists()


@pytest.mark.parametrize("kind", ["text", "hico"])
def test_segment_eval_refuses_a_file_that_is_no_boundary_model(kind, files, runner):
    args = ["segment", "eval", "--model", str(files[kind]), "--embeddings", str(files["embeddings"])]
    _refused(runner.invoke(app, args), files[kind])


@pytest.mark.parametrize(("option", "kind"), [("--encoder", "text"), ("--encoder", "hico"),
                                              ("--segmenter", "truncated"), ("--segmenter", "scrl")])  # fmt: skip
def test_scenes_refuses_a_bad_model_file_and_leaves_no_folder(option, kind, files, runner, tmp_path):
    video = tmp_path / "film.mp4"
    video.write_bytes(b"")  # never read: the model files are checked first
    out = tmp_path / "new" / "out"
    _refused(_scenes(runner, video, out, option, files[kind]), files[kind])
    assert not (tmp_path / "new").exists()


def test_scenes_refused_by_its_video_removes_only_what_it_made(runner, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a text file, not a video\n" * 20)
    new = tmp_path / "new" / "out"
    assert _scenes(runner, fake, new).exit_code == 2
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    (old / "mine.txt").parent.mkdir()
    (old / "mine.txt").write_text("kept")
    assert _scenes(runner, fake, old).exit_code == 2
    assert [p.name for p in old.iterdir()] == ["mine.txt"]  # the folder and what it held stay, the run's files go


@pytest.mark.parametrize("kind", ["text", "hico", "segmenter"])
def test_pretrain_resume_refuses_a_file_that_is_no_scrl_checkpoint(kind, files, puzzle_root, runner, tmp_path):
    out = tmp_path / "out"
    args = ["pretrain", "scrl", "--config", str(TINY), "--data", str(puzzle_root), "--out", str(out), *SMALL]
    _refused(runner.invoke(app, [*args, "--resume", str(files[kind])]), files[kind])
    assert not out.exists()
