"""The ``vseg`` command line: parse options, build the stage's config, call the stage, print a summary.

No logic lives here that a test would need: every command calls one stage function that can be called
from Python with the same arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from vseg import __version__, ui
from vseg.config import (
    ClipsConfig,
    ConfigT,
    EmbedConfig,
    ProbeConfig,
    PuzzlesConfig,
    SegmentDataConfig,
    ShotsConfig,
    StageConfig,
    SynthConfig,
    load_config,
)
from vseg.errors import VsegError
from vseg.presets import resolve_config


class _App(TyperGroup):
    """The root group: user errors become one red line and exit code 2 (a traceback with ``--debug``)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VsegError as exc:
            if ui.settings.debug:
                raise
            ui.error(str(exc))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            ui.stderr.print("[yellow]interrupted[/yellow]: finished work is kept; run the same command to resume")
            raise typer.Exit(130) from None


HELP = """vseg: self-supervised video representation learning (SCRL, HiCo) and video scene segmentation.

Stages talk through files: prep (keyframes, puzzles, clips) -> pretrain -> embed -> segment.
Every stage takes --config FILE (or a preset name such as synth/cpu_tiny) and --set key=value."""

app = typer.Typer(cls=_App, help=HELP, no_args_is_help=True, pretty_exceptions_show_locals=False, add_completion=False)
prep_app = typer.Typer(no_args_is_help=True, help="Turn files into files: synthetic data, puzzles, dataset checks.")
pretrain_app = typer.Typer(no_args_is_help=True, help="Self-supervised pre-training (torchrun -m vseg pretrain ...).")
segment_app = typer.Typer(help="Train and evaluate the BiLSTM scene-boundary model on shot embeddings.")
app.add_typer(prep_app, name="prep")
app.add_typer(pretrain_app, name="pretrain")
app.add_typer(segment_app, name="segment")

CONFIG_HELP = "YAML config file, or the name of a preset shipped with vseg, such as synth/cpu_tiny."
SET_HELP = "Override one config key, e.g. --set jpeg_quality=90 (repeatable; applied after --config)."


def _version(value: bool) -> None:
    if value:
        ui.stdout.print(f"vseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print errors only: no progress bars or summaries."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    ui.settings.debug = debug
    ui.settings.quiet = quiet


def _option(model: type[StageConfig], name: str, *flags: str, **kwargs: Any) -> Any:
    """A CLI option whose default and help come from the config model's field (one source of truth)."""
    field = model.model_fields[name]
    return typer.Option(field.default, *flags, help=f"{field.description[0].upper()}{field.description[1:]}.", **kwargs)


def _config(
    ctx: typer.Context, model: type[StageConfig], config: Path | None, overrides: list[str] | None, **options: Any
) -> Any:
    """The stage config: defaults < --config < --set < options given explicitly on the command line."""
    explicit = {k: v for k, v in options.items() if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
    return load_config(model, resolve_config(config), overrides or (), explicit)


# --------------------------------------------------------------------------------------------- prep


@prep_app.command("synth")
def prep_synth(
    ctx: typer.Context,
    out: Path = typer.Argument(..., help="Output root; gets 240P/, label318/, shot_movie318/ and meta/."),
    movies: int = _option(SynthConfig, "movies", "--movies"),
    shots_per_movie: int = _option(SynthConfig, "shots_per_movie", "--shots-per-movie"),
    seed: int = _option(SynthConfig, "seed", "--seed"),
    workers: int | None = _option(SynthConfig, "workers", "--workers"),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    overrides: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Write a synthetic MovieNet-layout dataset with known scenes (for tests and the demo)."""
    from vseg.prep.synth import make_synth

    cfg = _config(
        ctx, SynthConfig, config, overrides, movies=movies, shots_per_movie=shots_per_movie, seed=seed, workers=workers
    )
    report = make_synth(out, cfg)
    ui.summary(
        f"vseg prep synth -> {report.out}",
        [
            ("movies", report.movies),
            ("shots", report.shots),
            ("scenes", report.scenes),
            ("movies rendered / already there", f"{report.rendered} / {report.skipped}"),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


@prep_app.command("puzzles")
def prep_puzzles(
    ctx: typer.Context,
    keyframe_root: Path = typer.Argument(
        ..., help="Keyframe folder in MovieNet layout: <root>/<imdb>/shot_SSSS_img_J.jpg."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: <out>/<imdb>/<pppp>.jpg and manifest.json."),
    split_file: Path | None = _option(PuzzlesConfig, "split_file", "--split-file"),
    split: str | None = _option(PuzzlesConfig, "split", "--split"),
    workers: int | None = _option(PuzzlesConfig, "workers", "--workers", "-j"),
    strict: bool = _option(PuzzlesConfig, "strict", "--strict"),
    resize: str | None = _option(PuzzlesConfig, "resize", "--resize", metavar="WxH"),
    shard: str = _option(PuzzlesConfig, "shard", "--shard", metavar="I/N"),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    overrides: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Stitch each run of 16 shots x 3 keyframes into one SCRL puzzle JPEG (resumable, parallel)."""
    from vseg.prep.puzzles import make_puzzles

    cfg = _config(
        ctx,
        PuzzlesConfig,
        config,
        overrides,
        split_file=split_file,
        split=split,
        workers=workers,
        strict=strict,
        resize=resize,
        shard=shard,
    )
    report = make_puzzles(keyframe_root, out, cfg)
    ui.summary(
        f"vseg prep puzzles -> {report.out}",
        [
            ("movies from", report.source),
            ("movies", report.movies),
            ("puzzles written", report.written),
            ("puzzles already there (skipped)", report.skipped),
            ("shots in puzzles", report.shots),
            ("tail shots dropped (shots % 16)", report.dropped_shots),
            ("movies too short for one puzzle", len(report.too_short)),
            ("movies failed", len(report.failed)),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )
    _exit_on_failures(report.failed, "movies were left out; fix them and run again (finished puzzles are kept)")


def _exit_on_failures(failed: dict[str, VsegError], advice: str) -> None:
    if failed:
        for error in failed.values():
            ui.error(str(error))
        ui.error(f"{len(failed)} {advice}")
        raise typer.Exit(1)


@prep_app.command("clips")
def prep_clips(
    ctx: typer.Context,
    inputs: list[Path] = typer.Argument(
        ...,
        help="Long videos, or folders of them (their video files, sorted by name); the id is the file name "
        "without extension and without a leading v_.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: training/v_<id>_<startms>_<endms>.mp4 and training.txt."
    ),
    clip_seconds: float = _option(ClipsConfig, "clip_seconds", "--clip-seconds"),
    stream_copy: bool = _option(ClipsConfig, "stream_copy", "--stream-copy/--re-encode"),
    crf: int = _option(ClipsConfig, "crf", "--crf"),
    preset: str = _option(ClipsConfig, "preset", "--preset"),
    verify: bool = _option(ClipsConfig, "verify", "--verify/--no-verify"),
    workers: int | None = _option(ClipsConfig, "workers", "--workers", "-j"),
    shard: str = _option(ClipsConfig, "shard", "--shard", metavar="I/N"),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    overrides: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """Cut long untrimmed videos into HiCo's 5-second clip files and write training.txt (resumable, parallel)."""
    from vseg.prep.clips import make_clips

    cfg = _config(
        ctx,
        ClipsConfig,
        config,
        overrides,
        clip_seconds=clip_seconds,
        stream_copy=stream_copy,
        crf=crf,
        preset=preset,
        verify=verify,
        workers=workers,
        shard=shard,
    )
    report = make_clips(inputs, out, cfg)
    ui.summary(
        f"vseg prep clips -> {report.out}",
        [
            ("videos", report.videos),
            ("videos listed", f"{report.videos - len(report.failed)} in {report.list_file.name}"),
            ("clips", report.clips),
            ("clips written", report.written),
            ("clips already there (skipped)", report.skipped),
            ("seconds of video", f"{report.video_seconds:,.1f}"),
            ("videos failed", len(report.failed)),
            ("time", f"{report.seconds:.1f} s"),
            ("rate (video seconds cut per second)", f"{report.rate:,.1f}"),
        ],
    )
    _exit_on_failures(report.failed, "videos were left out; fix them and run again (finished clips are kept)")


@prep_app.command("shots")
def prep_shots(
    ctx: typer.Context,
    inputs: list[Path] = typer.Argument(
        ...,
        help="Videos, or folders of them (their video files, sorted by name); the id is the file name without "
        "extension and without a leading v_.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="MovieNet-layout root: 240P/<id>/shot_SSSS_img_J.jpg, shot_txt/<id>.txt, meta/<id>.json.",
    ),
    detector: str = _option(ShotsConfig, "detector", "--detector"),
    threshold: float = _option(ShotsConfig, "threshold", "--threshold"),
    adaptive_threshold: float = _option(ShotsConfig, "adaptive_threshold", "--adaptive-threshold"),
    transnet_threshold: float = _option(ShotsConfig, "transnet_threshold", "--transnet-threshold"),
    min_shot_frames: int = _option(ShotsConfig, "min_shot_frames", "--min-shot-frames"),
    workers: int | None = _option(ShotsConfig, "workers", "--workers", "-j"),
    shard: str = _option(ShotsConfig, "shard", "--shard", metavar="I/N"),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override one config key, e.g. --set keyframe_height=360 (repeatable)."
    ),
) -> None:
    """Detect the shots of raw videos and write 3 keyframes per shot in the MovieNet layout (resumable, parallel)."""
    from vseg.prep.shots import make_shots

    cfg = _config(
        ctx,
        ShotsConfig,
        config,
        overrides,
        detector=detector,
        threshold=threshold,
        adaptive_threshold=adaptive_threshold,
        transnet_threshold=transnet_threshold,
        min_shot_frames=min_shot_frames,
        workers=workers,
        shard=shard,
    )
    report = make_shots(inputs, out, cfg)
    ui.summary(
        f"vseg prep shots -> {report.out}",
        [
            ("videos", report.videos),
            ("videos done / already there", f"{report.done} / {report.skipped}"),
            ("shots found", report.shots),
            ("frames decoded", report.frames),
            ("detector", cfg.detector),
            ("videos failed", len(report.failed)),
            ("time", f"{report.seconds:.1f} s"),
            ("rate", f"{report.frames_per_second:,.0f} frames/s"),
        ],
    )
    _exit_on_failures(report.failed, "videos were left out; fix them and run again (finished videos are kept)")


@prep_app.command("check")
def prep_check(
    root: Path = typer.Argument(
        ..., help="MovieNet-layout root holding 240P/ and, optionally, label318/, shot_movie318/, meta/."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Check only this split of the split file \\[default: every movie of the split file]."
    ),
    split_file: Path | None = typer.Option(
        None,
        "--split-file",
        help="Split JSON, or movie1K for MovieNet's 1,100-movie split (built in) \\[default: ROOT/meta/split318.json].",
    ),
) -> None:
    """Index a MovieNet-layout root and list every problem: missing keyframes, label/shot mismatches."""
    from vseg.io.movienet import MovieNetLayout, check_dataset

    report = check_dataset(MovieNetLayout(root), split, split_file)
    ui.info(f"movies: {report.source}")
    for problem in report.problems:
        ui.error(str(problem), label="problem")
    ui.summary(
        f"vseg prep check {root}",
        [
            ("movies from", report.source),
            ("movies indexed", len(report.movies)),
            ("shots", report.shots),
            ("movies with valid labels", report.labelled),
            ("problems", len(report.problems)),
        ],
    )
    if report.problems:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------- pretrain

RESUME_HELP = (
    "'auto': continue from OUT/checkpoints/last.pth when there is one; or a checkpoint file "
    "\\[default: start fresh, and refuse an OUT that already holds a run]."
)
RUN_FOLDER_HELP = "Run folder: config.yaml, metrics.jsonl, checkpoints/."


def _pretrain_config(
    model: type[ConfigT], config: Path | None, overrides: list[str] | None, data: Path | None, epochs: int | None
) -> ConfigT:
    """A pre-training method's config: defaults < --config < --set < --data (data.root) and --epochs."""
    explicit = {key: value for key, value in (("data.root", data), ("train.epochs", epochs)) if value is not None}
    return load_config(model, resolve_config(config), overrides or (), explicit)


@pretrain_app.command("scrl")
def pretrain_scrl(
    config: Path | None = typer.Option(
        None, "--config", "-c", help=f"{CONFIG_HELP} The paper's settings: scrl/with_imagenet, scrl/without_imagenet."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Puzzle folder (vseg prep puzzles) or keyframe root (240P/); sets data.root \\[default: from the config].",
    ),
    out: Path = typer.Option(Path("runs/scrl"), "--out", "-o", help=RUN_FOLDER_HELP),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        min=1,
        help="Epochs to train; sets train.epochs \\[default: from the config, 100 in the paper].",
    ),
    resume: str | None = typer.Option(None, "--resume", help=RESUME_HELP),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override one config key, e.g. --set optim.lr=0.06."
    ),
) -> None:
    """SCRL pre-training of the 9-channel ResNet shot encoder (MoCo v2 + scene-consistency positives).

    Runs as one process, or on every rank under torchrun: torchrun --nproc_per_node 8 -m vseg pretrain scrl ...
    """
    from vseg.train.methods.scrl import ScrlConfig, ScrlMethod
    from vseg.train.trainer import pretrain

    cfg = _pretrain_config(ScrlConfig, config, overrides, data, epochs)
    _train_summary("pretrain scrl", pretrain(ScrlMethod(cfg), out, resume))


def _train_summary(stage: str, report: Any) -> None:
    last = report.last
    ui.summary(
        f"vseg {stage} -> {report.out}",
        [
            ("epochs", f"{report.start_epoch} -> {report.epochs}" if report.start_epoch else report.epochs),
            ("optimiser steps", report.steps),
            *((f"last epoch {name}", f"{value:.4g}") for name, value in last.items()),
            ("throughput (last epoch)", f"{report.items_per_second:,.1f} /s"),
            ("checkpoint", report.checkpoint),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


@pretrain_app.command("hico")
def pretrain_hico(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help=f"{CONFIG_HELP} The reference's settings: hico/hacs_s (the defaults), hico/hacs_l, hico/k400_untrimmed, "
        "hico/baseline_s (SimCLR on untrimmed video); hico/cpu_tiny for a CPU.",
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Output of vseg prep clips (DIR/training.txt and DIR/training/); sets data.root "
        "\\[default: from the config].",
    ),
    out: Path = typer.Option(Path("runs/hico"), "--out", "-o", help=RUN_FOLDER_HELP),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Epochs (passes over the videos); sets train.epochs \\[default: from the config]."
    ),
    resume: str | None = typer.Option(None, "--resume", help=RESUME_HELP),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override one config key, e.g. --set optim.lr=0.6 or --set data.clip_dir=/data/pieces."
    ),
) -> None:
    """HiCo pre-training of the S3D-G clip encoder on long untrimmed videos (VCL + TCL, LARS).

    Runs as one process, or on every rank under torchrun: torchrun --nproc_per_node 8 -m vseg pretrain hico ...
    """
    from vseg.train.methods.hico import HicoConfig, HicoMethod
    from vseg.train.trainer import pretrain

    cfg = _pretrain_config(HicoConfig, config, overrides, data, epochs)
    _train_summary("pretrain hico", pretrain(HicoMethod(cfg), out, resume))


@app.command("embed")
def embed(
    ctx: typer.Context,
    checkpoint: Path = typer.Argument(
        ...,
        help="Encoder checkpoint: a vseg run's, the SCRL release's (state_dict, module.encoder_q.*) or a bare "
        "encoder state dict.",
    ),
    data: Path | None = typer.Option(
        None, "--data", "-d", help="MovieNet-layout root (240P/, label318/, meta/split318.json) or a keyframe folder."
    ),
    clips: Path | None = typer.Option(
        None,
        "--clips",
        help="Instead of --data: a video list ('relative/path [label]' lines, the UCF101/HMDB51 format) for a clip "
        "encoder (a HiCo checkpoint); writes OUT/<list name>.npz, one row per video.",
    ),
    video_root: Path | None = typer.Option(
        None, "--video-root", help="With --clips: the folder the listed paths are relative to \\[default: the list's]."
    ),
    views: int | None = typer.Option(
        None,
        "--views",
        min=1,
        help="With --clips: temporal views per video, averaged; sets clips.views \\[default: 10].",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: <split>.npz and, for labelled sets, <split>.pkl."
    ),
    split: str = _option(EmbedConfig, "split", "--split"),
    split_file: Path | None = _option(EmbedConfig, "split_file", "--split-file"),
    image_size: int = _option(EmbedConfig, "image_size", "--image-size"),
    batch_size: int = _option(EmbedConfig, "batch_size", "--batch-size", "-b"),
    workers: int | None = _option(EmbedConfig, "workers", "--workers", "-j"),
    device: str = _option(EmbedConfig, "device", "--device"),
    bf16: bool = _option(EmbedConfig, "bf16", "--bf16/--no-bf16"),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override one config key, e.g. --set batch_size=128."
    ),
) -> None:
    """Turn every shot into an embedding with a frozen encoder (SCRL's preprocessing; .npz and the SCRL pickle),
    or with --clips every video of a list with a HiCo clip encoder (10 views x 1 centre crop).

    Resumable: finished movies (or chunks of videos) are cached under OUT/.partial until the run completes.
    """
    from vseg.eval.embed import run_embed

    if (data is None) == (clips is None):
        raise VsegError("vseg embed needs one of --data ROOT (shots) or --clips LIST (videos); see vseg embed --help")
    if views is not None:
        overrides = [*(overrides or ()), f"clips.views={views}"]
    cfg = _config(
        ctx,
        EmbedConfig,
        config,
        overrides,
        split=split,
        split_file=split_file,
        image_size=image_size,
        batch_size=batch_size,
        workers=workers,
        device=device,
        bf16=bf16,
    )
    if clips is not None:
        _embed_clips(checkpoint, clips, video_root, out, cfg)
        return
    report = run_embed(checkpoint, data, out, cfg)
    loaded = report.checkpoint
    ui.table(
        f"vseg embed -> {report.out}",
        ("set", "movies", "shots", "labels", "files"),
        [
            (s.name, s.movies, f"{s.shots:,}", "yes" if s.labelled else "no", ", ".join(f.name for f in s.files))
            for s in report.splits
        ],
    )
    ui.summary(
        "embedding",
        [
            ("checkpoint", f"{checkpoint} ({loaded.layout}, {loaded.arch}, {3 * loaded.keyframes_per_shot} channels)"),
            ("device", report.device),
            ("throughput", f"{report.shots_per_second:,.1f} shots/s"),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


def _embed_clips(checkpoint: Path, listing: Path, video_root: Path | None, out: Path, cfg: EmbedConfig) -> None:
    from vseg.eval.clip_embed import run_clip_embed

    report = run_clip_embed(checkpoint, listing, video_root, out, cfg)
    ui.summary(
        f"vseg embed --clips -> {report.file}",
        [
            (
                "checkpoint",
                f"{checkpoint} ({report.checkpoint.layout}, S3D-{'G' if report.checkpoint.gating else ' (no gating)'})",
            ),
            (
                "videos",
                f"{report.videos:,} ({report.resumed:,} from the cache)" if report.resumed else f"{report.videos:,}",
            ),
            ("labels", "yes" if report.labelled else "no"),
            ("views per video", f"{cfg.clips.views} x {cfg.clips.frames} frames at {cfg.clips.size} px"),
            ("device", report.device),
            ("throughput", f"{report.videos_per_second:,.2f} videos/s"),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


@app.command("probe")
def probe(
    ctx: typer.Context,
    train: Path = typer.Option(..., "--train", help="Labelled clip embeddings to fit on (vseg embed --clips)."),
    test: Path = typer.Option(..., "--test", help="Labelled clip embeddings to score."),
    k: int = _option(ProbeConfig, "k", "--k"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the results to this JSON file."),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    overrides: list[str] | None = typer.Option(None, "--set", help="Override one config key, e.g. --set linear_c=0.1."),
) -> None:
    """Top-1 of a k-NN and a linear classifier on frozen, labelled clip embeddings (e.g. UCF101 split 1)."""
    from vseg.eval.clip_probe import run_probe

    cfg = _config(ctx, ProbeConfig, config, overrides, k=k)
    report = run_probe(train, test, cfg, out)
    ui.summary(
        f"vseg probe {test.name} (fit on {train.name})",
        [
            (f"k-NN top-1 (k={report.k})", f"{100 * report.knn_top1:.2f}"),
            ("nearest-neighbour top-1", f"{100 * report.nn_top1:.2f}"),
            ("linear top-1", f"{100 * report.linear_top1:.2f}"),
            ("majority class", f"{100 * report.chance:.2f}"),
            ("videos (train / test)", f"{report.train_videos:,} / {report.test_videos:,}"),
            ("classes", report.classes),
        ],
    )


SPLIT_FILE_HELP = "Embeddings of the {} split: a vseg .npz or an SCRL .pkl (told apart by content)."


@segment_app.callback(invoke_without_command=True)
def segment(
    ctx: typer.Context,
    train: Path | None = typer.Option(None, "--train", help=SPLIT_FILE_HELP.format("training") + " Required."),
    val: Path | None = typer.Option(
        None, "--val", help=SPLIT_FILE_HELP.format("validation") + " Selects the model \\[default: the last epoch]."
    ),
    test: Path | None = typer.Option(None, "--test", help=SPLIT_FILE_HELP.format("test") + " Scored at the selection."),
    seq_len: int = _option(SegmentDataConfig, "seq_len", "--seq-len"),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Training epochs; sets train.epochs \\[default: from the config, 200]."
    ),
    shot_tables: Path | None = _option(SegmentDataConfig, "shot_tables", "--shot-tables"),
    device: str | None = typer.Option(
        None, "--device", help="auto, cuda or cpu; sets train.device \\[default: from the config, auto]."
    ),
    out: Path = typer.Option(
        Path("runs/segment"), "--out", "-o", help="Run folder: metrics.json, predictions.json, model.pth."
    ),
    resume: str | None = typer.Option(
        None, "--resume", help="'auto': continue from OUT/checkpoints/last.pth \\[default: start fresh]."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help=f"{CONFIG_HELP} The paper's protocol: segment/scrl (the defaults)."
    ),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override one config key, e.g. --set optim.lr=0.05."
    ),
) -> None:
    """Train and test the BiLSTM scene-boundary model on shot embeddings: AP, F1, mIoU, Recall@3s.

    SCRL's protocol: windows of --seq-len shots, scene shuffle, CE weights [1, 4], SGD 0.1 for 200 epochs; the model
    with the best val F1 (from epoch 100) is tested. Subcommands: eval (re-score saved probabilities), predict.
    """
    if ctx.invoked_subcommand is not None:
        return
    from vseg.config import SegmentConfig
    from vseg.eval.segment import run_segment

    if train is None:
        raise VsegError("vseg segment needs --train EMBEDDINGS (and usually --val and --test); see vseg segment --help")
    explicit = {"data.seq_len": seq_len} if ctx.get_parameter_source("seq_len").name == "COMMANDLINE" else {}
    for key, value in (("train.epochs", epochs), ("data.shot_tables", shot_tables), ("train.device", device)):
        if value is not None:
            explicit[key] = value
    cfg = load_config(SegmentConfig, resolve_config(config), overrides or (), explicit)
    report = run_segment(train, val, test, out, cfg, resume)
    _metrics_table(f"vseg segment -> {report.out}", report.test or report.val, "test" if report.test else "val")
    ui.summary(
        "training",
        [
            ("epochs", f"{report.start_epoch} -> {report.epochs}" if report.start_epoch else report.epochs),
            ("selected epoch", report.best_epoch if report.val else f"{report.best_epoch} (no --val: last)"),
            ("val F1 (per movie) at selection", f"{report.val.f1_movie:.4f}" if report.val else "-"),
            ("windows per epoch", report.windows_per_epoch),
            ("seconds per epoch", f"{report.epoch_seconds:.2f}"),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


METRIC_ROWS = (
    ("AP, per movie (SCRL)", "ap_movie"),
    ("AP, pooled (LGSS, BaSSL)", "ap_pooled"),
    ("mAP, LGSS (per-movie AP rounded)", "map_lgss"),
    ("F1, per movie (SCRL)", "f1_movie"),
    ("F1, pooled", "f1_pooled"),
    ("precision / recall, per movie", ("precision_movie", "recall_movie")),
    ("precision / recall, pooled", ("precision_pooled", "recall_pooled")),
    ("Recall (LGSS)", "recall_exact"),
    ("Recall@3s at 24 fps (LGSS, BaSSL)", "recall_at_3s"),
    ("Recall@3s at each movie's fps", "recall_at_3s_true_fps"),
    ("mIoU (LGSS)", "miou"),
    ("accuracy", "accuracy"),
)


def _metrics_table(title: str, metrics: Any, split: str) -> None:
    if metrics is None:
        ui.info("no val or test set given: nothing was scored")
        return
    values = metrics.as_dict()

    def shown(key: str) -> str:
        return "n/a (needs shot tables)" if values[key] is None else f"{100 * values[key]:.2f}"

    rows = [
        (name, " / ".join(shown(k) for k in key) if isinstance(key, tuple) else shown(key)) for name, key in METRIC_ROWS
    ]
    rows.append(("mIoU measured in", values["miou_basis"]))
    rows.append(("movies / shots / threshold", f"{metrics.movies} / {metrics.shots:,} / {metrics.threshold}"))
    ui.table(f"{title} ({split}, %)", ("metric", "value"), rows)


@segment_app.command("eval")
def segment_eval(
    pred: Path | None = typer.Option(
        None, "--pred", help="predictions.json written by vseg segment (probabilities, labels)."
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Instead of --pred: a boundary model (model.pth of vseg segment, or a SceneSeg BiLSTM checkpoint as SCRL "
        "released them) to score on --embeddings.",
    ),
    embeddings: Path | None = typer.Option(
        None, "--embeddings", "-e", help="With --model: labelled embeddings (.npz or SCRL .pkl) to score it on."
    ),
    shot_tables: Path | None = typer.Option(
        None, "--shot-tables", help="With --model: folder of <imdb>.txt shot frame tables, for mIoU and Recall@3s."
    ),
    threshold: float = typer.Option(
        0.5, "--threshold", min=0.0, max=1.0, help="A shot is a boundary when prob > this."
    ),
    fps: float = typer.Option(
        24.0,
        "--fps",
        min=0.0,
        help="Frame rate where predictions.json carries none, for recall_at_3s_true_fps (recall_at_3s: always 24).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the metrics to this JSON file."),
) -> None:
    """Re-score saved boundary probabilities at any threshold (--pred), or score a model on embeddings (--model)."""
    import json

    from vseg.eval.segment import evaluate_model, evaluate_predictions
    from vseg.io import atomic
    from vseg.io.predictions import read_predictions

    if (pred is None) == (model is None) or (model is not None) != (embeddings is not None):
        raise VsegError("vseg segment eval needs either --pred PREDICTIONS or --model MODEL with --embeddings FILE")
    if model is not None:
        metrics = evaluate_model(model, embeddings, threshold, fps, shot_tables)
    else:
        try:
            metrics = evaluate_predictions(read_predictions(pred), threshold, fps)
        except ValueError as exc:
            raise VsegError(f"{pred}: {exc}") from None
    if out is not None:
        atomic.write_text(out, json.dumps(metrics.as_dict(), indent=1) + "\n")
    _metrics_table(f"vseg segment eval {pred or model}", metrics, f"threshold {threshold}")


@segment_app.command("predict")
def segment_predict(
    model: Path = typer.Option(
        ..., "--model", "-m", help="model.pth written by vseg segment, or a SceneSeg BiLSTM checkpoint."
    ),
    embeddings: Path = typer.Option(..., "--embeddings", "-e", help="Embeddings (.npz or SCRL .pkl), labels optional."),
    out: Path = typer.Option(
        Path("runs/predict"), "--out", "-o", help="Output folder: predictions.json, scenes.json, scenes.csv."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, max=1.0, help="Boundary when prob > this \\[default: the model's, 0.5]."
    ),
    shot_tables: Path | None = typer.Option(
        None, "--shot-tables", help="Folder of <imdb>.txt shot frame tables, to give scenes frame ranges."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cuda or cpu."),
) -> None:
    """Boundary probabilities and scene lists (scene, first/last shot) for movies, labelled or not."""
    from vseg.eval.segment import run_segment_predict

    report = run_segment_predict(model, embeddings, out, threshold, shot_tables, device)
    ui.summary(
        f"vseg segment predict -> {report.out}",
        [
            ("movies", report.movies),
            ("shots", report.shots),
            ("scenes", report.scenes),
            ("threshold", report.threshold),
            ("files", ", ".join(f.name for f in report.files)),
        ],
    )


# --------------------------------------------------------------------------------------------- scenes


@app.command("scenes")
def scenes(
    video: Path = typer.Argument(..., help="A video file (anything ffmpeg reads: mp4, mkv, mov, avi, webm, ...)."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder: scenes.json, scenes.csv, scenes.edl, report.html, timeline.png, shots/ "
        "\\[default: <video name>-scenes in the current folder].",
    ),
    encoder: Path | None = typer.Option(
        None,
        "--encoder",
        help="Shot encoder checkpoint (vseg pretrain scrl, the SCRL release, or a bare encoder state dict) "
        "\\[default: none: colour-histogram features].",
    ),
    segmenter: Path | None = typer.Option(
        None,
        "--segmenter",
        help="Boundary model (model.pth of vseg segment, or a SceneSeg BiLSTM checkpoint), trained on features "
        "from the same --encoder \\[default: none: the training-free scorer].",
    ),
    detector: str | None = typer.Option(
        None,
        "--detector",
        help="Shot detector: content, adaptive or transnetv2; sets shots.detector \\[default: content].",
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        min=0.0,
        max=1.0,
        help="A shot ends a scene when its boundary probability is > this \\[default: the segmenter's, or 0.5].",
    ),
    window: int | None = typer.Option(
        None, "--window", min=1, help="Training-free scorer: shots compared on each side of a cut \\[default: 2]."
    ),
    min_scene_shots: int | None = typer.Option(
        None, "--min-scene-shots", min=1, help="Fewest shots in a scene \\[default: 3]."
    ),
    split: bool | None = typer.Option(
        None, "--split/--no-split", help="Also write one video per scene into OUT/scenes/ \\[default: no]."
    ),
    image_size: int | None = typer.Option(
        None, "--image-size", help="With --encoder: keyframe size it sees; sets embed.image_size \\[default: 224]."
    ),
    device: str | None = typer.Option(
        None, "--device", help="auto, cuda or cpu, for the encoder and segmenter \\[default: auto]."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override one config key, e.g. --set scorer.offset=2 or --set shots.threshold=30."
    ),
) -> None:
    """Find the scenes of a video: shots, keyframes, features, boundary scores, then scene lists, an EDL,
    an HTML report and a timeline picture."""
    from vseg.config import ScenesConfig
    from vseg.scenes import run_scenes

    explicit = {
        key: value
        for key, value in (
            ("shots.detector", detector),
            ("threshold", threshold),
            ("scorer.window", window),
            ("min_scene_shots", min_scene_shots),
            ("split", split),
            ("embed.image_size", image_size),
            ("embed.device", device),
        )
        if value is not None
    }
    cfg = load_config(ScenesConfig, resolve_config(config), overrides or (), explicit)
    report = run_scenes(video, out or Path(f"{video.stem}-scenes"), cfg, encoder, segmenter)
    shown = report.scenes[:30]
    ui.table(
        f"vseg scenes {video.name}: {len(report.scenes)} scenes",
        ("scene", "start", "end", "frames", "shots"),
        [
            (row["scene"] + 1, row["start_timecode"], row["end_timecode"], f"{row['start_frame']}-{row['end_frame']}",
             f"{row['first_shot']}-{row['last_shot']}")
            for row in (scene.as_row() for scene in shown)
        ],
    )  # fmt: skip
    if len(report.scenes) > len(shown):
        ui.info(f"... and {len(report.scenes) - len(shown)} more scenes: see {report.out / 'scenes.csv'}")
    if encoder is None:
        ui.warn("no --encoder given: scenes were found from colour histograms of the keyframes")
    ui.summary(
        f"vseg scenes -> {report.out}",
        [
            ("video", f"{report.frames:,} frames at {report.fps:g} fps, {report.shots:,} shots"),
            ("scenes", len(report.scenes)),
            ("features", report.features),
            ("boundaries", f"{report.scoring}, threshold {report.threshold:g}"),
            *((f"time: {stage}", f"{seconds:.1f} s") for stage, seconds in report.stage_seconds.items()),
            ("report", report.out / "report.html"),
        ],
    )


# --------------------------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("vseg-demo"), "--out", "-o", help="Folder for everything the demo writes."),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Worker processes \\[default: CPU cores]."),
    overrides: list[str] | None = typer.Option(
        None,
        "--set",
        help="Change one stage's config, as <stage>.<key>=<value> with stage synth, puzzles, scrl, embed, segment or "
        "scenes, e.g. --set scrl.train.epochs=2 (repeatable).",
    ),
) -> None:
    """The whole pipeline on built-in synthetic data (about 5 minutes on 2 CPU cores): synth movies, puzzles, SCRL
    pre-training, embeddings and boundary models for the pre-trained and a random-init encoder (compared in one
    table), then vseg scenes on a video rendered from held-out scenes. Writes OUT/demo_results.json."""
    from vseg.demo import run_demo

    run_demo(out, workers, overrides or ())


def main() -> None:
    """Entry point of the ``vseg`` console script and of ``python -m vseg``."""
    app(prog_name="vseg")
