"""The human-facing outputs of ``vseg scenes``: the CMX 3600 EDL, the timeline picture and the HTML report."""

from __future__ import annotations

import base64
import io
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vseg.io.predictions import Scene, scenes_from_probabilities
from vseg.io.scene_report import boundary_x, video_src, write_report, write_timeline
from vseg.io.timeline import chapter_ms, editing_rate, scene_timeline, write_chapters, write_timelines, youtube_text

# ------------------------------------------------------------------------------------- OTIO timelines and chapters


def _scenes_24fps() -> list[Scene]:
    frames = np.array([[0, 107], [108, 239], [240, 1439], [1440, 1499]])
    return scenes_from_probabilities("movie", np.array([0.9, 0.1, 0.8, 0.0]), 0.5, frames, 24.0)


@pytest.mark.parametrize(
    ("fps", "rate"),
    [(23.976, Fraction(24000, 1001)), (24.0, 24), (29.97, Fraction(30000, 1001)), (29.3, Fraction(30000, 1001)),
     (25.0, 25), (59.94, Fraction(60000, 1001))],
)  # fmt: skip
def test_editing_rate_is_the_nearest_standard_rate(fps, rate):
    assert editing_rate(fps) == rate


def test_edl_has_one_cut_event_per_scene_with_cmx3600_columns(tmp_path):
    scenes = _scenes_24fps()
    timeline = scene_timeline(scenes, Fraction(24), tmp_path / "movie.mp4", 1500, "My movie")
    write_timelines(tmp_path, timeline)
    events = [line for line in (tmp_path / "scenes.edl").read_text().splitlines() if line[:3].isdigit()]
    assert events == [
        "001  AX       V     C        00:00:00:00 00:00:04:12 00:00:00:00 00:00:04:12",
        "002  AX       V     C        00:00:04:12 00:01:00:00 00:00:04:12 00:01:00:00",
        "003  AX       V     C        00:01:00:00 00:01:02:12 00:01:00:00 00:01:02:12",
    ]
    assert (tmp_path / "scenes.edl").read_text().count("* FROM CLIP NAME:  movie.mp4") == 3


def test_a_timeline_needs_frames(tmp_path):
    with pytest.raises(ValueError, match="frame"):
        scene_timeline([Scene("movie", 0, 0, 3)], Fraction(24), tmp_path / "m.mp4", 10, "t")


def test_chapter_times_round_up_to_the_millisecond():
    assert [chapter_ms(t) for t in (0.0, 0.07, 25 / 24, 1.0009999, 3600.0)] == [0, 70, 1042, 1001, 3_600_000]


def test_chapter_files(tmp_path):
    scenes = _scenes_24fps()
    write_chapters(tmp_path, scenes)
    assert (tmp_path / "chapters.vtt").read_text() == (
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:04.500\nScene 1\n\n2\n00:00:04.500 --> 00:01:00.000\nScene 2\n\n"
        "3\n00:01:00.000 --> 00:01:02.500\nScene 3\n"
    )
    assert (tmp_path / "chapters.ffmetadata").read_text().splitlines()[:6] == [
        ";FFMETADATA1", "[CHAPTER]", "TIMEBASE=1/1000", "START=0", "END=4500", "title=Scene 1",
    ]  # fmt: skip
    assert (tmp_path / "chapters.txt").read_text() == "00:00 Scene 1\n00:05 Scene 2\n01:00 Scene 3\n"
    long = scenes_from_probabilities("m", np.array([0.9, 0.0]), 0.5, np.array([[0, 99], [100, 24 * 4000]]), 24.0)
    assert youtube_text(long) == "0:00:00 Scene 1\n0:00:05 Scene 2\n"  # past an hour: H:MM:SS


# ------------------------------------------------------------------------------------------------------ timeline


def _red_columns(image: Image.Image) -> set[int]:
    pixels = np.asarray(image.convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    return set(np.flatnonzero(red.any(axis=0)).tolist())


def test_timeline_draws_boundaries_as_red_lines(tmp_path):
    path = tmp_path / "out" / "timeline.png"
    prob = np.array([0.1, 0.9, 0.2, 0.7, 0.3])
    assert write_timeline(path, prob, 0.5, [1, 3], title="movie") == path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (1200, 260)
        red = _red_columns(image)
    assert red == {boundary_x(1, 5, 1200), boundary_x(3, 5, 1200)}
    assert boundary_x(1, 5, 1200) < boundary_x(3, 5, 1200)
    assert [p.name for p in path.parent.iterdir()] == ["timeline.png"]  # no temporary file left


def test_timeline_shows_bars_threshold_and_scene_band(tmp_path):
    path = write_timeline(tmp_path / "t.png", np.array([0.0, 1.0]), 0.5, [], width=400, height=200)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert not _red_columns(Image.fromarray(pixels.astype(np.uint8)))
    left_half, right_half = pixels[:, 40:200], pixels[:, 220:380]
    blue = lambda part: ((part[..., 2] > 150) & (part[..., 0] < 100)).sum()  # noqa: E731
    assert blue(right_half) > 20 * blue(left_half) + 1000  # the shot with probability 1 has a tall bar
    orange = (pixels[..., 0] > 200) & (pixels[..., 1] > 120) & (pixels[..., 1] < 180) & (pixels[..., 2] < 60)
    assert orange.any(axis=1).sum() <= 3 and orange.sum() > 100  # a dashed horizontal line


def test_timeline_works_for_one_shot(tmp_path):
    path = write_timeline(tmp_path / "one.png", np.array([0.4]), 0.5, [], width=300, height=150)
    with Image.open(path) as image:
        assert image.size == (300, 150)
        assert not _red_columns(image)


def test_timeline_folds_thousands_of_shots_into_pixel_columns(tmp_path):
    prob = np.zeros(5000)
    prob[::7] = np.nan
    prob[[1000, 4000]] = 0.95
    path = write_timeline(tmp_path / "many.png", prob, 0.5, [1000, 4000])
    with Image.open(path) as image:
        assert image.size == (1200, 260)
        red = _red_columns(image)
    assert red == {boundary_x(1000, 5000, 1200), boundary_x(4000, 5000, 1200)}


def test_timeline_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        write_timeline(tmp_path / "a.png", np.array([]), 0.5, [])
    with pytest.raises(ValueError):
        write_timeline(tmp_path / "b.png", np.array([0.1, 0.2]), 0.5, [2])
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------------------------------------------- report


class _ReportParser(HTMLParser):
    """Collects the tags of a page, and the images and text of each ``<tr id="scene-K">`` row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.row_images: dict[str, list[dict[str, str | None]]] = {}
        self.row_text: dict[str, str] = {}
        self.text: list[str] = []
        self._row: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "tr":
            self._row = attributes.get("id")
            if self._row:
                self.row_images[self._row], self.row_text[self._row] = [], ""
        elif tag == "img" and self._row:
            self.row_images[self._row].append(attributes)

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row:
            self.row_text[self._row] += data


def _keyframes(folder: Path, shots: int) -> list[list[Path]]:
    """Three tiny JPEG keyframes per shot, each shot in its own colour."""
    folder.mkdir(parents=True, exist_ok=True)
    keyframes = []
    for shot in range(shots):
        paths = []
        for index in range(3):
            path = folder / f"shot_{shot:04d}_img_{index}.jpg"
            Image.new("RGB", (32, 18), (shot * 37 % 256, index * 90, 120)).save(path, quality=90)
            paths.append(path)
        keyframes.append(paths)
    return keyframes


def _parse(path: Path) -> _ReportParser:
    parser = _ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def _report_scenes() -> list[Scene]:
    """Scenes of 2, 9 and 1 shots (shots of 10 frames at 25 fps)."""
    prob = np.zeros(12)
    prob[[1, 10]] = 0.9
    frames = np.array([[10 * shot, 10 * shot + 9] for shot in range(12)])
    return scenes_from_probabilities("movie", prob, 0.5, frames, 25.0)


def test_report_has_one_row_per_scene_with_spread_thumbnails(tmp_path):
    scenes = _report_scenes()
    keyframes = _keyframes(tmp_path / "kf", 12)
    path = tmp_path / "out" / "report.html"
    prob = np.array([0.0, 0.9, *[0.0] * 8, 0.9, 0.0])
    assert write_report(path, scenes, keyframes, prob, "Movie", ["features: colour histograms"], None, 4, 40) == path
    page = _parse(path)
    assert list(page.row_images) == ["scene-0", "scene-1", "scene-2"]
    assert [len(images) for images in page.row_images.values()] == [2, 4, 1]
    assert [image["title"] for image in page.row_images["scene-1"]] == ["shot 2", "shot 5", "shot 7", "shot 10"]
    assert all(image["alt"] for images in page.row_images.values() for image in images)
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert images and all(attrs["data-src"].startswith("data:image/jpeg;base64,") for attrs in images)
    assert all((attrs["width"], attrs["height"]) == ("71", "40") for attrs in images)  # 32x18 at 40 high
    assert "+5 more shots" in page.row_text["scene-1"]
    assert "more shots" not in page.row_text["scene-0"] + page.row_text["scene-2"]
    assert "00:00:00.800" in page.row_text["scene-1"] and "00:00:04.400" in page.row_text["scene-1"]
    assert "features: colour histograms" in page.text
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_report_thumbnails_are_small_jpegs_of_the_middle_keyframe(tmp_path):
    scenes = [Scene("movie", 0, 0, 0)]
    keyframes = _keyframes(tmp_path / "kf", 1)
    path = write_report(tmp_path / "r.html", scenes, keyframes, np.array([0.0]), "t", [], thumb_height=36)
    (image,) = [attrs for tag, attrs in _parse(path).tags if tag == "img"]
    with Image.open(io.BytesIO(base64.b64decode(image["data-src"].split(",", 1)[1]))) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (64, 36)
        red, green, _ = thumb.convert("RGB").getpixel((32, 18))
    assert abs(green - 90) < 20 and red < 20  # the middle keyframe (index 1), not the first or last


def test_report_escapes_text_and_embeds_the_timeline(tmp_path):
    scenes = _report_scenes()
    keyframes = _keyframes(tmp_path / "kf", 12)
    timeline = write_timeline(tmp_path / "timeline.png", np.zeros(12), 0.5, [1, 10])
    path = write_report(tmp_path / "r.html", scenes, keyframes, np.zeros(12), "A <b>&", ["x < y"], timeline)
    source = path.read_text(encoding="utf-8")
    assert "<b>" not in source and "A &lt;b&gt;&amp;" in source and "x &lt; y" in source
    page = _parse(path)
    titles = [data for data in page.text if "A <b>&" in data]
    assert len(titles) == 2  # <title> and <h1>, unescaped by the parser
    timelines = [attrs for tag, attrs in page.tags if tag == "img" and attrs.get("class") == "timeline"]
    assert len(timelines) == 1 and timelines[0]["src"].startswith("data:image/png;base64,")
    assert all(
        (attrs.get("src") or attrs["data-src"]).startswith("data:image/") for tag, attrs in page.tags if tag == "img"
    )
    assert "http" not in source.replace("http-equiv", "")  # nothing to fetch


def test_report_shows_missing_keyframes_as_placeholders(tmp_path):
    scenes = [Scene("movie", 0, 0, 2), Scene("movie", 1, 3, 3)]
    keyframes = _keyframes(tmp_path / "kf", 3)
    keyframes[1][1].unlink()  # the middle keyframe of shot 1 is gone
    keyframes[2][1].write_bytes(b"not a jpeg")  # and shot 2's is corrupt; shot 3 has no entry at all
    path = write_report(tmp_path / "r.html", scenes, keyframes, np.zeros(4), "t", [])
    page = _parse(path)
    assert [image["title"] for image in page.row_images["scene-0"]] == ["shot 0"]
    assert page.row_text["scene-0"].count("missing") == 2
    assert page.row_images["scene-1"] == [] and "missing" in page.row_text["scene-1"]


def test_report_without_frames_or_times_shows_dashes(tmp_path):
    path = write_report(tmp_path / "r.html", [Scene("movie", 0, 0, 1)], [], np.zeros(2), "t", [], thumbs_per_scene=1)
    text = _parse(path).row_text["scene-0"]
    assert "-" in text and "+1 more shots" in text


def test_report_plays_the_video_from_its_path_and_rows_carry_their_start(tmp_path):
    scenes = _report_scenes()
    video = tmp_path / "my film #1.mp4"
    path = write_report(tmp_path / "out" / "r.html", scenes, [], np.zeros(12), "t", [], video=video)
    page = _parse(path)
    (player,) = [attrs for tag, attrs in page.tags if tag == "video"]
    assert player["src"] == "../my%20film%20%231.mp4" == video_src(video, path)
    rows = [attrs for tag, attrs in page.tags if tag == "tr" and attrs.get("id")]
    assert [row["data-start"] for row in rows] == ["0.000", "0.800", "4.400"]
