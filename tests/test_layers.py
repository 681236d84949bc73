"""Imports point one way: every import of every module under vseg/ follows the layer order below (README, "Package
layout"; ARCHITECTURE.md, "Rooms").

A room is a top-level module or package of vseg (``vseg/io/`` is the room ``io``, ``vseg/scenes.py`` the room
``scenes``, ``vseg/__init__.py`` the room ``__init__``). A module may import its own room and any room of a lower
layer; :data:`FORBIDDEN` and :data:`ONLY_OWN` narrow that further. Module-level and function-level imports count,
``import vseg.x``, ``from vseg.x import y``, ``from vseg import x`` and relative imports alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vseg

ROOT = Path(vseg.__file__).parent

# The layer order, lowest first (the one place it is written in code).
LAYERS: list[set[str]] = [
    {"__init__", "errors"},  # __version__; the errors a user can fix
    {"ui", "parallel", "runtime"},  # terminal output, worker pools, device and torchrun set-up
    {"config", "models"},  # shared pydantic pieces; torch models
    {"presets", "io"},  # preset lookup; file formats
    {"data", "prep"},  # Datasets, samplers, augmentations; the prep stages (files into files)
    {"train", "eval"},  # the trainer and its methods; embed, segment, metrics, probes
    {"scenes"},  # the video-to-scenes pipeline
    {"demo", "adapt", "info"},  # pipelines that train; what an installation holds
    {"cli"},  # vseg/cli.py or vseg/cli/: may import everything
    {"__main__"},
]
# (importer, imported): why the order alone does not decide it, or decides it and deserves a clearer word.
FORBIDDEN: dict[tuple[str, str], str] = {
    ("train", "eval"): "train and eval may not import each other",
    ("eval", "train"): "train and eval may not import each other",
    ("io", "models"): "io holds file formats and imports no torch models",
    ("scenes", "train"): "scenes uses trained models and trains none: it may not import train",
}
# Rooms that import nothing of vseg but themselves.
ONLY_OWN: dict[str, str] = {"models": "models imports nothing of vseg except vseg.models.* (torch, torchvision only)"}

LAYER_OF = {room: index for index, rooms in enumerate(LAYERS) for room in rooms}


def room_of(module: str) -> str:
    """``vseg.io.checkpoints`` -> ``io``; ``vseg`` -> ``__init__``; ``vseg.ui`` -> ``ui``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    """``vseg/io/checkpoints.py`` -> ``vseg.io.checkpoints``; ``vseg/io/__init__.py`` -> ``vseg.io``."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_submodule(module: str) -> bool:
    """Whether ``module`` (``vseg.x.y``) is a module or package of vseg rather than a name defined in one."""
    path = ROOT.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def vseg_imports(path: Path, source: str) -> list[tuple[int, str]]:
    """(line, module) for every import of a vseg module in ``source``, the text of ``path``, at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..io import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                target = f"{source}.{alias.name}"
                found.append((node.lineno, target if is_submodule(target) else source))
    return [(line, module) for line, module in dict.fromkeys(found) if module == "vseg" or module.startswith("vseg.")]


def violations(path: Path, source: str | None = None) -> list[str]:
    """One line per import of ``path`` (or of ``source`` placed there) that breaks the rules: the file, the imported
    module and the rule."""
    shown = path.relative_to(ROOT.parent).as_posix()
    own = room_of(module_name(path))
    if own not in LAYER_OF:
        return [f"{shown}: the room {own!r} is in no layer of tests/test_layers.py::LAYERS"]
    broken = []
    source = path.read_text(encoding="utf-8") if source is None else source
    for line, module in vseg_imports(path, source):
        room = room_of(module)
        if room == own:
            continue
        if room not in LAYER_OF:
            rule = f"{room!r} is in no layer of LAYERS"
        elif own in ONLY_OWN:
            rule = ONLY_OWN[own]
        elif (own, room) in FORBIDDEN:
            rule = FORBIDDEN[own, room]
        elif LAYER_OF[room] >= LAYER_OF[own]:
            rule = (
                f"{own} (layer {LAYER_OF[own]}) may import its own package and lower layers only; "
                f"{room} is in layer {LAYER_OF[room]}"
            )
        else:
            continue
        broken.append(f"{shown}:{line} imports {module}: {rule}")
    return broken


def test_every_import_points_down_the_layers():
    broken = [line for path in sorted(ROOT.rglob("*.py")) for line in violations(path)]
    assert not broken, "imports that break the layer order:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from vseg.train.trainer import MetricsLog", "vseg/eval/x.py:1 imports vseg.train.trainer: train and eval"),
        ("def f():\n    import vseg.scenes", "vseg/eval/x.py:2 imports vseg.scenes: eval (layer"),
        ("from vseg import demo", "vseg/eval/x.py:1 imports vseg.demo: eval (layer"),
        ("from ..train import trainer", "vseg/eval/x.py:1 imports vseg.train.trainer: train and eval"),
        ("from .. import cli", "vseg/eval/x.py:1 imports vseg.cli: eval (layer"),
        ("import vseg.cli.prep", "vseg/eval/x.py:1 imports vseg.cli.prep: eval (layer"),
    ],
)
def test_the_check_finds_every_kind_of_import(source, expected):
    """The check itself, on a module that would sit in vseg/eval/: each kind of import is found, the file named."""
    (found,) = violations(ROOT / "eval" / "x.py", source)
    assert found.startswith(expected)


def test_imports_down_the_layers_and_within_a_room_pass():
    source = "from vseg.io import checkpoints\nfrom vseg import __version__, ui\nimport vseg.runtime\nfrom . import x"
    assert violations(ROOT / "eval" / "x.py", source) == []
    assert violations(ROOT / "models" / "x.py", "from vseg.errors import DataError")[0].endswith(ONLY_OWN["models"])
    assert violations(ROOT / "io" / "x.py", "from vseg.models.encoder import ShotEncoder")[0].endswith("torch models")
