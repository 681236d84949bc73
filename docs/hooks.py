"""MkDocs hooks: the parts of the documentation that come from the code and from BENCHMARKS.md, not retyped.

- ``<!-- options: vseg scenes -->`` becomes the table of that command's arguments and options, read from the same
  click command that prints ``vseg scenes --help`` (names, choices, defaults from the config fields, help).
- ``<!-- benchmarks: Heading one | Heading two -->`` becomes those sections of BENCHMARKS.md (each ``## `` heading
  that starts with the text given), so the numbers are written once.
- ``<!-- chart: Heading | label column | value column -->`` draws the table under that BENCHMARKS.md heading as an
  SVG bar chart of the value column, a bar per row, labelled by the label column (``a + b``: two columns).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import typer
from typer.core import TyperGroup

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- (options|benchmarks|chart): (.+?) -->")


def _context(command, name: str, parent=None):
    return type(parent or _root_context())(command, info_name=name, parent=parent)


def _root_context():
    from vseg.cli import app

    root = typer.main.get_command(app)
    return root.make_context("vseg", ["--help"], resilient_parsing=True)


def vseg_command(path: str):
    """The command of ``vseg a b`` (lazily built commands included), as ``--help`` sees it."""
    ctx = _root_context()
    command = ctx.command
    for name in path.split()[1:]:
        command = command.get_command(ctx, name)
        if command is None:
            raise KeyError(f"no command {path!r}")
        ctx = _context(command, name, ctx)
    return command


def leaf_commands() -> list[str]:
    """Every runnable command as ``vseg a b``."""
    found = []

    def walk(command, path: str, ctx) -> None:
        if isinstance(command, TyperGroup):
            if command.params and path != "vseg":  # a group that runs too (vseg segment)
                found.append(path)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                walk(sub, f"{path} {name}", _context(sub, name, ctx))
        else:
            found.append(path)

    ctx = _root_context()
    walk(ctx.command, "vseg", ctx)
    return found


def _cell(text: object) -> str:
    return html.escape(str(text), quote=False).replace("|", "&#124;").replace("\n", " ")


def options_table(path: str) -> str:
    """A Markdown table of the command's parameters: what ``--help`` shows, as one row each."""
    command = vseg_command(path)
    ctx = _context(command, path.split()[-1], _root_context())
    rows = ["| argument or option | values | default | what |", "| --- | --- | --- | --- |"]
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            name, values = f"`{param.metavar or param.name.upper()}`", ""
        else:
            name = " / ".join(f"`{flag}`" for flag in [*param.opts, *param.secondary_opts])
            values = "" if param.is_flag else (param.display_type_rich(ctx) if hasattr(param, "display_type_rich")
                                               else param.type.name) or ""  # fmt: skip
        shown = param.show_default if isinstance(param.show_default, str) else (
            "" if param.default in (None, False) or param.required else param.default
        )  # fmt: skip
        rows.append(f"| {name} | {_cell(values)} | {_cell(shown)} | {_cell(getattr(param, 'help', '') or '')} |")
    return "\n".join(rows)


def benchmark_sections(headings: list[str]) -> str:
    """The ``## `` sections of BENCHMARKS.md whose headings start with each of ``headings``, in that order."""
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    sections = re.split(r"(?m)^(?=## )", text)
    picked = []
    for heading in headings:
        matches = [section for section in sections if section.startswith(f"## {heading}")]
        if not matches:
            raise KeyError(f"BENCHMARKS.md has no section '## {heading}...'")
        picked += matches
    return "\n".join(section.rstrip() + "\n" for section in picked)


def _table_rows(section: str, column: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``section`` that has a ``column``."""
    for table in re.findall(r"(?m)(?:^\|.*\n?)+", section):
        lines = table.strip().splitlines()
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        if column in header:
            return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=False)) for line in lines[2:]]
    raise KeyError(f"no table with a column {column!r}")


def chart(heading: str, label: str, value: str) -> str:
    """An inline SVG bar chart of the first table under ``## heading`` in BENCHMARKS.md."""
    rows = _table_rows(benchmark_sections([heading]), value)
    data = []
    for row in rows:
        number = re.sub(r"[^0-9.\-]", "", row.get(value, "").replace(",", ""))
        if number not in ("", "-", "."):
            cells = [re.sub(r"[`*]", "", row.get(column.strip(), "")) for column in label.split("+")]
            name = " / ".join(cell if len(cell) <= 24 else cell[:23] + "…" for cell in cells)
            data.append((re.sub(r"[`*]", "", name), float(number)))
    if not data:
        raise KeyError(f"no numbers in column {value!r} under '## {heading}'")
    top, bar, left, width = max(v for _, v in data) or 1.0, 22, 300, 280
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{len(data) * bar + 30}" '
             f'role="img" aria-label="{html.escape(value)}" style="font: 12px sans-serif">']  # fmt: skip
    for index, (name, number) in enumerate(data):
        y = 10 + index * bar
        length = max(1.0, width * number / top)
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{html.escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{bar - 6}" fill="#3f6fb5"/>')
        parts.append(f'<text x="{left + length + 4}" y="{y + 15}">{number:g}</text>')
    parts.append(f'<text x="{left}" y="{len(data) * bar + 25}">{html.escape(value)}</text></svg>')
    return "".join(parts)


def expand(markdown: str) -> str:
    """The page with every marker replaced (see the module docstring)."""

    def replace(match: re.Match) -> str:
        kind, argument = match[1], match[2].strip()
        if kind == "options":
            return options_table(argument)
        parts = [part.strip() for part in argument.split("|")]
        return benchmark_sections(parts) if kind == "benchmarks" else chart(*parts)

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs' hook signature
    return expand(markdown)
