"""The MovieNet data model: label and shot-table readers, the keyframe index, dataset checks."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from vseg.cli import app
from vseg.errors import DataError
from vseg.io.movienet import (
    MovieNetLayout,
    check_dataset,
    index_movie,
    list_movies,
    read_labels,
    read_shot_table,
    split_movies,
)


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
