"""vseg: self-supervised video representation learning (SCRL, HiCo) and video scene segmentation.

The scenes of a video from Python, with nothing written unless asked::

    import vseg
    result = vseg.detect_scenes("film.mp4")          # vseg.Scenes: its scenes, shots, probabilities
    vseg.write_scenes(result, "film-scenes/")         # the files vseg scenes writes
    for item in vseg.detect_scenes_many(["archive/"], jobs=4):   # a Scenes or a DataError per video
        ...

These names are imported when first used (``vseg.scenes``), so ``import vseg`` stays light; without an encoder or
a segmenter, finding scenes never imports torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The library's front: name -> the module of vseg that defines it.
EXPORTS = {
    "detect_scenes": "vseg.scenes",
    "write_scenes": "vseg.scenes",
    "detect_scenes_many": "vseg.scenes",
    "run_collection": "vseg.scenes",
    "load_models": "vseg.scenes",
    "Scenes": "vseg.scenes",
    "ScenesConfig": "vseg.config",
    "DataError": "vseg.errors",
    "ConfigError": "vseg.errors",
    "VsegError": "vseg.errors",
}
__all__ = ["__version__", *EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:
        raise AttributeError(f"module 'vseg' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(EXPORTS[name]), name)
