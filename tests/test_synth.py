"""``vseg prep synth``: layout, determinism, and labels that agree with the scene structure."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from PIL import Image

from vseg.config import SynthConfig
from vseg.io.movienet import MovieNetLayout, index_movie, read_labels, read_shot_table, read_split
from vseg.prep.synth import make_synth, plan_movie

from .conftest import SYNTH


def _digest(root) -> str:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "vseg_synth.yaml")
    return hashlib.sha256(b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes() for p in files)).hexdigest()


def test_layout_counts_and_sizes(synth_root):
    layout = MovieNetLayout(synth_root)
    split = read_split(layout.split_file)
    movies = sorted(m for ids in split.values() for m in ids)
    assert movies == ["tt9000000", "tt9000001", "tt9000002"]
    assert all(len(ids) == 1 for ids in split.values())
    for imdb in movies:
        keyframes = index_movie(layout.keyframes / imdb)
        assert keyframes.num_shots == SYNTH.shots_per_movie and keyframes.missing == ()
        assert Image.open(keyframes.path(7, 2)).size == (426, 240)
        assert len(read_labels(layout.label_file(imdb))) == SYNTH.shots_per_movie - 1
        frames = read_shot_table(layout.shot_table_file(imdb))
        assert len(frames) == SYNTH.shots_per_movie
        assert (frames[1:, 0] == frames[:-1, 1] + 1).all()  # contiguous shots


def test_labels_mark_the_last_shot_of_every_scene(synth_root):
    layout = MovieNetLayout(synth_root)
    truth = json.loads((synth_root / "meta" / "synth.json").read_text())["movies"]
    raw = set()
    for imdb, movie in truth.items():
        scenes = movie["scenes"]
        assert scenes[0][0] == 0 and scenes[-1][1] == SYNTH.shots_per_movie - 1
        assert all(a[1] + 1 == b[0] for a, b in zip(scenes[:-1], scenes[1:], strict=True))
        expected = np.zeros(SYNTH.shots_per_movie - 1, dtype=np.int64)
        expected[[last for _, last in scenes[:-1]]] = 1
        assert read_labels(layout.label_file(imdb)).tolist() == expected.tolist()
        raw |= {line.split()[1] for line in layout.label_file(imdb).read_text().splitlines()}
    assert raw <= {"0", "1", "-1"}


def test_same_seed_same_bytes_other_seed_other_movies(tmp_path):
    config = SynthConfig(movies=2, shots_per_movie=6, seed=1, workers=1)
    make_synth(tmp_path / "a", config)
    make_synth(tmp_path / "b", config.model_copy(update={"workers": 2}))
    make_synth(tmp_path / "c", config.model_copy(update={"seed": 2}))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_rerun_keeps_finished_movies(tmp_path):
    config = SynthConfig(movies=2, shots_per_movie=5, workers=1)
    first = make_synth(tmp_path, config)
    second = make_synth(tmp_path, config)
    assert (first.rendered, second.rendered, second.skipped) == (2, 0, 2)


def test_scene_lengths_respect_the_bounds():
    config = SynthConfig(shots_per_movie=97, scene_shots=(4, 9))
    for index in range(20):
        lengths = plan_movie(config, index).scene_lengths
        assert sum(lengths) == 97
        assert all(4 <= n for n in lengths) and all(n <= 9 + 3 for n in lengths)


def test_shots_of_a_scene_look_alike_more_than_shots_of_other_scenes(synth_root):
    """The scene structure is in the pixels: a shot's mean colour is closer to its own scene's."""
    layout = MovieNetLayout(synth_root)
    truth = json.loads((synth_root / "meta" / "synth.json").read_text())["movies"]
    within, across = [], []
    for imdb, movie in truth.items():
        means = np.stack(
            [
                np.asarray(Image.open(layout.keyframes / imdb / f"shot_{s:04d}_img_1.jpg"), np.float32).mean((0, 1))
                for s in range(SYNTH.shots_per_movie)
            ]
        )
        scene = np.concatenate([[i] * (last - first + 1) for i, (first, last) in enumerate(movie["scenes"])])
        distance = np.linalg.norm(means[:, None] - means[None], axis=-1)
        same = scene[:, None] == scene[None]
        off_diagonal = ~np.eye(len(scene), dtype=bool)
        within.append(distance[same & off_diagonal].mean())
        across.append(distance[~same].mean())
    assert np.mean(within) < 0.8 * np.mean(across)
