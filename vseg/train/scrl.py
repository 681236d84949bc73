"""SCRL as a trainer method: puzzle (or keyframe) clips, the 9-channel ResNet in the SCRL objective, InfoNCE acc@k.

See :mod:`vseg.models.scrl` for the objective and :mod:`vseg.data.clips` for the data; the paper's settings are in
``configs/scrl/with_imagenet.yaml`` and ``without_imagenet.yaml``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vseg import ui
from vseg.config import ScrlConfig, ScrlDataConfig, read_yaml_mapping
from vseg.data.augment import TwoViewShotTransform
from vseg.data.clips import TwoViewClips, keyframe_clips, puzzle_clips
from vseg.errors import ConfigError, DataError
from vseg.io.checkpoints import load_checkpoint
from vseg.io.movienet import select_movies
from vseg.io.puzzles import SETTINGS_NAME, is_puzzle_folder
from vseg.models.encoder import ShotEncoder, init_from_imagenet
from vseg.models.scrl import SCRL, topk_accuracy
from vseg.runtime import DistEnv
from vseg.train.trainer import memory_format


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


class ScrlMethod:
    """Builds SCRL's data and model from a :class:`~vseg.config.ScrlConfig`; one step is one InfoNCE loss."""

    name = "scrl"
    unit = "shots"
    volumetric = False

    def __init__(self, config: ScrlConfig):
        self.config = config
        self.items_per_sample = config.data.shots_per_clip

    def build_dataset(self, env: DistEnv) -> TwoViewClips:
        data = self.config.data
        if data.root is None:
            raise ConfigError("no training data: pass --data DIR (a puzzle folder or a keyframe root) or set data.root")
        root = Path(data.root)
        if not root.is_dir():
            raise DataError(root, "data folder not found")
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
        return TwoViewClips(clips, transform, data.shots_per_clip, data.keyframes_per_shot, self.config.train.seed)

    def build_model(self, env: DistEnv, global_batch: int) -> SCRL:
        m = self.config.model
        if m.queue_size % global_batch:
            raise ConfigError(
                f"model.queue_size {m.queue_size} must be a multiple of the global batch "
                f"(train.batch_size {global_batch})"
            )
        local = global_batch // env.world_size
        groups = {"model.bn_group": m.bn_group} | ({"model.cluster_group": m.cluster_group} if m.positive == "cluster" else {})
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
        view_q, view_k = (self._to_device(view, env) for view in batch)
        output = model(view_q, view_k)
        acc1, acc5 = topk_accuracy(output.logits, (1, 5))
        return output.loss, {"acc1": acc1, "acc5": acc5}

    def _to_device(self, view: torch.Tensor, env: DistEnv) -> torch.Tensor:
        """clips x shots x C x S x S -> shots x C x S x S on the device (channels_last on CUDA when configured)."""
        view = view.flatten(0, 1).to(env.device, non_blocking=True)
        return view.contiguous(memory_format=memory_format(self.config.train, env, self.volumetric))

    def describe(self) -> dict[str, Any]:
        return {"arch": self.config.model.arch}
