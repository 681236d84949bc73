"""``vseg demo``: the pipeline on built-in synthetic data, every output under one folder.

It runs ``prep synth`` -> ``prep check`` -> ``prep puzzles`` -> ``pretrain scrl`` (cpu_tiny), a scene probe of the
encoder on held-out movies (random init against pre-trained), then ``embed`` with the pre-trained encoder and
``segment`` (cpu_tiny) on the embeddings. Run again, it resumes (finished stages are skipped).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vseg import ui
from vseg.config import EmbedConfig, PuzzlesConfig, ScrlConfig, SegmentConfig, SynthConfig, load_config
from vseg.errors import DataError
from vseg.eval.embed import run_embed
from vseg.eval.probe import scene_probe
from vseg.eval.segment import run_segment
from vseg.io.movienet import MovieNetLayout, check_dataset, read_split
from vseg.models.encoder import ShotEncoder
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth
from vseg.presets import preset
from vseg.train.checkpoint import load_checkpoint, strip_prefix
from vseg.train.scrl import ScrlMethod
from vseg.train.trainer import pretrain


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

    scrl = load_config(ScrlConfig, preset("scrl/cpu_tiny"), values={"data.root": out / "puzzles"})
    report = pretrain(ScrlMethod(scrl), out / "scrl", resume="auto")
    last = report.last
    result = f"{scrl.train.epochs} epochs, loss {last.get('loss', float('nan')):.2f}, acc@1 {last.get('acc1', 0):.1f}%"
    rows.append(("pretrain scrl", result if last else "already trained", report.seconds))

    started = time.perf_counter()
    at_init, trained = _probe(layout, scrl, report.checkpoint)
    seconds = time.perf_counter() - started
    rows.append(("scene probe", f"same-scene nearest shot: random init {at_init:.3f}, SCRL {trained:.3f}", seconds))

    embedded = run_embed(report.checkpoint, layout.root, out / "embeddings", EmbedConfig(image_size=64, **extra))
    shots = sum(s.shots for s in embedded.splits)
    rows.append(
        ("embed", f"{shots:,} shots of {len(embedded.splits)} splits, {embedded.checkpoint.arch}", embedded.seconds)
    )

    files = [out / "embeddings" / f"{name}.npz" for name in ("train", "val", "test")]
    segment = run_segment(*files, out / "segment", load_config(SegmentConfig, preset("segment/cpu_tiny")), "auto")
    test = segment.test
    result = f"test AP {test.ap_movie:.3f}, F1 {test.f1_movie:.3f}, mIoU {test.miou:.3f}" if test else "already trained"
    rows.append(("segment", result, segment.seconds))

    ui.table("vseg demo", ("stage", "result", "time"), [(s, r, f"{t:.1f} s") for s, r, t in rows])
    ui.info(
        f"Outputs: {out / 'movienet'} (MovieNet layout), {out / 'puzzles'} (SCRL puzzles), {out / 'scrl'} "
        f"(pre-training run), {out / 'embeddings'} (shot embeddings), {out / 'segment'} (boundary model, metrics.json)."
    )
    return rows


def builtin_puzzles(folder: Path) -> Path:
    """The demo's synthetic movies (synth/cpu_tiny) under ``folder/movienet`` and the puzzles of their train split
    under ``folder/puzzles`` (returned); finished work is kept, so a second call costs nothing."""
    folder = Path(folder)
    make_synth(folder / "movienet", load_config(SynthConfig, preset("synth/cpu_tiny")))
    make_puzzles(folder / "movienet" / "240P", folder / "puzzles", load_config(PuzzlesConfig, preset("puzzles/scrl")))
    return folder / "puzzles"


def _probe(layout: MovieNetLayout, config: ScrlConfig, checkpoint: Path) -> tuple[float, float]:
    """:func:`~vseg.eval.probe.scene_probe` on the val and test movies: a random-init encoder, then the trained one."""
    split = read_split(layout.split_file)
    held_out = split.get("val", []) + split.get("test", [])
    torch.manual_seed(0)
    encoder = ShotEncoder(config.model.arch, 3 * config.data.keyframes_per_shot, config.model.dim, config.model.mlp)
    at_init = scene_probe(encoder, layout.root, held_out, config.data.image_size)
    encoder.load_state_dict(strip_prefix(load_checkpoint(checkpoint)["state_dict"], "module.encoder_q."))
    return at_init, scene_probe(encoder, layout.root, held_out, config.data.image_size)
