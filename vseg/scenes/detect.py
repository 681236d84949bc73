"""The scenes of one video, computed and returned as a value (:class:`Scenes`); writing them is :mod:`.write`.

Three steps, each a function a cluster engine can run on its own (:mod:`.engines`)::

    detect_shots    decode the video once: shot cuts (vseg.prep.shots.shot_video), the keyframes' colour histograms
                    and report thumbnails in memory; keyframe JPEGs only where asked (the MovieNet layout) or where
                    an encoder needs them (a temporary folder)
    shot_features   the histograms (numpy only), or an encoder's features of the keyframes (torch, imported here)
    find_scenes     boundary probabilities (a segmenter, or the training-free method of the config), then scenes

:func:`detect_scenes` runs the three. Without an encoder and a segmenter nothing here imports torch.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from vseg.config import ScenesConfig, load_config
from vseg.errors import DataError
from vseg.eval.histogram import FEATURE_DIM as HISTOGRAM_DIM
from vseg.eval.histogram import histogram_feature_matrix, image_histogram
from vseg.eval.training_free import training_free_boundaries
from vseg.io import atomic
from vseg.io.embeddings import Embeddings
from vseg.io.movienet import MovieKeyframes, MovieNetLayout, index_movie
from vseg.io.predictions import Scene, scenes_from_probabilities
from vseg.io.scene_report import thumbnail_jpeg
from vseg.io.video import read_frame_times, stream_info
from vseg.prep.clips import video_id as file_video_id
from vseg.prep.shots import JpegKeyframes, ShotJob, VideoShots, ends_early_warning, finish_video, shot_meta, shot_video

if TYPE_CHECKING:
    from vseg.eval.embed import LoadedEncoder

THUMB_HEIGHT = 72  # the report's thumbnails (vseg.io.scene_report.write_report's thumb_height)
HISTOGRAMS = "colour histograms (no --encoder given; see vseg.eval.histogram)"

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as each stage advances (``shots`` in frames, ``features`` in shots,
``scenes`` and ``done`` once)."""


# -------------------------------------------------------------------------------------------------- the models


@dataclass
class SceneModels:
    """The models ``detect_scenes`` runs, loaded once (a collection shares them between its videos)."""

    encoder: LoadedEncoder | None = None
    encoder_name: str = HISTOGRAMS
    segmenter: Any = None  # (BoundaryBiLSTM, SegmentConfig) of vseg.eval.segment.load_model
    segmenter_name: str = ""
    device: str = "auto"
    image_size: int = 224  # what the encoder embeds at (vseg.eval.embed.resolve_image_size)

    @property
    def feature_dim(self) -> int:
        return self.encoder.encoder.feature_dim if self.encoder is not None else HISTOGRAM_DIM


def load_models(
    encoder: Any = None, segmenter: Any = None, device: str = "auto", image_size: int | None = None
) -> SceneModels:
    """The encoder and segmenter, each a path (loaded here, DataError naming a bad file), an object already loaded
    (a ``LoadedEncoder``; a ``(model, SegmentConfig)`` pair) or None; DataError when the segmenter takes features of
    another width than the shots get. The encoder embeds at ``image_size``, or unset at the size it was trained at
    (224 when its checkpoint does not say). torch is imported only when one of them is given."""
    models = SceneModels(device=device)
    if encoder is not None:
        from vseg.eval.embed import load_shot_encoder, resolve_image_size

        models.encoder = load_shot_encoder(Path(encoder)) if isinstance(encoder, str | Path) else encoder
        models.image_size = resolve_image_size(image_size, models.encoder)
        name = f"encoder {encoder}" if isinstance(encoder, str | Path) else "encoder"
        models.encoder_name = f"{name} ({models.encoder.arch})"
    if segmenter is not None:
        from vseg.eval.segment import load_model

        models.segmenter = load_model(Path(segmenter)) if isinstance(segmenter, str | Path) else segmenter
        models.segmenter_name = f"segmenter {segmenter}" if isinstance(segmenter, str | Path) else "segmenter"
        takes = models.segmenter[0].input_dim
        if takes != models.feature_dim:
            where = segmenter if isinstance(segmenter, str | Path) else "segmenter"
            raise DataError(
                where, f"takes {takes}-d features, the shots have {models.feature_dim}-d ({models.encoder_name})"
            )
    if encoder is not None or segmenter is not None:
        from vseg.runtime import choose_device

        models.device = str(choose_device(device, 0))  # 'cuda' without a GPU is refused here, before any video
    return models


# --------------------------------------------------------------------------------------------------- the shots


class _ShotKeyframes:
    """The keyframe sink of the scenes path: each keyframe's colour histogram, the middle keyframe's thumbnail, and
    (when asked) the JPEG file, without keeping a frame."""

    def __init__(self, jpegs: JpegKeyframes | None, histograms: bool):
        self.jpegs, self.histograms = jpegs, histograms
        self.histogram: dict[tuple[int, int], np.ndarray] = {}
        self.thumbnails: dict[int, bytes] = {}
        self.poster = b""  # the video's first frame: the report's player shows it before it plays

    def __call__(self, shot: int, j: int, frame: np.ndarray) -> None:
        image = Image.fromarray(frame)
        if shot == 0 and j == 0:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            self.poster = buffer.getvalue()
        if self.histograms:
            self.histogram[(shot, j)] = image_histogram(image)
        if j == 1:  # the middle frame: what the report shows
            self.thumbnails[shot] = thumbnail_jpeg(image, THUMB_HEIGHT)
        if self.jpegs is not None:
            self.jpegs(shot, j, frame)


@dataclass
class FoundShots:
    """The shots of one video (:func:`detect_shots`)."""

    video: Path
    job: ShotJob
    shots: VideoShots
    histograms: np.ndarray | None  # shots x 128: each shot's mean keyframe histogram
    thumbnails: list[bytes]
    keyframes: MovieKeyframes | None  # the keyframe files, where they were written
    poster: bytes = b""  # the first frame, a JPEG at the keyframe size
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def video_id(self) -> str:
        return self.job.video_id


def detect_shots(
    video: Path,
    config: ScenesConfig,
    keyframes: Path | None = None,
    histograms: bool = True,
    threads: int = 0,
    progress: Progress | None = None,
) -> FoundShots:
    """Decode ``video`` once and cut it into shots with ``config.shots``'s detector. With ``keyframes`` (a folder)
    the keyframes, shot table and meta file are written there in the MovieNet layout, as ``vseg prep shots`` writes
    them (the keyframes built aside and moved into place when complete). DataError naming the video when it cannot
    be read."""
    started = time.perf_counter()
    video = Path(video)
    if not video.is_file():
        raise DataError(video, "no such video file")
    video_id = file_video_id(video)  # any file name will do: the id names the keyframe folder, never a clip
    times = read_frame_times(video)  # one pass over the packets serves the header's frame count and the shots
    info = stream_info(video, times)
    layout = MovieNetLayout(keyframes) if keyframes is not None else None
    staging = atomic.staging_dir(layout.keyframes / video_id) if layout is not None else None
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)  # an unfinished earlier attempt
    job = ShotJob(video_id, str(video), str(staging or ""), info, config.shots, threads)
    sink = _ShotKeyframes(JpegKeyframes(staging, config.shots.jpeg_quality) if staging else None, histograms)
    decoded = 0

    def advance(frames: int) -> None:
        nonlocal decoded
        decoded += frames
        progress("shots", decoded, info.frames)

    try:
        shots = shot_video(job, advance if progress else None, sink, times)
        if layout is not None:
            shutil.rmtree(layout.keyframes / video_id, ignore_errors=True)
            finish_video(layout, job, shots, staging)
    except BaseException:
        if staging is not None:
            atomic.discard_dir(staging)
        raise
    count = len(shots.shots)
    found = FoundShots(
        video, job, shots,
        np.stack([np.mean([sink.histogram[(s, j)] for j in range(3)], axis=0) for s in range(count)])
        if histograms else None,
        [sink.thumbnails[s] for s in range(count)],
        index_movie(layout.keyframes / video_id) if layout is not None else None,
        sink.poster,
    )  # fmt: skip
    if shots.ends_early:
        found.warnings.append(ends_early_warning(job, shots))
    found.seconds = time.perf_counter() - started
    return found


# ------------------------------------------------------------------------------------------------- the features


def shot_features(found: FoundShots, models: SceneModels, config: ScenesConfig, progress: Progress | None = None):
    """``shots x D`` float32 features of the shots: the encoder's (from the keyframe files; torch) or the colour
    histograms' (:mod:`vseg.eval.histogram`)."""
    if models.encoder is None:
        if found.histograms is None:
            raise ValueError("detect_shots ran without histograms and there is no encoder")
        return histogram_feature_matrix(found.histograms)
    if found.keyframes is None:
        raise ValueError("an encoder needs the keyframe files: detect_shots(keyframes=FOLDER)")
    import torch

    from vseg.eval.embed import embed_keyframes

    done = 0

    def advance(shots: int) -> None:
        nonlocal done
        done += shots
        progress("features", done, found.keyframes.num_shots)

    device = torch.device(models.device)
    return embed_keyframes(
        models.encoder, found.keyframes, config.embed, device, models.image_size, advance if progress else None
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------- the scenes


@dataclass
class Scenes:
    """The scenes of one video, and what they were found from: what :func:`detect_scenes` returns.

    ``scenes`` tile the shots (each a :class:`vseg.io.predictions.Scene` with its first and last shot and frame,
    and its start and end time in seconds, from the video's presentation timestamps); ``prob`` is every shot's
    boundary probability (a shot whose probability is above ``threshold`` ends its scene), ``features`` the shot
    features they came from. Iterating over a ``Scenes`` gives its scenes.
    """

    video: Path
    video_id: str
    fps: float
    frames: int
    shot_frames: np.ndarray  # shots x 2: first and last frame (inclusive)
    shot_times: list[tuple[Fraction, Fraction]]  # each shot's first and end presentation time, in seconds
    prob: np.ndarray
    threshold: float
    scenes: list[Scene]
    features: np.ndarray
    features_name: str
    scoring: str
    config: ScenesConfig
    thumbnails: list[bytes]  # each shot's middle keyframe, a JPEG THUMB_HEIGHT pixels high
    meta: dict  # meta/<id>.json of the shots (vseg.prep.shots.shot_meta)
    keyframes: MovieKeyframes | None = None
    poster: bytes = b""  # the first frame, a JPEG at the keyframe size
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    truth: list[int] | None = None  # the shots that end a true scene, when known (the demo)

    def __len__(self) -> int:
        return len(self.scenes)

    def __iter__(self) -> Iterator[Scene]:
        return iter(self.scenes)

    @property
    def shots(self) -> int:
        return len(self.shot_frames)

    def rows(self) -> list[dict[str, object]]:
        """The scenes as the rows of scenes.json."""
        return [scene.as_row() for scene in self.scenes]


def find_scenes(
    found: FoundShots,
    features: np.ndarray,
    models: SceneModels,
    config: ScenesConfig,
    truth_frames: Sequence[int] | None = None,
    features_name: str | None = None,
) -> Scenes:
    """Score every shot's boundary (the segmenter, or ``config.method``) and make the scenes. ``features_name`` says
    what the features are (default: ``models.encoder_name``)."""
    started = time.perf_counter()
    shots = found.shots
    table = np.asarray(shots.shots, dtype=np.int64)
    fps = found.job.info.fps
    if models.segmenter is not None:
        import torch

        from vseg.eval.segment import predict_probabilities

        model, segment_config = models.segmenter
        device = torch.device(models.device)
        embeddings = Embeddings.concat({found.video_id: features}, None, {found.video_id: table})
        prob = predict_probabilities(model.to(device), embeddings, segment_config.data.seq_len, device)
        prob, own_threshold, scoring = prob[found.video_id], segment_config.train.threshold, models.segmenter_name
    else:
        (prob, scoring), own_threshold = training_free_boundaries(features, config), 0.5
    threshold = own_threshold if config.threshold is None else config.threshold
    base = shots.times.time_base
    times = [(Fraction(first) * base, Fraction(end) * base) for first, end in shots.shot_pts()]
    scenes = scenes_from_probabilities(
        found.video_id, prob, threshold, table, fps, config.min_scene_shots, times
    )  # fmt: skip
    warnings = [*found.warnings, *_fewer_scenes(found, scenes, models, config)]
    return Scenes(
        found.video, found.video_id, fps, len(shots.times), table, times, np.asarray(prob, dtype=np.float64),
        threshold, scenes, features, features_name or models.encoder_name, scoring, config, found.thumbnails,
        shot_meta(found.job, shots), found.keyframes, found.poster, warnings,
        {"shots": found.seconds, "scenes": time.perf_counter() - started},
        None if truth_frames is None else true_boundaries(table, truth_frames),
    )  # fmt: skip


def _fewer_scenes(found: FoundShots, scenes: list[Scene], models: SceneModels, config: ScenesConfig) -> list[str]:
    """A warning when optimal sequential grouping was asked for a number of scenes and found fewer."""
    asked = config.osg.scenes if models.segmenter is None and config.method == "osg" else None
    if not asked or len(scenes) == asked:
        return []
    shots, least = len(found.shots.shots), config.min_scene_shots
    why = (
        f": {shots} shots make at most {shots // least} scenes of at least {least} shots (--min-scene-shots)"
        if asked > shots // least else ""
    )  # fmt: skip
    return [f"{found.video}: {asked} scenes asked for (--scenes), {len(scenes)} found{why}"]


def true_boundaries(table: np.ndarray, truth_frames: Sequence[int]) -> list[int]:
    """The shots that end a true scene: for each true scene's first frame, the detected shot whose end is nearest
    to the frame before it (a shot detector may miss or move a cut by a few frames)."""
    ends = np.asarray(table)[:-1, 1].astype(np.int64)  # the last shot ends the video, not a scene
    if len(ends) == 0:
        return []
    return sorted({int(np.argmin(np.abs(ends + 1 - frame))) for frame in truth_frames})


def scenes_config(config: ScenesConfig | str | Path | None = None, **settings: Any) -> ScenesConfig:
    """A :class:`ScenesConfig` from a config object, a YAML file or preset name (None: the defaults), with dotted
    ``settings`` on top (``{"osg.scenes": 12}``, or ``osg__scenes=12`` as keywords); ConfigError naming a bad key."""
    from vseg.presets import resolve_config

    overrides = {key.replace("__", "."): value for key, value in settings.items()}
    if isinstance(config, ScenesConfig):
        return load_config(ScenesConfig, None, (), {**config.model_dump(mode="json"), **overrides}) if overrides else config
    return load_config(ScenesConfig, resolve_config(Path(config)) if config is not None else None, (), overrides)


@contextmanager
def _keyframe_folder(asked: Path | None, needed: bool) -> Iterator[Path | None]:
    """Where the keyframe files go: the folder asked for; a temporary one, removed afterwards, when an encoder needs
    them and none was asked for; else none at all."""
    if asked is not None or not needed:
        yield asked
        return
    folder = Path(tempfile.mkdtemp(prefix="vseg-keyframes-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def detect_scenes(
    video: str | Path,
    config: ScenesConfig | str | Path | None = None,
    *,
    encoder: Any = None,
    segmenter: Any = None,
    keyframes: str | Path | None = None,
    progress: Progress | None = None,
    truth_frames: Sequence[int] | None = None,
    models: SceneModels | None = None,
    threads: int = 0,
    **settings: Any,
) -> Scenes:
    """The scenes of ``video``, computed and returned; nothing is written unless ``keyframes`` names a folder for
    the keyframes (MovieNet layout). Write them with :func:`vseg.write_scenes`.

    ``config``: a :class:`ScenesConfig`, a YAML file or a preset name; ``settings``: config keys on top, dotted
    keys as ``osg__scenes=12`` or ``**{"osg.scenes": 12}``. ``encoder``: a shot encoder checkpoint path or a loaded
    ``LoadedEncoder`` (None: colour histograms, and torch is never imported); ``segmenter``: a boundary model path or
    a loaded ``(model, SegmentConfig)`` (None: ``config.method``, training-free). ``progress(stage, done, total)`` is
    called as the stages advance. ``truth_frames``: the first frame of every true scene after the first, when known,
    drawn beside the found ones in the report. ``models``: :func:`load_models`'s result, to load them once for many
    videos (then ``encoder`` and ``segmenter`` are ignored). ``threads``: decoder threads (0: one per core).
    DataError names a video that cannot be read.
    """
    cfg = scenes_config(config, **settings)
    if models is None:
        models = load_models(encoder, segmenter, cfg.embed.device, cfg.embed.image_size)
    with _keyframe_folder(Path(keyframes) if keyframes else None, models.encoder is not None) as folder:
        found = detect_shots(Path(video), cfg, folder, models.encoder is None, threads, progress)
        started = time.perf_counter()
        features = shot_features(found, models, cfg, progress)
        feature_seconds = time.perf_counter() - started
        result = find_scenes(found, features, models, cfg, truth_frames)
    if keyframes is None:
        result.keyframes = None  # a temporary folder, gone now
    result.seconds = {"shots": result.seconds["shots"], "features": feature_seconds, "scenes": result.seconds["scenes"]}
    if progress is not None:
        progress("done", 1, 1)
    return result
