"""Atomic writes: a reader (or an interrupted run) sees either the old file or the complete new one.

Files are written to a temporary name in the same directory and renamed into place. Directories that
are filled over time (a movie's keyframes or puzzles) are built under ``<parent>/.partial/<name>`` and
renamed into place when complete, so a finished-looking directory is always a finished one. A stage that
refuses its input after it began writing takes back what it made (:func:`removed_on_error`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"
PARTIAL_DIR = ".partial"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def staging_dir(final: Path) -> Path:
    """Where the directory ``final`` is built before :func:`commit_dir` moves it into place."""
    return final.parent / PARTIAL_DIR / final.name


def clean_staging(staging: Path) -> None:
    """Remove temporary files an interrupted run left in a staging directory (complete files stay)."""
    if staging.is_dir():
        for leftover in staging.glob(f".*{TMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)


def commit_dir(staging: Path, final: Path) -> None:
    """Move a complete staging directory into place, and drop the ``.partial`` folder once empty."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, final)
    try:
        staging.parent.rmdir()
    except OSError:
        pass  # other movies are still being built there


def discard_dir(staging: Path) -> None:
    """Remove a staging directory of a failed job, and the ``.partial`` folder once empty."""
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()
    except OSError:
        pass


@contextmanager
def removed_on_error(paths: Iterable[Path], errors: type[BaseException] | tuple[type[BaseException], ...]):
    """Remove again what the block makes of ``paths`` (those that do not exist yet, with the folders made to hold
    them) when it raises one of ``errors``; nothing that existed before is touched."""
    new: list[Path] = []
    for path in map(Path, paths):
        top = next((p for p in reversed([path, *path.parents]) if not p.exists()), None)
        if top is not None and top not in new:
            new.append(top)
    try:
        yield
    except errors:
        for path in new:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
