"""Many videos: :func:`run_collection` (``vseg scenes INPUT... --out DIR``, files and an index) and
:func:`detect_scenes_many` (values, nothing written), each mapping one video's work over an engine
(:mod:`vseg.scenes.engines`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vseg.config import ScenesConfig, parse_shard
from vseg.errors import DataError
from vseg.io.scene_index import FAILED, IndexRow, write_index
from vseg.parallel import default_workers
from vseg.scenes import collection, engines
from vseg.scenes.detect import Scenes, detect_scenes, load_models, scenes_config


@dataclass
class CollectionReport:
    out: Path
    rows: list[IndexRow]
    files: list[Path]
    seconds: float

    @property
    def failed(self) -> list[IndexRow]:
        return [row for row in self.rows if row.status == FAILED]

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)


def _workers(config: ScenesConfig) -> tuple[int, int]:
    """(videos in parallel, threads per video): ``config.jobs`` (default: the cores) and the cores shared out."""
    cores = default_workers()
    jobs = config.jobs or cores
    return jobs, max(1, cores // jobs)


def index_name(shard: str) -> str:
    index, count = parse_shard(shard)
    return "index" if count == 1 else f"index-{index}-of-{count}"


def run_collection(
    inputs: list[str | Path],
    out: str | Path,
    config: ScenesConfig,
    encoder: Path | None = None,
    segmenter: Path | None = None,
    force: bool = False,
    on_row: Callable[[IndexRow, int], None] | None = None,
) -> CollectionReport:
    """Find the scenes of every video of ``inputs`` (this shard's) into ``out`` and write the index (see
    :mod:`vseg.scenes.collection`). Bad inputs, encoder or segmenter raise before any video is touched; a video
    that fails is a ``failed`` row. ``on_row(row, total)`` is called as each video is done, skipped or failed."""
    started = time.perf_counter()
    out = Path(out)
    videos = collection.shard_of(collection.find_videos(inputs, out), config.shard)
    models = load_models(encoder, segmenter, config.embed.device, config.embed.image_size)
    config = _embedding_at(config, models, encoder)
    jobs_count, threads = _workers(config)
    jobs = collection.make_jobs(videos, out, config, encoder, segmenter, threads)
    rows: dict[Path, IndexRow] = {}

    def record(job: collection.VideoJob, row: IndexRow) -> None:
        rows[job.source] = row
        if on_row is not None:
            on_row(row, len(jobs))

    todo = []
    for job in jobs:
        earlier = None if force else collection.finished_row(job)
        if earlier is None:
            todo.append(job)
        else:
            record(job, earlier)
    if todo:
        out.mkdir(parents=True, exist_ok=True)
    workers = min(jobs_count, max(1, len(todo)))
    if config.engine == "ray" and encoder is not None:
        mapped = engines.ray_scenes(
            collection.prepare_video, _finish, todo, config.ray_address, workers, str(encoder), models.device,
            models.image_size,
        )  # fmt: skip
    elif config.engine == "ray":
        mapped = engines.ray_map(collection.process_video, todo, config.ray_address, workers)
    else:
        if workers == 1:  # in this process: the models loaded above serve
            collection.keep_models(_name(encoder), _name(segmenter), config, models)
        mapped = engines.local_map(collection.process_video, todo, workers, threads)
    for job, row, error in mapped:
        record(job, row if row is not None else collection.failed_row(job, error))
    ordered = [rows[job.source] for job in jobs]
    files = write_index(out, ordered, index_name(config.shard), f"Scenes of {len(ordered)} videos") if jobs else []
    return CollectionReport(out, ordered, files, time.perf_counter() - started)


def _finish(job: collection.VideoJob, found, features) -> IndexRow:
    return collection.finish_video(job, found, features, found.seconds)


def _name(path: Any) -> str | None:
    return None if path is None else str(path)


def _embedding_at(config: ScenesConfig, models, encoder: Any) -> ScenesConfig:
    """``config`` with the size the encoder embeds at written in, so that every worker embeds at it without
    resolving (and warning) again, and the settings key of a video says it."""
    if encoder is None:
        return config
    embed = config.embed.model_copy(update={"image_size": models.image_size})
    return config.model_copy(update={"embed": embed})


@dataclass(frozen=True)
class _VideoValue:
    video: Path
    config: ScenesConfig
    encoder: str | None
    segmenter: str | None
    threads: int


def _detect_value(job: _VideoValue) -> Scenes:
    embed = job.config.embed
    models = collection.worker_models(job.encoder, job.segmenter, embed.device, embed.image_size)
    return detect_scenes(job.video, job.config, models=models, threads=job.threads)


def detect_scenes_many(
    inputs: list[str | Path],
    config: ScenesConfig | str | Path | None = None,
    *,
    jobs: int | None = None,
    engine: str = "local",
    encoder: str | Path | None = None,
    segmenter: str | Path | None = None,
    ray_address: str | None = None,
    **settings: Any,
) -> Iterator[Scenes | DataError]:
    """The scenes of every video of ``inputs`` (files, folders searched recursively, ``@LIST`` files), a
    :class:`Scenes` or, for a video that fails, a DataError naming it, as each finishes (completion order); nothing
    is written. ``jobs`` videos at a time (default: the cores), in worker processes (``engine="local"``) or as Ray
    tasks (``"ray"``, at ``ray_address`` or on a local runtime). ``encoder`` and ``segmenter`` are paths here (each
    worker loads them once); ``config`` and ``settings`` as for :func:`vseg.detect_scenes`."""
    run = {"engine": engine, "jobs": jobs, "ray_address": ray_address}
    cfg = scenes_config(config, **settings, **{key: value for key, value in run.items() if value is not None})
    videos = [video for video, _ in collection.find_videos(inputs)]
    models = load_models(encoder, segmenter, cfg.embed.device, cfg.embed.image_size)
    cfg = _embedding_at(cfg, models, encoder)
    count, threads = _workers(cfg)
    workers = min(count, max(1, len(videos)))
    values = [_VideoValue(video, cfg, _name(encoder), _name(segmenter), threads) for video in videos]
    if cfg.engine == "ray":
        mapped = engines.ray_map(_detect_value, values, cfg.ray_address, workers)
    else:
        if workers == 1:
            collection.keep_models(_name(encoder), _name(segmenter), cfg, models)
        mapped = engines.local_map(_detect_value, values, workers, threads)
    for job, result, error in mapped:
        if error is None:
            yield result
        else:
            yield error if isinstance(error, DataError) else DataError(job.video, f"{type(error).__name__}: {error}")
