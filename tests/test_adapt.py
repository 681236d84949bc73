"""``vseg adapt``: SCRL on a user's own videos learns scene features without labels, its checkpoint is what
``vseg scenes --encoder`` takes, and bad input (an empty folder, a video of one shot, a HiCo checkpoint) is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vseg.cli import app
from vseg.config import SynthConfig
from vseg.eval.embed import load_shot_encoder
from vseg.eval.probe import scene_probe
from vseg.models.encoder import ShotEncoder
from vseg.prep.synth import make_synth, movie_id, write_movie_video

from .synthetic_video import make_cut_video
from .test_bad_checkpoints import _refused, files  # noqa: F401 (the fixture of checkpoints of every kind)

# Small synthetic movies: short shots, 128 x 72 frames; 4 rendered as videos to adapt on, 2 held out for the probe.
COLLECTION = SynthConfig(
    movies=6, shots_per_movie=64, scene_shots=(3, 8), shot_frames=(16, 24), width=128, height=72, workers=2
)
ADAPTED, HELD_OUT = range(4), [movie_id(4), movie_id(5)]
TINY = [
    "--set", "shots.min_shot_frames=8", "--set", "scrl.train.epochs=6", "--set", "scrl.train.workers=0",
    "--set", "scrl.train.checkpoint_every=6", "--set", "puzzles.workers=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """``videos/`` (4 synthetic movies as H.264 files) and ``movienet/`` (all 6 as keyframes with scene labels)."""
    root = tmp_path_factory.mktemp("collection")
    make_synth(root / "movienet", COLLECTION)
    for index in ADAPTED:
        write_movie_video(COLLECTION, index, root / "videos" / f"{movie_id(index)}.mp4")
    return root


def _probe(encoder: ShotEncoder, collection: Path) -> float:
    return scene_probe(encoder, collection / "movienet", HELD_OUT, image_size=64)


def test_adapting_on_unlabelled_videos_finds_scenes_better_than_random_init(runner, collection, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["adapt", str(collection / "videos"), "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "shots" / "240P").iterdir()) == [movie_id(i) for i in ADAPTED]
    checkpoint = out / "scrl" / "checkpoints" / "last.pth"
    assert "embeds at its 64 px" in result.output
    loaded = load_shot_encoder(checkpoint)  # what vseg embed and vseg scenes --encoder load
    assert loaded.arch == "resnet18" and loaded.keyframes_per_shot == 3
    assert loaded.image_size == 64  # the size it trained at, which embed and scenes use by default
    torch.manual_seed(0)
    at_init = _probe(ShotEncoder("resnet18", dim=128), collection)
    adapted = _probe(loaded.encoder, collection)
    print(f"same-scene nearest shot: random init {at_init:.3f}, adapted {adapted:.3f}")
    assert adapted > at_init + 0.03, (at_init, adapted)
    again = runner.invoke(app, ["adapt", str(collection / "videos"), "--out", str(out), *TINY])
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output


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


def test_starting_from_a_checkpoint_begins_with_its_backbone(runner, files, collection, tmp_path):  # noqa: F811
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
