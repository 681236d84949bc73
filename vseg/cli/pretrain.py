"""``vseg pretrain <method>``: one command per module of :mod:`vseg.train.methods`, made from the method itself; and
``vseg finetune``, the fine-tuning method on the same trainer.

Every pre-training method gets the same options (``--config``, ``--data`` for ``data.root``, ``--out``, ``--epochs``
for ``train.epochs``, ``--resume``, ``--set``), with defaults and help from its config model, and its docstring as
help. The group lists the methods without importing them; a method's module (and torch) is imported only when its
command is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vseg import ui
from vseg.cli.options import App, Group, build_config, config_file_option, config_option, set_option
from vseg.train.methods import FINETUNE, load_method, method_names

RUN_FOLDER_HELP = "Run folder: config.yaml, metrics.jsonl, checkpoints/."
RESUME_HELP = "'auto': continue from OUT/checkpoints/last.pth when there is one; or a checkpoint file."
RESUME_DEFAULT = "start fresh, and refuse an OUT that already holds a run"
TORCHRUN = "Runs as one process, or on every rank under torchrun: torchrun --nproc_per_node 8 -m vseg pretrain {} ..."


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


def method_command(name: str) -> Any:
    """The ``vseg pretrain NAME`` command of the method ``NAME``."""
    method = load_method(name)
    model = method.config_model
    commands = App()

    @commands.command(name, help=f"{method.__doc__.strip()}\n\n{TORCHRUN.format(name)}")
    def run(
        config: Path | None = config_file_option(f" {method.presets_help}"),
        data: Path | None = config_option(model, "data.root", "--data", "-d"),
        out: Path = typer.Option(Path(f"runs/{name}"), "--out", "-o", help=RUN_FOLDER_HELP),
        epochs: int | None = config_option(model, "train.epochs", "--epochs", min=1),
        resume: str | None = typer.Option(None, "--resume", help=RESUME_HELP, show_default=RESUME_DEFAULT),
        overrides: list[str] | None = set_option("optim.lr=0.06"),
    ) -> None:
        from vseg.train.trainer import pretrain

        cfg = build_config(model, config, overrides, {"data.root": data, "train.epochs": epochs})
        _train_summary(f"pretrain {name}", pretrain(method(cfg), out, resume))

    return typer.main.get_command(commands)


class _Methods(Group):
    """The methods as subcommands, found by name and built when asked for."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return method_names()

    def get_command(self, ctx: typer.Context, name: str) -> Any:
        return method_command(name) if name in method_names() else None


app = App(cls=_Methods, help="Self-supervised pre-training, one command per method (torchrun -m vseg pretrain ...).")


FINETUNE_HELP = """Fine-tune an S3D-G (a HiCo checkpoint's backbone, or random) on a labelled video list, then test it as
HiCo does: 10 temporal views x 1 centre crop, softmax scores summed; top-1 and top-5 in OUT/metrics.json.

Runs as one process, or on every rank under torchrun: torchrun --nproc_per_node 8 -m vseg finetune ..."""


def finetune_command() -> Any:
    """``vseg finetune``, built when asked for (its config model imports torch)."""
    method = load_method(FINETUNE)
    model = method.config_model
    commands = App()

    @commands.command(FINETUNE, help=FINETUNE_HELP)
    def finetune(
        config: Path | None = config_file_option(
            " The reference's settings: finetune/ucf101 (the defaults), finetune/hmdb51, finetune/ucf101_linear, "
            "finetune/hmdb51_linear; finetune/cpu_tiny for a CPU."
        ),
        train: Path | None = config_option(model, "data.train_list", "--train"),
        test: Path | None = config_option(model, "data.test_list", "--test"),
        video_root: Path | None = config_option(model, "data.video_root", "--video-root"),
        init: Path | None = config_option(model, "model.init", "--init"),
        out: Path = typer.Option(..., "--out", "-o", help=f"{RUN_FOLDER_HELP[:-1]}, metrics.json (the test)."),
        epochs: int | None = config_option(model, "train.epochs", "--epochs", min=1),
        resume: str | None = typer.Option(None, "--resume", help=RESUME_HELP, show_default=RESUME_DEFAULT),
        overrides: list[str] | None = set_option("model.linear=reference"),
    ) -> None:
        from vseg.train.trainer import pretrain

        options = {"data.train_list": train, "data.test_list": test, "data.video_root": video_root,
                   "model.init": init, "train.epochs": epochs}  # fmt: skip
        cfg = build_config(model, config, overrides, options)
        report = pretrain(method(cfg), out, resume)
        _train_summary("finetune", report)
        got = report.results
        ui.summary(
            f"test ({got['test_videos']} videos, {got['classes']} classes)",
            [
                (f"top-1 / top-5, {got['views']} views", f"{got['top1']:.1%} / {got['top5']:.1%}"),
                ("top-1 / top-5, centre view", f"{got['single_view_top1']:.1%} / {got['single_view_top5']:.1%}"),
                ("metrics", out / "metrics.json"),
            ],
        )

    return typer.main.get_command(commands)
