"""``vseg prep puzzles``: SCRL's layout to the pixel, resume, and bad keyframes that lose nothing."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from vseg.cli import app
from vseg.config import PuzzlesConfig
from vseg.errors import ConfigError, DataError
from vseg.io.atomic import staging_dir
from vseg.prep.puzzles import make_puzzles

from .conftest import SYNTH

MOVIES = ["tt9000000", "tt9000001", "tt9000002"]
PER_MOVIE = SYNTH.shots_per_movie // 16  # 2 puzzles, 8 tail shots dropped


def _run(runner, keyframes, out, *args):
    return runner.invoke(app, ["prep", "puzzles", str(keyframes), "--out", str(out), "--workers", "1", *args])


def _leftovers(out):
    """Anything an interrupted or failed run must not leave: staging folders and temporary files."""
    return [p for p in out.rglob("*") if ".partial" in p.parts or p.name.endswith(".tmp")]


def test_layout_is_16_shots_by_3_keyframes_pixel_for_pixel(synth_root, tmp_path):
    out = tmp_path / "puzzles"
    report = make_puzzles(synth_root / "240P", out, PuzzlesConfig(workers=1))
    assert report.written == 3 * PER_MOVIE and report.failed == {}
    movie = synth_root / "240P" / "tt9000001"
    keyframes = {
        (s, j): np.asarray(Image.open(movie / f"shot_{s:04d}_img_{j}.jpg"), np.float32)
        for s in range(SYNTH.shots_per_movie)
        for j in range(3)
    }
    for p in range(PER_MOVIE):
        puzzle = np.asarray(Image.open(out / "tt9000001" / f"{p:04d}.jpg"), np.float32)
        assert puzzle.shape == (16 * 240, 3 * 426, 3)  # 1278x3840 (WxH) as in SCRL
        for r in range(16):
            for c in range(3):
                cell = puzzle[r * 240 : (r + 1) * 240, c * 426 : (c + 1) * 426]
                errors = {key: np.abs(cell - frame).mean() for key, frame in keyframes.items()}
                assert min(errors, key=errors.get) == (16 * p + r, c)
                assert errors[(16 * p + r, c)] < 3.0  # one more JPEG round trip at quality 95


def test_counts_tail_and_manifest(synth_root, tmp_path):
    out = tmp_path / "puzzles"
    report = make_puzzles(synth_root / "240P", out, PuzzlesConfig(workers=1))
    assert (report.shots, report.dropped_shots) == (3 * 32, 3 * 8)
    for movie in MOVIES:
        assert sorted(p.name for p in (out / movie).iterdir()) == ["0000.jpg", "0001.jpg"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["puzzles"] == 6 and manifest["shots_per_puzzle"] == 16 and manifest["jpeg_quality"] == 95
    assert [m["movie"] for m in manifest["movies"]] == MOVIES
    assert manifest["movies"][0]["keyframe_size"] == [426, 240]
    assert manifest["movies"][2]["puzzles"][1] == {
        "puzzle": 1,
        "file": "tt9000002/0001.jpg",
        "first_shot": 16,
        "last_shot": 31,
    }
    assert "jpeg_quality: 95" in (out / "vseg_puzzles.yaml").read_text()
    assert _leftovers(out) == []


def test_second_run_skips_and_says_how_many(runner, synth_root, tmp_path):
    out = tmp_path / "puzzles"
    first = runner.invoke(app, ["prep", "puzzles", str(synth_root / "240P"), "--out", str(out), "--workers", "2"])
    assert first.exit_code == 0, first.output
    stamp = (out / "tt9000000" / "0000.jpg").stat().st_mtime_ns
    second = _run(runner, synth_root / "240P", out)
    assert second.exit_code == 0, second.output
    assert re.search(r"puzzles already there \(skipped\) │ +6 │", second.output)
    assert re.search(r"puzzles written +│ +0 │", second.output)
    assert (out / "tt9000000" / "0000.jpg").stat().st_mtime_ns == stamp


def test_interrupted_run_resumes_from_the_finished_puzzles(synth_root, tmp_path):
    out = tmp_path / "puzzles"
    make_puzzles(synth_root / "240P", tmp_path / "reference", PuzzlesConfig(workers=1))
    staging = staging_dir(out / "tt9000000")  # as a killed run leaves it: one puzzle done, one half-written
    staging.mkdir(parents=True)
    shutil.copy(tmp_path / "reference" / "tt9000000" / "0000.jpg", staging / "0000.jpg")
    (staging / ".0001.jpg.1234.tmp").write_bytes(b"\xff\xd8 truncated")
    report = make_puzzles(synth_root / "240P", out, PuzzlesConfig(workers=1))
    assert (report.written, report.skipped) == (5, 1)
    assert _leftovers(out) == []
    for movie in MOVIES:
        for name in ("0000.jpg", "0001.jpg"):
            assert (out / movie / name).read_bytes() == (tmp_path / "reference" / movie / name).read_bytes()


def test_a_movie_finished_in_staging_but_not_moved_is_committed_on_resume(synth_root, tmp_path):
    out = tmp_path / "puzzles"
    make_puzzles(synth_root / "240P", tmp_path / "reference", PuzzlesConfig(workers=1))
    staging = staging_dir(out / "tt9000002")  # killed between the last puzzle and the folder move
    shutil.copytree(tmp_path / "reference" / "tt9000002", staging)
    report = make_puzzles(synth_root / "240P", out, PuzzlesConfig(workers=1))
    assert (report.written, report.skipped) == (4, 2)
    assert sorted(p.name for p in (out / "tt9000002").iterdir()) == ["0000.jpg", "0001.jpg"]
    assert _leftovers(out) == []
    assert json.loads((out / "manifest.json").read_text())["puzzles"] == 6


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_keyframe_skips_the_movie_names_the_file_and_keeps_nothing_of_it(runner, dataset, tmp_path, damage):
    bad = dataset / "240P" / "tt9000001" / "shot_0020_img_1.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"not a jpeg at all")
    out = tmp_path / "puzzles"
    result = _run(runner, dataset / "240P", out)
    assert result.exit_code == 1
    assert f"error: {bad}:" in result.output
    assert "1 movies were left out" in result.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["tt9000000", "tt9000002"]
    assert _leftovers(out) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["movie"] for m in manifest["movies"]] == ["tt9000000", "tt9000002"]


def test_strict_stops_at_the_first_bad_movie(runner, dataset, tmp_path):
    missing = dataset / "240P" / "tt9000000" / "shot_0003_img_0.jpg"
    missing.unlink()
    result = _run(runner, dataset / "240P", tmp_path / "p", "--strict")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == f"error: {missing}: keyframe missing (1 missing in this movie)"
    assert not any(p.is_dir() for p in (tmp_path / "p").iterdir())


def test_mixed_sizes_are_an_error_unless_resized(dataset, tmp_path):
    odd = dataset / "240P" / "tt9000002" / "shot_0017_img_2.jpg"
    Image.open(odd).resize((320, 180)).save(odd)
    with pytest.raises(DataError) as info:
        make_puzzles(dataset / "240P", tmp_path / "a", PuzzlesConfig(workers=1, strict=True))
    assert info.value.path == odd
    assert "keyframe is 320x180 but shot_0016_img_0.jpg of the same movie is 426x240" in info.value.reason
    assert "--resize" in info.value.reason
    report = make_puzzles(dataset / "240P", tmp_path / "b", PuzzlesConfig(workers=1, resize="213x120"))
    assert report.failed == {} and report.written == 6
    assert Image.open(tmp_path / "b" / "tt9000002" / "0001.jpg").size == (3 * 213, 16 * 120)


def test_mixed_sizes_across_puzzles_of_a_movie(dataset, tmp_path):
    movie = dataset / "240P" / "tt9000000"
    for shot in range(16, 32):  # the whole second puzzle has smaller keyframes
        for j in range(3):
            path = movie / f"shot_{shot:04d}_img_{j}.jpg"
            Image.open(path).resize((320, 180)).save(path)
    report = make_puzzles(dataset / "240P", tmp_path / "p", PuzzlesConfig(workers=1))
    assert list(report.failed) == ["tt9000000"]
    assert "must share one size" in report.failed["tt9000000"].reason
    assert not (tmp_path / "p" / "tt9000000").exists()


def test_shards_split_the_movies_without_overlap(synth_root, tmp_path):
    out = tmp_path / "p"
    seen = []
    for shard in ("0/2", "1/2"):
        report = make_puzzles(synth_root / "240P", out, PuzzlesConfig(workers=1, shard=shard))
        seen.append(report.movies)
    assert seen == [2, 1]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == MOVIES
    assert json.loads((out / "manifest.json").read_text())["puzzles"] == 6


def test_split_selects_movies_from_the_default_split_file(synth_root, tmp_path):
    report = make_puzzles(synth_root / "240P", tmp_path / "p", PuzzlesConfig(workers=1, split="train"))
    assert report.movies == 1
    assert [p.name for p in (tmp_path / "p").iterdir() if p.is_dir()] == ["tt9000000"]
    with pytest.raises(DataError, match="has no split 'extra'"):
        make_puzzles(synth_root / "240P", tmp_path / "q", PuzzlesConfig(workers=1, split="extra"))


def test_too_short_movies_make_no_puzzle(dataset, tmp_path):
    movie = dataset / "240P" / "tt9000000"
    for path in movie.iterdir():
        if int(path.name[5:9]) >= 15:
            path.unlink()
    report = make_puzzles(dataset / "240P", tmp_path / "p", PuzzlesConfig(workers=1))
    assert report.too_short == ["tt9000000"] and report.failed == {}
    assert not (tmp_path / "p" / "tt9000000").exists()


def test_resuming_with_other_layout_settings_is_refused(synth_root, tmp_path):
    make_puzzles(synth_root / "240P", tmp_path / "p", PuzzlesConfig(workers=1, shard="0/3"))
    with pytest.raises(ConfigError, match="made with jpeg_quality=95, this run asks for 80"):
        make_puzzles(synth_root / "240P", tmp_path / "p", PuzzlesConfig(workers=1, jpeg_quality=80))
