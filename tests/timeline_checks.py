"""Reading back every timeline and chapter file of a ``vseg scenes`` folder, and checking they agree with
scenes.json to the frame."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import opentimelineio as otio
import pytest

from vseg.io.timeline import editing_rate


def _frames(clips) -> list[tuple[int, int]]:
    return [(round(c.source_range.start_time.value), round(c.source_range.duration.value)) for c in clips]


def check_outputs_agree(out: Path, clip_name: str) -> list[dict]:
    """scenes.otio, scenes.edl and scenes.xml hold one clip per scene with the scene's frames; chapters.vtt,
    chapters.ffmetadata and chapters.txt one chapter per scene at its start time, rounded up to the millisecond
    (a second for the YouTube list). Returns scenes.json's rows."""
    rows = json.loads((out / "scenes.json").read_text())
    fps = json.loads((out / "predictions.json").read_text())[rows[0]["movie"]]["fps"]
    rate = float(editing_rate(fps))
    expected = [(row["start_frame"], row["end_frame"] - row["start_frame"] + 1) for row in rows]

    timeline = otio.adapters.read_from_file(str(out / "scenes.otio"))
    clips = list(timeline.find_clips())
    assert _frames(clips) == expected and {c.source_range.start_time.rate for c in clips} == {rate}
    assert [c.name for c in clips] == [f"Scene {i}" for i in range(1, len(rows) + 1)]
    # the clip metadata is the scene's row (OTIO writes floats to 15 significant digits)
    for clip, row in zip(clips, rows, strict=True):
        meta = dict(clip.metadata["vseg"])
        assert meta.keys() == row.keys()
        assert all(
            meta[k] == pytest.approx(v, rel=1e-14) if isinstance(v, float) else meta[k] == v for k, v in row.items()
        )
    assert clips[0].media_reference.target_url.endswith("/" + clip_name)

    edl = otio.adapters.read_from_file(str(out / "scenes.edl"), rate=rate)
    assert _frames(edl.find_clips()) == expected
    assert {clip.name for clip in edl.find_clips()} == {clip_name}
    assert re.findall(r"^\d{3}  AX ", (out / "scenes.edl").read_text(), re.M)

    xml = otio.adapters.read_from_file(str(out / "scenes.xml"))
    assert _frames(xml.find_clips()) == expected

    starts = [row["start_time"] * 1000 for row in rows]
    vtt = (out / "chapters.vtt").read_text()
    assert vtt.startswith("WEBVTT\n")
    cues = re.findall(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> .*\n(.*)$", vtt, re.M)
    vtt_ms = [((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms) for h, m, s, ms, _ in cues]
    assert [title for *_, title in cues] == [f"Scene {i}" for i in range(1, len(rows) + 1)]
    assert all(0 <= ms - start < 1 + 1e-6 for ms, start in zip(vtt_ms, starts, strict=True)), (vtt_ms, starts)

    metadata = (out / "chapters.ffmetadata").read_text()
    assert metadata.startswith(";FFMETADATA1\n") and metadata.count("TIMEBASE=1/1000") == len(rows)
    assert [int(v) for v in re.findall(r"^START=(\d+)$", metadata, re.M)] == vtt_ms
    assert [int(v) for v in re.findall(r"^END=(\d+)$", metadata, re.M)][:-1] == vtt_ms[1:]

    lines = (out / "chapters.txt").read_text().splitlines()
    assert lines[0] == "00:00 Scene 1" and len(lines) == len(rows)
    for line, start in zip(lines[1:], starts[1:], strict=True):
        minutes, seconds = map(int, line.split()[0].split(":"))
        assert minutes * 60 + seconds == math.ceil(round(start - starts[0], 3) / 1000)
    return rows
