"""``vseg demo``: the pipeline on built-in synthetic data, every output under one folder.

Today it runs the stages that exist: ``prep synth`` -> ``prep check`` -> ``prep puzzles``. Pre-training,
embedding and scene segmentation join it as they land.
"""

from __future__ import annotations

import time
from pathlib import Path

from vseg import ui
from vseg.config import PuzzlesConfig, SynthConfig, load_config
from vseg.errors import DataError
from vseg.io.movienet import MovieNetLayout, check_dataset
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth
from vseg.presets import preset


def run_demo(out: Path, workers: int | None = None) -> list[tuple[str, str, float]]:
    """Run the demo into ``out``; return (stage, result, seconds) rows, also printed as a table."""
    out = Path(out)
    ui.info(f"[bold]vseg demo[/bold]: everything goes under {out.resolve()}")
    extra = {"workers": workers} if workers else {}
    rows = []

    synth = make_synth(out / "movienet", load_config(SynthConfig, preset("synth/cpu_tiny"), values=extra))
    rows.append(("prep synth", f"{synth.movies} movies, {synth.shots:,} shots, {synth.scenes} scenes", synth.seconds))

    layout = MovieNetLayout(out / "movienet")
    started = time.perf_counter()
    check = check_dataset(layout)
    if check.problems:
        raise DataError(check.problems[0].path, check.problems[0].message)
    seconds = time.perf_counter() - started
    rows.append(("prep check", f"{len(check.movies)} movies, {check.labelled} labelled, no problems", seconds))

    puzzles = make_puzzles(
        layout.keyframes, out / "puzzles", load_config(PuzzlesConfig, preset("puzzles/scrl"), values=extra)
    )
    total = puzzles.written + puzzles.skipped
    rows.append(("prep puzzles", f"{total} puzzles of the train split ({puzzles.shots:,} shots)", puzzles.seconds))

    ui.table("vseg demo", ("stage", "result", "time"), [(s, r, f"{t:.1f} s") for s, r, t in rows])
    ui.info(
        "Pre-training (SCRL), embedding and the scene-boundary model are not in this release yet; "
        "the demo runs them as they land. Outputs: "
        f"{out / 'movienet'} (MovieNet layout), {out / 'puzzles'} (SCRL puzzles)."
    )
    return rows
