"""``vseg adapt``: SCRL on a user's own videos, from shot detection through puzzles to a checkpoint that is what
``vseg scenes --encoder`` takes, and bad input (an empty folder, a video of one shot, a HiCo checkpoint) is one line.

That SCRL learns scene features is tested where its margin can be measured on enough held-out shots
(``tests/test_pretrain.py::test_scrl_learns_scene_features_on_synthetic_movies``); here the 4 videos of 64 shots give
one epoch of 3 steps, and the pipeline is checked stage by stage (BENCHMARKS.md has a 6-epoch run's probe)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vseg.cli import app
from vseg.config import SynthConfig
from vseg.eval.embed import load_shot_encoder
from vseg.io.checkpoints import load_checkpoint, strip_prefix
from vseg.io.movienet import index_movie
from vseg.prep.synth import movie_id, write_movie_video

from .synthetic_video import make_cut_video
from .test_bad_checkpoints import _refused, files  # noqa: F401 (the fixture of checkpoints of every kind)

# Small synthetic movies: short shots, 128 x 72 frames, 4 rendered as videos to adapt on.
COLLECTION = SynthConfig(
    movies=4, shots_per_movie=64, scene_shots=(3, 8), shot_frames=(16, 24), width=128, height=72, workers=2
)
ADAPTED = range(4)
TINY = [
    "--set", "shots.min_shot_frames=8", "--set", "scrl.train.epochs=1", "--set", "scrl.train.workers=0",
    "--set", "puzzles.workers=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """``videos/``: 4 synthetic movies as H.264 files."""
    root = tmp_path_factory.mktemp("collection")
    for index in ADAPTED:
        write_movie_video(COLLECTION, index, root / "videos" / f"{movie_id(index)}.mp4")
    return root


def test_adapting_on_unlabelled_videos_trains_scrl_on_their_own_shots(runner, collection, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["adapt", str(collection / "videos"), "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "shots" / "240P").iterdir()) == [movie_id(i) for i in ADAPTED]
    # the adaptive detector finds most of each video's 64 shots (227 of 256 measured: some cuts join similar shots)
    found = {m: index_movie(out / "shots" / "240P" / m).num_shots for m in map(movie_id, ADAPTED)}
    assert all(40 <= n <= 64 for n in found.values()), found
    puzzles = sorted((out / "puzzles").rglob("*.jpg"))
    assert len(puzzles) == sum(n // 16 for n in found.values())  # 16 consecutive shots each, tail shots dropped
    checkpoint = out / "scrl" / "checkpoints" / "last.pth"
    saved = load_checkpoint(checkpoint)
    assert saved["epoch"] == 1 and saved["step"] == len(puzzles) * 16 // 64  # global batches of 64 shots
    assert saved["config"]["data"]["root"] == str(out / "puzzles")
    assert "embeds at its 64 px" in result.output
    loaded = load_shot_encoder(checkpoint)  # what vseg embed and vseg scenes --encoder load
    assert loaded.arch == "resnet18" and loaded.keyframes_per_shot == 3
    assert loaded.image_size == 64  # the size it trained at, which embed and scenes use by default
    query = strip_prefix(saved["state_dict"], "module.encoder_q.")
    backbone = {k: v for k, v in loaded.encoder.state_dict().items() if not k.startswith("fc.")}
    assert len(backbone) > 100 and all(torch.equal(v, query[k]) for k, v in backbone.items())
    again = runner.invoke(app, ["adapt", str(collection / "videos"), "--out", str(out), *TINY])
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output
    assert load_checkpoint(checkpoint)["step"] == saved["step"]


def test_an_empty_folder_is_one_line_and_leaves_no_run(runner, tmp_path):
    empty = tmp_path / "videos"
    empty.mkdir()
    out = tmp_path / "run"
    line = _refused(runner.invoke(app, ["adapt", str(empty), "--out", str(out)]), empty)
    assert "no video files in this folder" in line and not out.exists()


def test_a_video_of_one_shot_is_one_line_and_leaves_no_run(runner, tmp_path):
    video = make_cut_video(tmp_path / "still.mp4", 60, [])
    out = tmp_path / "run"
    result = runner.invoke(app, ["adapt", str(video), "--out", str(out)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {video}: has 1 shot(s); SCRL learns from runs of 16")
    assert "Traceback" not in result.output and not out.exists()  # the shots it made are removed again


def test_a_hico_checkpoint_to_start_from_is_one_line(runner, files, tmp_path):  # noqa: F811
    video = make_cut_video(tmp_path / "film.mp4", 30, [])
    out = tmp_path / "run"
    line = _refused(runner.invoke(app, ["adapt", str(video), "--out", str(out), "--init", str(files["hico"])]),
                    files["hico"])  # fmt: skip
    assert "a vseg hico checkpoint, no ResNet encoder in it" in line and not out.exists()


def test_starting_from_a_checkpoint_begins_with_its_backbone(files):  # noqa: F811
    """--init puts the given encoder's backbone (stem included) into both SCRL encoders before the first step."""
    from vseg.adapt import _AdaptMethod, _starting_backbone
    from vseg.runtime import DistEnv
    from vseg.train.methods.scrl import ScrlConfig

    config = ScrlConfig()
    backbone = _starting_backbone(files["scrl"], config)
    assert config.model.arch == "resnet18"
    config.model.dim, config.model.queue_size, config.model.bn_group, config.model.cluster_group = 32, 64, 32, 32
    model = _AdaptMethod(config, backbone).build_model(DistEnv(0, 1, 0, torch.device("cpu")), 64)
    for name, value in backbone.items():
        assert torch.equal(model.encoder_q.state_dict()[name], value), name
        assert torch.equal(model.encoder_k.state_dict()[name], value), name
