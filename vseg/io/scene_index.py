"""The index of a collection's scenes (``vseg scenes INPUT... --out DIR``): a row per video, as JSON, CSV and HTML.

``DIR/index.json`` is ``{"videos": [row, ...]}``; ``DIR/index.csv`` has the same rows; ``DIR/index.html`` lists every
video with its thumbnail (``<out>/thumbnail.jpg``), its scene count and a link to its ``<out>/report.html``, the
failed ones with their reason. A row (:class:`IndexRow`): the video's ``path``; its ``status``, ``done`` (found in
this run), ``skipped`` (found by an earlier run with the same file and settings) or ``failed``; the ``reason`` it
failed, or a warning it was done with (a video that ends early); ``out``, its folder relative to ``DIR``; its
``scenes``, ``shots`` and ``frames``; and the ``seconds`` this run spent on it.
"""

from __future__ import annotations

import csv
import html
import io
import json
import urllib.parse
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from vseg.io import atomic

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass
class IndexRow:
    path: str
    status: str
    reason: str = ""
    out: str = ""
    scenes: int | None = None
    shots: int | None = None
    frames: int | None = None
    seconds: float = 0.0


INDEX_FIELDS = tuple(field.name for field in fields(IndexRow))

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left; vertical-align: middle;
         overflow-wrap: anywhere; }
th { background: #f4f4f4; }
col.thumb { width: 140px; } col.num { width: 7em; } col.status { width: 6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { width: 128px; height: 72px; object-fit: cover; display: block; background: #eee; }
tr.failed { background: #fff1f0; } tr.failed td.status { color: #b00; font-weight: bold; }
p.reason { margin: 0; color: #b00; font-size: 12px; }
"""


def _link(out: str, name: str) -> str:
    return urllib.parse.quote(f"{out}/{name}" if out else name)


def _html_row(row: IndexRow) -> str:
    name = html.escape(row.path)
    if row.status == FAILED or not row.out:
        thumb, title = "", name
    else:
        thumb = f'<img src="{_link(row.out, "thumbnail.jpg")}" alt="" loading="lazy">'
        title = f'<a href="{_link(row.out, "report.html")}">{name}</a>'
    reason = f'<p class="reason">{html.escape(row.reason)}</p>' if row.reason else ""
    numbers = "".join(f'<td class="num">{"" if value is None else f"{value:,}"}</td>' for value in (row.scenes, row.shots))
    return (
        f'<tr class="{row.status}"><td>{thumb}</td><td>{title}{reason}</td>{numbers}'
        f'<td class="status">{row.status}</td><td class="num">{row.seconds:.1f}</td></tr>'
    )


def index_html(rows: list[IndexRow], title: str) -> str:
    """The HTML page of ``rows`` (see the module docstring)."""
    failed = sum(row.status == FAILED for row in rows)
    counts = f"{len(rows)} videos, {sum(row.scenes or 0 for row in rows):,} scenes" + (
        f", {failed} failed" if failed else ""
    )
    header = "".join(f"<th>{name}</th>" for name in ("", "Video", "Scenes", "Shots", "Status", "Seconds"))
    cols = '<col class="thumb"><col><col class="num"><col class="num"><col class="status"><col class="num">'
    body = "\n".join(_html_row(row) for row in rows)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>{_CSS}</style>\n</head>\n'
        f"<body>\n<h1>{html.escape(title)}</h1>\n<p>{counts}</p>\n<table id=\"videos\">\n<colgroup>{cols}</colgroup>\n"
        f"<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n</body>\n</html>\n"
    )


def write_index(folder: Path, rows: list[IndexRow], name: str = "index", title: str = "Scenes") -> list[Path]:
    """Write ``folder/<name>.json``, ``.csv`` and ``.html`` of ``rows``; returns the three files."""
    folder = Path(folder)
    records = [asdict(row) for row in rows]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=INDEX_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in record.items()} for record in records)
    files = [folder / f"{name}.{suffix}" for suffix in ("json", "csv", "html")]
    atomic.write_text(files[0], json.dumps({"videos": records}, indent=1) + "\n")
    atomic.write_text(files[1], text.getvalue())
    atomic.write_text(files[2], index_html(rows, title))
    return files
