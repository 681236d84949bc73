"""The ``vseg`` command line: parse options, build the stage's config, call the stage, print a summary.

No logic lives here that a test would need: every command calls one stage function that can be called
from Python with the same arguments.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from vseg import __version__, ui
from vseg.config import PuzzlesConfig, StageConfig, SynthConfig, load_config
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

CONFIG_HELP = "YAML config file, or a preset name under configs/ such as synth/cpu_tiny."
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


def _not_available(what: str, issue: str) -> None:
    raise VsegError(f"`vseg {what}` is not available yet in vseg {__version__} ({issue}); see README.md")


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


@prep_app.command("check")
def prep_check(
    root: Path = typer.Argument(
        ..., help="MovieNet-layout root holding 240P/ and, optionally, label318/, shot_movie318/, meta/."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Check only this split of meta/split318.json \\[default: every movie]."
    ),
) -> None:
    """Index a MovieNet-layout root and list every problem: missing keyframes, label/shot mismatches."""
    from vseg.io.movienet import MovieNetLayout, check_dataset

    report = check_dataset(MovieNetLayout(root), split)
    for problem in report.problems:
        ui.error(str(problem), label="problem")
    ui.summary(
        f"vseg prep check {root}",
        [
            ("movies", len(report.movies)),
            ("shots", report.shots),
            ("movies with valid labels", report.labelled),
            ("problems", len(report.problems)),
        ],
    )
    if report.problems:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------- later stages (stubs)


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
    out: Path = typer.Option(
        Path("runs/scrl"), "--out", "-o", help="Run folder: config.yaml, metrics.jsonl, checkpoints/."
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        min=1,
        help="Epochs to train; sets train.epochs \\[default: from the config, 100 in the paper].",
    ),
    resume: str | None = typer.Option(
        None,
        "--resume",
        help="'auto': continue from OUT/checkpoints/last.pth when there is one; or a checkpoint file "
        "\\[default: start fresh, and refuse an OUT that already holds a run].",
    ),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override one config key, e.g. --set optim.lr=0.06."
    ),
) -> None:
    """SCRL pre-training of the 9-channel ResNet shot encoder (MoCo v2 + scene-consistency positives).

    Runs as one process, or on every rank under torchrun: torchrun --nproc_per_node 8 -m vseg pretrain scrl ...
    """
    from vseg.config import ScrlConfig
    from vseg.train.scrl import ScrlMethod
    from vseg.train.trainer import pretrain

    explicit = {key: value for key, value in (("data.root", data), ("train.epochs", epochs)) if value is not None}
    cfg = load_config(ScrlConfig, resolve_config(config), overrides or (), explicit)
    prepare = None
    if cfg.data.root is None and cfg.data.synthetic:  # built-in data: the demo's synthetic movies
        from vseg.demo import builtin_puzzles

        cfg.data.root = out / "synthetic" / "puzzles"
        prepare = partial(builtin_puzzles, out / "synthetic")
    _train_summary("pretrain scrl", pretrain(ScrlMethod(cfg), out, resume, prepare))


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


@pretrain_app.command("hico", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def pretrain_hico() -> None:
    """HiCo pre-training of the S3D-G clip encoder on long untrimmed videos."""
    _not_available("pretrain hico", "HiCo pre-training is a later milestone")


@app.command("embed", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def embed() -> None:
    """Turn shots into embeddings with a frozen encoder checkpoint (SCRL pickle and .npz)."""
    _not_available("embed", "embedding extraction is a later milestone")


@segment_app.callback(
    invoke_without_command=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def segment(ctx: typer.Context) -> None:
    """Train and evaluate the BiLSTM boundary model: AP, F1, mIoU, Recall@3s."""
    if ctx.invoked_subcommand is None:
        _not_available("segment", "the scene-boundary model is a later milestone")


@segment_app.command("eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def segment_eval() -> None:
    """Evaluate saved boundary probabilities at any threshold."""
    _not_available("segment eval", "the scene-boundary model is a later milestone")


@segment_app.command("predict", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def segment_predict() -> None:
    """Boundary probabilities and scene lists for unlabelled movies."""
    _not_available("segment predict", "the scene-boundary model is a later milestone")


# --------------------------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("vseg-demo"), "--out", "-o", help="Folder for everything the demo writes."),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Worker processes \\[default: CPU cores]."),
) -> None:
    """Run the pipeline on built-in synthetic data (today: synth -> check -> puzzles)."""
    from vseg.demo import run_demo

    run_demo(out, workers)


def main() -> None:
    """Entry point of the ``vseg`` console script and of ``python -m vseg``."""
    app(prog_name="vseg")
