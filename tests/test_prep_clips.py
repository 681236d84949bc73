"""``vseg prep clips``: exact 5-second cuts, training.txt, resume, shards, bad ids and videos; the list formats."""

from __future__ import annotations

import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import decord
import numpy as np
import pytest

from vseg.cli import app
from vseg.config import ClipsConfig
from vseg.errors import ConfigError, DataError
from vseg.io.cliplist import (
    UntrimmedVideo,
    clip_file_name,
    format_training_list,
    parse_clip_file_name,
    read_labelled_list,
    read_training_list,
)
from vseg.io.video import VideoInfo, ffmpeg_exe, probe_video, write_video
from vseg.prep import clips as clips_stage
from vseg.prep.clips import make_clips, plan_pieces

from .synthetic_video import frame_code, make_video

LONG_CLIPS = [
    "v_long_0000000_0005000.mp4",
    "v_long_0005000_0010000.mp4",
    "v_long_0010000_0015000.mp4",
    "v_long_0015000_0020000.mp4",
    "v_long_0020000_0023400.mp4",
]


@pytest.fixture(scope="session")
def long_video(tmp_path_factory):
    """A read-only folder holding v_long.mp4: 234 coded frames at 10 fps (23.4 s), so id 'long'."""
    folder = tmp_path_factory.mktemp("videos")
    make_video(folder / "v_long.mp4", 234)
    return folder


def _run(runner, *args):
    return runner.invoke(app, ["prep", "clips", *map(str, args), "--workers", "1"])


def _row(output: str, name: str) -> str:
    """The value cell of a summary row."""
    match = re.search(rf"^\W*{re.escape(name)}\s*│\s*(.+?)\s*│?\s*$", output, re.M)
    assert match, f"no row {name!r} in:\n{output}"
    return match[1]


def _clip(path):
    """(frames, fps, index shown by the first frame, index shown by the last frame) of a clip."""
    reader = decord.VideoReader(str(path))
    return len(reader), reader.get_avg_fps(), frame_code(reader[0].asnumpy()), frame_code(reader[-1].asnumpy())


def _leftovers(out):
    return [p.name for p in out.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.parts]


def test_cuts_exactly_on_5_second_boundaries_and_lists_them(runner, long_video, tmp_path):
    out = tmp_path / "clips"
    result = _run(runner, long_video, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "training").iterdir()) == LONG_CLIPS
    assert (out / "training.txt").read_text() == (
        "long,0000000,0005000\nlong,0005000,0010000\nlong,0010000,0015000\nlong,0015000,0020000\nlong,0020000,0023400\n"
    )
    # each clip holds exactly the source frames of [start, end): the first is the one on the boundary
    for name, first in zip(LONG_CLIPS, (0, 50, 100, 150, 200), strict=True):
        last = min(first + 49, 233)
        assert _clip(out / "training" / name) == (last - first + 1, 10.0, first, last), name
    assert read_training_list(out / "training.txt", clip_ms=5000) == [
        UntrimmedVideo("long", [(0, 5000), (5000, 10000), (10000, 15000), (15000, 20000), (20000, 23400)])
    ]
    assert _row(result.output, "clips written") == "5"
    assert _row(result.output, "seconds of video") == "23.4"
    assert _row(result.output, "videos failed") == "0"
    assert "clip_seconds: 5.0" in (out / "vseg_clips.yaml").read_text()
    assert _leftovers(out) == []


def test_fractional_fps_and_a_remainder_shorter_than_a_frame(tmp_path):
    ntsc = Fraction(30000, 1001)
    make_video(tmp_path / "in" / "a.mp4", 301, ntsc)  # 10.043 s: frame 300 alone after 10 s
    make_video(tmp_path / "in" / "b.mp4", 150, ntsc)  # 5.005 s: no frame in [5.0, 5.005)
    report = make_clips([tmp_path / "in"], tmp_path / "out", ClipsConfig(workers=1))
    assert (report.written, report.failed) == (4, {})
    assert (tmp_path / "out" / "training.txt").read_text() == (
        "a,0000000,0005000\na,0005000,0010000\na,0010000,0010043\nb,0000000,0005005\n"
    )
    clip = tmp_path / "out" / "training"
    fps = pytest.approx(float(ntsc))
    # frame k is shown at k * 1.001 / 30 s: 5 s falls before frame 150, 10 s before frame 300
    assert _clip(clip / "v_a_0000000_0005000.mp4") == (150, fps, 0, 149)
    assert _clip(clip / "v_a_0005000_0010000.mp4") == (150, fps, 150, 299)
    assert _clip(clip / "v_a_0010000_0010043.mp4") == (1, fps, 300, 300)
    assert _clip(clip / "v_b_0000000_0005005.mp4") == (150, fps, 0, 149)


def test_plan_merges_only_a_frameless_remainder():
    def plan(frames, fps, clip_ms=5000, keys=None):
        return [
            (p.start_ms, p.end_ms, p.first, p.end) for p in plan_pieces(VideoInfo(frames, fps, 8, 8), clip_ms, keys)
        ]

    assert plan(100, 10.0) == [(0, 5000, 0, 50), (5000, 10000, 50, 100)]  # exactly 10 s: no empty third clip
    assert plan(101, 10.0) == [(0, 5000, 0, 50), (5000, 10000, 50, 100), (10000, 10100, 100, 101)]
    assert plan(3, 10.0) == [(0, 300, 0, 3)]  # shorter than one clip
    assert plan(100, 10.0, keys=[0, 40, 80]) == [(0, 5000, 0, 40), (5000, 10000, 40, 100)]
    with pytest.raises(ValueError, match="keyframes up to 10.0 s apart"):
        plan(150, 10.0, 2000, keys=[0, 100])


def test_second_run_skips_everything_and_a_deleted_clip_is_cut_alone(runner, long_video, tmp_path):
    out = tmp_path / "clips"
    make_clips([long_video], out, ClipsConfig(workers=1))
    listing = (out / "training.txt").read_bytes()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "training").iterdir()}
    again = _run(runner, long_video, "--out", out)
    assert again.exit_code == 0, again.output
    assert (_row(again.output, "clips written"), _row(again.output, "clips already there (skipped)")) == ("0", "5")
    assert {p.name: p.stat().st_mtime_ns for p in (out / "training").iterdir()} == stamps

    # an interrupted run: one clip gone, its half-written temporary file left behind
    (out / "training" / LONG_CLIPS[1]).unlink()
    (out / "training" / f".{LONG_CLIPS[1]}.4242.tmp").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    resumed = _run(runner, long_video, "--out", out)
    assert resumed.exit_code == 0, resumed.output
    assert (_row(resumed.output, "clips written"), _row(resumed.output, "clips already there (skipped)")) == ("1", "4")
    assert sorted(p.name for p in (out / "training").iterdir()) == LONG_CLIPS  # the temporary file is gone
    assert _clip(out / "training" / LONG_CLIPS[1]) == (50, 10.0, 50, 99)
    assert all(stamps[n] == (out / "training" / n).stat().st_mtime_ns for n in LONG_CLIPS if n != LONG_CLIPS[1])
    assert (out / "training.txt").read_bytes() == listing


def test_an_interrupted_cut_leaves_no_half_clip_and_resumes(monkeypatch, long_video, tmp_path):
    run = subprocess.run

    def interrupted(command, **kwargs):  # Ctrl-C while ffmpeg writes the third clip
        if "10.000" in command:
            Path(command[-1]).write_bytes(b"\x00\x00\x00\x18ftypisom half a clip")
            raise KeyboardInterrupt
        return run(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", interrupted)  # ffmpeg runs through vseg.io.video.run_ffmpeg
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        make_clips([long_video], out, ClipsConfig(workers=1))
    assert sorted(p.name for p in (out / "training").iterdir()) == LONG_CLIPS[:2]  # no temporary file, no half clip
    assert not (out / "training.txt").exists()
    monkeypatch.undo()
    report = make_clips([long_video], out, ClipsConfig(workers=1))
    assert (report.written, report.skipped, report.clips) == (3, 2, 5)
    assert _clip(out / "training" / LONG_CLIPS[2]) == (50, 10.0, 100, 149)


def test_resuming_with_other_settings_is_refused(long_video, tmp_path):
    make_clips([long_video], tmp_path / "out", ClipsConfig(workers=1, clip_seconds=10))
    with pytest.raises(ConfigError, match="made with clip_seconds=10.0, this run asks for 5.0"):
        make_clips([long_video], tmp_path / "out", ClipsConfig(workers=1))


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a,b.mp4"], "contains a comma"),
        (["v_.mp4"], "the video id is empty"),
        (["x..y.mp4"], "contains '..'"),
        (["one/x.mp4", "two/v_x.mkv"], "has the same id as"),
    ],
)
def test_bad_ids_are_refused_before_anything_is_written(runner, long_video, tmp_path, names, message):
    paths = []
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(long_video / "v_long.mp4", path)
        paths.append(path)
    out = tmp_path / "out"
    result = _run(runner, *paths, "--out", out)
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and line.startswith(f"error: {paths[-1]}: ") and message in line
    assert not out.exists()


def test_the_same_file_twice_is_refused(runner, long_video, tmp_path):
    result = _run(runner, long_video, long_video / "v_long.mp4", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "is given twice ('long')" in result.output
    assert not (tmp_path / "out").exists()


def test_unreadable_and_empty_videos_are_reported_and_the_others_cut(runner, long_video, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(long_video / "v_long.mp4", folder / "v_long.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "junk.mkv").write_bytes(b"not a video, just some bytes" * 100)
    (folder / "notes.txt").write_text("not a video extension: ignored")
    out = tmp_path / "out"
    result = _run(runner, folder, "--out", out)
    assert result.exit_code == 1
    assert f"error: {folder / 'empty.mp4'}: empty file (0 bytes)" in result.output
    assert f"error: {folder / 'junk.mkv'}: cannot read video" in result.output
    assert "2 videos were left out" in result.output
    assert sorted(p.name for p in (out / "training").iterdir()) == LONG_CLIPS
    assert [v.id for v in read_training_list(out / "training.txt")] == ["long"]
    assert (_row(result.output, "videos"), _row(result.output, "videos failed")) == ("3", "2")


def test_a_clip_that_fails_verification_fails_its_video_and_keeps_none_of_it(monkeypatch, long_video, tmp_path):
    make_video(tmp_path / "other.mp4", 80)  # 8 s: no clip at 10 s, cut as usual
    command = clips_stage.ffmpeg_command

    def short_third_clip(job, target):  # as if ffmpeg stopped early on the long video's third clip
        cut = command(job, target)
        return [*cut[:-3], "-frames:v", "7", *cut[-3:]] if job.piece.start_ms == 10000 else cut

    monkeypatch.setattr(clips_stage, "ffmpeg_command", short_third_clip)
    report = make_clips([long_video, tmp_path / "other.mp4"], tmp_path / "out", ClipsConfig(workers=1))
    assert list(report.failed) == ["long"]
    error = report.failed["long"]
    assert error.path == long_video / "v_long.mp4"
    assert error.reason == "the cut clip v_long_0010000_0015000.mp4 has 7 frames at 10 fps, expected 50 at 10 fps"
    # the long video's two clips written before the bad one are removed; the other video is cut and listed
    assert sorted(p.name for p in (tmp_path / "out" / "training").iterdir()) == [
        "v_other_0000000_0005000.mp4",
        "v_other_0005000_0008000.mp4",
    ]
    assert (tmp_path / "out" / "training.txt").read_text() == "other,0000000,0005000\nother,0005000,0008000\n"
    assert (report.written, report.clips) == (2, 2)


def test_shards_write_their_own_lists_and_a_final_run_lists_all(runner, tmp_path):
    for name, frames in (("c", 60), ("a", 30), ("b", 120)):
        make_video(tmp_path / "in" / f"{name}.mp4", frames)
    out = tmp_path / "out"
    for shard in ("0/2", "1/2"):
        result = _run(runner, tmp_path / "in", "--out", out, "--shard", shard)
        assert result.exit_code == 0, result.output
    assert (out / "training.shard-0-of-2.txt").read_text() == (
        "a,0000000,0003000\nc,0000000,0005000\nc,0005000,0006000\n"
    )
    assert (out / "training.shard-1-of-2.txt").read_text() == (
        "b,0000000,0005000\nb,0005000,0010000\nb,0010000,0012000\n"
    )
    assert not (out / "training.txt").exists()
    final = _run(runner, tmp_path / "in", "--out", out)
    assert (_row(final.output, "clips written"), _row(final.output, "clips already there (skipped)")) == ("0", "6")
    assert [(v.id, v.duration) for v in read_training_list(out / "training.txt")] == [
        ("a", 3.0),
        ("b", 12.0),
        ("c", 6.0),
    ]


def test_clip_seconds_2_with_two_workers(runner, long_video, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["prep", "clips", str(long_video), "-o", str(out), "--clip-seconds", "2", "-j", "2"])
    assert result.exit_code == 0, result.output
    videos = read_training_list(out / "training.txt", clip_ms=2000)
    assert videos[0].pieces == [*((s, s + 2000) for s in range(0, 22000, 2000)), (22000, 23400)]
    names = sorted(p.name for p in (out / "training").iterdir())
    assert names == videos[0].clip_names() and names[-1] == "v_long_0022000_0023400.mp4"
    assert _clip(out / "training" / "v_long_0006000_0008000.mp4") == (20, 10.0, 60, 79)
    assert _clip(out / "training" / names[-1]) == (14, 10.0, 220, 233)


def test_stream_copy_starts_each_clip_on_the_keyframe_before_its_boundary(runner, tmp_path):
    make_video(tmp_path / "in" / "k.mp4", 234, gop=40)  # keyframes at 0, 4, 8, ... s
    make_video(tmp_path / "in" / "sparse.mp4", 150, gop=100)  # keyframes 10 s apart
    out = tmp_path / "out"
    result = _run(runner, tmp_path / "in", "--out", out, "--stream-copy", "--clip-seconds", "5")
    assert result.exit_code == 1
    assert "keyframes up to 10.0 s apart, longer than a clip (5 s)" in result.output
    assert f"error: {tmp_path / 'in' / 'sparse.mp4'}: " in result.output
    clip = out / "training"
    # boundaries 5, 10, 15, 20 s move back to the keyframes at frames 40, 80, 120, 200
    assert _clip(clip / "v_k_0000000_0005000.mp4") == (40, 10.0, 0, 39)
    assert _clip(clip / "v_k_0005000_0010000.mp4") == (40, 10.0, 40, 79)
    assert _clip(clip / "v_k_0010000_0015000.mp4") == (40, 10.0, 80, 119)
    assert _clip(clip / "v_k_0015000_0020000.mp4") == (80, 10.0, 120, 199)
    assert _clip(clip / "v_k_0020000_0023400.mp4") == (34, 10.0, 200, 233)
    assert [v.id for v in read_training_list(out / "training.txt")] == ["k"]


def test_odd_sized_source_is_cropped_to_even_sizes(tmp_path):
    source = tmp_path / "odd.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=65x49:rate=10:duration=6",
         "-c:v", "libx264", "-pix_fmt", "yuv444p", str(source)],
        check=True,
    )  # fmt: skip
    assert probe_video(source) == VideoInfo(60, 10.0, 65, 49)
    report = make_clips([source], tmp_path / "out", ClipsConfig(workers=1))
    assert (report.written, report.failed) == (2, {})
    assert probe_video(tmp_path / "out" / "training" / "v_odd_0005000_0006000.mp4") == VideoInfo(10, 10.0, 64, 48)


def test_missing_input_and_empty_folder_are_named(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    missing = _run(runner, tmp_path / "nope.mp4", "--out", tmp_path / "out")
    assert (missing.exit_code, missing.output.strip()) == (
        2,
        f"error: {tmp_path / 'nope.mp4'}: no such video file or folder",
    )
    empty = _run(runner, tmp_path / "empty", "--out", tmp_path / "out")
    assert empty.exit_code == 2 and f"error: {tmp_path / 'empty'}: no video files in this folder" in empty.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ formats


def test_clip_names_round_trip():
    assert clip_file_name("--0edUL8zmA", 90000, 92120) == "v_--0edUL8zmA_0090000_0092120.mp4"
    assert parse_clip_file_name("v_--0edUL8zmA_0090000_0092120.mp4") == ("--0edUL8zmA", 90000, 92120)
    assert parse_clip_file_name("v_a_b_0000000_0005000.mp4") == ("a_b", 0, 5000)
    assert clip_file_name("x", 10_000_000, 10_005_000) == "v_x_10000000_10005000.mp4"  # past 7 digits
    for bad in ("v_a_5000_10000.mp4", "a_0000000_0005000.mp4", "v_a_0005000_0005000.mp4", "v__0000000_0005000.mp4"):
        with pytest.raises(ValueError, match="not a clip file name"):
            parse_clip_file_name(bad)
    with pytest.raises(ValueError, match="comma"):
        clip_file_name("a,b", 0, 5000)


def test_training_list_round_trips_and_ignores_blank_lines(tmp_path):
    videos = [UntrimmedVideo("a", [(0, 5000), (5000, 7250)]), UntrimmedVideo("b_c", [(0, 4000)])]
    path = tmp_path / "training.txt"
    path.write_text(format_training_list(videos) + "\n")
    assert read_training_list(path) == videos
    assert [v.duration for v in videos] == [7.25, 4.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,0000000\n", "line 1: expected <id>,<startms>,<endms>"),
        ("a,0000000,5000\n", "line 1: start and end must be milliseconds as 7-digit integers"),
        ("a,0005000,0001000\n", "line 1: the piece ends (1000 ms) before it starts (5000 ms)"),
        ("a/b,0000000,0005000\n", "line 1: the video id 'a/b' contains a path separator"),
        ("a,0005000,0010000\n", "line 1: the video's first piece must start at 0000000"),
        ("a,0000000,0005000\n\na,0006000,0010000\n", "line 3: pieces must be contiguous: expected start 0005000"),
        (
            "a,0000000,0005000\nb,0000000,0005000\na,0005000,0010000\n",
            "line 3: the lines of video 'a' are not together (it also appears at line 1)",
        ),
        (
            "a,0000000,0005000\na,0005000,0008000\nb,0000000,0004000\nb,0004000,0006000\n",
            "line 3: pieces must be 5000 ms long and start on multiples of 5000 ms",
        ),
    ],
)
def test_training_list_violations_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "training.txt"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_training_list(path)
    assert info.value.path == path
    assert info.value.reason.startswith(message), info.value.reason


def test_training_list_with_an_explicit_clip_length(tmp_path):
    path = tmp_path / "training.txt"
    path.write_text("a,0000000,0002000\na,0002000,0003000\n")
    assert read_training_list(path, clip_ms=2000)[0].pieces == [(0, 2000), (2000, 3000)]
    with pytest.raises(DataError, match="line 1: pieces must be 5000 ms long"):
        read_training_list(path, clip_ms=5000)
    with pytest.raises(DataError, match="clip list missing"):
        read_training_list(tmp_path / "nope.txt")


def test_labelled_list_paths_and_labels(tmp_path):
    path = tmp_path / "lists" / "ucf101_train_list.txt"
    path.parent.mkdir()
    path.write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0\n\nWith Space/v_x.avi 12\n")
    assert read_labelled_list(path) == [
        (tmp_path / "lists" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi", 0),
        (tmp_path / "lists" / "With Space" / "v_x.avi", 12),
    ]
    assert read_labelled_list(path, root=tmp_path / "videos")[1] == (tmp_path / "videos" / "With Space" / "v_x.avi", 12)
    path.write_text("a.avi 1\nb.avi\n")
    with pytest.raises(DataError, match=r"line 2: expected 'relative/path label' with an integer label, got 'b.avi'"):
        read_labelled_list(path)


# -------------------------------------------------------------------------------------------- video io


def test_write_video_and_probe(tmp_path):
    path = make_video(tmp_path / "v.mkv", 25, "25/2")
    assert probe_video(path) == VideoInfo(25, 12.5, 96, 48)
    assert probe_video(path).duration == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mkv"]
    with pytest.raises(ValueError, match="even H and W"):
        write_video(tmp_path / "odd.mp4", [np.zeros((1, 1, 3), np.uint8)], 10)
    assert not (tmp_path / "odd.mp4").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["v.mkv"]
    with pytest.raises(DataError, match="video missing"):
        probe_video(tmp_path / "nope.mp4")


def test_ffmpeg_exe_honours_imageio_ffmpeg_exe(monkeypatch):
    ffmpeg_exe.cache_clear()
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/nonexistent/ffmpeg")
    try:
        with pytest.raises(ConfigError, match="IMAGEIO_FFMPEG_EXE=/nonexistent/ffmpeg: no such executable"):
            ffmpeg_exe()
    finally:
        ffmpeg_exe.cache_clear()
