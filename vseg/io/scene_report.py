"""What ``vseg scenes VIDEO --out DIR`` leaves for a person to look at, besides ``scenes.json`` / ``scenes.csv``.

``scenes.edl``
    A CMX 3600 edit decision list (:func:`edl_text`): one cut event per scene, source and record timecodes equal,
    so that importing it into Premiere, Resolve or Avid lays the scenes end to end and reproduces the video, cut at
    the scene boundaries. Timecodes are non-drop-frame ``HH:MM:SS:FF`` at the nominal rate (see :func:`smpte`).

``timeline.png``
    A picture of the per-shot boundary probability along the shot axis (:func:`write_timeline`): the threshold as a
    dashed line, each chosen boundary as a red vertical line, and under the plot a band with one block per scene.
    When the true scenes are known (the demo, tests), a second band under the shot labels shows them, in green.

``report.html``
    One self-contained HTML page (:func:`write_report`) that opens in any browser without a server or network: the
    notes on how the scenes were found, the timeline, and a table with one row per scene (timecodes, frames, shots)
    and thumbnails of its shots. Every image is embedded as a base64 data URI.

Every file is written atomically: it appears only when complete.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.images import load_rgb
from vseg.io.predictions import Scene, timecode

# ----------------------------------------------------------------------------------------------------------- EDL


def smpte(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF`` non-drop-frame timecode of frame number ``frame``, counting ``round(fps)`` frames a second
    (29.97 -> 30, 23.976 -> 24): the frame count an editor's NDF timecode stands for."""
    nominal = round(fps)
    if nominal < 1:
        raise ValueError(f"frame rate {fps} is too low for a timecode")
    if frame < 0:
        raise ValueError(f"negative frame number {frame}")
    seconds, frames = divmod(int(frame), nominal)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{frames:02d}"


def _one_line(text: str) -> str:
    """``text`` with line breaks replaced by spaces, so it cannot break the line-based EDL format."""
    return " ".join(text.splitlines())


def edl_text(scenes: list[Scene], fps: float, title: str, clip_name: str) -> str:
    """A CMX 3600 EDL with one video cut event per scene, numbered from 001, on reel ``AX``.

    Source in/out are the scene's first frame and the frame after its last (the out point is exclusive); record
    in/out are the same, so the events laid end to end reproduce the video. Each event is followed by a
    ``* FROM CLIP NAME:`` comment naming ``clip_name``, which is how editors relink the events to the video file.
    Raises ValueError for a scene without frames.
    """
    lines = [f"TITLE: {_one_line(title)}", "FCM: NON-DROP FRAME", ""]
    for event, scene in enumerate(scenes, start=1):
        if scene.start_frame is None or scene.end_frame is None:
            raise ValueError(f"scene {scene.scene} of {scene.movie} has no frame range; an EDL needs frames")
        src_in, src_out = smpte(scene.start_frame, fps), smpte(scene.end_frame + 1, fps)
        lines.append(f"{event:03d}  {'AX':<8} {'V':<5} {'C':<8} {src_in} {src_out} {src_in} {src_out}")
        lines.append(f"* FROM CLIP NAME: {_one_line(clip_name)}")
        lines.append("")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ timeline

_LEFT, _RIGHT, _TOP = 34, 14, 26  # margins around the plot area, in pixels
_BAND, _BAND_GAP, _LABELS = 12, 3, 16  # scene band height, gap above it, room for the shot labels under it
_BAND_COLOURS = ((120, 160, 210), (205, 215, 230))
_TRUTH_COLOURS = ((60, 160, 90), (190, 225, 200))
_BAR = (70, 120, 180)
_BOUNDARY = (220, 30, 30)
_THRESHOLD = (240, 150, 0)
_GRID = (225, 225, 225)
_TEXT = (40, 40, 40)


_Box = tuple[int, int, int, int]  # the plot area: left, top, right, bottom (right and bottom exclusive)
_Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _plot_box(width: int, height: int) -> _Box:
    return _LEFT, _TOP, width - _RIGHT, height - _BAND_GAP - _BAND - _LABELS


def _cut_x(shot: int, count: int, box: _Box) -> int:
    """The column of the cut after ``shot``: the first column of shot ``shot + 1`` (the plot's last column for the
    last shot)."""
    plot = box[2] - box[0]
    return box[0] + min((shot + 1) * plot // count, plot - 1)


def boundary_x(shot: int, count: int, width: int) -> int:
    """The image column of :func:`write_timeline`'s red line for a boundary after ``shot`` of ``count`` shots in a
    timeline ``width`` pixels wide."""
    return _cut_x(shot, count, _plot_box(width, 0))


def _column_max(prob: np.ndarray, plot: int) -> np.ndarray:
    """The highest probability shown in each of ``plot`` pixel columns: each column shows the shot under it, and
    every shot narrower than a pixel is folded into its column by maximum."""
    count = len(prob)
    values = prob[np.arange(plot) * count // plot]
    np.maximum.at(values, np.arange(count) * plot // count, prob)
    return values


def _nice_step(count: int, ticks: int = 10) -> int:
    """The smallest step of 1, 2 or 5 times a power of ten giving at most ``ticks`` labels over ``count`` shots."""
    magnitude = 1
    while True:
        for mantissa in (1, 2, 5):
            if count <= ticks * mantissa * magnitude:
                return mantissa * magnitude
        magnitude *= 10


def _centred_text(draw: ImageDraw.ImageDraw, x: float, y: float, text: str, font: _Font) -> None:
    """Draw ``text`` with its top centre at (x, y)."""
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    draw.text((x - (right - left) / 2, y), text, fill=_TEXT, font=font)


def _draw_axes(draw: ImageDraw.ImageDraw, count: int, box: _Box, font: _Font) -> None:
    """Grid lines, probability labels (0, 0.5, 1) on the y axis and shot indices on the x axis."""
    x0, y0, x1, y1 = box
    for level in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = round(y1 - level * (y1 - y0))
        draw.line([(x0, y), (x1, y)], fill=_GRID)
        if level in (0.0, 0.5, 1.0):
            label = f"{level:g}"
            left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
            draw.text((x0 - 5 - (right - left), y - (bottom + top) / 2), label, fill=_TEXT, font=font)
    for shot in range(0, count, _nice_step(count)):
        x = x0 + (shot + 0.5) * (x1 - x0) / count
        draw.line([(x, y0), (x, y1)], fill=_GRID)
        _centred_text(draw, x, y1 + _BAND_GAP + _BAND + 2, str(shot), font)


def _draw_bars(draw: ImageDraw.ImageDraw, prob: np.ndarray, box: _Box) -> None:
    """One bar per shot (one per pixel column when shots are narrower than a pixel), with a one-pixel gap between
    shots when bars are at least 4 pixels wide."""
    x0, y0, x1, y1 = box
    plot, count = x1 - x0, len(prob)
    values = _column_max(prob, plot)
    shot_starts = set((np.arange(count) * plot // count).tolist()) if plot >= 4 * count else set()
    for column, value in enumerate(values.tolist()):
        top = round(y1 - value * (y1 - y0))
        if column not in shot_starts and top < y1:
            draw.line([(x0 + column, top), (x0 + column, y1 - 1)], fill=_BAR)


def _draw_threshold(draw: ImageDraw.ImageDraw, threshold: float, box: _Box) -> None:
    """The threshold as a dashed horizontal line (6 pixels on, 4 off)."""
    x0, y0, x1, y1 = box
    y = round(y1 - min(max(threshold, 0.0), 1.0) * (y1 - y0))
    for x in range(x0, x1, 10):
        draw.line([(x, y), (min(x + 5, x1), y)], fill=_THRESHOLD, width=2)


def _draw_scenes(draw: ImageDraw.ImageDraw, count: int, boundaries: list[int], box: _Box) -> None:
    """The boundaries as red vertical lines over the plot, and the scenes as alternating blocks under it."""
    x0, y0, x1, y1 = box
    starts = [x0, *(_cut_x(shot, count, box) for shot in boundaries)]
    ends = [*starts[1:], x1]
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        band_top = y1 + _BAND_GAP
        draw.rectangle([start, band_top, max(start, end - 1), band_top + _BAND - 1], fill=_BAND_COLOURS[index % 2])
    for x in starts[1:]:
        draw.line([(x, y0), (x, y1 - 1)], fill=_BOUNDARY)


def _draw_truth(draw: ImageDraw.ImageDraw, count: int, truth: list[int], box: _Box, top: int, font: _Font) -> None:
    """The true scenes as a band of alternating greens at ``top`` (under the shot labels), labelled "truth"."""
    x0, _, x1, _ = box
    starts = [x0, *(_cut_x(shot, count, box) for shot in truth)]
    for index, (start, end) in enumerate(zip(starts, [*starts[1:], x1], strict=True)):
        draw.rectangle([start, top, max(start, end - 1), top + _BAND - 1], fill=_TRUTH_COLOURS[index % 2])
    left, _, right, _ = draw.textbbox((0, 0), "truth", font=font)
    draw.text((x0 - 3 - (right - left), top), "truth", fill=_TEXT, font=font)


def truth_band_y(height: int) -> int:
    """The first image row of :func:`write_timeline`'s truth band, for a timeline of ``height`` without it."""
    return height + _BAND_GAP


def write_timeline(
    path: Path,
    prob: np.ndarray,
    threshold: float,
    boundaries: list[int],
    title: str = "",
    width: int = 1200,
    height: int = 260,
    truth: list[int] | None = None,
) -> Path:
    """Write a ``width`` x ``height`` PNG of the boundary probability of every shot (NaN drawn as 0), the threshold
    (dashed), the chosen ``boundaries`` (indices of the shots that end a scene; red lines) and the scenes they make
    (a band of alternating colours under the plot), with ``title`` at the top. With ``truth`` (the shots that end a
    true scene) the picture grows by a second band at the bottom with the true scenes. Returns ``path``."""
    prob = np.clip(np.nan_to_num(np.asarray(prob, dtype=np.float64).reshape(-1), nan=0.0), 0.0, 1.0)
    count = len(prob)
    if count == 0:
        raise ValueError("no shots to draw")
    if width < _LEFT + _RIGHT + 50 or height < _TOP + _BAND_GAP + _BAND + _LABELS + 50:
        raise ValueError(f"timeline size {width}x{height} is too small")
    if any(not 0 <= shot < count for shot in [*boundaries, *(truth or [])]):
        raise ValueError(f"boundaries must be shot indices in 0..{count - 1}")
    extra = 0 if truth is None else _BAND_GAP + _BAND + 2
    image = Image.new("RGB", (width, height + extra), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    box = _plot_box(width, height)
    _draw_axes(draw, count, box, font)
    _draw_bars(draw, prob, box)
    _draw_threshold(draw, threshold, box)
    _draw_scenes(draw, count, sorted(boundaries), box)
    if truth is not None:
        _draw_truth(draw, count, sorted(truth), box, truth_band_y(height), font)
    draw.rectangle([box[0] - 1, box[1] - 1, box[2], box[3]], outline=(150, 150, 150))
    summary = f"{count} shots, {len(boundaries) + 1} scenes, threshold {threshold:g}"
    summary += "" if truth is None else f"; {len(truth) + 1} true scenes (green)"
    left, _, right, _ = draw.textbbox((0, 0), summary, font=font)
    draw.text((width - _RIGHT - (right - left), 8), summary, fill=_TEXT, font=font)
    draw.text((_LEFT, 8), title, fill=_TEXT, font=font)
    with atomic.atomic_path(Path(path)) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


# -------------------------------------------------------------------------------------------------------- report

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; }
img.timeline { max-width: 100%; border: 1px solid #ccc; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: middle; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.scene:target { background: #fff6d0; }
div.thumbs { display: flex; gap: 3px; align-items: center; }
div.thumbs img { display: block; }
span.missing { display: inline-flex; align-items: center; justify-content: center; background: #bbb;
  color: #555; font-size: 0.8em; }
span.more { color: #666; font-size: 0.85em; margin-left: 0.5em; white-space: nowrap; }
div.strip { display: flex; height: 14px; margin: 2px 0; }
div.strip span { display: block; height: 100%; }
div.strips { max-width: 1200px; }
"""

_COLUMNS = ("Scene", "Start", "End", "Frames", "Shots", "Count", "Cut p", "Thumbnails")


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _thumbnail_jpeg(path: Path, height: int) -> bytes:
    """The image at ``path`` re-encoded as a small JPEG ``height`` pixels high (DataError if unreadable)."""
    image = load_rgb(path)
    size = (max(1, round(image.width * height / image.height)), height)
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _thumbnail_src(frames: list[Path], height: int) -> str | None:
    """A JPEG data URI of the middle keyframe of a shot, or None when there is none or it cannot be read."""
    if not frames:
        return None
    try:
        return _data_uri(_thumbnail_jpeg(Path(frames[len(frames) // 2]), height), "image/jpeg")
    except DataError:
        return None


def _thumbnail_html(scene: Scene, shot: int, keyframes: list[list[Path]], height: int) -> str:
    """The ``<img>`` of ``shot``'s middle keyframe, or a grey "missing" box when it cannot be read."""
    src = _thumbnail_src(keyframes[shot] if shot < len(keyframes) else [], height)
    if src is None:
        style = f"width:{round(height * 16 / 9)}px;height:{height}px"
        return f'<span class="missing" title="shot {shot}" style="{style}">missing</span>'
    return f'<img src="{src}" height="{height}" title="shot {shot}" alt="scene {scene.scene}, shot {shot}">'


def _spread(first: int, last: int, limit: int) -> list[int]:
    """At most ``limit`` shots of ``first..last``, evenly spread with the first and last included."""
    if last - first + 1 <= limit:
        return list(range(first, last + 1))
    return sorted({round(x) for x in np.linspace(first, last, limit)})


def _timecode_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else timecode(seconds)


def _cut_probability(scene: Scene, prob: np.ndarray, last_scene: bool) -> str:
    """The probability of the boundary that ends ``scene`` ('-' for the last scene, which ends the movie)."""
    if last_scene or scene.last_shot >= len(prob) or math.isnan(prob[scene.last_shot]):
        return "-"
    return f"{prob[scene.last_shot]:.2f}"


def _scene_row(scene: Scene, cells: list[str], thumbs: str) -> str:
    tds = "".join(f'<td class="num">{html.escape(cell)}</td>' for cell in cells)
    return f'<tr id="scene-{scene.scene}" class="scene">{tds}<td><div class="thumbs">{thumbs}</div></td></tr>'


def _scene_html(scene: Scene, keyframes, prob: np.ndarray, last_scene: bool, limit: int, height: int) -> str:
    """One table row: the scene's numbers and the thumbnails of up to ``limit`` of its shots."""
    shots = _spread(scene.first_shot, scene.last_shot, limit)
    thumbs = "".join(_thumbnail_html(scene, shot, keyframes, height) for shot in shots)
    if scene.shots > len(shots):
        thumbs += f'<span class="more">+{scene.shots - len(shots)} more shots</span>'
    cells = [
        str(scene.scene),
        _timecode_or_dash(scene.start_time),
        _timecode_or_dash(scene.end_time),
        "-" if scene.start_frame is None else f"{scene.start_frame}\u2013{scene.end_frame}",
        f"{scene.first_shot}\u2013{scene.last_shot}",
        str(scene.shots),
        _cut_probability(scene, prob, last_scene),
    ]
    return _scene_row(scene, cells, thumbs)


def _strip_html(kind: str, ends: list[int], count: int, colours: tuple[tuple[int, int, int], ...]) -> str:
    """One row of blocks, one per scene, as wide as its share of the ``count`` shots (``ends``: last shots)."""
    firsts = [0, *(end + 1 for end in ends)]
    blocks = []
    for index, (first, last) in enumerate(zip(firsts, [*ends, count - 1], strict=True)):
        red, green, blue = colours[index % 2]
        style = f"width:{100 * (last - first + 1) / count:.4f}%;background:rgb({red},{green},{blue})"
        blocks.append(f'<span style="{style}" title="{kind} scene {index}: shots {first}-{last}"></span>')
    return f'<div class="strip {kind}">{"".join(blocks)}</div>'


def _truth_html(scenes: list[Scene], truth: list[int], count: int) -> str:
    """The found scenes above the true ones, as two strips along the shot axis, so agreement shows at a glance."""
    found = [scene.last_shot for scene in scenes[:-1]]
    return (
        f'<div class="strips"><p>Found scenes (blue, {len(found) + 1}) against the true scenes (green, '
        f"{len(truth) + 1}):</p>{_strip_html('found', found, count, _BAND_COLOURS)}"
        f"{_strip_html('truth', sorted(truth), count, _TRUTH_COLOURS)}</div>"
    )


def write_report(
    path: Path,
    scenes: list[Scene],
    keyframes: list[list[Path]],
    prob: np.ndarray,
    title: str,
    notes: list[str],
    timeline: Path | None = None,
    thumbs_per_scene: int = 6,
    thumb_height: int = 72,
    truth: list[int] | None = None,
) -> Path:
    """Write a self-contained HTML page: ``title``, the ``notes``, the ``timeline`` PNG when given, and a table
    with one row ``<tr id="scene-K">`` per scene: its timecodes, frames, shots, the probability of the boundary
    ending it, and the middle keyframes (``keyframes[shot][len // 2]``) of up to ``thumbs_per_scene`` of its shots,
    spread evenly over it, as JPEG thumbnails ``thumb_height`` pixels high. An unreadable keyframe shows as a grey
    "missing" box. Every image is a base64 data URI, so the page needs no other file. With ``truth`` (the shots that
    end a true scene) two strips show the found and the true scenes one above the other. Returns ``path``."""
    if thumbs_per_scene < 0 or thumb_height < 1:
        raise ValueError("thumbs_per_scene must be >= 0 and thumb_height >= 1")
    prob = np.asarray(prob, dtype=np.float64).reshape(-1)
    shot_count = sum(scene.shots for scene in scenes)
    parts = [
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>',
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>",
        f"<p>{len(scenes)} scenes, {shot_count} shots</p>",
        '<ul class="notes">' + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>",
    ]
    if timeline is not None:
        src = _data_uri(Path(timeline).read_bytes(), "image/png")
        parts.append(f'<p><img class="timeline" src="{src}" alt="boundary probability of every shot"></p>')
    if truth is not None:
        parts.append(_truth_html(scenes, truth, shot_count))
    header = "".join(f"<th>{column}</th>" for column in _COLUMNS)
    parts.append(f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>")
    for index, scene in enumerate(scenes):
        last_scene = index == len(scenes) - 1
        parts.append(_scene_html(scene, keyframes, prob, last_scene, thumbs_per_scene, thumb_height))
    parts.append("</tbody>\n</table>\n</body>\n</html>\n")
    atomic.write_text(Path(path), "\n".join(parts))
    return Path(path)
