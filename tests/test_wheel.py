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
    shown = cli.stderr + cli.stdout
    assert cli.returncode == 2 and "scrl/nope: no such config file or preset (presets: adapt/cpu, adapt/gpu, " in shown
    assert "scrl/cpu_tiny" in shown and "synth/default)" in shown


def test_pip_installs_the_wheel_and_its_vseg_command_runs(wheel, tmp_path):
    """A real ``pip install`` of the wheel into a fresh virtual environment, offline (``--no-deps --no-index``): the
    dependencies are this environment's, reached through a path file, as if already installed. The ``vseg`` console
    script then runs from another folder and imports the installed copy, not this checkout."""
    import site
    import venv

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    clean = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q"]
    done = subprocess.run([*install, str(wheel)], capture_output=True, text=True, env={**clean, "PIP_NO_INPUT": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    command = env_dir / "bin" / "vseg"
    assert command.is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    version = subprocess.run([command, "--version"], capture_output=True, text=True, cwd=elsewhere, env=clean)
    assert version.returncode == 0 and version.stdout.strip() == f"vseg {vseg.__version__}", version.stderr[-2000:]
    where = subprocess.run([python, "-c", "import vseg; print(vseg.__file__)"], capture_output=True, text=True,
                           cwd=elsewhere, env=clean)  # fmt: skip
    assert where.stdout.strip().startswith(str(target)), where.stdout
    refused = subprocess.run([command, "pretrain", "scrl", "--config", "scrl/nope"], capture_output=True, text=True,
                             cwd=elsewhere, env=clean)  # fmt: skip
    assert refused.returncode == 2 and "presets: adapt/cpu" in refused.stdout + refused.stderr
