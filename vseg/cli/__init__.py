"""The ``vseg`` command line: parse options, resolve the stage's config, call the stage, print a summary.

No logic lives here that a test would need: every command calls one stage function that can be called
from Python with the same arguments. One module per group: prep, pretrain, evaluate (embed, probe, segment),
scenes and demo; options holds what they share.
"""

from __future__ import annotations

from typing import Any

import click
import typer

from vseg import __version__, ui
from vseg.cli import adapt, demo, evaluate, info, prep, pretrain, scenes
from vseg.cli.options import App, Group, paragraphs
from vseg.errors import VsegError
from vseg.train.methods import FINETUNE


class _App(Group):
    """The root group: user errors become one red line and exit code 2 (a traceback with ``--debug``). ``vseg
    finetune`` and ``vseg adapt`` are built only when run (their config models import torch), as the ``vseg
    pretrain`` methods are: ``vseg --help`` lists them by their help text alone, so it does not load torch."""

    LAZY = {FINETUNE: (pretrain.finetune_command, pretrain.FINETUNE_HELP), adapt.NAME: (adapt.adapt_command, adapt.HELP)}
    listing = False  # set while the root's help is written

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: typer.Context, name: str) -> Any:
        if name not in self.LAZY:
            return super().get_command(ctx, name)
        build, help_text = self.LAZY[name]
        return click.Command(name, help=paragraphs(help_text)) if self.listing else build()

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False

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

app = App(cls=_App, help=HELP)
app.add_typer(prep.app, name="prep")
app.add_typer(pretrain.app, name="pretrain")
app.add_typer(evaluate.segment_app, name="segment")
for commands in (evaluate.app, scenes.app, demo.app, info.app):  # commands of the root: embed, probe, scenes, ...
    app.add_typer(commands)


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


def main() -> None:
    """Entry point of the ``vseg`` console script and of ``python -m vseg``."""
    app(prog_name="vseg")
