"""Terminal output: rich progress bars with rates and ETAs, summary tables, and the quiet switch.

Progress goes to stderr so that stdout carries only results (summary tables). ``--quiet`` silences both;
errors are always printed by the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


@dataclass
class Settings:
    """Process-wide output settings, set once by the CLI's global options."""

    quiet: bool = False
    debug: bool = False


settings = Settings()
stdout = Console()
stderr = Console(stderr=True)


class RateColumn(ProgressColumn):
    """Items per second, in the unit of the job (shots/s, frames/s)."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = f"{speed:,.1f}" if speed is not None else "?"
        return Text(f"{shown} {task.fields.get('unit') or self.unit}/s", style="progress.data.speed")


def _bar(unit: str) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=stderr,
    )


@contextmanager
def progress(description: str, total: int, unit: str) -> Iterator[Callable[..., None]]:
    """A progress bar for ``total`` items of ``unit``; yields ``advance(n=1, status=None, total=None)``, where
    ``status`` is a short text shown after the bar (a training loss, say) and ``total`` a new total. Silent with
    ``--quiet``."""
    if settings.quiet:
        yield lambda n=1, status=None, total=None: None
        return
    bar = _bar(unit)
    with bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, status: str | None = None, total: int | None = None) -> None:
            if status is None and total is None:
                bar.advance(task, n)
            else:
                bar.update(task, advance=n, **({"status": status} if status is not None else {}),
                           **({"total": total} if total is not None else {}))  # fmt: skip

        yield advance


@contextmanager
def stage_progress(units: dict[str, str]) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars for a job of stages: yields ``update(stage, done, total)``, which shows a bar per stage named in
    ``units`` (stage -> unit) as it first reports, and ignores other stages. Silent with ``--quiet``."""
    if settings.quiet:
        yield lambda stage, done, total: None
        return
    bar = _bar("")
    tasks: dict[str, Any] = {}
    with bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in units:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, status="", unit=units[stage])
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def summary(title: str, rows: Sequence[tuple[str, object]]) -> None:
    """Print a two-column summary table to stdout (not with ``--quiet``)."""
    if settings.quiet:
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    stdout.print(table)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a table with a header row to stdout (not with ``--quiet``)."""
    if settings.quiet:
        return
    shown = Table(title=title, title_justify="left")
    for header in headers:
        shown.add_column(header)
    for row in rows:
        shown.add_row(*(str(cell) for cell in row))
    stdout.print(shown)


def info(message: str) -> None:
    """A one-line note to stderr (not with ``--quiet``)."""
    if not settings.quiet:
        stderr.print(message, highlight=False)


def error(message: str, label: str = "error") -> None:
    """A red one-line error to stderr (never wrapped, never silenced)."""
    stderr.print(f"[red]{label}:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A yellow one-line warning to stderr, printed even with ``--quiet``."""
    stderr.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)
