"""HiCo as a trainer method: K clips per untrimmed video, S3D-G with the VCL and TCL heads, LARS.

See :mod:`vseg.models.hico` for the objective, :mod:`vseg.data.untrimmed` for the sampling and
:mod:`vseg.train.lars` for the optimiser; the reference's settings are in ``configs/hico/``. The global batch
(``train.batch_size``) counts clips: 32 videos x 3 clips = 96 for the HiCo presets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vseg import ui
from vseg.config import HicoConfig
from vseg.data.untrimmed import UntrimmedClips, check_pieces
from vseg.errors import ConfigError, DataError
from vseg.io.cliplist import read_training_list
from vseg.models.hico import HiCo
from vseg.models.s3dg import S3DG
from vseg.runtime import DistEnv
from vseg.train.trainer import memory_format


def training_paths(config: HicoConfig) -> tuple[Path, Path]:
    """The piece list and the piece folder: explicit paths, or ROOT/training.txt and ROOT/training/."""
    data = config.data
    if data.root is None and (data.training_list is None or data.clip_dir is None):
        raise ConfigError(
            "no training data: pass --data DIR (the output of vseg prep clips), or set data.training_list and "
            "data.clip_dir"
        )
    listing = data.training_list or Path(data.root) / "training.txt"
    clip_dir = data.clip_dir or Path(data.root) / "training"
    if not clip_dir.is_dir():
        raise DataError(clip_dir, "piece folder not found (vseg prep clips writes DIR/training/)")
    return Path(listing), Path(clip_dir)


class HicoMethod:
    """Builds HiCo's (or the SimCLR baseline's) data and model from a :class:`~vseg.config.HicoConfig`."""

    name = "hico"
    unit = "clips"
    volumetric = True  # 3-d convolutions: channels_last_3d on CUDA

    def __init__(self, config: HicoConfig):
        self.config = config
        self.items_per_sample = config.data.clips_per_video

    def build_dataset(self, env: DistEnv) -> UntrimmedClips:
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
        return UntrimmedClips(videos, clip_dir, self.config.data, self.config.train.seed)

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
        clips = batch.to(env.device, non_blocking=True)  # videos x K x 3 x T x S x S
        layout = memory_format(self.config.train, env, self.volumetric)
        clips = clips.flatten(0, 1).contiguous(memory_format=layout).unflatten(0, clips.shape[:2])
        output = model(clips)
        metrics = {"vcl": output.vcl, "acc1": output.acc1}
        if self.config.data.topical:
            metrics.update(tcl=output.tcl, pos=output.pos, neg=output.neg)
        return output.loss, metrics

    def describe(self) -> dict[str, Any]:
        return {"arch": self.config.model.arch, "gating": self.config.model.gating}
