"""The scene list as the files editors and players import: an OpenTimelineIO timeline and chapters.

The timeline is built once (:func:`scene_timeline`) and written through OpenTimelineIO's adapters, the ASWF
interchange library (https://github.com/AcademySoftwareFoundation/OpenTimelineIO):

``scenes.otio``
    OTIO's own JSON: one video track, one clip per scene (``Scene 1``, ...), each clip's source range the scene's
    frames of the video, its metadata ``vseg`` the scene's row of scenes.json (exact times included).
``scenes.edl``
    CMX 3600 (the ``otio-cmx3600-adapter``): one cut event per scene on reel ``AX``, ``* FROM CLIP NAME:`` naming the
    video file, so that an editor relinks the events to it and lays the scenes end to end. 29.97 and 59.94 fps are
    written in drop-frame timecode (``HH:MM:SS;FF``, OTIO's choice for those rates), others non-drop.
``scenes.xml``
    Final Cut Pro 7 XML (the ``otio-fcp-adapter``), which Premiere Pro and DaVinci Resolve also import.

Editing formats count frames: every range is in frame numbers at the video's frame rate, as an exact rational
(24000/1001 stays 24000/1001; OTIO keeps ``value / rate`` and never rounds seconds), snapped to the nearest
standard rate (:func:`editing_rate`) because CMX 3600 and FCP XML timecodes exist only for those. A variable frame
rate video is conformed the same way by the editor that imports it: frame N of the list is frame N of the video.

Chapters are in presentation time, from the video's timestamps (scenes.json's ``start_time``), each rounded *up*
to the millisecond (:func:`chapter_ms`) so that a player that jumps to a chapter shows the scene's first frame,
never the last frame of the scene before:

``chapters.vtt``
    WebVTT chapters (``<track kind="chapters">``): a cue per scene, ``Scene N`` from its start to the next.
``chapters.ffmetadata``
    FFmetadata chapters (TIMEBASE=1/1000), which ``ffmpeg -i VIDEO -i chapters.ffmetadata -map_chapters 1`` copies
    into a video (``vseg scenes --embed-chapters`` does that).
``chapters.txt``
    A YouTube-style list, a line ``MM:SS Scene N`` (``H:MM:SS`` past an hour) per scene, counted from the first
    frame, whole seconds rounded up, the first line ``00:00``. YouTube shows chapters only when there are at least
    three, each at least 10 s long.

Every file is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from vseg.io import atomic
from vseg.io.predictions import Scene

# The rates CMX 3600 and FCP 7 XML timecodes know, exact.
STANDARD_RATES = tuple(
    Fraction(rate) for rate in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60")
)
TIMELINE_FILES = ("scenes.otio", "scenes.edl", "scenes.xml")
CHAPTER_FILES = ("chapters.vtt", "chapters.ffmetadata", "chapters.txt")


def editing_rate(fps: float | Fraction) -> Fraction:
    """The standard rate nearest ``fps`` (23.976... -> 24000/1001, 29.97 -> 30000/1001, a VFR average of 29.3
    -> 30000/1001)."""
    return min(STANDARD_RATES, key=lambda rate: abs(float(rate) - float(fps)))


def _title(scene: Scene) -> str:
    return f"Scene {scene.scene + 1}"


def _frames(scene: Scene) -> tuple[int, int]:
    if scene.start_frame is None or scene.end_frame is None:
        raise ValueError(f"scene {scene.scene} of {scene.movie} has no frame range; a timeline needs frames")
    return scene.start_frame, scene.end_frame - scene.start_frame + 1


def scene_timeline(scenes: list[Scene], rate: Fraction, video: Path, frames: int, name: str):
    """An ``opentimelineio.schema.Timeline`` named ``name``: one video track with one clip per scene, each the
    scene's frames of ``video`` (a file of ``frames`` frames) at ``rate`` frames a second."""
    import opentimelineio as otio

    def time(frame: int):
        return otio.opentime.RationalTime(frame, float(rate))

    available = otio.opentime.TimeRange(time(0), time(frames))
    url = Path(video).resolve().as_uri()
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for scene in scenes:
        first, count = _frames(scene)
        track.append(
            otio.schema.Clip(
                name=_title(scene),
                media_reference=otio.schema.ExternalReference(target_url=url, available_range=available),
                source_range=otio.opentime.TimeRange(time(first), time(count)),
                metadata={"vseg": scene.as_row()},
            )
        )
    timeline = otio.schema.Timeline(name=name, global_start_time=time(0))
    timeline.tracks.append(track)
    return timeline


def write_timelines(folder: Path, timeline, names: Sequence[str] = TIMELINE_FILES) -> list[Path]:
    """Write ``scenes.otio``, ``scenes.edl`` (CMX 3600, Premiere style: reel ``AX``, the clip named by the video's
    file name, which is what editors relink by) and ``scenes.xml`` (FCP 7 XML) of ``timeline`` into ``folder``, or
    those of them ``names`` names; returns the files written."""
    import opentimelineio as otio

    writers = {
        "scenes.otio": lambda: otio.adapters.write_to_string(timeline, "otio_json"),
        "scenes.edl": lambda: otio.adapters.write_to_string(timeline, "cmx_3600", style="premiere"),
        "scenes.xml": lambda: otio.adapters.write_to_string(timeline, "fcp_xml"),
    }
    written = [Path(folder) / name for name in TIMELINE_FILES if name in names]
    for path in written:
        atomic.write_text(path, writers[path.name]())
    return written


# --------------------------------------------------------------------------------------------------- chapters


def chapter_ms(seconds: float) -> int:
    """``seconds`` in whole milliseconds rounded up (from the nearest microsecond, so that 0.07 s is 70 ms)."""
    micros = round(seconds * 1_000_000)
    return -(-micros // 1000)


def chapter_ranges(scenes: list[Scene]) -> list[tuple[int, int]]:
    """A ``(start, end)`` pair of milliseconds per scene: its start time rounded up, to the next one's start
    (the last scene's end time rounded up)."""
    if any(scene.start_time is None or scene.end_time is None for scene in scenes):
        raise ValueError("chapters need the scenes' times")
    starts = [chapter_ms(scene.start_time) for scene in scenes]
    return list(zip(starts, [*starts[1:], chapter_ms(scenes[-1].end_time)], strict=True))


def _vtt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def vtt_text(scenes: list[Scene]) -> str:
    """WebVTT chapters: a numbered cue ``Scene N`` per scene."""
    cues = [
        f"{index}\n{_vtt_time(start)} --> {_vtt_time(end)}\n{_title(scene)}\n"
        for index, (scene, (start, end)) in enumerate(zip(scenes, chapter_ranges(scenes), strict=True), start=1)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def ffmetadata_text(scenes: list[Scene]) -> str:
    """FFmetadata chapters in milliseconds, ``title=Scene N``."""
    chapters = [
        f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={start}\nEND={end}\ntitle={_title(scene)}\n"
        for scene, (start, end) in zip(scenes, chapter_ranges(scenes), strict=True)
    ]
    return ";FFMETADATA1\n" + "".join(chapters)


def _clock(seconds: int, hours: bool) -> str:
    if hours:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def youtube_text(scenes: list[Scene]) -> str:
    """A YouTube chapter list (see the module docstring)."""
    ranges = chapter_ranges(scenes)
    origin = ranges[0][0]
    hours = ranges[-1][1] - origin >= 3_600_000
    lines = [
        f"{_clock(0 if index == 0 else -(-(start - origin) // 1000), hours)} {_title(scene)}"
        for index, (scene, (start, _)) in enumerate(zip(scenes, ranges, strict=True))
    ]
    return "\n".join(lines) + "\n"


def write_chapters(folder: Path, scenes: list[Scene]) -> list[Path]:
    """Write ``chapters.vtt``, ``chapters.ffmetadata`` and ``chapters.txt`` into ``folder``; returns them."""
    folder = Path(folder)
    texts = (vtt_text(scenes), ffmetadata_text(scenes), youtube_text(scenes))
    for name, text in zip(CHAPTER_FILES, texts, strict=True):
        atomic.write_text(folder / name, text)
    return [folder / name for name in CHAPTER_FILES]
