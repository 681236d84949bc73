"""BaSSL as a trainer method: its config, windows of consecutive shots from MovieNet keyframes, the BaSSL objective
(:mod:`vseg.models.bassl`), and built-in synthetic data.

The data is BaSSL's ``dataset/movienet.py`` with ``sampling_method: bassl`` (``dataset/sampler.py``,
``SequenceShotSampler``): every shot of every movie is the centre of one window of ``2 * neighbor_size + 1`` shots
``neighbor_interval`` apart, shifted to fit inside the movie; each shot of the window is one of its keyframes drawn at
random; the window is augmented with one crop, flip, colour jitter and blur for all its shots, and its two edge shots
are augmented a second time as the sparse sequence; 15 % of the dense shots (at least one) are masked for MSM
(``data.pipeline``: the loader workers do it, or they ship the JPEG bytes and drawn parameters and the training
device decodes and augments whole batches, :mod:`vseg.data.batch_augment`, as for SCRL). The
presets ``bassl/paper`` (10 epochs, MovieNet-SSeg AP 56.26 in the paper) and ``bassl/paper_40epoch`` (57.40) take
every number from the reference's ``pretrain/cfg/default.yaml`` and ``method/bassl.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset

from vseg import ui
from vseg.config import OptimConfig, Pipeline, StageConfig, SynthConfig, TrainConfig, load_config
from vseg.data.augment import ViewParams, ViewSpec, apply_view, sample_view_params
from vseg.data.batch_augment import apply_views, pack_params
from vseg.data.clips import check_same_size, read_frames
from vseg.data.sampler import collate_or_error, item_seed
from vseg.errors import ConfigError, DataError
from vseg.io.images import decode_jpegs, read_jpeg_bytes
from vseg.io.movienet import index_movie, keyframe_name, select_movies
from vseg.models.bassl import SPARSE_SHOTS, BaSSL, CrnConfig, build_bassl
from vseg.models.encoder import ARCHS
from vseg.prep.synth import make_synth
from vseg.presets import preset
from vseg.runtime import DistEnv, resolve_pipeline
from vseg.train.trainer import data_root, memory_format

Task = Literal["ssm", "cgm", "pp", "msm"]


class BasslDataConfig(StageConfig):
    """Where BaSSL's windows come from and how they are augmented (``pretrain/cfg/default.yaml``: ``TRAIN`` and
    ``LOSS.sampling_method``)."""

    root: Path | None = Field(None, description="MovieNet keyframe root (240P/, or the folder holding it)")
    synthetic: bool = Field(
        False, description="with no root: train on the demo's built-in synthetic movies, made under OUT/synthetic"
    )
    split: str | None = Field(
        "full", description="take this split of split_file; unset: every movie folder of the root"
    )
    split_file: Path | None = Field(
        Path("movie1K"),
        description="split JSON, or movie1K (MovieNet's 1,100-movie split, built in; its 'full' split is BaSSL's "
        "pre-training set); unset: root/../meta/split318.json",
    )
    neighbor_size: int = Field(8, ge=1, description="shots on each side of the centre shot: windows of 2N + 1 shots")
    neighbor_interval: int = Field(1, ge=1, description="shots between two window shots (1: consecutive)")
    keyframes_per_shot: int = Field(3, ge=1, description="keyframes per shot on disk; one is drawn per shot per step")
    image_size: int = Field(224, ge=16, description="side of the random resized crop")
    crop_scale: tuple[float, float] = Field((0.14, 1.0), description="area range of the random resized crop")
    jitter_p: float = Field(0.8, ge=0, le=1, description="probability of colour jitter (one draw per window)")
    jitter: tuple[float, float, float, float] = Field(
        (0.2, 0.2, 0.2, 0.05), description="brightness, contrast, saturation, hue strengths"
    )
    blur_p: float = Field(0.5, ge=0, le=1, description="probability of a Gaussian blur (one draw per window)")
    blur_sigma: tuple[float, float] = Field((0.1, 2.0), description="range of the blur's standard deviation")
    flip_p: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip (one draw per window)")
    mask_p: float = Field(0.15, ge=0, le=1, description="MSM: probability of masking each dense shot (at least one)")
    pipeline: Pipeline = Field(
        "auto",
        description="device: workers ship JPEG bytes, the training device decodes and augments whole batches; "
        "cpu: workers decode and augment each window; auto: device on CUDA, else cpu",
    )

    @property
    def window(self) -> int:
        return 2 * self.neighbor_size + 1

    def view(self) -> ViewSpec:
        return ViewSpec(
            size=self.image_size,
            scale=self.crop_scale,
            jitter_p=self.jitter_p,
            jitter=self.jitter,
            blur_p=self.blur_p,
            blur_sigma=self.blur_sigma,
            flip_p=self.flip_p,
        )


class BasslModelConfig(StageConfig):
    """The shot encoder, the CRN and the pretext tasks (``MODEL`` and ``LOSS`` of ``pretrain/cfg/default.yaml``)."""

    arch: Literal["resnet18", "resnet34", "resnet50", "resnet101"] = Field("resnet50", description="ResNet depth")
    crn_hidden: int = Field(768, ge=1, description="CRN width (hidden_size)")
    crn_layers: int = Field(2, ge=1, description="CRN transformer layers")
    crn_heads: int = Field(8, ge=1, description="CRN attention heads; must divide crn_hidden")
    crn_intermediate: int = Field(3072, ge=1, description="CRN feed-forward width")
    crn_dropout: float = Field(0.1, ge=0, lt=1, description="CRN hidden dropout")
    crn_attention_dropout: float = Field(0.1, ge=0, lt=1, description="CRN attention dropout")
    head_hidden: int = Field(2048, ge=1, description="hidden width of the SSM head (head_nce)")
    head_dim: int = Field(128, ge=1, description="output of the SSM head")
    temperature: float = Field(0.1, gt=0, description="SSM InfoNCE temperature")
    pp_negatives: int = Field(1, ge=1, description="PP: non-boundary shots drawn per window")
    tasks: list[Task] = Field(
        ["ssm", "cgm", "pp", "msm"], min_length=1, description="pretext tasks summed into the loss (all four: BaSSL)"
    )
    sync_bn: bool = Field(True, description="SyncBatchNorm across ranks on CUDA: BN over the global batch, as BaSSL")


class BasslConfig(StageConfig):
    """``vseg pretrain bassl``: BaSSL pre-training (Mun et al., 2022); defaults are the paper's."""

    data: BasslDataConfig = BasslDataConfig()
    model: BasslModelConfig = BasslModelConfig()
    optim: OptimConfig = OptimConfig(
        optimizer="lars",
        lr=0.3,
        reference_batch=256,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-6,
        bn_lars_exclude=True,
        lars_groups="no_bias_decay",
        schedule="warmup_cosine",
        warmup_epochs=1.0,
    )
    train: TrainConfig = TrainConfig(epochs=10, batch_size=256, checkpoint_every=1)


def window_shots(centre: int, num_shots: int, neighbor_size: int, interval: int) -> np.ndarray:
    """BaSSL's ``SequenceShotSampler``: the shots of the window around ``centre``, shifted right or left to fit
    inside a movie of ``num_shots`` shots (which must hold one window)."""
    shots = centre + np.arange(-neighbor_size * interval, neighbor_size * interval + 1, interval)
    if shots[0] < 0:
        shots -= shots[0]
    elif shots[-1] > num_shots - 1:
        shots -= shots[-1] - (num_shots - 1)
    return shots


def mask_shots(count: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """MSM's mask (``_get_mask``): each shot with probability ``p``, and one drawn at random when none was."""
    mask = (torch.rand(count, generator=generator) < p).float()
    if not mask.any():
        mask[int(torch.randint(count, (1,), generator=generator))] = 1.0
    return mask


class ShotWindows(Dataset):
    """``(epoch, i)`` -> ``(video, mask)``: the window centred on the i-th shot of the data, ``video`` the sparse
    then the dense shots (``(2 + N) x 3 x S x S`` float32), ``mask`` the MSM mask of the dense shots (``N``).

    A window that cannot be read is returned as its DataError (raised in the training process with the file named).
    Each item's randomness comes from its own generator seeded by (seed, epoch, i).
    """

    def __init__(self, movies: list[tuple[str, int]], data: BasslDataConfig, seed: int = 0):
        self.movies, self.data, self.seed, self.spec = movies, data, seed, data.view()
        span = (data.window - 1) * data.neighbor_interval + 1
        counts = [num_shots for _, num_shots in movies]
        if any(count < span for count in counts):
            raise ValueError(f"every movie must hold one window of {span} shots")
        self.movie_of = np.repeat(np.arange(len(movies), dtype=np.int32), counts)
        self.centre = np.concatenate([np.arange(count, dtype=np.int32) for count in counts])

    def __len__(self) -> int:
        return len(self.centre)

    def _draw(self, key: int | tuple[int, int, float]) -> tuple[list[str], torch.Generator]:
        """The window's keyframe files (one drawn per shot) and the generator its other draws continue from."""
        epoch, index = key[:2] if isinstance(key, tuple) else (0, key)
        data = self.data
        directory, num_shots = self.movies[int(self.movie_of[index])]
        generator = torch.Generator().manual_seed(item_seed(self.seed, epoch, index))
        shots = window_shots(int(self.centre[index]), num_shots, data.neighbor_size, data.neighbor_interval)
        picks = torch.randint(data.keyframes_per_shot, (len(shots),), generator=generator)
        return [f"{directory}/{keyframe_name(int(s), int(j))}" for s, j in zip(shots, picks, strict=True)], generator

    def _views(self, height: int, width: int, generator: torch.Generator) -> tuple[ViewParams, ViewParams]:
        """The dense sequence's view, then the sparse one's."""
        return tuple(sample_view_params(height, width, self.spec, generator) for _ in range(2))

    def __getitem__(self, key: int | tuple[int, int, float]) -> tuple[torch.Tensor, torch.Tensor] | DataError:
        paths, generator = self._draw(key)
        try:
            frames = read_frames(paths)
        except DataError as exc:
            return exc
        dense_view, sparse_view = self._views(frames.shape[-2], frames.shape[-1], generator)
        size, n = self.spec.size, len(paths)
        dense = apply_view(frames, dense_view, size).view(n, 3, size, size)
        sparse = apply_view(frames[[0, n - 1]], sparse_view, size).view(SPARSE_SHOTS, 3, size, size)
        return torch.cat([sparse, dense]), mask_shots(n, self.data.mask_p, generator)


class EncodedWindow(NamedTuple):
    """Windows as they leave the device pipeline's workers (one, or a batch collated): every keyframe's JPEG bytes
    and path in window order, ``windows x 2 x PARAMS`` packed views (dense, sparse) and ``windows x N`` masks."""

    files: list[torch.Tensor]
    paths: list[str]
    params: torch.Tensor
    mask: torch.Tensor


def collate_windows(items: list[EncodedWindow | DataError]) -> EncodedWindow | DataError:
    """The batch of ``items``, or the DataError of the first window that could not be read."""

    def batch(windows: list[EncodedWindow]) -> EncodedWindow:
        return EncodedWindow(
            [f for w in windows for f in w.files],
            [p for w in windows for p in w.paths],
            torch.cat([w.params for w in windows]),
            torch.cat([w.mask for w in windows]),
        )

    return collate_or_error(items, batch)


class EncodedShotWindows(ShotWindows):
    """:class:`ShotWindows` for the device pipeline: the same draws from the same generator, shipped as
    :class:`EncodedWindow` (see :func:`window_views`)."""

    collate_fn = staticmethod(collate_windows)

    def __getitem__(self, key: int | tuple[int, int, float]) -> EncodedWindow | DataError:
        paths, generator = self._draw(key)
        try:
            files, sizes = zip(*(read_jpeg_bytes(path) for path in paths), strict=True)
            check_same_size(paths, sizes)
        except DataError as exc:
            return exc
        width, height = sizes[0]
        params = torch.stack([pack_params(view) for view in self._views(height, width, generator)])
        mask = mask_shots(len(paths), self.data.mask_p, generator)
        return EncodedWindow(list(files), paths, params[None], mask[None])


def window_views(batch: EncodedWindow, spec: ViewSpec, device: torch.device) -> torch.Tensor:
    """An :class:`EncodedWindow` batch -> ``windows x (2 + N) x 3 x S x S`` float32 on ``device``, as
    :class:`ShotWindows` makes them: the keyframes decoded in one call, then the dense and the sparse views of every
    group of windows whose keyframes share one size."""
    windows, n = batch.mask.shape
    images = decode_jpegs(batch.files, batch.paths, device)
    out = torch.empty(windows, SPARSE_SHOTS + n, 3, spec.size, spec.size, device=device)
    shapes: dict[tuple[int, ...], list[int]] = {}
    for w in range(windows):
        shapes.setdefault(tuple(images[w * n].shape), []).append(w)
    for members in shapes.values():
        frames = torch.stack([torch.stack(images[w * n : (w + 1) * n]) for w in members])  # windows x N x 3 x H x W
        params = batch.params[members]
        dense = apply_views(frames, params[:, 0], spec.size, spec.mean, spec.std)
        sparse = apply_views(frames[:, [0, n - 1]], params[:, 1], spec.size, spec.mean, spec.std)
        out[torch.tensor(members, device=device)] = torch.cat([sparse, dense], dim=1)
    return out


def find_movies(root: Path, data: BasslDataConfig) -> list[tuple[str, int]]:
    """The movies to train on as ``(keyframe folder, shots)``; movies too short for one window or with a missing
    keyframe are left out with a warning; DataError naming the root when none is left."""
    keyframe_root = root / "240P" if (root / "240P").is_dir() else root
    movies, source = select_movies(keyframe_root, data.split, data.split_file)
    ui.info(f"movies: {source}")
    span = (data.window - 1) * data.neighbor_interval + 1
    found, short, broken = [], [], []
    for movie in movies:
        try:
            keyframes = index_movie(keyframe_root / movie, data.keyframes_per_shot)
        except DataError as exc:
            broken.append(str(exc))
            continue
        if keyframes.missing:
            shot, j = keyframes.missing[0]
            broken.append(f"{keyframes.path(shot, j)}: keyframe missing ({len(keyframes.missing)} in movie)")
        elif keyframes.num_shots < span:
            short.append(f"{keyframes.directory} ({keyframes.num_shots} shots)")
        else:
            found.append((str(keyframes.directory), keyframes.num_shots))
    for problem in broken:
        ui.warn(f"movie left out: {problem}")
    if short:
        ui.warn(f"{len(short)} movies have fewer shots than one window of {span}, left out: {', '.join(short[:3])}")
    if not found:
        raise DataError(keyframe_root, f"no movie has the {span} shots of one window (data.neighbor_size)")
    return found


def builtin_movies(folder: Path) -> Path:
    """The demo's synthetic movies (``synth/cpu_tiny``) under ``folder/movienet``; finished movies are kept."""
    make_synth(folder / "movienet", load_config(SynthConfig, preset("synth/cpu_tiny")))
    return folder / "movienet"


class BasslMethod:
    """BaSSL pre-training of a ResNet shot encoder and a transformer CRN with four boundary-aware pretext tasks."""

    name = "bassl"
    config_model = BasslConfig
    unit = "windows"
    items_per_sample = 1
    volumetric = False
    presets_help = "The paper's settings: bassl/paper (10 epochs), bassl/paper_40epoch; bassl/cpu_tiny for a CPU."
    resumable = ("data.pipeline",)  # config keys beyond the trainer's that may change when a run resumes

    def __init__(self, config: BasslConfig):
        self.config = config

    def builtin_data(self, out: Path) -> Callable[[], object] | None:
        """With no data named and ``data.synthetic``: point ``data.root`` at the demo's synthetic movies under
        ``OUT/synthetic`` (their own train split) and return the function that makes them."""
        data = self.config.data
        if data.root is not None or not data.synthetic:
            return None
        data.root = out / "synthetic" / "movienet"
        return partial(builtin_movies, out / "synthetic")

    def build_dataset(self, env: DistEnv) -> ShotWindows:
        data = self.config.data
        root = data_root(data.root, "a MovieNet keyframe root")
        movies = find_movies(root, data)
        device_views = resolve_pipeline(data.pipeline, env.device) == "device"
        dataset = (EncodedShotWindows if device_views else ShotWindows)(movies, data, self.config.train.seed)
        if device_views:
            ui.info(f"pipeline: JPEG decoding and augmentation on {env.device}")
        ui.info(f"data: {len(dataset):,} windows of {data.window} shots from {len(movies):,} movies in {root}")
        return dataset

    def build_model(self, env: DistEnv, global_batch: int) -> nn.Module:
        m = self.config.model
        if m.crn_hidden % m.crn_heads:
            raise ConfigError(f"model.crn_heads {m.crn_heads} must divide model.crn_hidden {m.crn_hidden}")
        if m.pp_negatives > self.config.data.window - 1:
            raise ConfigError(f"model.pp_negatives {m.pp_negatives} must be below the {self.config.data.window} shots")
        crn = CrnConfig(
            input_dim=ARCHS[m.arch][0].expansion * 512,
            hidden=m.crn_hidden,
            layers=m.crn_layers,
            heads=m.crn_heads,
            intermediate=m.crn_intermediate,
            dropout=m.crn_dropout,
            attention_dropout=m.crn_attention_dropout,
            shots=self.config.data.window,
        )
        model = build_bassl(m.arch, crn, m.head_hidden, m.head_dim, m.temperature, m.pp_negatives, tuple(m.tasks))
        if m.sync_bn and env.world_size > 1 and env.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def step(self, model: BaSSL, batch: Any, env: DistEnv) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if isinstance(batch, EncodedWindow):
            video, mask = window_views(batch, self.config.data.view(), env.device), batch.mask.to(env.device)
        else:
            video, mask = (part.to(env.device, non_blocking=True) for part in batch)
        layout = memory_format(self.config.train, env, self.volumetric)
        video = video.flatten(0, 1).contiguous(memory_format=layout).unflatten(0, video.shape[:2])
        output = model(video, mask)
        return output.loss, output.terms

    def describe(self) -> dict[str, Any]:
        return {"arch": self.config.model.arch}


METHOD = BasslMethod
