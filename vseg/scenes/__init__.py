"""Raw videos to their scenes: one video as a value (:func:`detect_scenes`), written as files (:func:`write_scenes`),
one video into a folder (:func:`run_scenes`, ``vseg scenes VIDEO``), and whole collections (:func:`run_collection`,
``vseg scenes INPUT... --out DIR``; :func:`detect_scenes_many`).

Modules: :mod:`.detect` (shots, features, scenes of one video), :mod:`.write` (the files), :mod:`.collection` (the
videos of a collection, their folders, resume and failures), :mod:`.engines` (worker processes or Ray), :mod:`.many`
(collections mapped over an engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vseg.config import ScenesConfig
from vseg.errors import VsegError
from vseg.io import atomic
from vseg.scenes.detect import Progress, SceneModels, Scenes, detect_scenes, load_models
from vseg.scenes.many import CollectionReport, detect_scenes_many, run_collection
from vseg.scenes.write import CONFIG_NAME, FORMATS, write_scenes

__all__ = [
    "CollectionReport", "FORMATS", "Progress", "SceneModels", "Scenes", "detect_scenes", "detect_scenes_many",
    "load_models", "run_collection", "run_scenes", "write_scenes",
]  # fmt: skip


def run_scenes(
    video: str | Path,
    out: str | Path,
    config: ScenesConfig,
    encoder: Any = None,
    segmenter: Any = None,
    truth_frames: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> Scenes:
    """``vseg scenes VIDEO --out DIR``: find the scenes of one video and write every file into ``out``, its keyframes
    under ``out/shots`` (the MovieNet layout). Bad input is refused before anything is written; when the video cannot
    be read, what this run made is removed again."""
    out = Path(out)
    models = load_models(encoder, segmenter, config.embed.device, config.embed.image_size)
    with atomic.removed_on_error([out / CONFIG_NAME, out / "shots"], VsegError):
        result = detect_scenes(
            video, config, models=models, keyframes=out / "shots", progress=progress, truth_frames=truth_frames
        )  # fmt: skip
    write_scenes(result, out, progress=progress)
    return result
