"""``vseg embed --clips LIST``: a frozen clip encoder (HiCo's S3D-G) turns every video of a list into an embedding.

The list is the UCF101/HMDB51 format, ``relative/path [label]`` per line. Each video is read as HiCo's test views
(:mod:`vseg.data.video_views`: 10 temporal views x 1 centre crop by default) and its embedding is the mean of the
backbone's pooled 1024-d features over the views, in eval mode. Output: ``OUT/<list stem>.npz``, the same safe
format as shot embeddings (:mod:`vseg.io.embeddings`) with one row per video: ``movies`` are the listed paths and
``labels`` the class indices when the list has them.

Checkpoints: a ``vseg pretrain hico`` run's (the ``backbone.*`` weights of its state dict), or a bare S3D-G state
dict. Whether the S3D-G has self-gating is read from the weights. Every backbone weight must be present. The crop
size is the one the checkpoint records (a vseg run's ``data.crop_size``), unless ``clips.size`` is given; 112 (HiCo's)
when it records none. Finished
chunks of videos are cached under ``OUT/.partial/``, so an interrupted run resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from vseg import ui
from vseg.config import EmbedConfig
from vseg.data.video_views import VideoViews
from vseg.errors import DataError
from vseg.eval.embed import cache_key, iter_features, resolve_image_size, save_npy
from vseg.io import atomic
from vseg.io.checkpoints import fill_weights, read_s3dg_weights
from vseg.io.cliplist import read_labelled_list
from vseg.io.embeddings import Embeddings, write_npz
from vseg.models.s3dg import S3DG
from vseg.parallel import default_workers
from vseg.runtime import choose_device

CHUNK = 256  # videos per cached chunk
REFERENCE_CLIP_SIZE = 112  # HiCo's test crop (DATA.TEST_CROP_SIZE)


class ViewAveragedEncoder(nn.Module):
    """``B x V x 3 x T x H x W`` views -> ``B x D``: the backbone's features averaged over the V views."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def features(self, views: torch.Tensor) -> torch.Tensor:
        b, v = views.shape[:2]
        return self.backbone(views.flatten(0, 1)).view(b, v, -1).mean(1)


@dataclass
class LoadedClipEncoder:
    encoder: ViewAveragedEncoder
    gating: bool
    layout: str  # "vseg hico" or "state dict"
    image_size: int | None = None  # the crop size it was trained at, when the checkpoint records it


def load_clip_encoder(path: Path) -> LoadedClipEncoder:
    """The S3D-G backbone of a HiCo checkpoint or a bare S3D-G state dict; DataError listing missing weights."""
    found = read_s3dg_weights(path)
    backbone = S3DG(gating=found.gating)
    own = backbone.state_dict()
    backbone.load_state_dict(fill_weights(Path(path), own, found.weights, list(own), found.prefix, "S3D-G"))
    return LoadedClipEncoder(ViewAveragedEncoder(backbone).eval(), found.gating, found.layout, found.image_size)


@dataclass
class ClipEmbedReport:
    out: Path
    file: Path
    videos: int
    labelled: bool
    resumed: int
    checkpoint: LoadedClipEncoder
    device: str
    image_size: int  # the side of the views' crops
    seconds: float = 0.0
    videos_per_second: float = 0.0


def run_clip_embed(
    checkpoint: Path, listing: Path, root: Path | None, out: Path, config: EmbedConfig
) -> ClipEmbedReport:
    """Embed every video of ``listing`` (paths relative to ``root``, else to the list's folder) into OUT/<stem>.npz."""
    started = time.perf_counter()
    checkpoint, listing, out = Path(checkpoint), Path(listing), Path(out)
    loaded = load_clip_encoder(checkpoint)
    entries = read_labelled_list(listing, root)
    if not entries:
        raise DataError(listing, "the list holds no videos")
    missing = [path for path, _ in entries if not Path(path).is_file()]
    if missing:
        raise DataError(missing[0], f"video listed in {listing.name} not found ({len(missing)} missing in all)")
    views = config.clips
    size = resolve_image_size(views.size, loaded, reference=REFERENCE_CLIP_SIZE)
    dataset = VideoViews(
        [path for path, _ in entries],
        frames=views.frames,
        sampling_rate=views.sampling_rate,
        target_fps=views.target_fps,
        views=views.views,
        size=size,
        crop_fraction=views.crop_fraction,
        antialias=views.antialias,
    )
    device = choose_device(config.device, 0)
    workers = default_workers() if config.workers is None else config.workers
    key = cache_key(checkpoint, listing.resolve(), config.clips, size, config.bf16)
    cache = out / atomic.PARTIAL_DIR / f"clips-{key}"
    chunks = [range(i, min(i + CHUNK, len(dataset))) for i in range(0, len(dataset), CHUNK)]
    pending = [c for c in chunks if not (cache / f"{c.start:08d}.npy").is_file()]
    todo = sum(len(c) for c in pending)
    tick = time.perf_counter()
    with ui.progress(f"embed {listing.stem}", todo, "videos") as advance:
        for chunk in pending:
            rows = []
            for batch in iter_features(
                loaded.encoder, Subset(dataset, chunk), config.batch_size, workers, device, config.bf16,
                config.channels_last, volumetric=True,
            ):  # fmt: skip
                rows.append(batch)
                advance(len(batch))
            save_npy(cache / f"{chunk.start:08d}.npy", np.concatenate(rows))
    compute = time.perf_counter() - tick
    features = np.concatenate([np.load(cache / f"{c.start:08d}.npy") for c in chunks])
    labels = [label for _, label in entries]
    labelled = all(label is not None for label in labels)
    base = Path(root) if root is not None else listing.parent
    names = [str(Path(path).relative_to(base)) if Path(path).is_relative_to(base) else str(path) for path, _ in entries]
    embeddings = Embeddings(
        names, np.arange(len(names) + 1), features, np.array(labels, np.int64) if labelled else None
    )
    file = out / f"{listing.stem}.npz"
    write_npz(file, embeddings)
    atomic.discard_dir(cache)
    report = ClipEmbedReport(out, file, len(entries), labelled, len(entries) - todo, loaded, str(device), size)
    report.seconds = time.perf_counter() - started
    report.videos_per_second = todo / compute if compute > 0 and todo else 0.0
    return report
