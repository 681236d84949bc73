"""What ``vseg scenes VIDEO --out DIR`` leaves for a person to look at, besides the scene lists, the timelines and
the chapters (:mod:`vseg.io.predictions`, :mod:`vseg.io.timeline`).

``timeline.png``
    A picture of the per-shot boundary probability along the shot axis (:func:`write_timeline`): the threshold as a
    dashed line, each chosen boundary as a red vertical line, and under the plot a band with one block per scene.
    When the true scenes are known (the demo, tests), a second band under the shot labels shows them, in green.

``report.html``
    One self-contained HTML page (:func:`write_report`) that opens in any browser without a server or network: an
    HTML5 player of the video (by its path relative to the page), the notes on how the scenes were found, the
    timeline, and a table with one row per scene (timecodes, frames, shots) and thumbnails of its shots. Clicking a
    row plays from the scene's start; while the video plays its current scene is highlighted. The page fits a
    1280 px wide window; thumbnails are embedded as base64 data URIs and decoded only as they scroll into view.

Every file is written atomically: it appears only when complete.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.images import load_rgb
from vseg.io.predictions import Scene, timecode
from vseg.io.timeline import chapter_ms

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
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 0 16px 2em; max-width: 1240px; color: #222; }
h1 { font-size: 1.4em; margin: 0.6em 0 0.2em; }
ul.notes { margin: 0.3em 0; padding-left: 1.2em; overflow-wrap: anywhere; font-size: 0.9em; }
div.player { position: sticky; top: 0; z-index: 1; background: #fff; padding: 6px 0; border-bottom: 1px solid #ccc; }
div.player video { display: block; width: 100%; max-height: 40vh; background: #000; }
img.timeline { display: block; max-width: 100%; height: auto; border: 1px solid #ccc; margin: 0.8em 0; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
col.num { width: 6.5em; } col.wide { width: 7.5em; } col.narrow { width: 4em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: middle; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
tr.scene { cursor: pointer; }
tr.scene:hover { background: #f4f8ff; }
tr.scene.current { background: #fff0b8; outline: 2px solid #e0a800; }
div.thumbs { display: flex; flex-wrap: wrap; gap: 3px; align-items: center; }
div.thumbs img { display: block; background: #ddd; }
span.missing { display: inline-flex; align-items: center; justify-content: center; background: #bbb;
  color: #555; font-size: 0.8em; }
span.more { color: #666; font-size: 0.85em; margin-left: 0.5em; white-space: nowrap; }
div.strip { display: flex; height: 14px; margin: 2px 0; }
div.strip span { display: block; height: 100%; }
div.strips { max-width: 100%; }
"""

# Seeks the player to a clicked row's start, highlights the scene that is playing (binary search over the starts),
# and decodes each thumbnail only when it comes within 800 px of the window.
_SCRIPT = """
const player = document.getElementById("player");
const rows = Array.from(document.querySelectorAll("tr.scene"));
const starts = rows.map(row => parseFloat(row.dataset.start));
let current = -1;
function sceneAt(time) {
  let low = 0, high = starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (starts[middle] <= time + 1e-6) low = middle; else high = middle - 1;
  }
  return low;
}
function highlight() {
  const scene = sceneAt(player.currentTime);
  if (scene === current) return;
  if (current >= 0) rows[current].classList.remove("current");
  rows[scene].classList.add("current");
  current = scene;
}
if (player && rows.length) {
  player.addEventListener("timeupdate", highlight);
  player.addEventListener("seeked", highlight);
  for (const row of rows) {
    row.addEventListener("click", () => { player.currentTime = parseFloat(row.dataset.start); highlight(); });
  }
}
const lazy = document.querySelectorAll("img[data-src]");
function show(img) { img.src = img.dataset.src; img.removeAttribute("data-src"); }
if ("IntersectionObserver" in window) {
  const observer = new IntersectionObserver(entries => {
    for (const entry of entries) if (entry.isIntersecting) { show(entry.target); observer.unobserve(entry.target); }
  }, { rootMargin: "800px" });
  lazy.forEach(img => observer.observe(img));
} else {
  lazy.forEach(show);
}
"""

_COLUMNS = (("Scene", "narrow"), ("Start", "wide"), ("End", "wide"), ("Frames", "wide"), ("Shots", "num"),
            ("Count", "narrow"), ("Cut p", "narrow"), ("Thumbnails", None))  # fmt: skip


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail_jpeg(image: Image.Image, height: int) -> bytes:
    """``image`` as a small JPEG ``height`` pixels high (bilinear, quality 80): a report thumbnail."""
    size = (max(1, round(image.width * height / image.height)), height)
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _thumbnail_jpeg(source: Path | bytes, height: int) -> tuple[bytes, int]:
    """A keyframe (an image file, or a JPEG already in memory) as a JPEG ``height`` pixels high, and its width
    (DataError if unreadable); a JPEG in memory that is that high already is kept as it is."""
    if isinstance(source, bytes):
        with Image.open(io.BytesIO(source)) as image:
            if image.height == height:
                return source, image.width
            image = image.convert("RGB")
    else:
        image = load_rgb(source)
    jpeg = thumbnail_jpeg(image, height)
    return jpeg, max(1, round(image.width * height / image.height))


def _thumbnail_html(scene: Scene, shot: int, keyframes: Sequence[Sequence[Path] | bytes], height: int) -> str:
    """The lazy ``<img>`` of ``shot``'s middle keyframe (its data URI in ``data-src``, its size set so the page does
    not move as it appears), or a grey "missing" box when there is none or it cannot be read. ``keyframes[shot]`` is
    the shot's keyframe files, or its middle keyframe as JPEG bytes."""
    frames = keyframes[shot] if shot < len(keyframes) else []
    middle = frames if isinstance(frames, bytes) else (Path(frames[len(frames) // 2]) if frames else None)
    try:
        jpeg, width = _thumbnail_jpeg(middle, height) if middle else (None, 0)
    except (DataError, OSError):  # OSError: JPEG bytes PIL cannot read
        jpeg = None
    if jpeg is None:
        style = f"width:{round(height * 16 / 9)}px;height:{height}px"
        return f'<span class="missing" title="shot {shot}" style="{style}">missing</span>'
    return (
        f'<img data-src="{_data_uri(jpeg, "image/jpeg")}" width="{width}" height="{height}" title="shot {shot}" '
        f'alt="scene {scene.scene}, shot {shot}">'
    )


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
    """``<tr id="scene-K" data-start="S">``: S is the scene's start rounded up to the millisecond, as in
    chapters.vtt (:func:`vseg.io.timeline.chapter_ms`), where a seek shows the scene's first frame."""
    start = "" if scene.start_time is None else f' data-start="{chapter_ms(scene.start_time) / 1000:.3f}"'
    tds = "".join(f'<td class="num">{html.escape(cell)}</td>' for cell in cells)
    return f'<tr id="scene-{scene.scene}" class="scene"{start}>{tds}<td><div class="thumbs">{thumbs}</div></td></tr>'


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


def video_src(video: Path, page: Path) -> str:
    """The ``src`` of ``video`` in a page written to ``page``: its path relative to the page's folder (the two can
    move together), URL-quoted; a ``file://`` URI where there is no relative path (another drive)."""
    try:
        relative = os.path.relpath(Path(video).resolve(), Path(page).resolve().parent)
    except ValueError:
        return Path(video).resolve().as_uri()
    return urllib.parse.quote(Path(relative).as_posix())


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
    keyframes: Sequence[Sequence[Path] | bytes],
    prob: np.ndarray,
    title: str,
    notes: list[str],
    timeline: Path | None = None,
    thumbs_per_scene: int = 6,
    thumb_height: int = 72,
    video: Path | None = None,
    truth: list[int] | None = None,
    poster: bytes | None = None,
) -> Path:
    """Write a self-contained HTML page: ``title``, a player of ``video`` when given, the ``notes``, the
    ``timeline`` PNG when given, and a table with one row ``<tr id="scene-K">`` per scene: its timecodes, frames,
    shots, the probability of the boundary ending it, and the middle keyframes (``keyframes[shot][len // 2]``, or
    ``keyframes[shot]`` itself when it is the JPEG bytes of that keyframe) of up to ``thumbs_per_scene`` of its shots, spread evenly over it, as JPEG thumbnails ``thumb_height`` pixels high.
    An unreadable keyframe shows as a grey "missing" box. Every image is a base64 data URI, so the page needs no
    other file but the video. With ``truth`` (the shots that end a true scene) two strips show the found and the
    true scenes one above the other. ``poster``: a JPEG the player shows before it plays (the video's first frame).
    Returns ``path``."""
    if thumbs_per_scene < 0 or thumb_height < 1:
        raise ValueError("thumbs_per_scene must be >= 0 and thumb_height >= 1")
    prob = np.asarray(prob, dtype=np.float64).reshape(-1)
    shot_count = sum(scene.shots for scene in scenes)
    parts = [
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>",
        f"<p>{len(scenes)} scenes, {shot_count} shots</p>",
    ]
    if video is not None:
        src = html.escape(video_src(video, path))
        shown = f' poster="{_data_uri(poster, "image/jpeg")}"' if poster else ""
        parts.append(
            f'<div class="player"><video id="player" controls preload="metadata"{shown} src="{src}"></video></div>'
        )
    parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")
    if timeline is not None:
        src = _data_uri(Path(timeline).read_bytes(), "image/png")
        parts.append(f'<img class="timeline" src="{src}" alt="boundary probability of every shot">')
    if truth is not None:
        parts.append(_truth_html(scenes, truth, shot_count))
    columns = "".join(f'<col class="{kind}">' if kind else "<col>" for _, kind in _COLUMNS)
    header = "".join(f"<th>{name}</th>" for name, _ in _COLUMNS)
    parts.append(f'<table id="scenes">\n<colgroup>{columns}</colgroup>\n<thead><tr>{header}</tr></thead>\n<tbody>')
    for index, scene in enumerate(scenes):
        last_scene = index == len(scenes) - 1
        parts.append(_scene_html(scene, keyframes, prob, last_scene, thumbs_per_scene, thumb_height))
    parts.append(f"</tbody>\n</table>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n")
    atomic.write_text(Path(path), "\n".join(parts))
    return Path(path)
