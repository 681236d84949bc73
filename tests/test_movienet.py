"""The MovieNet data model: label and shot-table readers, the keyframe index, dataset checks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import vseg
from vseg.cli import app
from vseg.config import PuzzlesConfig, load_config
from vseg.train.methods.scrl import ScrlConfig
from vseg.errors import DataError
from vseg.io.movienet import (
    MovieNetLayout,
    check_dataset,
    index_movie,
    list_movies,
    movienet_shot_counts,
    read_labels,
    read_movie_fps,
    read_shot_table,
    resolve_split_file,
    split_movies,
)
from vseg.presets import resolve_config


def test_labels_map_uncertain_to_boundary(tmp_path):
    path = tmp_path / "tt1.txt"
    path.write_text("0000 0\n0001 1\n0002 -1\n0003 0\n\n")
    labels = read_labels(path)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("0000 0\n0002 1\n", "line 2: expected shot 0001, got 0002"),
        ("0000 0\n0001 2\n", "line 2: expected 'SHOT LABEL'"),
        ("0000\n", "line 1: expected 'SHOT LABEL'"),
        ("", "label file is empty"),
    ],
)
def test_bad_label_files_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "tt1.txt"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_labels(path)
    assert str(info.value) == f"{path}: {message}" or str(info.value).startswith(f"{path}: {message}")


def test_shot_table_reads_start_and_end_columns(tmp_path):
    path = tmp_path / "tt1.txt"
    path.write_text("0 10 0 5 10\n11 30 11 20 30\n")
    assert read_shot_table(path).tolist() == [[0, 10], [11, 30]]
    path.write_text("0 10\n5 3\n")
    with pytest.raises(DataError, match="line 2: frames 5-3 are out of order"):
        read_shot_table(path)


@pytest.mark.parametrize(
    "meta, fps",
    [
        ({"fps": 23.976, "frames": 100}, 23.976),  # as vseg writes it
        ({"imdb_id": "tt0120338", "video": {"fps": 25, "resolution": [1280, 720]}}, 25.0),  # nested
        ({"imdb_id": "tt0120338", "title": "Titanic (1997)"}, None),  # no frame rate: the caller falls back
        ({"video": {"duration": 3.5}}, None),
    ],
)
def test_movie_fps_from_either_layout_or_none(tmp_path, meta, fps):
    (tmp_path / "tt0120338.json").write_text(json.dumps(meta))
    assert read_movie_fps(tmp_path / "tt0120338.json") == fps


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not a readable JSON file"),
        ("[24]", "expected a JSON object, got list"),
        ('{"fps": 0}', "fps must be positive, got 0.0"),
        ('{"video": {"fps": -24}}', "video.fps must be positive, got -24.0"),
        ('{"video": {"fps": "fast"}}', "video.fps must be a number, got 'fast'"),
    ],
)
def test_bad_movie_metadata_names_the_file(tmp_path, text, message):
    (tmp_path / "tt1.json").write_text(text)
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        read_movie_fps(tmp_path / "tt1.json")
    assert caught.value.path == tmp_path / "tt1.json" and "\n" not in str(caught.value)


def test_split_file_errors(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["tt1"], "val": []}))
    assert split_movies(path, "train") == ["tt1"]
    with pytest.raises(DataError, match="has no split 'test' \\(it has: train, val\\)"):
        split_movies(path, "test")
    path.write_text("{not json")
    with pytest.raises(DataError, match="not a readable JSON file"):
        split_movies(path, "train")


def test_index_finds_every_missing_keyframe(dataset):
    movie_dir = dataset / "240P" / "tt9000000"
    (movie_dir / "shot_0005_img_1.jpg").unlink()
    (movie_dir / "shot_0010_img_0.jpg").unlink()
    movie = index_movie(movie_dir)
    assert movie.num_shots == 40
    assert movie.missing == ((5, 1), (10, 0))


def test_check_reports_every_problem_with_its_file(dataset, runner):
    layout = MovieNetLayout(dataset)
    clean = check_dataset(layout)
    assert clean.problems == [] and clean.labelled == 3 and clean.shots == 120

    (layout.keyframes / "tt9000000" / "shot_0003_img_2.jpg").unlink()
    labels = layout.label_file("tt9000001")
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:-2]))  # two labels short
    table = layout.shot_table_file("tt9000002")
    table.write_text(table.read_text() + "99999 99999\n")  # one row too many
    report = check_dataset(layout)
    found = {str(p) for p in report.problems}
    assert found == {
        f"{layout.keyframes / 'tt9000000' / 'shot_0003_img_2.jpg'}: keyframe missing",
        f"{labels}: has 37 labels for 38 shots, but {layout.keyframes / 'tt9000001'} has keyframes of 40 shots",
        f"{table}: has 41 rows for 41 shots, but {layout.keyframes / 'tt9000002'} has keyframes of 40 shots",
    }

    result = runner.invoke(app, ["prep", "check", str(dataset)])
    assert result.exit_code == 1
    assert result.output.count("problem:") == 3


def test_check_names_split_movies_without_keyframes(dataset):
    layout = MovieNetLayout(dataset)
    split = json.loads(layout.split_file.read_text())
    split["test"].append("tt0000001")
    layout.split_file.write_text(json.dumps(split))
    report = check_dataset(layout, "test")
    assert [str(p) for p in report.problems] == [f"{layout.keyframes / 'tt0000001'}: movie folder not found"]


def test_check_expects_labels_only_of_sceneseg318_movies(dataset):
    layout = MovieNetLayout(dataset)
    shutil.copytree(layout.keyframes / "tt9000000", layout.keyframes / "tt9000099")  # keyframes only, as movie1K's
    every_movie = dataset / "every_movie.json"
    every_movie.write_text(json.dumps({"all": list_movies(layout.keyframes)}))
    report = check_dataset(layout, "all", every_movie)
    assert report.problems == [] and len(report.movies) == 4 and report.labelled == 3


def test_check_passes_on_a_clean_dataset(synth_root, runner):
    result = runner.invoke(app, ["prep", "check", str(synth_root), "--split", "train"])
    assert result.exit_code == 0, result.output
    assert "problem:" not in result.output
    assert re.search(r"movies with valid labels │ +1 │", result.output)  # whatever the table's width
    assert re.search(r"split train of \S+split318.json", " ".join(result.output.split()))


def test_movienet_split_and_shot_counts_ship_in_the_package(tmp_path):
    path = resolve_split_file("movie1K", tmp_path / "meta" / "split318.json")
    assert path.is_file() and path.is_relative_to(Path(vseg.__file__).parent)
    sizes = {name: len(split_movies(path, name)) for name in ("train", "val", "test", "full")}
    assert sizes == {"train": 660, "val": 220, "test": 220, "full": 1100}
    counts = movienet_shot_counts()
    assert len(counts) == 1100 and sum(counts.values()) == 1_599_471
    assert sum(counts[m] for m in split_movies(path, "train")) == 963_142  # SCRL's pre-training shots
    own = tmp_path / "movie1K"  # a user's own file of that name wins over the built-in one
    own.write_text('{"train": ["tt1"]}')
    assert resolve_split_file(own, tmp_path) == own
    assert resolve_split_file(None, tmp_path / "x.json") == tmp_path / "x.json"


@pytest.mark.parametrize("preset, keys", [("puzzles/scrl", ()), ("scrl/with_imagenet", ("data",)),
                                          ("scrl/without_imagenet", ("data",))])
def test_scrl_presets_take_movienets_training_movies(preset, keys):
    config = load_config(PuzzlesConfig if preset.startswith("puzzles") else ScrlConfig, resolve_config(preset))
    for key in keys:
        config = getattr(config, key)
    assert (config.split, str(config.split_file)) == ("train", "movie1K")


def test_check_with_the_movie1k_split_names_the_file_and_the_missing_movies(synth_root, runner):
    result = runner.invoke(app, ["prep", "check", str(synth_root), "--split", "train", "--split-file", "movie1K"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "movies: split train of movie1K (built-in copy of MovieNet's movie1K.split.v1.json) (660 movies)" in output
    assert result.output.count("movie folder not found") == 660


def test_check_compares_shot_counts_with_movienets(dataset):
    layout = MovieNetLayout(dataset)
    layout.split_file.unlink()
    for folder in (layout.keyframes, layout.labels, layout.shot_tables):  # MovieNet lists 1374 shots for tt0035423
        old = next(p for p in folder.iterdir() if p.name.startswith("tt9000000"))
        old.rename(folder / old.name.replace("tt9000000", "tt0035423"))
    report = check_dataset(layout)
    assert [str(p) for p in report.problems] == [
        f"{layout.keyframes / 'tt0035423'}: has keyframes of 40 shots; MovieNet lists 1374"
    ]
    assert report.source == f"every movie folder of {layout.keyframes} (3 movies)"
