"""``vseg pretrain``: self-supervised pre-training, one command per method (torchrun -m vseg pretrain ...)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import typer

from vseg import ui
from vseg.cli.options import App, build_config, config_file_option, config_option, set_option
from vseg.config import HicoConfig, ScrlConfig

app = App(help="Self-supervised pre-training (torchrun -m vseg pretrain ...).")

RUN_FOLDER_HELP = "Run folder: config.yaml, metrics.jsonl, checkpoints/."


def _resume_option() -> Any:
    return typer.Option(
        None,
        "--resume",
        help="'auto': continue from OUT/checkpoints/last.pth when there is one; or a checkpoint file.",
        show_default="start fresh, and refuse an OUT that already holds a run",
    )


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


@app.command("scrl")
def scrl(
    config: Path | None = config_file_option(" The paper's settings: scrl/with_imagenet, scrl/without_imagenet."),
    data: Path | None = config_option(ScrlConfig, "data.root", "--data", "-d"),
    out: Path = typer.Option(Path("runs/scrl"), "--out", "-o", help=RUN_FOLDER_HELP),
    epochs: int | None = config_option(ScrlConfig, "train.epochs", "--epochs", min=1),
    resume: str | None = _resume_option(),
    overrides: list[str] | None = set_option("optim.lr=0.06"),
) -> None:
    """SCRL pre-training of the 9-channel ResNet shot encoder (MoCo v2 + scene-consistency positives).

    Runs as one process, or on every rank under torchrun: torchrun --nproc_per_node 8 -m vseg pretrain scrl ...
    """
    from vseg.train.scrl import ScrlMethod
    from vseg.train.trainer import pretrain

    cfg = build_config(ScrlConfig, config, overrides, {"data.root": data, "train.epochs": epochs})
    prepare = None
    if cfg.data.root is None and cfg.data.synthetic:  # built-in data: the demo's synthetic movies
        from vseg.demo import builtin_puzzles

        cfg.data.root = out / "synthetic" / "puzzles"
        prepare = partial(builtin_puzzles, out / "synthetic")
    _train_summary("pretrain scrl", pretrain(ScrlMethod(cfg), out, resume, prepare))


@app.command("hico")
def hico(
    config: Path | None = config_file_option(
        " The reference's settings: hico/hacs_s (the defaults), hico/hacs_l, hico/k400_untrimmed, hico/baseline_s "
        "(SimCLR on untrimmed video); hico/cpu_tiny for a CPU."
    ),
    data: Path | None = config_option(HicoConfig, "data.root", "--data", "-d"),
    out: Path = typer.Option(Path("runs/hico"), "--out", "-o", help=RUN_FOLDER_HELP),
    epochs: int | None = config_option(HicoConfig, "train.epochs", "--epochs", min=1),
    resume: str | None = _resume_option(),
    overrides: list[str] | None = set_option("optim.lr=0.6 or --set data.clip_dir=/data/pieces"),
) -> None:
    """HiCo pre-training of the S3D-G clip encoder on long untrimmed videos (VCL + TCL, LARS).

    Runs as one process, or on every rank under torchrun: torchrun --nproc_per_node 8 -m vseg pretrain hico ...
    """
    from vseg.train.hico import HicoMethod
    from vseg.train.trainer import pretrain

    cfg = build_config(HicoConfig, config, overrides, {"data.root": data, "train.epochs": epochs})
    _train_summary("pretrain hico", pretrain(HicoMethod(cfg), out, resume))
