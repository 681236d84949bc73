"""Fine-tuning as a trainer method (``vseg finetune``): an S3D-G clip classifier trained on a labelled video list,
then tested as HiCo tests it (Qing et al., CVPR 2022, Sec. 4.1 and Table 5; HiCo's ``configs/projects/hico/ft-*``
and ``runs/run.py``).

- Data: a ``relative/path label`` list (UCF101 / HMDB51 format). One clip per video and epoch, 16 frames over
  16 * 4 / 30 s from a random start, in frames as the reference (a shorter video keeps the stride and repeats its
  last frame: :mod:`vseg.data.video_views`), random resized crop to 112 (bilinear without antialiasing, as the
  reference; ``data.antialias``) (area 0.3243-0.5765, aspect 6/7-7/6), horizontal
  flip, grayscale 0.3 then colour jitter 0.5/0.5/0.5/0.25 (``GRAY_FIRST``), one parameter set for all frames of a clip
  (:class:`vseg.data.trimmed.LabelledClips`). Every video of both lists is opened first: a missing or unreadable
  one is an error naming its line.
- Model: the backbone from ``--init`` (a ``vseg pretrain hico`` checkpoint's ``backbone.*``, a reference checkpoint's,
  or a bare S3D-G state dict; the projection heads are dropped) or random, then global average pool, dropout 0 and a
  linear head (:class:`vseg.models.classifier.ClipClassifier`), cross-entropy. ``model.bn_group``: BatchNorm over
  consecutive groups of that many clips in training, as the reference's per-GPU BN on 8 GPUs without SyncBN.
  ``model.linear``: ``reference`` trains the head alone with the backbone in train mode (its BN statistics keep
  moving, as the reference's linear fine-tuning), ``frozen`` with the backbone in eval mode (a strict probe); null
  trains everything.
- Optimiser: Adam (0.9, 0.999), weight decay 1e-3 (none on BN), cosine with linear warm-up (``finetune/*`` presets).
- Test, after the last epoch, of the last epoch's weights (the reference tests the last checkpoint of its run:
  ``checkpoints/last.pth``): every video of the test list as ``test.views`` temporal views x 1 centre crop (0.875 of
  the short side, resized to 112; :class:`vseg.data.video_views.VideoViews`), softmax scores summed over the views;
  the single-view score is the centre view's (the middle one of an even number of views starts at the centre).
  ``OUT/metrics.json``: ``top1``, ``top5`` (fractions) of the multi-view test, ``single_view_top1``/``_top5``, counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn
from torch.utils.data import DataLoader, Subset

from vseg import ui
from vseg.config import ClipDataConfig, OptimConfig, StageConfig, TrainConfig
from vseg.data.sampler import collate_or_error
from vseg.data.trimmed import LabelledClips, ListedVideo, listed_videos
from vseg.data.video_views import VideoViews
from vseg.errors import ConfigError, DataError
from vseg.io import atomic
from vseg.io.checkpoints import S3DGWeights, fill_weights, read_s3dg_weights
from vseg.io.cliplist import read_labelled_lines
from vseg.models.classifier import ClipClassifier
from vseg.models.s3dg import S3DG
from vseg.runtime import DistEnv, gather_objects
from vseg.train.methods.hico import hico_view
from vseg.train.trainer import loader_workers, memory_format

METRICS_FILE = "metrics.json"


class FinetuneDataConfig(ClipDataConfig):
    """The labelled videos and their training clips (HiCo's ``ft_s3dg_*.yaml``): HiCo's clips, with fine-tuning's
    crop aspect range and colour augmentation."""

    train_list: Path | None = Field(None, description="training list: 'relative/path label' lines (UCF101, HMDB51)")
    test_list: Path | None = Field(None, description="test list, same format; tested after training")
    video_root: Path | None = Field(None, description="folder the listed paths are relative to; unset: each list's")
    crop_ratio: tuple[float, float] = Field((6 / 7, 7 / 6), description="aspect-ratio range of the random crop")
    jitter_p: float = Field(1.0, ge=0, le=1, description="probability of colour jitter (one draw per clip)")
    jitter: tuple[float, float, float, float] = Field(
        (0.5, 0.5, 0.5, 0.25), description="brightness, contrast, saturation, hue strengths"
    )
    grayscale_p: float = Field(0.3, ge=0, le=1, description="probability of grayscale")
    gray_first: bool = Field(True, description="grayscale before the colour jitter (the reference's GRAY_FIRST)")
    antialias: bool = Field(
        False,
        description="resize crops (training and test) with antialiasing; false: plain bilinear, as the reference's "
        "F.interpolate",
    )


class FinetuneModelConfig(StageConfig):
    """The classifier: S3D-G, global average pool, dropout, linear head."""

    init: Path | None = Field(
        None, description="pre-trained backbone: a vseg pretrain hico checkpoint or an S3D-G state dict; unset: random"
    )
    classes: int | None = Field(None, ge=2, description="number of classes; unset: the largest label + 1")
    gating: bool = Field(True, description="S3D-G self-gating when the backbone is random (--init decides otherwise)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout before the linear head")
    sync_bn: bool = Field(False, description="SyncBatchNorm across ranks on CUDA (the reference's BN.SYNC: false)")
    bn_group: int | None = Field(
        None,
        ge=1,
        description="clips per BatchNorm batch in training, consecutive groups of each rank's batch (the reference: "
        "its per-GPU batch, 16 for UCF101, 8 for HMDB51); unset: each rank's whole batch",
    )
    linear: Literal["reference", "frozen"] | None = Field(
        None,
        description="train the head alone; reference: backbone in train mode, its BN statistics keep moving (the "
        "reference's linear fine-tuning); frozen: backbone in eval mode; null: fine-tune everything",
    )


class FinetuneTestConfig(StageConfig):
    """The test after training: temporal views x 1 centre crop, softmax scores summed."""

    views: int = Field(10, ge=1, description="temporal views per test video (1 or an even number)")
    crop_fraction: float = Field(0.875, gt=0, le=1, description="centre square crop, as a share of the short side")
    batch_size: int = Field(8, ge=1, description="test videos per forward pass (each with all its views)")

    @field_validator("views")
    @classmethod
    def _centre_among_views(cls, value: int) -> int:
        if value > 1 and value % 2:
            raise ValueError(f"expected 1 or an even number (the middle view is the single-view test), got {value}")
        return value


class FinetuneConfig(StageConfig):
    """``vseg finetune``: supervised fine-tuning of an S3D-G and HiCo's test; defaults: UCF101 (``finetune/ucf101``)."""

    data: FinetuneDataConfig = FinetuneDataConfig()
    model: FinetuneModelConfig = FinetuneModelConfig(bn_group=16)
    test: FinetuneTestConfig = FinetuneTestConfig()
    optim: OptimConfig = OptimConfig(
        optimizer="adam",
        lr=0.002,
        reference_batch=128,
        weight_decay=1e-3,
        schedule="cosine",
        warmup_epochs=10,
        warmup_start_lr=2e-4,
    )
    train: TrainConfig = TrainConfig(epochs=300, batch_size=128, checkpoint_every=10, amp=False)  # fp32, as HiCo


def class_count(lists: Sequence[tuple[Path, list[tuple[int, Path, int]]]], classes: int | None) -> int:
    """The number of classes (``classes``, else the training list's largest label + 1); DataError naming the list
    and line of a label outside it, or the training list when it holds fewer than two classes."""
    train_list, train = lists[0]
    if not train:
        raise DataError(train_list, "the list holds no videos")
    count = classes if classes is not None else max(label for _, _, label in train) + 1
    for listing, entries in lists:
        for line, _, label in entries:
            if not 0 <= label < count:
                source = f"model.classes = {classes}" if classes is not None else "the training list's labels"
                raise DataError(listing, f"line {line}: label {label} is outside 0..{count - 1} ({source})")
    labels = {label for _, _, label in train}
    if len(labels) < 2:
        raise DataError(train_list, f"every video has label {labels.pop()}: fine-tuning needs at least two classes")
    return count


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """The share of rows whose label is among their ``k`` highest scores (all classes when there are fewer)."""
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return float((top == labels[:, None]).any(1).float().mean())


class FinetuneMethod:
    """Fine-tune an S3D-G (from a HiCo checkpoint, or random) on a labelled video list, then test it on 10 views."""

    name = "finetune"
    command = "finetune"
    config_model = FinetuneConfig
    unit = "clips"
    items_per_sample = 1
    volumetric = True
    presets_help = (
        "The reference's settings: finetune/ucf101 (the defaults), finetune/hmdb51, finetune/ucf101_linear, "
        "finetune/hmdb51_linear; finetune/cpu_tiny for a CPU."
    )
    resumable = ("data.video_root", "test.batch_size")

    def __init__(self, config: FinetuneConfig):
        self.config = config
        self.classes = 0
        self.init: S3DGWeights | None = None
        self.test_videos: list[ListedVideo] = []

    def builtin_data(self, out: Path) -> Callable[[], object] | None:
        """Fine-tuning has no built-in data: its runs name their lists."""
        return None

    def _lists(self) -> tuple[Path, Path]:
        data = self.config.data
        if data.train_list is None or data.test_list is None:
            raise ConfigError("no data: pass --train LIST and --test LIST ('relative/path label' lines)")
        return Path(data.train_list), Path(data.test_list)

    def build_dataset(self, env: DistEnv) -> LabelledClips:
        """Read both lists and the ``--init`` checkpoint, and open every listed video, before anything is written."""
        train_list, test_list = self._lists()
        root = self.config.data.video_root
        if self.config.model.init is not None:
            self.init = read_s3dg_weights(Path(self.config.model.init))
        entries = [(listing, read_labelled_lines(listing, root)) for listing in (train_list, test_list)]
        if not entries[1][1]:
            raise DataError(test_list, "the list holds no videos")
        self.classes = class_count(entries, self.config.model.classes)
        train, self.test_videos = (listed_videos(listing, rows, env) for listing, rows in entries)
        ui.info(
            f"data: {len(train):,} training and {len(self.test_videos):,} test videos, {self.classes} classes, "
            f"from {train_list} and {test_list}"
        )
        data = self.config.data
        view = replace(hico_view(data), gray_first=data.gray_first, antialias=data.antialias)
        return LabelledClips(train, data.frames, data.sampling_rate, data.target_fps, view, self.config.train.seed)

    def build_model(self, env: DistEnv, global_batch: int) -> nn.Module:
        m = self.config.model
        backbone = S3DG(gating=self.init.gating if self.init is not None else m.gating)
        if self.init is not None:
            own = backbone.state_dict()
            init = self.init
            backbone.load_state_dict(fill_weights(Path(m.init), own, init.weights, list(own), init.prefix, "S3D-G"))
            ui.info(f"backbone: {m.init} ({init.layout}, {'S3D-G' if init.gating else 'S3D'})")
            self.init = None  # not held through training
        else:
            ui.info("backbone: random init (no --init)")
        mode = {None: "full", "reference": "linear", "frozen": "frozen"}[m.linear]
        local = global_batch // env.world_size
        if m.bn_group is not None and local % m.bn_group:
            raise ConfigError(
                f"model.bn_group {m.bn_group} must divide the {local} clips of each rank's batch "
                f"(train.batch_size {global_batch} over {env.world_size} ranks)"
            )
        model = ClipClassifier(backbone, self.classes, dropout=m.dropout, mode=mode, bn_group=m.bn_group)
        if m.sync_bn and env.world_size > 1 and env.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def _clips(self, clips: torch.Tensor, env: DistEnv) -> torch.Tensor:
        layout = memory_format(self.config.train, env, self.volumetric)
        return clips.to(env.device, non_blocking=True).contiguous(memory_format=layout)

    def step(self, model: nn.Module, batch: Any, env: DistEnv) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        clips, labels = batch
        labels = labels.to(env.device, non_blocking=True)
        logits = model(self._clips(clips, env))
        loss = F.cross_entropy(logits.float(), labels)
        return loss, {"acc1": (logits.argmax(1) == labels).float().mean() * 100}

    def describe(self) -> dict[str, Any]:
        m = self.config.model
        return {"arch": "s3dg", "classes": self.classes, "linear": m.linear, "init": str(m.init) if m.init else None,
                "image_size": self.config.data.crop_size}  # fmt: skip

    def finish(self, model: nn.Module, env: DistEnv, out: Path) -> dict[str, Any]:
        """The test (module docstring) of the trained ``model``; rank 0 writes ``OUT/metrics.json``."""
        scores = self._test_scores(model, env)
        labels = torch.tensor([video.label for video in self.test_videos])
        centre = self.config.test.views // 2
        summed = scores.sum(1)
        results = {
            "top1": topk_correct(summed, labels, 1),
            "top5": topk_correct(summed, labels, 5),
            "single_view_top1": topk_correct(scores[:, centre], labels, 1),
            "single_view_top5": topk_correct(scores[:, centre], labels, 5),
            "views": self.config.test.views,
            "test_videos": len(labels),
            "classes": self.classes,
            "checkpoint": "checkpoints/last.pth",
        }
        if env.is_main:
            atomic.write_text(out / METRICS_FILE, json.dumps(results, indent=2) + "\n")
        return results

    def _test_scores(self, model: nn.Module, env: DistEnv) -> torch.Tensor:
        """``videos x views x classes`` softmax scores of the test list, each rank scoring its share."""
        data, test, train = self.config.data, self.config.test, self.config.train
        dataset = VideoViews(
            [video.path for video in self.test_videos], frames=data.frames, sampling_rate=data.sampling_rate,
            target_fps=data.target_fps, views=test.views, size=data.crop_size, crop_fraction=test.crop_fraction,
            mean=data.mean, std=data.std, antialias=data.antialias,
        )  # fmt: skip
        mine = list(range(env.rank, len(dataset), env.world_size))
        workers = loader_workers(train, env)
        loader = DataLoader(
            Subset(dataset, mine), batch_size=test.batch_size, num_workers=workers, collate_fn=collate_or_error
        )
        amp = env.device.type == "cuda" and train.amp
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
        rows = []
        model.eval()
        with torch.no_grad(), autocast, ui.progress("test", len(mine), "videos") as advance:
            for batch in loader:
                if isinstance(batch, DataError):
                    raise batch
                views = self._clips(batch.flatten(0, 1), env)
                rows.append(F.softmax(model(views).float(), dim=1).view(len(batch), test.views, -1).cpu())
                advance(len(batch))
        shares = gather_objects(torch.cat(rows) if rows else torch.zeros(0, test.views, self.classes), env)
        scores = torch.zeros(len(dataset), test.views, self.classes)
        for rank, share in enumerate(shares):
            scores[rank :: env.world_size] = share
        return scores


METHOD = FinetuneMethod
