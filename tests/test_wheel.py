"""The built wheel carries every preset and the MovieNet split files, and they resolve by name from any folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import vseg
from vseg.presets import CONFIG_DIR

SOURCE = Path(vseg.__file__).resolve().parent
REPO = SOURCE.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel`` of a copy of the project (so that no build folder lands in the checkout), without the network."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(SOURCE, source / "vseg", ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp)]
    built = subprocess.run([*command, str(source)], capture_output=True, text=True, cwd=tmp)
    assert built.returncode == 0, built.stderr[-2000:]
    return next(tmp.glob("vseg-*.whl"))


def test_the_wheel_holds_every_preset_and_split_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(CONFIG_DIR.rglob("*.yaml"))
    assert len(presets) >= 17
    for path in [*presets, *(SOURCE / "io" / "splits").glob("*.json")]:
        assert f"vseg/{path.relative_to(SOURCE).as_posix()}" in names


def test_presets_resolve_from_the_installed_wheel_in_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = """
import sys
import vseg
from vseg.io.movienet import resolve_split_file, split_movies
from vseg.presets import CONFIG_DIR, preset
assert vseg.__file__.startswith(sys.argv[1]), vseg.__file__
names = sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))
print(len(names), all(preset(name).is_file() for name in names))
print(len(split_movies(resolve_split_file("movie1K", CONFIG_DIR), "train")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(len(list(CONFIG_DIR.rglob("*.yaml")))), "True", "660"]
    cli = subprocess.run(
        [sys.executable, "-m", "vseg", "pretrain", "scrl", "--config", "scrl/nope"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert cli.returncode == 2 and "presets: adapt/cpu, adapt/gpu, clips/default, demo/default" in cli.stderr + cli.stdout
