"""SCRL as a trainer method: its config, puzzle (or keyframe) clips, the 9-channel ResNet in the SCRL objective,
InfoNCE acc@k, and built-in synthetic data.

See :mod:`vseg.models.scrl` for the objective and :mod:`vseg.data.clips` for the data; the paper's settings are the
presets ``scrl/with_imagenet`` and ``scrl/without_imagenet`` (``vseg/configs/scrl/``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from pydantic import Field

from vseg import ui
from vseg.config import (
    OptimConfig,
    Pipeline,
    PuzzlesConfig,
    StageConfig,
    SynthConfig,
    TrainConfig,
    load_config,
    read_yaml_mapping,
)
from vseg.data.augment import TwoViewShotTransform
from vseg.data.clips import TwoViewClips, keyframe_clips, puzzle_clips
from vseg.data.encoded_clips import EncodedBatch, EncodedClips, TwoViewDecoder
from vseg.errors import ConfigError, DataError
from vseg.io.checkpoints import load_checkpoint
from vseg.io.movienet import select_movies
from vseg.io.puzzles import SETTINGS_NAME, is_puzzle_folder
from vseg.models.encoder import ShotEncoder, init_from_imagenet
from vseg.models.scrl import SCRL, topk_accuracy
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth
from vseg.presets import preset
from vseg.runtime import DistEnv, resolve_pipeline
from vseg.train.trainer import data_root, memory_format


class ScrlDataConfig(StageConfig):
    """Where SCRL's shots come from and how they are cut into clips (SCRL's ``data/data_preparation.py``,
    ``data/movienet_data.py``)."""

    root: Path | None = Field(None, description="puzzle folder (vseg prep puzzles) or keyframe root (240P/)")
    synthetic: bool = Field(
        False, description="with no root: train on the demo's built-in synthetic movies, made under OUT/synthetic"
    )
    source: Literal["auto", "puzzles", "keyframes"] = Field(
        "auto", description="auto: puzzles when root holds them (manifest.json), else keyframes"
    )
    split: str | None = Field(None, description="keyframe source only: take this split (SCRL trains on train)")
    split_file: Path | None = Field(
        None,
        description="keyframe source only: split JSON, or movie1K (MovieNet's 1,100-movie split, built in); "
        "unset: root/../meta/split318.json",
    )
    shots_per_clip: int = Field(16, ge=1, description="consecutive shots per clip, the clip-shuffling unit")
    keyframes_per_shot: int = Field(3, ge=1, description="keyframes per shot, stacked on channels")
    image_size: int = Field(224, ge=16, description="side of the square crop of each keyframe")
    pipeline: Pipeline = Field(
        "auto",
        description="device: workers ship JPEG bytes, the training device decodes and augments whole batches; "
        "cpu: workers decode and augment each shot; auto: device on CUDA, else cpu",
    )


class ScrlModelConfig(StageConfig):
    """The shot encoder and the SCRL objective (SCRL's ``models/`` and ``cluster/Group.py``)."""

    arch: Literal["resnet18", "resnet34", "resnet50", "resnet101"] = Field("resnet50", description="ResNet depth")
    dim: int = Field(2048, ge=1, description="output of the MLP projection head")
    mlp: bool = Field(True, description="MoCo v2 MLP head (Linear-ReLU-Linear); false: one Linear")
    backbone_pretrain: Path | None = Field(
        None, description="torchvision ImageNet state-dict file to start from (all but conv1 and fc); unset: random"
    )
    queue_size: int = Field(65536, ge=1, description="negative keys in the queue; a multiple of the global batch")
    momentum: float = Field(0.999, ge=0, le=1, description="EMA momentum of the key encoder")
    temperature: float = Field(0.07, gt=0, description="InfoNCE temperature")
    positive: Literal["cluster", "self", "nn"] = Field(
        "cluster", description="cluster: SCRL scene consistency; self: MoCo v2; nn: nearest shot of the same clip"
    )
    clusters: int = Field(24, ge=1, description="K-means clusters in each group of cluster_group shots")
    cluster_group: int = Field(
        128, ge=1, description="shots clustered together: the global batch in consecutive groups (SCRL: 128 per GPU)"
    )
    bn_group: int = Field(
        128,
        ge=1,
        description="shots per BatchNorm batch in both encoders, the keys' drawn from the shuffled global batch "
        "(SCRL: 128 per GPU)",
    )
    soft_positive: bool = Field(
        True, description="Soft-SC: positive = soft_gamma * (own key + centre key); false: hard SC (centre key)"
    )
    soft_gamma: float = Field(0.5, ge=0, le=1, description="Soft-SC scale of the summed keys (0.5: their mean)")
    renormalize_positive: bool = Field(False, description="L2-normalise the mixed positive key (SCRL does not)")
    kmeans_iters: int = Field(20, ge=1, description="K-means iteration cap")


class ScrlConfig(StageConfig):
    """``vseg pretrain scrl``: SCRL pre-training (Wu et al., CVPR 2022); defaults are the paper's."""

    data: ScrlDataConfig = ScrlDataConfig()
    model: ScrlModelConfig = ScrlModelConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig(amp=False)  # fp32, as SCRL


def load_imagenet_state(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision ImageNet state dict from a local file (a bare state dict, or one under ``state_dict``)."""
    state = load_checkpoint(path)
    state = state.get("state_dict", state)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "not a state dict of tensors (expected a torchvision ResNet .pth file)")
    return state


def _movies_of(split: str | None, split_file: str | None) -> str:
    return f"split {split} of {split_file or 'meta/split318.json'}" if split else "every movie folder"


def warn_if_other_split(puzzles: Path, data: ScrlDataConfig) -> None:
    """Say so when a puzzle folder was made from other movies than the config's split (the paper presets name
    MovieNet's 660 training movies; a folder made from SceneSeg318's would train on 190)."""
    if data.split is None:
        return
    wanted = _movies_of(data.split, None if data.split_file is None else str(data.split_file))
    settings = puzzles / SETTINGS_NAME
    if not settings.is_file():
        made = f"unknown movies (no {SETTINGS_NAME})"
    else:
        written = read_yaml_mapping(settings)
        made = _movies_of(written.get("split"), written.get("split_file"))
    if made != wanted:
        ui.warn(
            f"{puzzles}: these puzzles hold {made}, but the config asks for {wanted} (data.split, data.split_file); "
            "vseg prep puzzles --config puzzles/scrl makes the paper's"
        )


def builtin_puzzles(folder: Path) -> Path:
    """The demo's synthetic movies (``synth/cpu_tiny``) under ``folder/movienet`` and the puzzles of their train
    split (their own ``meta/split318.json``, not MovieNet's) under ``folder/puzzles`` (returned); finished work is
    kept, so a second call costs nothing."""
    folder = Path(folder)
    make_synth(folder / "movienet", load_config(SynthConfig, preset("synth/cpu_tiny")))
    puzzles = load_config(PuzzlesConfig, preset("puzzles/scrl"), values={"split_file": None})
    make_puzzles(folder / "movienet" / "240P", folder / "puzzles", puzzles)
    return folder / "puzzles"


class ScrlMethod:
    """SCRL pre-training of the 9-channel ResNet shot encoder (MoCo v2 + scene-consistency positives)."""

    name = "scrl"
    config_model = ScrlConfig
    unit = "shots"
    volumetric = False
    presets_help = "The paper's settings: scrl/with_imagenet, scrl/without_imagenet; scrl/cpu_tiny for a CPU."
    resumable = ("data.pipeline",)  # config keys beyond the trainer's that may change when a run resumes

    def __init__(self, config: ScrlConfig):
        self.config = config
        self.items_per_sample = config.data.shots_per_clip

    def builtin_data(self, out: Path) -> Callable[[], object] | None:
        """With no data named and ``data.synthetic``: point ``data.root`` at the demo's synthetic puzzles under
        ``OUT/synthetic`` and return the function that makes them (the trainer runs it on rank 0 alone)."""
        if self.config.data.root is not None or not self.config.data.synthetic:
            return None
        self.config.data.root = out / "synthetic" / "puzzles"
        return partial(builtin_puzzles, out / "synthetic")

    def build_dataset(self, env: DistEnv) -> TwoViewClips:
        data = self.config.data
        root = data_root(data.root, "a puzzle folder or a keyframe root")
        source = data.source if data.source != "auto" else ("puzzles" if is_puzzle_folder(root) else "keyframes")
        if source == "puzzles":
            warn_if_other_split(root, data)
            clips = puzzle_clips(root, data.shots_per_clip, data.keyframes_per_shot)
        else:
            movies, movie_source = select_movies(root, data.split, data.split_file)
            ui.info(f"movies: {movie_source}")
            clips, skipped = keyframe_clips(root, data.shots_per_clip, data.keyframes_per_shot, movies)
            for error in skipped.values():
                ui.warn(f"movie left out: {error}")
        if not clips:
            raise DataError(root, f"no clips of {data.shots_per_clip} shots found in this {source} folder")
        ui.info(f"data: {len(clips):,} clips of {data.shots_per_clip} {self.unit} from {source} in {root}")
        transform = TwoViewShotTransform.scrl(data.image_size)
        shape = (data.shots_per_clip, data.keyframes_per_shot)
        if resolve_pipeline(data.pipeline, env.device) == "cpu":
            return TwoViewClips(clips, transform, *shape, self.config.train.seed)
        self.decoder = TwoViewDecoder(transform, *shape)
        ui.info(f"pipeline: JPEG decoding and augmentation on {env.device}")
        return EncodedClips(clips, transform, *shape, self.config.train.seed)

    def build_model(self, env: DistEnv, global_batch: int) -> SCRL:
        m = self.config.model
        if m.queue_size % global_batch:
            raise ConfigError(
                f"model.queue_size {m.queue_size} must be a multiple of the global batch "
                f"(train.batch_size {global_batch})"
            )
        local = global_batch // env.world_size
        groups = {"model.bn_group": m.bn_group}
        if m.positive == "cluster":
            groups["model.cluster_group"] = m.cluster_group
        for key, size in groups.items():
            if local % size:
                raise ConfigError(
                    f"{key} {size} must divide the {local} shots of each rank's batch "
                    f"(train.batch_size {global_batch} over {env.world_size} ranks)"
                )
        make_encoder = partial(
            ShotEncoder, m.arch, in_channels=3 * self.config.data.keyframes_per_shot, dim=m.dim, mlp=m.mlp
        )
        model = SCRL(
            make_encoder,
            dim=m.dim,
            queue_size=m.queue_size,
            momentum=m.momentum,
            temperature=m.temperature,
            positive=m.positive,
            clusters=m.clusters,
            soft_positive=m.soft_positive,
            soft_gamma=m.soft_gamma,
            renormalize_positive=m.renormalize_positive,
            kmeans_iters=m.kmeans_iters,
            clip_len=self.config.data.shots_per_clip,
            cluster_group=m.cluster_group,
            bn_group=m.bn_group,
            seed=self.config.train.seed,
        )
        if m.backbone_pretrain is not None:
            report = init_from_imagenet(model.encoder_q, load_imagenet_state(m.backbone_pretrain))
            if not report.loaded:
                raise DataError(m.backbone_pretrain, f"no tensor fits a {m.arch} (is it the right architecture?)")
            model.encoder_k.load_state_dict(model.encoder_q.state_dict())
            ui.info(
                f"ImageNet init from {m.backbone_pretrain}: {len(report.loaded)} tensors loaded; skipped "
                f"{len(report.skipped)} ({', '.join(report.skipped[:4])}{', ...' if len(report.skipped) > 4 else ''}); "
                f"{len(report.kept)} left at random init"
            )
        return model

    def step(self, model: nn.Module, batch: Any, env: DistEnv) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if isinstance(batch, EncodedBatch):
            view_q, view_k = self.decoder(batch, env.device)
        else:
            view_q, view_k = (view.flatten(0, 1).to(env.device, non_blocking=True) for view in batch)
        view_q, view_k = (self._layout(view, env) for view in (view_q, view_k))
        output = model(view_q, view_k)
        acc1, acc5 = topk_accuracy(output.logits, (1, 5))
        return output.loss, {"acc1": acc1, "acc5": acc5}

    def _layout(self, view: torch.Tensor, env: DistEnv) -> torch.Tensor:
        """shots x C x S x S in the model's memory format (channels_last on CUDA when configured)."""
        return view.contiguous(memory_format=memory_format(self.config.train, env, self.volumetric))

    def describe(self) -> dict[str, Any]:
        """The architecture and the image size it trains at (``vseg embed`` and ``vseg scenes`` embed at it)."""
        return {"arch": self.config.model.arch, "image_size": self.config.data.image_size}


METHOD = ScrlMethod
