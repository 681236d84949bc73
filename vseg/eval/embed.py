"""``vseg embed``: a frozen shot encoder turns every shot of a MovieNet-layout root into an embedding.

A BaSSL checkpoint (a vseg bassl run's, or a released Lightning one: ``{"state_dict": {"shot_encoder.*", "crn.*",
...}}``) gives BaSSL's shot features instead, as its ``pretrain/extract_shot_repr.py`` computes them: each of the 3
keyframes resized (short side 256, bicubic) and centre-cropped to 224, encoded by the 3-channel ResNet-50, and the 3
2048-d features averaged (:mod:`vseg.data.shots`, view ``bassl``).

SCRL's ``extract_embeddings.py``, with its preprocessing kept exactly (:func:`vseg.data.shots.eval_view`:
Resize(224) on the short side, CenterCrop(224), ImageNet normalisation, the 3 keyframes stacked as 9 channels) and
its output kept readable by the original tools (the SCRL pickle next to vseg's ``.npz``). What changes:

- Checkpoints: ours, the original release's (``state_dict`` with ``module.encoder_q.*``) and a bare encoder state
  dict all load, with ``weights_only=True``. Every backbone weight must be found; a checkpoint that leaves any out
  is refused with the missing names listed, where the original loaded non-strictly and ran on random weights.
  The ResNet depth and the number of keyframes per shot are read from the weights.
- Image size: a vseg checkpoint records the size its encoder was trained at, and that size is used unless
  ``image_size`` is given (:func:`resolve_image_size`); a checkpoint without one (the SCRL release, a bare state
  dict) is embedded at 224, as the reference.
- Labelled movies (``label318/``) are embedded as SCRL does, every shot but the last; unlabelled movies (a plain
  keyframe folder, or a root without ``label318/``) have all their shots embedded.
- Shot frame tables (``shot_movie318/``) and frame rates (``meta/<imdb>.json``: ``fps`` or ``video.fps``), when
  present, travel with the ``.npz`` so that ``vseg segment`` can score mIoU in frames and Recall@3s in seconds. Movies
  whose metadata gives no frame rate are counted in one warning per run; ``vseg segment`` times them at
  ``data.fps`` (24).
- Each finished movie is cached under ``OUT/.partial/``; an interrupted run resumes from there.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from vseg import ui
from vseg.config import EmbedConfig
from vseg.data.sampler import collate_or_error
from vseg.data.shots import EncodedShotBatch, device_eval_views, shots_for
from vseg.errors import DataError
from vseg.io import atomic
from vseg.io.checkpoints import FORMAT as CHECKPOINT_FORMAT
from vseg.io.checkpoints import (
    BasslWeights,
    bassl_weights,
    fill_all_weights,
    fill_weights,
    load_checkpoint,
    method_note,
    recorded_size,
    strip_prefix,
)
from vseg.io.embeddings import Embeddings, write_npz, write_scrl_pickle
from vseg.io.movienet import (
    MovieKeyframes,
    MovieNetLayout,
    index_movie,
    list_movies,
    read_labels,
    read_movie_fps,
    read_shot_frames,
    read_split,
    resolve_split_file,
    split_movies,
)
from vseg.models.bassl import BasslShotEncoder
from vseg.models.encoder import ARCHS, ShotEncoder, arch_from_state_dict
from vseg.parallel import default_workers
from vseg.runtime import choose_device, out_of_memory, resolve_pipeline

# Where the encoder sits in a checkpoint's state dict, tried in this order.
ENCODER_PREFIXES = ("module.encoder_q.", "encoder_q.", "module.", "")
REFERENCE_SPLITS = ("train", "test", "val")  # the order of extract_embeddings.py --Type all
REFERENCE_IMAGE_SIZE = 224  # extract_embeddings.py: Resize(224), CenterCrop(224)
SHOT_SIZE_KEYS = {"scrl": "image_size"}  # where older SCRL runs' configs hold their training size


@dataclass
class LoadedEncoder:
    """A shot encoder restored from a checkpoint, and what was found out about the checkpoint."""

    encoder: ShotEncoder
    arch: str
    keyframes_per_shot: int
    layout: str  # "vseg", "SCRL release", "state dict", "vseg bassl" or "BaSSL release"
    prefix: str
    image_size: int | None = None  # the size it was trained at, when the checkpoint records it
    view: str = "scrl"  # the evaluation preprocessing its features expect: "scrl" or "bassl" (vseg.data.shots)


class TrainedAtSize(Protocol):
    """A loaded encoder that may know the image size it was trained at (shot or clip encoder)."""

    image_size: int | None


def resolve_image_size(
    configured: int | None, loaded: TrainedAtSize | None, reference: int = REFERENCE_IMAGE_SIZE
) -> int:
    """The image size to embed at: ``configured`` when given (with a warning when it differs from the size the
    encoder was trained at), else the encoder's recorded size, else ``reference`` (224, SCRL's
    ``extract_embeddings.py``; 112 for HiCo's clips)."""
    recorded = loaded.image_size if loaded is not None else None
    if configured is None:
        return recorded if recorded is not None else reference
    if recorded is not None and configured != recorded:
        ui.warn(
            f"embedding at {configured} px, but the encoder was trained at {recorded} px; its features are usually "
            f"better at {recorded} (leave the image size unset to use it)"
        )
    return configured


def _encoder_state(checkpoint: dict, path: Path) -> tuple[dict[str, torch.Tensor], str, str]:
    """The encoder's weights in a checkpoint (prefix removed), the checkpoint's layout and the prefix."""
    if isinstance(checkpoint.get("state_dict"), dict):
        state = checkpoint["state_dict"]
        layout = "vseg" if checkpoint.get("format") == CHECKPOINT_FORMAT else "SCRL release"
    elif checkpoint and all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        state, layout = checkpoint, "state dict"
    else:
        keys = ", ".join(list(checkpoint)[:6]) or "none"
        raise DataError(path, f"has no 'state_dict' and is not a state dict of tensors (top-level keys: {keys})")
    for prefix in ENCODER_PREFIXES:
        if f"{prefix}conv1.weight" in state:
            return strip_prefix(state, prefix), layout, prefix
    raise DataError(
        path,
        f"{method_note(checkpoint)}no ResNet encoder in it: no conv1.weight under any of "
        f"{', '.join(ENCODER_PREFIXES[:-1])}",
    )


def cache_key(checkpoint: Path, *settings: object) -> str:
    """Cached features belong to one checkpoint file (path, size, time) and the settings that shape them."""
    stat = checkpoint.stat()
    text = ":".join(str(part) for part in (checkpoint.resolve(), stat.st_size, stat.st_mtime_ns, *settings))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def load_shot_encoder(path: Path) -> LoadedEncoder:
    """Restore the backbone of a shot encoder from ``path``; DataError listing any backbone weight it lacks.

    A BaSSL checkpoint gives BaSSL's shot encoder (:func:`load_bassl_encoder`).

    The ResNet depth is the checkpoint's ``arch`` when it names one, else read from the blocks in the weights. The
    projection head (``fc``) is not needed and may be absent; BatchNorm's ``num_batches_tracked`` counters are not
    weights and may be absent too. ``image_size``: the training size the checkpoint records
    (:func:`vseg.io.checkpoints.recorded_size`).
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    bassl = bassl_weights(checkpoint, path)
    if bassl is not None:
        return load_bassl_encoder(path, bassl)
    state, layout, prefix = _encoder_state(checkpoint, path)
    try:
        arch = checkpoint["arch"] if checkpoint.get("arch") in ARCHS else arch_from_state_dict(state)
    except ValueError as exc:
        raise DataError(path, str(exc)) from None
    in_channels = state["conv1.weight"].shape[1]
    if in_channels % 3:
        raise DataError(path, f"conv1 takes {in_channels} channels, not a multiple of 3 (RGB keyframes)")
    encoder = ShotEncoder(arch, in_channels, mlp=False)
    own = encoder.state_dict()
    backbone = [name for name in own if not name.startswith("fc.")]
    encoder.load_state_dict(fill_weights(path, own, state, backbone, prefix, "backbone"))
    size = recorded_size(checkpoint, SHOT_SIZE_KEYS)
    return LoadedEncoder(encoder.eval(), arch, in_channels // 3, layout, prefix, size)


def load_bassl_encoder(path: Path, weights: BasslWeights) -> LoadedEncoder:
    """BaSSL's shot encoder from the ``shot_encoder.*`` weights of a BaSSL checkpoint: every tensor of the ResNet must
    be there with its shape, and every ``shot_encoder`` tensor of the file must be one of the ResNet's."""
    state, prefix = weights.shot_encoder, f"{weights.prefix}shot_encoder."
    try:
        arch = arch_from_state_dict(state)
    except ValueError as exc:
        raise DataError(path, f"{prefix}*: {exc}") from None
    encoder = BasslShotEncoder(arch)
    encoder.load_state_dict(fill_all_weights(path, encoder.state_dict(), state, prefix, f"{arch} shot encoder"))
    return LoadedEncoder(encoder.eval(), arch, 3, weights.layout, prefix, view="bassl")


@torch.inference_mode()
def iter_features(
    encoder: ShotEncoder,
    shots: Dataset,
    batch_size: int = 64,
    workers: int = 0,
    device: torch.device = torch.device("cpu"),
    bf16: bool = False,
    channels_last: bool = False,
    volumetric: bool = False,
    collate: Callable[[list], Any] = collate_or_error,
) -> Iterator[np.ndarray]:
    """Pooled backbone features (before the head, eval mode) of ``shots``, a float32 ``batch x D`` array at a time.

    ``channels_last`` on CUDA: channels_last, or channels_last_3d for a ``volumetric`` (3-d convolution) encoder.
    ``collate`` makes the loader's batches: tensors, or the device pipeline's :class:`EncodedShotBatch`, whose views
    are made on ``device`` here.
    """
    cuda = device.type == "cuda"
    layout = torch.contiguous_format
    if cuda and channels_last:
        layout = torch.channels_last_3d if volumetric else torch.channels_last
    encoder.eval().to(device, memory_format=layout)
    loader = DataLoader(
        shots,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=cuda,
        prefetch_factor=4 if workers else None,
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and bf16 else nullcontext()
    for batch in loader:
        if isinstance(batch, DataError):
            raise batch
        try:
            if isinstance(batch, EncodedShotBatch):
                batch = device_eval_views(batch, device)
            with autocast:
                batch = batch.to(device, non_blocking=True)
                if batch.dim() == (5 if volumetric else 4):  # one clip or shot per row (not several views)
                    batch = batch.contiguous(memory_format=layout)
                features = encoder.features(batch)
        except torch.cuda.OutOfMemoryError as exc:
            raise out_of_memory(device, "batch_size", batch_size, "--batch-size N", exc) from None
        yield features.float().cpu().numpy()


def embed_keyframes(
    loaded: LoadedEncoder,
    keyframes: MovieKeyframes,
    config: EmbedConfig,
    device: torch.device,
    image_size: int,
    advance: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``shots x D`` float32 features of every shot of one keyframe folder, as :func:`run_embed` computes them at
    ``image_size`` (:func:`resolve_image_size`), with nothing written (what ``vseg scenes --encoder`` uses).
    ``advance(shots)`` is called after each batch."""
    kind, collate = shots_for(resolve_pipeline(config.pipeline, device), image_size, loaded.view)
    shots = kind(keyframes, image_size)
    workers = default_workers() if config.workers is None else config.workers
    batches = []
    for batch in iter_features(
        loaded.encoder, shots, config.batch_size, min(workers, len(shots) // config.batch_size), device,
        config.bf16, config.channels_last, collate=collate,
    ):  # fmt: skip
        batches.append(batch)
        if advance is not None:
            advance(len(batch))
    return np.concatenate(batches) if batches else np.zeros((0, loaded.encoder.feature_dim), np.float32)


@dataclass
class MoviePlan:
    """One movie to embed: its keyframes, how many shots, and what is known about them."""

    imdb: str
    keyframes: MovieKeyframes
    num_shots: int
    labels: np.ndarray | None = None
    frames: np.ndarray | None = None
    fps: float | None = None


def keyframe_layout(root: Path) -> tuple[MovieNetLayout, Path]:
    """The layout of ``root`` and its keyframe folder: ``root/240P`` when there is one, else ``root`` itself."""
    root = Path(root)
    layout = MovieNetLayout(root)
    return layout, layout.keyframes if layout.keyframes.is_dir() else root


def plan_movie(layout: MovieNetLayout, keyframe_root: Path, imdb: str, keyframes_per_shot: int) -> MoviePlan:
    """Index one movie and check its keyframes, labels and shot table against each other."""
    keyframes = index_movie(keyframe_root / imdb, keyframes_per_shot)
    if keyframes.num_shots == 0:
        raise DataError(keyframes.directory, "no keyframes named shot_SSSS_img_J.jpg")
    if keyframes.missing:
        shot, j = keyframes.missing[0]
        raise DataError(keyframes.path(shot, j), f"keyframe missing ({len(keyframes.missing)} missing in this movie)")
    plan = MoviePlan(imdb, keyframes, keyframes.num_shots)
    if keyframe_root == layout.keyframes and layout.labels.is_dir():
        plan.labels = read_labels(layout.label_file(imdb))
        if len(plan.labels) + 1 != keyframes.num_shots:
            raise DataError(
                layout.label_file(imdb),
                f"has {len(plan.labels)} labels for {len(plan.labels) + 1} shots, but {keyframes.directory} has "
                f"keyframes of {keyframes.num_shots} shots",
            )
        plan.num_shots = len(plan.labels)  # SCRL embeds every shot but the last, which has no label
    table = layout.shot_table_file(imdb)
    if keyframe_root == layout.keyframes and table.is_file():
        plan.frames = read_shot_frames(table, plan.num_shots)
    if layout.meta_file(imdb).is_file():
        plan.fps = read_movie_fps(layout.meta_file(imdb))
    return plan


def warn_missing_fps(layout: MovieNetLayout, plans: list[MoviePlan]) -> None:
    """One warning for every movie whose ``meta/<imdb>.json`` exists but gives no frame rate."""
    missing = sorted({p.imdb for p in plans if p.fps is None and layout.meta_file(p.imdb).is_file()})
    if missing:
        ui.warn(
            f"{len(missing)} movies have no 'fps' or 'video.fps' in meta/<imdb>.json (such as "
            f"{layout.meta_file(missing[0])}): vseg segment times them at data.fps, 24 by default"
        )


def splits_to_embed(root: Path, config: EmbedConfig) -> dict[str, list[str] | None]:
    """``{set name: movie ids}``; ``None`` means every movie folder of the keyframe root."""
    layout, keyframe_root = keyframe_layout(root)
    split_file = resolve_split_file(config.split_file, layout.split_file)
    has_splits = config.split_file is not None or (keyframe_root == layout.keyframes and split_file.is_file())
    if config.split != "all":
        if not has_splits:
            raise DataError(split_file, f"split file not found (needed for --split {config.split})")
        return {config.split: split_movies(split_file, config.split)}
    if not has_splits:
        return {"all": None}
    splits = read_split(split_file)
    return {name: list(splits[name]) for name in REFERENCE_SPLITS if name in splits} or {"all": None}


@dataclass
class SplitResult:
    name: str
    movies: int
    shots: int
    labelled: bool
    files: list[Path]
    resumed_movies: int


@dataclass
class EmbedReport:
    out: Path
    checkpoint: LoadedEncoder
    device: str
    image_size: int  # the size the shots were embedded at
    splits: list[SplitResult] = field(default_factory=list)
    seconds: float = 0.0
    shots_per_second: float = 0.0


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as stream:
            np.save(stream, array)


def run_embed(
    checkpoint: Path, root: Path, out: Path, config: EmbedConfig, loaded: LoadedEncoder | None = None
) -> EmbedReport:
    """Embed every set of ``root`` named by ``config.split``; write ``OUT/<set>.npz`` and, labelled, ``<set>.pkl``.

    ``loaded``: the encoder of ``checkpoint`` (:func:`load_shot_encoder`) when the caller has loaded it already.
    The image size is :func:`resolve_image_size`'s (``config.image_size``, else the encoder's recorded size, else 224).
    """
    started = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    loaded = load_shot_encoder(checkpoint) if loaded is None else loaded
    size = resolve_image_size(config.image_size, loaded)
    layout, keyframe_root = keyframe_layout(root)
    sets = splits_to_embed(root, config)
    plans = {
        name: [
            plan_movie(layout, keyframe_root, imdb, loaded.keyframes_per_shot)
            for imdb in (movies if movies is not None else list_movies(keyframe_root))
        ]
        for name, movies in sets.items()
    }
    warn_missing_fps(layout, [plan for movie_plans in plans.values() for plan in movie_plans])
    device = choose_device(config.device, 0)
    pipeline = resolve_pipeline(config.pipeline, device)
    cache = out / atomic.PARTIAL_DIR / f"embed-{cache_key(checkpoint, size, config.bf16, pipeline)}"
    report = EmbedReport(out, loaded, str(device), size)
    computed, compute_seconds = 0, 0.0
    for name, movie_plans in plans.items():
        if not movie_plans:
            raise DataError(root, f"set '{name}' has no movies")
        split_cache = cache / name
        pending = [p for p in movie_plans if not (split_cache / f"{p.imdb}.npy").is_file()]
        tick = time.perf_counter()
        computed += _embed_movies(loaded, pending, split_cache, config, size, device, name)
        compute_seconds += time.perf_counter() - tick
        embeddings = Embeddings.concat(
            {p.imdb: np.load(split_cache / f"{p.imdb}.npy") for p in movie_plans},
            {p.imdb: p.labels for p in movie_plans} if all(p.labels is not None for p in movie_plans) else None,
            {p.imdb: p.frames for p in movie_plans if p.frames is not None},
            {p.imdb: p.fps for p in movie_plans if p.fps is not None},
        )
        files = [out / f"{name}.npz"]
        write_npz(files[0], embeddings)
        if embeddings.labelled:
            files.append(out / f"{name}.pkl")
            write_scrl_pickle(files[1], embeddings)
        report.splits.append(
            SplitResult(
                name, len(movie_plans), len(embeddings.features), embeddings.labelled, files,
                len(movie_plans) - len(pending),
            )
        )  # fmt: skip
    atomic.discard_dir(cache)  # and OUT/.partial once empty
    report.seconds = time.perf_counter() - started
    report.shots_per_second = computed / compute_seconds if compute_seconds > 0 else 0.0
    return report


def _embed_movies(
    loaded: LoadedEncoder,
    plans: list[MoviePlan],
    cache: Path,
    config: EmbedConfig,
    image_size: int,
    device: torch.device,
    name: str,
) -> int:
    """Embed ``plans`` in one stream of batches (a batch may span movies); cache each movie when it is complete."""
    if not plans:
        return 0
    encoder = loaded.encoder
    kind, collate = shots_for(resolve_pipeline(config.pipeline, device), image_size, loaded.view)
    shots = ConcatDataset([kind(p.keyframes, image_size, p.num_shots) for p in plans])
    workers = default_workers() if config.workers is None else config.workers
    features = iter_features(
        encoder, shots, config.batch_size, workers, device, config.bf16, config.channels_last, collate=collate
    )  # fmt: skip
    pending, done = list(plans), []
    buffered: list[np.ndarray] = []
    with ui.progress(f"embed {name}", len(shots), "shots") as advance:
        for batch in features:
            buffered.append(batch)
            rows = sum(len(b) for b in buffered)
            while pending and rows >= pending[0].num_shots:
                stacked = np.concatenate(buffered)
                movie = pending.pop(0)
                save_npy(cache / f"{movie.imdb}.npy", stacked[: movie.num_shots])
                done.append(movie)
                buffered, rows = [stacked[movie.num_shots :]], rows - movie.num_shots
            advance(len(batch))
    return len(shots)
