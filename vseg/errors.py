"""Errors the user can fix. The CLI prints them as one red line (no traceback) and exits with code 2.

Every error names the file or config key it is about. The arguments are kept in ``args`` so that the
errors survive pickling across worker processes.
"""

from __future__ import annotations

from pathlib import Path


class VsegError(Exception):
    """Base class of every error caused by the user's input rather than by a bug in vseg."""


class ConfigError(VsegError):
    """A configuration file, key or value is invalid."""


class DataError(VsegError):
    """An input file is missing, unreadable or inconsistent with the others."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(str(path), reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
