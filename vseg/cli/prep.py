"""``vseg prep``: turn files into files (synthetic data, puzzles, clips, shots) and check datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from vseg import ui
from vseg.cli.options import App, build_config, config_file_option, config_option, set_option
from vseg.config import ClipsConfig, PuzzlesConfig, ShotsConfig, SynthConfig
from vseg.errors import VsegError

app = App(help="Turn files into files: synthetic data, puzzles, dataset checks.")


def _exit_on_failures(failed: dict[str, VsegError], advice: str) -> None:
    if failed:
        for error in failed.values():
            ui.error(str(error))
        ui.error(f"{len(failed)} {advice}")
        raise typer.Exit(1)


@app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="Output root; gets 240P/, label318/, shot_movie318/ and meta/."),
    movies: int | None = config_option(SynthConfig, "movies", "--movies"),
    shots_per_movie: int | None = config_option(SynthConfig, "shots_per_movie", "--shots-per-movie"),
    seed: int | None = config_option(SynthConfig, "seed", "--seed"),
    workers: int | None = config_option(SynthConfig, "workers", "--workers"),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("jpeg_quality=90"),
) -> None:
    """Write a synthetic MovieNet-layout dataset with known scenes (for tests and the demo)."""
    from vseg.prep.synth import make_synth

    cfg = build_config(
        SynthConfig,
        config,
        overrides,
        {"movies": movies, "shots_per_movie": shots_per_movie, "seed": seed, "workers": workers},
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


@app.command("puzzles")
def puzzles(
    keyframe_root: Path = typer.Argument(
        ..., help="Keyframe folder in MovieNet layout: <root>/<imdb>/shot_SSSS_img_J.jpg."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: <out>/<imdb>/<pppp>.jpg and manifest.json."),
    split_file: Path | None = config_option(PuzzlesConfig, "split_file", "--split-file"),
    split: str | None = config_option(PuzzlesConfig, "split", "--split"),
    workers: int | None = config_option(PuzzlesConfig, "workers", "--workers", "-j"),
    strict: bool | None = config_option(PuzzlesConfig, "strict", "--strict/--no-strict"),
    resize: str | None = config_option(PuzzlesConfig, "resize", "--resize", metavar="WxH"),
    shard: str | None = config_option(PuzzlesConfig, "shard", "--shard", metavar="I/N"),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("jpeg_quality=90"),
) -> None:
    """Stitch each run of 16 shots x 3 keyframes into one SCRL puzzle JPEG (resumable, parallel)."""
    from vseg.prep.puzzles import make_puzzles

    cfg = build_config(
        PuzzlesConfig,
        config,
        overrides,
        {"split_file": split_file, "split": split, "workers": workers, "strict": strict, "resize": resize,
         "shard": shard},
    )  # fmt: skip
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


VIDEOS_HELP = (
    "{}, or folders of them (their video files, sorted by name); the id is the file name without extension and "
    "without a leading v_."
)


@app.command("clips")
def clips(
    inputs: list[Path] = typer.Argument(..., help=VIDEOS_HELP.format("Long videos")),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: training/v_<id>_<startms>_<endms>.mp4 and training.txt."
    ),
    clip_seconds: float | None = config_option(ClipsConfig, "clip_seconds", "--clip-seconds"),
    stream_copy: bool | None = config_option(ClipsConfig, "stream_copy", "--stream-copy/--re-encode"),
    crf: int | None = config_option(ClipsConfig, "crf", "--crf"),
    preset: str | None = config_option(ClipsConfig, "preset", "--preset"),
    verify: bool | None = config_option(ClipsConfig, "verify", "--verify/--no-verify"),
    workers: int | None = config_option(ClipsConfig, "workers", "--workers", "-j"),
    shard: str | None = config_option(ClipsConfig, "shard", "--shard", metavar="I/N"),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("crf=23"),
) -> None:
    """Cut long untrimmed videos into HiCo's 5-second clip files and write training.txt (resumable, parallel)."""
    from vseg.prep.clips import make_clips

    cfg = build_config(
        ClipsConfig,
        config,
        overrides,
        {"clip_seconds": clip_seconds, "stream_copy": stream_copy, "crf": crf, "preset": preset, "verify": verify,
         "workers": workers, "shard": shard},
    )  # fmt: skip
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


@app.command("shots")
def shots(
    inputs: list[Path] = typer.Argument(..., help=VIDEOS_HELP.format("Videos")),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="MovieNet-layout root: 240P/<id>/shot_SSSS_img_J.jpg, shot_txt/<id>.txt, meta/<id>.json.",
    ),
    detector: str | None = config_option(ShotsConfig, "detector", "--detector"),
    threshold: float | None = config_option(ShotsConfig, "threshold", "--threshold"),
    adaptive_threshold: float | None = config_option(ShotsConfig, "adaptive_threshold", "--adaptive-threshold"),
    transnet_threshold: float | None = config_option(ShotsConfig, "transnet_threshold", "--transnet-threshold"),
    min_shot_frames: int | None = config_option(ShotsConfig, "min_shot_frames", "--min-shot-frames"),
    workers: int | None = config_option(ShotsConfig, "workers", "--workers", "-j"),
    shard: str | None = config_option(ShotsConfig, "shard", "--shard", metavar="I/N"),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("keyframe_height=360"),
) -> None:
    """Detect the shots of raw videos and write 3 keyframes per shot in the MovieNet layout (resumable, parallel)."""
    from vseg.prep.shots import make_shots

    cfg = build_config(
        ShotsConfig,
        config,
        overrides,
        {"detector": detector, "threshold": threshold, "adaptive_threshold": adaptive_threshold,
         "transnet_threshold": transnet_threshold, "min_shot_frames": min_shot_frames, "workers": workers,
         "shard": shard},
    )  # fmt: skip
    report = make_shots(inputs, out, cfg)
    for warning in report.warnings.values():
        ui.warn(warning)
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


@app.command("check")
def check(
    root: Path = typer.Argument(
        ..., help="MovieNet-layout root holding 240P/ and, optionally, label318/, shot_movie318/, meta/."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Check only this split of the split file.", show_default="every movie of the split file"
    ),
    split_file: Path | None = typer.Option(
        None,
        "--split-file",
        help="Split JSON, or movie1K for MovieNet's 1,100-movie split (built in).",
        show_default="ROOT/meta/split318.json",
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
