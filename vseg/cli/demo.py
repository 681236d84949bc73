"""``vseg demo``: the whole pipeline on built-in synthetic data."""

from __future__ import annotations

from pathlib import Path

import typer

from vseg.cli.options import App

app = App()


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("vseg-demo"), "--out", "-o", help="Folder for everything the demo writes."),
    workers: int | None = typer.Option(None, "--workers", "-j", help="Worker processes.", show_default="CPU cores"),
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
