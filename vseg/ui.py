"""Terminal output: rich progress bars with rates and ETAs, summary tables, and the quiet switch.

Progress goes to stderr so that stdout carries only results (summary tables). ``--quiet`` silences both;
errors are always printed by the CLI. A progress bar fits the terminal's width; where stderr is no terminal (a log
file, CI), a plain progress line is written now and then instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
import time
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
    log_seconds: float = 30.0  # where stderr is no terminal: a progress line this often


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


WIDE = 110  # columns from which the bar shows the elapsed time too


def _bar(unit: str) -> Progress | PlainProgress:
    """A rich progress bar whose columns fit the terminal (under WIDE columns: a shorter bar, no elapsed time); where
    stderr is no terminal (a log file, CI), plain lines now and then instead (:class:`PlainProgress`)."""
    if not stderr.is_terminal:
        return PlainProgress(unit)
    wide = stderr.width >= WIDE
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=40 if wide else 10),
        MofNCompleteColumn(),
        RateColumn(unit),
        *([TimeElapsedColumn()] if wide else []),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    return Progress(*columns, console=stderr)


@dataclass
class _Counter:
    description: str
    total: float | None
    completed: float = 0.0
    status: str = ""
    unit: str = ""
    logged: float | None = None  # completed when its line was last written


class PlainProgress:
    """The part of rich's Progress that vseg uses, writing a plain line per task every ``settings.log_seconds`` (and
    when a task ends) instead of redrawing a bar: ``shots: 1,200/5,000 frames, 45.3 frames/s, ETA 0:01:24``."""

    def __init__(self, unit: str):
        self.unit = unit
        self.tasks: list[_Counter] = []
        self.started = self.logged = 0.0

    def __enter__(self) -> PlainProgress:
        self.started = self.logged = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        for index, counter in enumerate(self.tasks):
            if counter.logged != counter.completed:
                self._log(index)

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        self.tasks.append(_Counter(description, total, 0.0, fields.get("status", ""), fields.get("unit", "")))
        return len(self.tasks) - 1

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(self, task: int, *, advance: float = 0, completed: float | None = None, total: float | None = None,
               status: str | None = None, **fields: Any) -> None:  # fmt: skip
        counter = self.tasks[task]
        counter.completed = completed if completed is not None else counter.completed + advance
        counter.total = total if total is not None else counter.total
        counter.status = status if status is not None else counter.status
        if time.monotonic() - self.logged >= settings.log_seconds:
            self.logged = time.monotonic()
            self._log(task)

    def _log(self, task: int) -> None:
        counter, seconds = self.tasks[task], max(time.monotonic() - self.started, 1e-9)
        counter.logged = counter.completed
        rate = counter.completed / seconds
        unit = counter.unit or self.unit
        line = f"{counter.description}: {counter.completed:,.0f}"
        if counter.total:
            line += f"/{counter.total:,.0f}"
            if rate > 0 and counter.completed < counter.total:
                left = round((counter.total - counter.completed) / rate)
                line += f" {unit}, {rate:,.1f} {unit}/s, ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
            else:
                line += f" {unit}, {rate:,.1f} {unit}/s, {seconds:.0f} s"
        stderr.print(f"{line} {counter.status}".rstrip(), highlight=False, markup=False, soft_wrap=True)


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


def summary(title: str, rows: Sequence[tuple[str, object]], justify: str = "right") -> None:
    """Print a two-column summary table to stdout (not with ``--quiet``), its values justified ``justify``."""
    if settings.quiet:
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify=justify)
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
