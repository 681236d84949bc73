"""``vseg adapt``: SCRL pre-training on a user's own videos, built when asked for (it imports torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vseg import ui
from vseg.cli.options import App, build_config, config_option, set_option

NAME = "adapt"
DEFAULT_PRESET = "adapt/cpu"
HELP = """Adapt a shot encoder to your own videos without labels: shots, keyframes, puzzles, then SCRL
pre-training (from scratch, or from --init). Run again, it resumes. Then: vseg scenes VIDEO --encoder
RUN/scrl/checkpoints/last.pth."""


def adapt_command() -> Any:
    """The ``vseg adapt`` command, with its options' defaults and help from :class:`vseg.adapt.AdaptConfig`."""
    from vseg.adapt import AdaptConfig, run_adapt

    commands = App()

    @commands.command(NAME, help=HELP)
    def adapt(
        inputs: list[Path] = typer.Argument(..., help="Video files, or folders of them (not recursive)."),
        out: Path = typer.Option(
            Path("runs/adapt"), "--out", "-o", help="Run folder: shots/, puzzles/, scrl/ (checkpoints/last.pth)."
        ),
        config: Path = typer.Option(
            Path(DEFAULT_PRESET),
            "--config",
            "-c",
            help="YAML config file or preset: adapt/cpu (ResNet-18 at 64 px, 20 epochs) or adapt/gpu (the paper's "
            "ResNet-50 at 224 px, 100 epochs).",
        ),
        init: Path | None = config_option(AdaptConfig, "init", "--init"),
        overrides: list[str] | None = set_option("scrl.train.epochs=40"),
    ) -> None:
        cfg = build_config(AdaptConfig, config, overrides, {"init": init})
        report = run_adapt(inputs, out, cfg)
        ui.summary(
            f"vseg adapt -> {report.out}",
            [
                ("videos", f"{report.videos} ({report.shots:,} shots, {report.clips} clips)"),
                ("epochs", report.epochs),
                ("checkpoint", report.checkpoint),
                ("time", f"{report.seconds:.1f} s"),
                ("next", f"vseg scenes VIDEO --encoder {report.checkpoint} (embeds at its {report.image_size} px)"),
            ],
        )

    return typer.main.get_command(commands)
