"""``vseg adapt VIDEO_OR_DIR... --out RUN``: SCRL pre-training on a user's own videos, no labels needed.

SCRL (Wu et al., CVPR 2022) learns shot features from unlabelled films: shots near each other in a film mostly share
a scene. So a user can adapt an encoder to their own footage with the same recipe. Stages, each through files under
``RUN``::

    shots     vseg prep shots on every input video         RUN/shots/ (240P/<id>/, shot_txt/, meta/)
    puzzles   vseg prep puzzles of their keyframes           RUN/puzzles/ (16 consecutive shots x 3 keyframes)
    pretrain  vseg pretrain scrl on the puzzles, from        RUN/scrl/ (config.yaml, metrics.jsonl,
              scratch or from ``init`` (a shot encoder)      checkpoints/last.pth)

``RUN/scrl/checkpoints/last.pth`` is what ``vseg embed`` and ``vseg scenes --encoder`` take. The presets
``adapt/cpu`` (ResNet-18 at 64 px, for a CPU) and ``adapt/gpu`` (the paper's ResNet-50 at 224 px) size the run.
Run again, it resumes: finished videos and puzzles are skipped and training continues from its last checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import Field
from torch import nn

from vseg import ui
from vseg.config import PuzzlesConfig, ShotsConfig, StageConfig
from vseg.errors import DataError, VsegError
from vseg.eval.embed import load_shot_encoder
from vseg.io import atomic
from vseg.io.checkpoints import LAST
from vseg.io.movienet import MovieNetLayout, read_shot_table
from vseg.prep.clips import collect_videos
from vseg.prep.puzzles import make_puzzles
from vseg.prep.shots import make_shots
from vseg.runtime import DistEnv
from vseg.train.methods.scrl import ScrlConfig, ScrlMethod
from vseg.train.trainer import pretrain


class AdaptConfig(StageConfig):
    """``vseg adapt``: prep shots, prep puzzles and SCRL pre-training on a user's own videos."""

    shots: ShotsConfig = ShotsConfig(detector="adaptive")  # as vseg scenes cuts the videos it segments
    puzzles: PuzzlesConfig = PuzzlesConfig()
    scrl: ScrlConfig = ScrlConfig()
    init: Path | None = Field(
        None, description="shot encoder to start from (vseg pretrain scrl, the SCRL release or a bare state dict)"
    )


@dataclass
class AdaptReport:
    out: Path
    videos: int
    shots: int
    clips: int
    epochs: int
    checkpoint: Path
    image_size: int
    seconds: float


class _AdaptMethod(ScrlMethod):
    """SCRL whose query and key encoders start from a given shot encoder's backbone (the head starts at random)."""

    def __init__(self, config: ScrlConfig, backbone: dict[str, torch.Tensor]):
        super().__init__(config)
        self.backbone = backbone

    def build_model(self, env: DistEnv, global_batch: int) -> nn.Module:
        model = super().build_model(env, global_batch)
        model.encoder_q.load_state_dict(self.backbone, strict=False)
        model.encoder_k.load_state_dict(model.encoder_q.state_dict())
        return model


def _starting_backbone(init: Path, config: ScrlConfig) -> dict[str, torch.Tensor]:
    """The backbone weights of the ``init`` checkpoint (DataError for anything but a shot encoder); sets the config's
    architecture to the checkpoint's."""
    loaded = load_shot_encoder(init)
    if loaded.view != "scrl":
        raise DataError(init, f"a {loaded.layout} checkpoint: vseg adapt continues SCRL pre-training from an SCRL encoder")
    if loaded.keyframes_per_shot != config.data.keyframes_per_shot:
        raise DataError(
            init, f"takes {loaded.keyframes_per_shot} keyframes per shot, the config {config.data.keyframes_per_shot}"
        )
    config.model.arch = loaded.arch
    return {name: value for name, value in loaded.encoder.state_dict().items() if not name.startswith("fc.")}


def _count_shots(layout: MovieNetLayout, videos: list[tuple[str, Path]]) -> dict[str, int]:
    return {vid: len(read_shot_table(layout.shot_table_file(vid))) for vid, _ in videos}


def run_adapt(inputs: list[Path], out: Path, config: AdaptConfig) -> AdaptReport:
    """Adapt a shot encoder to the videos ``inputs`` (files or folders of videos) under ``out`` (see the module
    docstring). Inputs and ``config.init`` are checked before anything is written; a run refused by its videos (none
    long enough for one clip of shots) removes what it made."""
    started = time.perf_counter()
    out = Path(out)
    videos = collect_videos(inputs)
    scrl = config.scrl.model_copy(deep=True)
    backbone = _starting_backbone(config.init, scrl) if config.init is not None else None
    clip = scrl.data.shots_per_clip
    if config.puzzles.shots_per_puzzle != clip:
        raise DataError(Path("puzzles.shots_per_puzzle"), f"is {config.puzzles.shots_per_puzzle}, must equal "
                        f"scrl.data.shots_per_clip ({clip})")  # fmt: skip
    layout = MovieNetLayout(out / "shots")
    with atomic.removed_on_error([out / "shots", out / "puzzles"], VsegError):
        shots = make_shots([path for _, path in videos], layout.root, config.shots)
        if shots.failed:
            raise next(iter(shots.failed.values()))
        counts = _count_shots(layout, videos)
        if max(counts.values()) < clip:
            vid, path = max(videos, key=lambda item: counts[item[0]])
            raise DataError(
                path, f"has {counts[vid]} shot(s); SCRL learns from runs of {clip} consecutive shots of one video "
                "(give longer videos or more of them)"
            )  # fmt: skip
        puzzles = make_puzzles(layout.keyframes, out / "puzzles", config.puzzles)
        clips = puzzles.written + puzzles.skipped
        batch_clips = scrl.train.batch_size // clip
        if clips < batch_clips:
            raise DataError(
                out / "puzzles", f"holds {clips} clip(s) of {clip} shots, fewer than one batch of "
                f"scrl.train.batch_size={scrl.train.batch_size} shots; lower it (a multiple of {clip}) or add videos"
            )  # fmt: skip
    ui.info(f"{len(videos)} videos, {sum(counts.values()):,} shots, {clips} clips of {clip} shots")
    scrl.data.root, scrl.data.synthetic, scrl.data.source = out / "puzzles", False, "puzzles"
    method = ScrlMethod(scrl) if backbone is None else _AdaptMethod(scrl, backbone)
    trained = pretrain(method, out / "scrl", resume="auto")
    return AdaptReport(
        out, len(videos), sum(counts.values()), clips, trained.epochs, out / "scrl" / "checkpoints" / LAST,
        scrl.data.image_size,
        time.perf_counter() - started,
    )  # fmt: skip
