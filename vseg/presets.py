"""Preset configs, shipped inside the package (``vseg/configs/``), so that they resolve by name from any folder and
from an installed wheel.

``--config`` takes a file path or a preset name: ``synth/cpu_tiny`` means ``vseg/configs/synth/cpu_tiny.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from vseg.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def preset(name: str) -> Path:
    """The path of a preset by name (``synth/cpu_tiny``); ConfigError listing the presets if unknown."""
    path = CONFIG_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not path.is_file():
        known = sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))
        raise ConfigError(f"{name}: no such config file or preset (presets: {', '.join(known) or 'none'})")
    return path


def resolve_config(value: Path | None) -> Path | None:
    """A ``--config`` value as a path: an existing file as given, otherwise a preset of that name."""
    if value is None or Path(value).is_file():
        return value
    return preset(str(value))
