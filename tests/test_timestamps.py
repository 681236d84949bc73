"""Times from the stream: shots and scenes of videos with a variable frame rate, a first timestamp other than 0 and
23.976 / 29.97 fps get the time at which a player shows their first frame; ``--split`` pieces hold exactly their
scene's frames; chapters embedded by ``--embed-chapters`` read back; bad timestamps, no video stream and a video
that ends early."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vseg.cli import app
from vseg.io.timeline import chapter_ms
from vseg.io.video import read_frame_times, write_video

from .synthetic_video import cut_frames, decoded_codes, decoded_times, write_timed_video
from .timeline_checks import check_outputs_agree

CUTS = [20, 41, 63, 85]  # shots of 20-23 frames (the detector's shortest is 15)
FRAMES = 105
TIME_BASE = Fraction(1, 1000)


def _vfr_pts(first: int = 0, seed: int = 0) -> list[int]:
    """Presentation timestamps in ms: gaps of 20, 40 or 100 ms (50, 25 or 10 fps), starting at ``first``."""
    gaps = np.random.default_rng(seed).choice([20, 40, 100], size=FRAMES - 1)
    return [first, *(first + np.cumsum(gaps)).tolist()]


def _scenes(runner, video: Path, out: Path, *args: str):
    # the window scorer, threshold 0 and scenes of 1 shot: every shot is a scene, so every cut is a scene boundary
    options = ["--method", "window", "--threshold", "0", "--min-scene-shots", "1"]
    return runner.invoke(app, ["scenes", str(video), "--out", str(out), *options, *args])


@pytest.mark.parametrize(("suffix", "first"), [(".mp4", 0), (".mp4", 1500), (".mkv", 10_050)])
def test_variable_frame_rate_scenes_start_when_their_first_frame_is_shown(runner, tmp_path, suffix, first):
    pts = _vfr_pts(first)
    video = write_timed_video(tmp_path / f"vfr{suffix}", list(cut_frames(FRAMES, CUTS)), pts, TIME_BASE)
    assert decoded_times(video) == [p * TIME_BASE for p in pts]  # what a player shows, and when
    out = tmp_path / "out"
    result = _scenes(runner, video, out, "--split")
    assert result.exit_code == 0, result.output
    rows = check_outputs_agree(out, video.name)
    assert [row["start_frame"] for row in rows] == [0, *CUTS]
    for row in rows:
        assert row["start_time"] == float(pts[row["start_frame"]] * TIME_BASE)
    for row, after in zip(rows, rows[1:], strict=False):
        assert row["end_time"] == after["start_time"]
    times = read_frame_times(video)  # the last frame lasts what its packet says
    assert rows[-1]["end_time"] == float(times.end * times.time_base) > pts[-1] * TIME_BASE
    meta = json.loads((out / "shots" / "meta" / "vfr.json").read_text())
    assert meta["frames"] == FRAMES and Fraction(meta["time_base"]) * meta["shot_pts"][1][0] == pts[20] * TIME_BASE
    # every piece holds exactly its scene's frames, each shown as long as in the video
    pieces = sorted((out / "scenes").iterdir())
    assert len(pieces) == len(rows)
    for piece, row in zip(pieces, rows, strict=True):
        assert decoded_codes(piece) == list(range(row["start_frame"], row["end_frame"] + 1)), piece.name
        times = decoded_times(piece)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        frames = range(row["start_frame"], row["end_frame"])
        assert gaps == [(pts[i + 1] - pts[i]) * TIME_BASE for i in frames], piece.name


@pytest.mark.parametrize("rate", ["24000/1001", "30000/1001"])
def test_ntsc_rates_keep_exact_times(runner, tmp_path, rate):
    video = tmp_path / "ntsc.mp4"
    write_video(video, cut_frames(FRAMES, CUTS), rate)
    out = tmp_path / "out"
    result = _scenes(runner, video, out)
    assert result.exit_code == 0, result.output
    rows = check_outputs_agree(out, video.name)
    period = 1 / Fraction(rate)
    assert [row["start_time"] for row in rows] == [float(row["start_frame"] * period) for row in rows]
    assert rows[-1]["end_time"] == float(FRAMES * period)
    # frame 85 in the EDL: 23.976 counts 24 frames a second (non-drop), 29.97 in drop-frame timecode (';')
    edl = (out / "scenes.edl").read_text()
    assert (" 00:00:03:13 " if rate == "24000/1001" else " 00:00:02;25 ") in edl
    # the chapters round up to the millisecond: a player jumping there shows the scene's first frame
    vtt = (out / "chapters.vtt").read_text()
    assert f"{chapter_ms(85 * float(period)) / 1000:.3f}" in vtt


def test_embedded_chapters_read_back_with_the_same_times(runner, tmp_path):
    pts = _vfr_pts(1500, seed=1)
    video = write_timed_video(tmp_path / "film.mp4", list(cut_frames(FRAMES, CUTS)), pts, TIME_BASE)
    out = tmp_path / "out"
    result = _scenes(runner, video, out, "--embed-chapters")
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "scenes.json").read_text())
    copy = out / "film-chapters.mp4"
    with av.open(str(copy)) as container:
        chapters = [(c["start"] * c["time_base"], c["metadata"].get("title")) for c in container.chapters()]
    assert [title for _, title in chapters] == [f"Scene {i}" for i in range(1, len(rows) + 1)]
    starts = [Fraction(chapter_ms(row["start_time"]), 1000) for row in rows]
    # MP4 keeps chapters as a text track, whose first sample starts with the file: the first chapter reads 0
    assert [start for start, _ in chapters] == [0, *starts[1:]] and starts[0] == Fraction(3, 2)
    # a stream copy: the same frames at the same times
    assert decoded_times(copy) == decoded_times(video) and decoded_codes(copy) == list(range(FRAMES))


# ------------------------------------------------------------------------------------------------- bad input


def _one_error(result, *parts: str) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "Traceback" not in result.output and all(part in errors[0] for part in parts), errors[0]
    return errors[0]


def test_timestamps_that_go_backwards_are_one_line(runner, tmp_path):
    # two MPEG-TS files joined: the second one's clock starts again at 0
    frames = list(cut_frames(40, [20]))
    parts = [write_timed_video(tmp_path / f"{i}.ts", frames, list(range(0, 3600 * 40, 3600)), Fraction(1, 90000))
             for i in range(2)]  # fmt: skip
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    result = _scenes(runner, joined, tmp_path / "out")
    _one_error(result, str(joined), "timestamps go backwards")
    assert not (tmp_path / "out" / "scenes.json").exists()


def test_a_file_without_a_video_stream_is_one_line(runner, tmp_path):
    sound = tmp_path / "sound.mkv"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    result = _scenes(runner, sound, tmp_path / "out")
    _one_error(result, str(sound), "no video stream")
    with pytest.raises(Exception, match="has no video stream"):
        read_frame_times(sound)


def test_a_video_that_ends_early_is_cut_where_its_frames_end(runner, tmp_path):
    whole = write_timed_video(tmp_path / "whole.mkv", list(cut_frames(FRAMES, CUTS)), _vfr_pts(), TIME_BASE)
    video = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    video.write_bytes(data[: len(data) * 7 // 10])
    decodable = len(decoded_codes(video))
    assert 50 < decodable < FRAMES
    out = tmp_path / "out"
    result = _scenes(runner, video, out)
    assert result.exit_code == 0, result.output
    assert "ends early" in result.output
    rows = check_outputs_agree(out, video.name)
    assert rows[-1]["end_frame"] == len(read_frame_times(video)) - 1 <= decodable - 1
    assert "ends early" in (out / "report.html").read_text()
    shutil.rmtree(out)
