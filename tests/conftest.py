"""Shared fixtures: a small synthetic MovieNet-layout dataset, made once per test session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from vseg import ui
from vseg.config import PuzzlesConfig, SynthConfig
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth
from vseg.train.methods.scrl import builtin_puzzles

from .gloo import GlooRanks

SYNTH = SynthConfig(movies=3, shots_per_movie=40, seed=7, workers=1)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: without it they are skipped, saying where they run (benchmarks/gpu_check.py)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: python benchmarks/gpu_check.py --sections gpu_tests runs it")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A read-only synthetic dataset: 3 movies x 40 shots (2 puzzles each, 8 tail shots dropped)."""
    root = tmp_path_factory.mktemp("synth")
    make_synth(root, SYNTH)
    return root


@pytest.fixture(scope="session")
def puzzle_root(synth_root, tmp_path_factory) -> Path:
    """Read-only SCRL puzzles of every synthetic movie: 3 movies x 2 puzzles."""
    out = tmp_path_factory.mktemp("puzzles")
    make_puzzles(synth_root / "240P", out, PuzzlesConfig(workers=1))
    return out


@pytest.fixture(scope="session")
def builtin_synthetic(tmp_path_factory) -> Path:
    """Read-only: the demo's synthetic movies (``synth/cpu_tiny``, 8 movies x 160 shots) under ``movienet/`` and the
    puzzles of their train split under ``puzzles/``, made once per run as ``pretrain scrl`` makes its built-in data."""
    folder = tmp_path_factory.mktemp("builtin")
    builtin_puzzles(folder)
    return folder


@pytest.fixture(scope="session")
def gloo_ranks(tmp_path_factory) -> Iterator[GlooRanks]:
    """Two gloo ranks that every 2-rank check of the session shares (:mod:`tests.gloo`)."""
    ranks = GlooRanks(tmp_path_factory.mktemp("gloo"))
    yield ranks
    ranks.close()


@pytest.fixture
def dataset(synth_root, tmp_path) -> Path:
    """A private copy of the synthetic dataset that a test may damage."""
    copy = tmp_path / "movienet"
    shutil.copytree(synth_root, copy)
    return copy


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def _reset_ui_settings():
    """The CLI's global options set process-wide state; start every test from the defaults."""
    yield
    ui.settings.quiet = False
    ui.settings.debug = False
