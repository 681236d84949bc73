"""``vseg scenes``: the training-free scorer, boundary selection, and a generated video with known scenes through
the whole command (scene lists, EDL, report, timeline, --split, --segmenter, --encoder, bad input)."""

from __future__ import annotations

import colorsys
import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from vseg.cli import app
from vseg.config import ScenesConfig, SegmentConfig, ShotsConfig, SynthConfig, load_config
from vseg.eval.scorer import boundary_probabilities, window_change
from vseg.eval.segment import build_model, save_model
from vseg.io.embeddings import read_embeddings
from vseg.io.movienet import MovieNetLayout, read_shot_table
from vseg.io.predictions import scenes_from_probabilities, select_boundaries
from vseg.io.video import write_video
from vseg.models.encoder import ShotEncoder
from vseg.prep.shots import make_shots
from vseg.prep.synth import write_movie_video
from vseg.presets import preset

from .synthetic_video import CODE_BITS, decoded_codes, make_cut_video
from .timeline_checks import check_outputs_agree

# ------------------------------------------------------------------------------------------ the training-free scorer


def _clustered(seed: int, scenes: int, lengths: tuple[int, int], noise: float, dim: int = 32):
    """Shot features: one random centre per scene, each shot its centre plus Gaussian noise; and the 0/1 label of
    every shot (1: it ends a scene; the last shot ends the video, 0)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(lengths[0], lengths[1] + 1, size=scenes)
    centres = rng.normal(size=(scenes, dim))
    features = np.concatenate([c + noise * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes, strict=True)])
    labels = np.zeros(len(features), dtype=int)
    labels[np.cumsum(sizes)[:-1] - 1] = 1
    return features, labels


@pytest.mark.parametrize("seed", range(5))
def test_scorer_ranks_scene_cuts_above_cuts_inside_scenes(seed):
    features, labels = _clustered(seed, scenes=12, lengths=(3, 10), noise=0.5)
    prob = boundary_probabilities(features)
    assert prob.shape == (len(features),) and prob[-1] == 0.0
    assert ((prob >= 0) & (prob < 1)).all()
    assert average_precision_score(labels[:-1], prob[:-1]) > 0.9
    inside = prob[:-1][labels[:-1] == 0]
    assert prob[labels == 1].min() > np.median(inside)


@pytest.mark.parametrize("seed", range(5))
def test_clean_features_keep_the_boundary_above_its_neighbours(seed):
    # Regression: with near-noiseless features the change at a boundary (~1) and at the cuts next to it (~0.3,
    # their windows straddle it) are both many robust deviations above the median; the sigmoid used to round both
    # to exactly 1.0, and the strongest-first selection then took the earlier shot and suppressed the true one.
    features, labels = _clustered(seed, scenes=6, lengths=(6, 10), noise=1e-3)
    prob = boundary_probabilities(features)
    truth = np.flatnonzero(labels).tolist()
    assert all(prob[i] > max(prob[i - 1], prob[i + 1]) for i in truth), prob[truth]
    assert (prob < 1).all()
    assert select_boundaries(prob, 0.5, 3) == truth


def test_scorer_edge_cases():
    assert boundary_probabilities(np.ones((1, 8))).tolist() == [0.0]
    assert boundary_probabilities(np.zeros((0, 8))).tolist() == []
    constant = boundary_probabilities(np.tile(np.arange(1.0, 9.0), (20, 1)))
    assert constant[-1] == 0.0 and (constant <= 0.5).all()  # nothing stands out: no boundary
    assert select_boundaries(constant) == []


@pytest.mark.parametrize("window", [1, 2, 3])
def test_window_change_is_the_documented_formula(window):
    features = np.random.default_rng(window).normal(size=(9, 5))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    expected = []
    for i in range(len(unit) - 1):  # the change after shot i: mean(f[i-w+1 .. i]) against mean(f[i+1 .. i+w])
        before = unit[max(0, i - window + 1) : i + 1].mean(axis=0)
        after = unit[i + 1 : i + 1 + window].mean(axis=0)
        expected.append(1 - before @ after / (np.linalg.norm(before) * np.linalg.norm(after)))
    np.testing.assert_allclose(window_change(features, window), expected, atol=1e-12)
    # the probability is the sigmoid of the robust z-score less the offset (below the compressed range)
    change = window_change(features, window)
    z = (change - np.median(change)) / (1.4826 * np.median(np.abs(change - np.median(change))))
    np.testing.assert_allclose(boundary_probabilities(features, window, 0.7)[:-1], 1 / (1 + np.exp(0.7 - z)))


# ------------------------------------------------------------------------------------------- boundary selection


def test_select_boundaries_keeps_the_strongest_scenes_long_enough():
    prob = np.array([0.1, 0.9, 0.6, 0.1, 0.7, 0.2, 0.95, 0.1, 0.1, 0.0])
    assert select_boundaries(prob, 0.5, 1) == [1, 2, 4, 6]  # every shot above the threshold
    assert select_boundaries(prob, 0.8, 1) == [1, 6]
    # scenes of 2 shots: 6 (0.95), 1 (0.9), 4 (0.7) are kept; 2 (0.6) is 1 shot from 1
    assert select_boundaries(prob, 0.5, 2) == [1, 4, 6]
    # scenes of 3 shots, strongest first: 6; not 1 (a first scene of 2 shots); not 4 (2 shots from 6); then 2
    assert select_boundaries(prob, 0.5, 3) == [2, 6]
    assert select_boundaries(np.array([0.2, 0.9, 0.99]), 0.5, 1) == [1]  # the last shot is never a boundary
    assert select_boundaries(np.array([0.9, 0.1, 0.1, 0.1]), 0.5, 2) == []  # a first scene of 1 shot
    assert select_boundaries(np.array([0.1, 0.1, 0.9, 0.1]), 0.5, 2) == []  # a last scene of 1 shot
    assert select_boundaries(np.array([0.1, 0.7, 0.7, 0.1, 0.1]), 0.5, 2) == [1]  # a tie: the earlier shot
    assert select_boundaries(np.array([0.1, np.nan, 0.9, 0.1]), 0.5, 1) == [2]  # NaN counts as 0


def test_scenes_from_probabilities_tile_the_shots_with_times():
    prob = np.array([0.1, 0.9, 0.2, 0.1, 0.8, 0.0])
    frames = np.array([[0, 9], [10, 24], [25, 29], [30, 47], [48, 59], [60, 71]])
    # min_scene_shots 2: the boundary after shot 4 would leave shot 5 alone, so only the one after shot 1 is kept
    scenes = scenes_from_probabilities("m", prob, 0.5, frames, 24.0, 2)
    assert [(s.scene, s.first_shot, s.last_shot, s.start_frame, s.end_frame) for s in scenes] == [
        (0, 0, 1, 0, 24),
        (1, 2, 5, 25, 71),
    ]
    assert [(s.start_time, s.end_time) for s in scenes] == [(0.0, 25 / 24), (25 / 24, 72 / 24)]
    row = scenes[1].as_row()
    assert (row["shots"], row["start_timecode"], row["end_timecode"]) == (4, "00:00:01.042", "00:00:03.000")
    one = scenes_from_probabilities("m", prob, 0.5, frames, 24.0, 1)
    assert [(s.first_shot, s.last_shot, s.start_frame, s.end_frame) for s in one] == [
        (0, 1, 0, 24),
        (2, 4, 25, 59),
        (5, 5, 60, 71),
    ]
    assert [s.end_time for s in one] == [s.start_time for s in one[1:]] + [72 / 24]
    bare = scenes_from_probabilities("m", prob, 0.5)
    assert [(s.first_shot, s.last_shot) for s in bare] == [(0, 1), (2, 4), (5, 5)]
    assert {(s.start_frame, s.end_frame, s.start_time, s.end_time) for s in bare} == {(None, None, None, None)}
    no_fps = scenes_from_probabilities("m", prob, 0.5, frames)
    assert (no_fps[1].start_frame, no_fps[1].start_time) == (25, None)


# -------------------------------------------------------------------------------------- a video with known scenes

# 5 scenes of 5-7 shots of 16-21 frames (longer than the detector's 15-frame minimum): 29 shots, 530 frames
SCENE_SHOTS = [
    [18, 16, 20, 17, 19],
    [17, 21, 16, 19, 18, 20],
    [20, 18, 16, 17, 21, 19, 16],
    [16, 19, 18, 20, 17],
    [21, 17, 20, 16, 18, 19],
]
FPS = 24
WIDTH, HEIGHT = 160, 96


def scene_frames(scenes: list[list[int]], width: int = WIDTH, height: int = HEIGHT, seed: int = 0):
    """Frames of a video whose scenes are known: scene k is drawn in three shades of its own hue (hues 3/8 of the
    wheel apart), every shot a random 16 px block field of them whose colours shift round by one from the shot
    before (so every block changes at each cut: a hard cut, while the colours, and so the colour histogram, stay);
    the fields drift a pixel a frame. The bottom sixth shows the frame index as in :func:`cut_frames`."""
    rng = np.random.default_rng(seed)
    band, stripe, index = height - height // 6, width / CODE_BITS, 0
    for k, shots in enumerate(scenes):
        hue = (k * 3 % 8 + 0.5) / 8
        shades = [colorsys.hsv_to_rgb(hue, s, v) for s, v in ((1.0, 1.0), (0.45, 0.6), (1.0, 0.25))]
        palette = np.array([[round(255 * c) for c in shade] for shade in shades], np.uint8)
        for j, length in enumerate(shots):
            blocks = (rng.integers(0, 3, size=(height // 16 + 1, (width + 64) // 16 + 1)) + j) % 3
            look = palette[np.kron(blocks, np.ones((16, 16), dtype=int))][:height, : width + 64]
            for i in range(length):  # shots are under 64 frames: the drift never wraps
                frame = np.ascontiguousarray(look[:, i : i + width])
                frame[band:] = 0
                for bit in range(CODE_BITS):
                    if index >> bit & 1:
                        frame[band:, round(bit * stripe) : round((bit + 1) * stripe)] = 255
                index += 1
                yield frame


SHOT_STARTS = np.concatenate([[0], np.cumsum([n for shots in SCENE_SHOTS for n in shots])[:-1]]).tolist()
SCENE_FIRST_SHOTS = np.concatenate([[0], np.cumsum([len(shots) for shots in SCENE_SHOTS])[:-1]]).tolist()
FRAMES = sum(n for shots in SCENE_SHOTS for n in shots)


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scene_video") / "movie.mp4"
    assert write_video(path, scene_frames(SCENE_SHOTS), FPS) == FRAMES
    return path


def _scenes(runner, video: Path, out: Path, *args):
    return runner.invoke(app, ["scenes", str(video), "--out", str(out), *map(str, args)])


@pytest.fixture(scope="module")
def scenes_run(movie, tmp_path_factory):
    """``vseg scenes movie.mp4 --split``: (its output folder, its CLI output)."""
    out = tmp_path_factory.mktemp("scenes_out")
    result = _scenes(CliRunner(), movie, out, "--split")
    assert result.exit_code == 0, result.output
    return out, result.output


def _rows(out: Path) -> list[dict]:
    return json.loads((out / "scenes.json").read_text())


def _shot_table(out: Path) -> list[tuple[int, int]]:
    return [
        tuple(map(int, line.split()[:2]))
        for line in (out / "shots" / "shot_txt" / "movie.txt").read_text().splitlines()
    ]


def _check_scene_table(out: Path, frames: int) -> list[dict]:
    """scenes.json agrees with the shot table and tiles the frames; times are frames / fps. Returns its rows."""
    rows, table = _rows(out), _shot_table(out)
    assert rows[0]["first_shot"] == 0 and rows[-1]["last_shot"] == len(table) - 1
    assert rows[0]["start_frame"] == 0 and rows[-1]["end_frame"] == frames - 1
    for index, row in enumerate(rows):
        assert (row["movie"], row["scene"]) == ("movie", index)
        assert row["start_frame"] == table[row["first_shot"]][0] and row["end_frame"] == table[row["last_shot"]][1]
        assert row["shots"] == row["last_shot"] - row["first_shot"] + 1
        assert row["start_time"] == row["start_frame"] / FPS and row["end_time"] == (row["end_frame"] + 1) / FPS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["first_shot"] == before["last_shot"] + 1 and after["start_frame"] == before["end_frame"] + 1
    return rows


class _RowIds(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr" and dict(attrs).get("id"):
            self.ids.append(dict(attrs)["id"])


def test_scenes_of_a_video_with_known_scenes(scenes_run):
    out, output = scenes_run
    for name in ("scenes.json", "scenes.csv", "report.html", "timeline.png", "predictions.json"):
        assert (out / name).is_file(), name
    rows = _check_scene_table(out, FRAMES)
    check_outputs_agree(out, "movie.mp4")

    # the shots are the generated ones (cuts within a frame), and the colour histograms with the default method,
    # optimal sequential grouping, find exactly the generated scenes: each scene has its own hue (the window scorer
    # finds them too, see test_the_window_method_finds_the_same_scenes)
    table = _shot_table(out)
    assert len(table) == len(SHOT_STARTS)
    assert all(abs(start - true) <= 1 for (start, _), true in zip(table, SHOT_STARTS, strict=True))
    assert [row["first_shot"] for row in rows] == SCENE_FIRST_SHOTS
    prob = json.loads((out / "predictions.json").read_text())["movie"]["prob"]
    assert all(prob[i] > 0.5 and prob[i] > max(prob[i - 1], prob[i + 1]) for i in (r["last_shot"] for r in rows[:-1]))

    # scenes.csv holds the same rows as scenes.json
    with open(out / "scenes.csv", newline="") as stream:
        csv_rows = list(csv.DictReader(stream))
    assert csv_rows == [{key: "" if value is None else str(value) for key, value in row.items()} for row in rows]

    parser = _RowIds()
    parser.feed((out / "report.html").read_text())
    assert parser.ids == [f"scene-{i}" for i in range(len(rows))]
    with Image.open(out / "timeline.png") as timeline:
        assert timeline.format == "PNG" and timeline.size == (1200, 260)
    assert "optimal sequential grouping" in (out / "report.html").read_text()
    assert "no --encoder given" in output
    predictions = json.loads((out / "predictions.json").read_text())["movie"]
    assert len(predictions["prob"]) == len(table) and predictions["fps"] == FPS


@pytest.mark.parametrize("seed", [0, 2])
def test_the_scenes_detector_finds_the_cuts_between_framings_of_one_place(tmp_path, seed):
    """vseg scenes cuts with PySceneDetect's adaptive detector: on a synthetic movie, whose shots of one scene are
    framings of one place and differ little in colour, it finds every true cut and no other, where the content
    detector's fixed threshold (prep shots' default) misses some."""
    movie = SynthConfig(
        movies=1, shots_per_movie=32, scene_shots=(4, 8), shot_frames=(16, 24), width=128, height=72, seed=seed
    )
    video = write_movie_video(movie, 0, tmp_path / "movie.mp4")
    found = {}
    for name, shots in (("scenes", ScenesConfig().shots), ("prep shots", ShotsConfig())):
        assert make_shots([video.path], tmp_path / name, shots.model_copy(update={"workers": 1})).failed == {}
        table = read_shot_table(MovieNetLayout(tmp_path / name).shot_table_file("movie"))
        found[name] = {int(row[0]) for row in table[1:]}
    true = set(video.shot_starts[1:])
    assert ScenesConfig().shots.detector == "adaptive" and found["scenes"] == true
    assert found["prep shots"] < true


def test_the_window_method_finds_the_same_scenes(movie, runner, tmp_path):
    out = tmp_path / "window"
    result = _scenes(runner, movie, out, "--method", "window")
    assert result.exit_code == 0, result.output
    assert [row["first_shot"] for row in _rows(out)] == SCENE_FIRST_SHOTS
    assert "training-free window scorer (window 2" in (out / "report.html").read_text()
    refused = _scenes(runner, movie, tmp_path / "bad", "--method", "dp")
    assert refused.exit_code == 2 and "config key 'method'" in refused.output


def test_split_writes_each_scene_as_a_video(scenes_run):
    out, _ = scenes_run
    rows = _rows(out)
    files = sorted((out / "scenes").iterdir())
    assert [p.name for p in files] == [f"movie-scene-{i:03d}.mp4" for i in range(1, len(rows) + 1)]
    for path, row in zip(files, rows, strict=True):
        # frame-exact: exactly the scene's frames, each once, in order
        assert decoded_codes(path) == list(range(row["start_frame"], row["end_frame"] + 1))


# -------------------------------------------------------------------------------------- segmenter and encoder


def _segmenter(path: Path, input_dim: int) -> Path:
    config = load_config(SegmentConfig, preset("segment/cpu_tiny"))
    torch.manual_seed(0)
    save_model(path, build_model(config, input_dim=input_dim), config, epoch=1, val=None)
    return path


def test_a_segmenter_on_colour_histograms(runner, movie, tmp_path):
    model = _segmenter(tmp_path / "model.pth", 128)
    out = tmp_path / "out"
    result = _scenes(runner, movie, out, "--segmenter", model)
    assert result.exit_code == 0, result.output
    assert "segmenter" in result.output and "training-free" not in result.output
    assert f"boundaries: segmenter {model}" in (out / "report.html").read_text()
    for name in ("scenes.json", "scenes.csv", "scenes.edl", "report.html", "timeline.png"):
        assert (out / name).is_file(), name
    _check_scene_table(out, FRAMES)


def test_a_segmenter_for_other_features_is_refused(runner, movie, tmp_path):
    model = _segmenter(tmp_path / "model.pth", 64)
    result = _scenes(runner, movie, tmp_path / "out", "--segmenter", model)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(model) in errors[0], result.output
    assert "takes 64-d features, the shots have 128-d" in errors[0] and "Traceback" not in result.output
    assert not (tmp_path / "out" / "scenes.json").exists()


def test_an_encoder_gives_the_features(runner, movie, tmp_path):
    encoder = tmp_path / "encoder.pth"
    torch.manual_seed(0)
    torch.save(ShotEncoder("resnet18", 9, 128, mlp=False).state_dict(), encoder)
    out = tmp_path / "out"
    result = _scenes(runner, movie, out, "--encoder", encoder, "--image-size", 32, "--device", "cpu",
                     "--set", "embed.workers=0")  # fmt: skip
    assert result.exit_code == 0, result.output
    embeddings = read_embeddings(out / "embedding" / "all.npz")
    assert embeddings.movies == ["movie"] and embeddings.features.shape == (len(_shot_table(out)), 512)
    assert np.isfinite(embeddings.features).all()
    assert "no --encoder given" not in result.output and "encoder" in result.output
    assert f"features: encoder {encoder} (resnet18)" in (out / "report.html").read_text()
    _check_scene_table(out, FRAMES)


# ------------------------------------------------------------------------------------------------- bad input


def test_a_file_that_is_not_a_video_is_named(runner, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a text file, not a video\n" * 20)
    result = _scenes(runner, fake, tmp_path / "out")
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {fake}: cannot read video"), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "scenes.json").exists()


def test_a_video_of_one_shot_is_one_scene(runner, tmp_path):
    video = make_cut_video(tmp_path / "still.mp4", 60, [], fps=FPS, width=WIDTH, height=HEIGHT)
    out = tmp_path / "out"
    result = _scenes(runner, video, out)
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert [(r["first_shot"], r["last_shot"], r["start_frame"], r["end_frame"]) for r in rows] == [(0, 0, 0, 59)]
    assert (rows[0]["start_time"], rows[0]["end_time"]) == (0.0, 60 / FPS)
    assert re.findall(r"^001  AX.*$", (out / "scenes.edl").read_text(), re.M) == [
        "001  AX       V     C        00:00:00:00 00:00:02:12 00:00:00:00 00:00:02:12"
    ]
    assert (out / "chapters.txt").read_text() == "00:00 Scene 1\n"
