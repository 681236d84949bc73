"""HiCo as a trainer method: its config, K clips per untrimmed video, S3D-G with the VCL and TCL heads, LARS.

See :mod:`vseg.models.hico` for the objective, :mod:`vseg.data.untrimmed` for the sampling and
:mod:`vseg.train.lars` for the optimiser; the reference's settings are the ``hico/*`` presets
(``vseg/configs/hico/``). The global batch (``train.batch_size``) counts clips: 32 videos x 3 clips = 96 for the HiCo
presets. On trimmed videos (``data.trimmed_list``, the ``hico/pt_k400`` preset) each file of a ``path label`` list is
one sample, drawn by the same centre sampler with ``duration = frames / fps`` (:mod:`vseg.data.trimmed`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from vseg import ui
from vseg.config import ClipDataConfig, OptimConfig, Pipeline, StageConfig, TrainConfig
from vseg.data.augment import ViewSpec
from vseg.data.trimmed import TrimmedClips, listed_videos
from vseg.data.untrimmed import ClipSampling, CroppedClips, UntrimmedClips, check_pieces, clip_views
from vseg.errors import ConfigError, DataError
from vseg.io.cliplist import read_labelled_lines, read_training_list
from vseg.models.hico import HiCo
from vseg.models.s3dg import S3DG
from vseg.runtime import DistEnv, resolve_pipeline
from vseg.train.trainer import memory_format


class HicoDataConfig(ClipDataConfig):
    """HiCo's samples: clips of untrimmed videos cut into pieces by ``vseg prep clips`` (HiCo's ``datasets/base/``,
    ``sslgenerators/``)."""

    root: Path | None = Field(None, description="output of vseg prep clips: ROOT/training.txt and ROOT/training/")
    training_list: Path | None = Field(None, description="the piece list; unset: ROOT/training.txt")
    clip_dir: Path | None = Field(
        None, description="folder of the v_<id>_<start>_<end>.mp4 pieces; unset: ROOT/training"
    )
    trimmed_list: Path | None = Field(
        None,
        description="instead of the pieces: a 'path label' list of trimmed videos (Kinetics-400), one sample per file, "
        "paths relative to ROOT (else to the list's folder)",
    )
    clips_per_video: int = Field(3, ge=2, description="clips per video and sample: 3 for HiCo, 2 for the baseline")
    max_dis: tuple[float, float] | None = Field(
        (0.0, 1.0),
        description="seconds between the centres of clips 0 and 1, growing linearly from the first value at the "
        "start to the second at the end of training (gradual sampling; equal values: fixed); null: independent",
    )
    topical: bool = Field(True, description="the last clip is drawn anywhere in the video (TCL's far clip)")
    pipeline: Pipeline = Field(
        "auto",
        description="device: workers decode and crop (uint8), the training device resizes, jitters, blurs and "
        "normalises whole batches; cpu: workers make the views; auto: device on CUDA, else cpu",
    )


class HicoModelConfig(StageConfig):
    """S3D-G with HiCo's heads and losses (HiCo's ``models/``)."""

    arch: Literal["s3dg"] = Field("s3dg", description="backbone: S3D-G (1024-d)")
    gating: bool = Field(True, description="S3D-G self-gating (false: plain S3D)")
    proj_mid: int = Field(1024, ge=1, description="hidden width of the VCL and TCL projection MLPs")
    proj_dim: int = Field(128, ge=1, description="output of the projection MLPs")
    temperature: float = Field(0.1, gt=0, description="VCL InfoNCE temperature")
    gamma: float = Field(0.5, ge=0, description="TCL focal exponent")
    vcl_weight: float = Field(1.0, ge=0, description="weight of the VCL loss (also multiplied by the world size)")
    tcl_weight: float = Field(1.0, ge=0, description="weight of the TCL loss")
    tcl_group: int = Field(
        4, ge=1, description="videos whose clips TCL pairs with each other (the reference: the 4 videos of a GPU)"
    )
    sync_bn: bool = Field(True, description="SyncBatchNorm across ranks on CUDA")


class HicoConfig(StageConfig):
    """``vseg pretrain hico``: HiCo pre-training on untrimmed videos (Qing et al., CVPR 2022); defaults: HACS-s."""

    data: HicoDataConfig = HicoDataConfig()
    model: HicoModelConfig = HicoModelConfig()
    optim: OptimConfig = OptimConfig(
        optimizer="lars",
        lr=0.9,
        reference_batch=96,
        momentum=0.9,
        weight_decay=1e-6,
        schedule="cosine",
        warmup_epochs=5,
        warmup_start_lr=0.001,
        lars_zero_norm="reference",
    )
    train: TrainConfig = TrainConfig(epochs=120, batch_size=96, checkpoint_every=10, amp=False)  # fp32, as HiCo

    @model_validator(mode="after")
    def _far_clip_needs_a_pair(self) -> HicoConfig:
        if self.data.topical and self.data.clips_per_video < 3:
            raise ValueError("data.topical needs data.clips_per_video >= 3 (a VCL pair and a far clip)")
        return self


def hico_view(data: ClipDataConfig) -> ViewSpec:
    """Per-clip augmentation (HiCo's ``ContrastiveGenerator``, and with fine-tuning's settings its fine-tuning
    transforms): random resized crop, colour jitter, grayscale, blur, flip, normalise."""
    return ViewSpec(
        size=data.crop_size,
        scale=tuple(data.crop_scale),
        ratio=tuple(data.crop_ratio),
        jitter_p=data.jitter_p,
        jitter=tuple(data.jitter),
        grayscale_p=data.grayscale_p,
        blur_p=data.blur_p,
        flip_p=data.flip_p,
        mean=(data.mean,) * 3,
        std=(data.std,) * 3,
    )


def clip_sampling(data: HicoDataConfig) -> ClipSampling:
    """Which clips a sample holds (HiCo's ``_get_hico_clips_time_stamp``): K clips of ``frames`` frames over
    ``clip_seconds``, gradual sampling."""
    return ClipSampling(data.clips_per_video, data.frames, data.clip_seconds, data.max_dis, data.topical)


def training_paths(config: HicoConfig) -> tuple[Path, Path]:
    """The piece list and the piece folder: explicit paths, or ROOT/training.txt and ROOT/training/."""
    data = config.data
    if data.root is None and (data.training_list is None or data.clip_dir is None):
        raise ConfigError(
            "no training data: pass --data DIR (the output of vseg prep clips), or set data.training_list and "
            "data.clip_dir, or data.trimmed_list (trimmed videos)"
        )
    listing = data.training_list or Path(data.root) / "training.txt"
    clip_dir = data.clip_dir or Path(data.root) / "training"
    if not clip_dir.is_dir():
        raise DataError(clip_dir, "piece folder not found (vseg prep clips writes DIR/training/)")
    return Path(listing), Path(clip_dir)


class HicoMethod:
    """HiCo pre-training of the S3D-G clip encoder on long untrimmed videos (VCL + TCL, LARS)."""

    name = "hico"
    config_model = HicoConfig
    unit = "clips"
    volumetric = True  # 3-d convolutions: channels_last_3d on CUDA
    presets_help = (
        "The reference's settings: hico/hacs_s (the defaults), hico/hacs_l, hico/k400_untrimmed, hico/pt_k400 "
        "(trimmed Kinetics-400: --set data.trimmed_list=LIST), hico/baseline_s (SimCLR on untrimmed video); "
        "hico/cpu_tiny for a CPU."
    )
    # config keys beyond the trainer's that may change on resume
    resumable = ("data.training_list", "data.clip_dir", "data.trimmed_list", "data.pipeline")

    def __init__(self, config: HicoConfig):
        self.config = config
        self.items_per_sample = config.data.clips_per_video

    def builtin_data(self, out: Path) -> Callable[[], object] | None:
        """HiCo has no built-in data: its runs name the output of ``vseg prep clips``."""
        return None

    def build_dataset(self, env: DistEnv) -> UntrimmedClips | TrimmedClips:
        data = self.config.data
        if data.trimmed_list is not None:
            return self._trimmed(Path(data.trimmed_list), env)
        listing, clip_dir = training_paths(self.config)
        videos = read_training_list(listing)
        if not videos:
            raise DataError(listing, "the training list is empty")
        check_pieces(videos, clip_dir)
        hours = sum(video.duration for video in videos) / 3600
        ui.info(
            f"data: {len(videos):,} untrimmed videos ({sum(len(v.pieces) for v in videos):,} pieces, {hours:,.1f} h) "
            f"from {listing}"
        )
        seed = self.config.train.seed
        return UntrimmedClips(videos, clip_dir, clip_sampling(data), hico_view(data), seed, self._crops_only(env))

    def _crops_only(self, env: DistEnv) -> bool:
        """Whether the workers only crop (the device pipeline, ``data.pipeline``) and the device makes the views."""
        crops_only = resolve_pipeline(self.config.data.pipeline, env.device) == "device"
        if crops_only:
            ui.info(f"pipeline: crops resized and augmented on {env.device}")
        return crops_only

    def _trimmed(self, listing: Path, env: DistEnv) -> TrimmedClips:
        """HiCo on trimmed videos (HiCo's ``kinetics400.py``): the centre sampler on each file of the list."""
        entries = read_labelled_lines(listing, self.config.data.root)
        if not entries:
            raise DataError(listing, "the list holds no videos")
        videos = listed_videos(listing, entries, env)
        hours = sum(video.duration for video in videos) / 3600
        ui.info(f"data: {len(videos):,} trimmed videos ({hours:,.1f} h) from {listing}")
        data, seed = self.config.data, self.config.train.seed
        return TrimmedClips(videos, clip_sampling(data), hico_view(data), seed, self._crops_only(env))

    def build_model(self, env: DistEnv, global_batch: int) -> nn.Module:
        m, data = self.config.model, self.config.data
        videos = global_batch // data.clips_per_video // env.world_size
        if data.topical and videos % m.tcl_group:
            raise ConfigError(
                f"model.tcl_group {m.tcl_group} must divide the {videos} videos of each rank's batch "
                f"(train.batch_size {global_batch} clips over {env.world_size} ranks)"
            )
        model = HiCo(
            S3DG(gating=m.gating),
            clips_per_video=data.clips_per_video,
            topical=data.topical,
            temperature=m.temperature,
            gamma=m.gamma,
            vcl_weight=m.vcl_weight,
            tcl_weight=m.tcl_weight,
            proj_mid=m.proj_mid,
            proj_dim=m.proj_dim,
            tcl_group=m.tcl_group,
        )
        if m.sync_bn and env.world_size > 1 and env.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def step(self, model: nn.Module, batch: Any, env: DistEnv) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if isinstance(batch, CroppedClips):
            clips = clip_views(batch, hico_view(self.config.data), env.device)
        else:
            clips = batch.to(env.device, non_blocking=True)  # videos x K x 3 x T x S x S
        layout = memory_format(self.config.train, env, self.volumetric)
        clips = clips.flatten(0, 1).contiguous(memory_format=layout).unflatten(0, clips.shape[:2])
        output = model(clips)
        metrics = {"vcl": output.vcl, "acc1": output.acc1}
        if self.config.data.topical:
            metrics.update(tcl=output.tcl, pos=output.pos, neg=output.neg)
        return output.loss, metrics

    def describe(self) -> dict[str, Any]:
        """The architecture, and the crop size it trains at (``vseg embed --clips`` views at it)."""
        m = self.config.model
        return {"arch": m.arch, "gating": m.gating, "image_size": self.config.data.crop_size}


METHOD = HicoMethod
