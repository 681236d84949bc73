"""``vseg demo``: the whole pipeline on built-in synthetic data, every output under one folder.

Stages: ``prep synth`` (synthetic MovieNet-style movies with known scenes) -> ``prep check`` -> ``prep puzzles`` ->
``pretrain scrl`` (cpu_tiny) -> ``embed`` twice (the pre-trained encoder and a random-init one of the same
architecture) -> ``segment`` on each (3 boundary models of different seeds, tested on the held-out test movies,
their metrics averaged) -> ``scenes`` on a video rendered from the first scenes of a test movie, with colour
histograms and optimal sequential grouping (the best combination measured on the test movies), scored against the
true scene cuts (recall and precision within 3 s). The table at the end compares pre-trained with random init (AP,
F1, mIoU); ``OUT/demo_results.json`` holds the same numbers and the scenes' scores.

Each stage's config is its preset (``synth/cpu_tiny``, ``puzzles/scrl``, ``scrl/cpu_tiny``, ``segment/cpu_tiny``;
the defaults for ``embed`` and ``scenes``), changed by the stage's section of ``vseg/configs/demo/default.yaml`` (16 movies,
the paper's 200-epoch boundary schedule, 64 px keyframes) and then by ``overrides`` addressed by
stage: ``scrl.train.epochs=2`` or ``synth.movies=4``. Run again, it resumes (finished stages are skipped).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vseg import ui
from vseg.config import (
    EmbedConfig,
    PuzzlesConfig,
    ScenesConfig,
    SegmentConfig,
    SynthConfig,
    load_config,
    parse_override,
    read_yaml_mapping,
)
from vseg.train.methods.scrl import ScrlConfig
from vseg.errors import ConfigError, DataError
from vseg.eval.embed import cache_key, run_embed
from vseg.eval.metrics import cut_recall_precision
from vseg.eval.segment import run_segment
from vseg.io import atomic
from vseg.io.movienet import MovieNetLayout, check_dataset, read_split
from vseg.models.encoder import ShotEncoder
from vseg.prep.puzzles import make_puzzles
from vseg.prep.synth import make_synth, movie_index, write_movie_video
from vseg.presets import preset
from vseg.scenes import run_scenes
from vseg.train.methods.scrl import ScrlMethod
from vseg.train.trainer import pretrain

RESULTS_FILE = "demo_results.json"
STAGES_DIR = ".stages"  # OUT/.stages/STAGE.json: a finished stage's inputs, settings and result, to skip it next time
METRICS = (("AP", "ap_movie"), ("F1", "f1_movie"), ("mIoU", "miou"))  # (label, SceneMetrics field)
# The stages whose configs --set reaches, with their presets (None: the model's defaults).
STAGES = {
    "synth": (SynthConfig, "synth/cpu_tiny"),
    "puzzles": (PuzzlesConfig, "puzzles/scrl"),
    "scrl": (ScrlConfig, "scrl/cpu_tiny"),
    "embed": (EmbedConfig, None),
    "segment": (SegmentConfig, "segment/cpu_tiny"),
    "scenes": (ScenesConfig, None),
}
DEMO_PRESET = "demo/default"  # vseg/configs/demo/default.yaml: the demo's changes to each stage's preset
SEGMENT_SEEDS = 3  # boundary models per encoder, averaged
VIDEO_SCENES = 8  # scenes of the held-out movie rendered as the demo video
TOLERANCE_SECONDS = 3.0  # a found scene cut counts as right within this of a true one (LGSS's Recall@3s)


@dataclass
class DemoReport:
    out: Path
    rows: list[tuple[str, str, float]] = field(default_factory=list)
    compared: dict[str, dict[str, float]] = field(default_factory=dict)
    scenes: dict[str, Any] = field(default_factory=dict)

    @property
    def pretraining_helps(self) -> bool:
        pretrained, random_init = self.compared.get("pretrained"), self.compared.get("random_init")
        return bool(pretrained and random_init and pretrained["ap_movie"] > random_init["ap_movie"])


def stage_configs(overrides: Sequence[str] = (), workers: int | None = None) -> dict[str, Any]:
    """Every stage's config: its preset, then ``vseg/configs/demo/default.yaml``'s section for it, then the ``overrides``
    addressed as ``<stage>.<key>=<value>``; ``workers`` for every stage that has workers."""
    demo = read_yaml_mapping(preset(DEMO_PRESET))
    unknown = sorted(set(demo) - set(STAGES))
    if unknown:
        raise ConfigError(f"{preset(DEMO_PRESET)}: unknown stage {unknown[0]!r} (stages: {', '.join(STAGES)})")
    by_stage: dict[str, list[str]] = {name: _dotted(demo.get(name) or {}) for name in STAGES}
    for item in overrides:
        key, _ = parse_override(item)
        stage, _, rest = key.partition(".")
        if stage not in STAGES or not rest:
            raise ConfigError(f"demo --set {item}: the key must start with one of {', '.join(STAGES)} (got {key!r})")
        by_stage[stage].append(item[len(stage) + 1 :])
    configs = {}
    for name, (model, preset_name) in STAGES.items():
        values = {"workers": workers} if workers and "workers" in model.model_fields else {}
        configs[name] = load_config(model, preset(preset_name) if preset_name else None, by_stage[name], values)
    return configs


def _dotted(section: dict[str, Any], prefix: str = "") -> list[str]:
    """A nested YAML section as ``key.sub=value`` overrides (each value as JSON, which YAML reads back)."""
    items = []
    for key, value in section.items():
        if isinstance(value, dict):
            items += _dotted(value, f"{prefix}{key}.")
        else:
            items.append(f"{prefix}{key}={json.dumps(value)}")
    return items


def run_demo(out: Path, workers: int | None = None, overrides: Sequence[str] = ()) -> DemoReport:
    """Run the demo into ``out``; print the stage table and the comparison, write ``OUT/demo_results.json``."""
    out = Path(out)
    configs = stage_configs(overrides, workers)
    ui.info(f"[bold]vseg demo[/bold]: everything goes under {out.resolve()}")
    report = DemoReport(out)

    synth = make_synth(out / "movienet", configs["synth"])
    report.rows.append(
        ("prep synth", f"{synth.movies} movies, {synth.shots:,} shots, {synth.scenes} scenes", synth.seconds)
    )
    layout = MovieNetLayout(out / "movienet")
    started = time.perf_counter()
    check = check_dataset(layout)
    if check.problems:
        raise DataError(check.problems[0].path, check.problems[0].message)
    seconds = time.perf_counter() - started
    report.rows.append(("prep check", f"{len(check.movies)} movies, {check.labelled} labelled, no problems", seconds))

    puzzles = make_puzzles(layout.keyframes, out / "puzzles", configs["puzzles"])
    total = puzzles.written + puzzles.skipped
    report.rows.append(
        ("prep puzzles", f"{total} puzzles of the train split ({puzzles.shots:,} shots)", puzzles.seconds)
    )

    scrl = configs["scrl"].model_copy(deep=True)
    scrl.data.root = out / "puzzles"
    trained = pretrain(ScrlMethod(scrl), out / "scrl", resume="auto")
    last = trained.last
    result = (
        f"{scrl.train.epochs} epochs, loss {last['loss']:.2f}, acc@1 {last['acc1']:.1f}%" if last else "done before"
    )
    report.rows.append(("pretrain scrl", result, trained.seconds))

    encoders = {"pretrained": trained.checkpoint, "random_init": _random_init_encoder(scrl, out / "random_init")}
    for name, checkpoint in encoders.items():
        folder = out / "embeddings" / name
        key = {"encoder": cache_key(checkpoint), "data": str(layout.root), "embed": _settings(configs["embed"])}
        done = _finished(out, f"embed-{name}", key, *(folder / f"{split}.npz" for split in ("train", "val", "test")))
        if done is None:
            embedded = run_embed(checkpoint, layout.root, folder, configs["embed"])
            done = {"shots": sum(s.shots for s in embedded.splits), "arch": embedded.checkpoint.arch}
            _finish(out, f"embed-{name}", key, done)
            report.rows.append((f"embed ({name})", f"{done['shots']:,} shots, {done['arch']}", embedded.seconds))
        else:
            report.rows.append((f"embed ({name})", f"done before: {done['shots']:,} shots, {done['arch']}", 0.0))
    for name in encoders:
        report.compared[name], seconds = _segment_seeds(out, name, configs["segment"])
        shown = ", ".join(f"{label} {report.compared[name][key]:.3f}" for label, key in METRICS)
        report.rows.append((f"segment ({name})", f"test {shown} (mean of {SEGMENT_SEEDS} seeds)", seconds))

    report.scenes = _scenes_on_video(out, configs, layout, report)
    _print(report)
    _write_results(report)
    return report


def _segment_seeds(out: Path, name: str, config: SegmentConfig) -> tuple[dict[str, float], float]:
    """Boundary models on one encoder's embeddings with SEGMENT_SEEDS seeds (the config's, then the next ones):
    their mean test metrics, and the seconds they took. One model on a few synthetic movies varies with its seed
    by a few points of AP; the mean compares the encoders, not the seeds."""
    files = [out / "embeddings" / name / f"{split}.npz" for split in ("train", "val", "test")]
    metrics, seconds = [], 0.0
    for seed in range(config.train.seed, config.train.seed + SEGMENT_SEEDS):
        seeded = config.model_copy(deep=True)
        seeded.train.seed = seed
        run = run_segment(*files, out / "segment" / name / f"seed{seed}", seeded, "auto")
        if run.test is None:
            raise DataError(run.out, "holds a boundary model without test metrics; remove the folder to retrain")
        metrics.append(run.test)
        seconds += run.seconds
    return {key: float(np.mean([getattr(m, key) for m in metrics])) for _, key in METRICS}, seconds


def _random_init_encoder(config: ScrlConfig, folder: Path) -> Path:
    """A random-init encoder of the pre-trained one's architecture (seed 0), saved as a bare state dict."""
    path = folder / "encoder.pth"
    if not path.is_file():
        torch.manual_seed(0)
        model = config.model
        encoder = ShotEncoder(model.arch, 3 * config.data.keyframes_per_shot, model.dim, model.mlp)
        with atomic.atomic_path(path) as tmp:
            torch.save(encoder.state_dict(), tmp)
    return path


def _scenes_on_video(out: Path, configs: dict[str, Any], layout: MovieNetLayout, report: DemoReport) -> dict[str, Any]:
    """Render the first scenes of the first test movie as a video and run ``vseg scenes`` on it with the best
    combination measured on the demo's test movies (BENCHMARKS.md, "Scene methods"): colour histograms and optimal
    sequential grouping (the scenes config's method). The true scenes are drawn beside the found ones."""
    test_movie = read_split(layout.split_file)["test"][0]
    video_path = out / "video" / f"{test_movie}.mp4"
    key = {"synth": _settings(configs["synth"]), "movie": test_movie, "scenes": VIDEO_SCENES}
    video = _finished(out, "render-video", key, video_path)
    if video is None:
        started = time.perf_counter()
        rendered = write_movie_video(configs["synth"], movie_index(test_movie), video_path, scenes=VIDEO_SCENES)
        video = {"frames": rendered.frames, "fps": rendered.fps, "scene_starts": list(rendered.scene_starts)}
        _finish(out, "render-video", key, video)
        seconds, before = time.perf_counter() - started, ""
    else:
        seconds, before = 0.0, "done before: "
    shown = f"{before}{VIDEO_SCENES} held-out scenes, {video['frames']:,} frames of {test_movie}"
    report.rows.append(("render video", shown, seconds))

    config = configs["scenes"]
    key = {"video": key, "scenes": _settings(config)}
    found = _finished(out, "scenes", key, out / "scenes" / "scenes.json", out / "scenes" / "report.html")
    if found is None:
        scenes = run_scenes(video_path, out / "scenes", config, truth_frames=video["scene_starts"][1:])
        found = {"starts": [scene.start_time for scene in scenes.scenes]}
        _finish(out, "scenes", key, found)
        seconds, before = sum(scenes.seconds.values()), ""
    else:
        seconds, before = 0.0, "done before: "
    truth = np.asarray(video["scene_starts"][1:]) / video["fps"]
    recall, precision = cut_recall_precision(truth, np.asarray(found["starts"][1:]), TOLERANCE_SECONDS)
    result = (
        f"{before}{config.method}: {len(found['starts'])} scenes found, {len(video['scene_starts'])} true; cuts "
        f"within {TOLERANCE_SECONDS:g} s: recall {recall:.2f}, precision {precision:.2f}"
    )
    report.rows.append(("scenes", result, seconds))
    return {
        "video": str(video_path),
        "report": str(out / "scenes" / "report.html"),
        "method": config.method,
        "features": "histogram",
        "scenes_found": len(found["starts"]),
        "scenes_true": len(video["scene_starts"]),
        "tolerance_seconds": TOLERANCE_SECONDS,
        "recall": recall,
        "precision": precision,
    }


def _settings(config: Any) -> dict[str, Any]:
    return config.model_dump(mode="json")


def _finished(out: Path, stage: str, key: dict[str, Any], *outputs: Path) -> dict[str, Any] | None:
    """What ``stage`` recorded when it finished from the same inputs and settings (``key``), else None (also when one
    of its ``outputs`` is gone): a run of the demo again skips the stages it finished."""
    if not all(path.is_file() for path in outputs):
        return None
    try:
        saved = json.loads((out / STAGES_DIR / f"{stage}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("result") if isinstance(saved, dict) and saved.get("key") == key else None


def _finish(out: Path, stage: str, key: dict[str, Any], result: dict[str, Any]) -> None:
    atomic.write_text(out / STAGES_DIR / f"{stage}.json", json.dumps({"key": key, "result": result}, indent=1) + "\n")


def _print(report: DemoReport) -> None:
    ui.table("vseg demo", ("stage", "result", "time"), [(s, r, f"{t:.1f} s") for s, r, t in report.rows])
    rows = [
        (name.replace("_", " "), *(f"{values[key]:.3f}" for _, key in METRICS))
        for name, values in report.compared.items()
    ]
    ui.table("scene boundaries on the test movies", ("encoder", *(label for label, _ in METRICS)), rows)
    verdict = "beats" if report.pretraining_helps else "does NOT beat"
    ui.info(f"SCRL pre-training {verdict} random init on test AP.")
    out = report.out
    ui.info(
        f"Outputs under {out.resolve()}: movienet/ (MovieNet layout), puzzles/, scrl/ (pre-training run), "
        f"embeddings/, segment/ (boundary models, metrics.json), video/, scenes/, {RESULTS_FILE}."
    )
    ui.info(f"Open the scene report: {Path(report.scenes['report']).resolve()}")


def _write_results(report: DemoReport) -> None:
    results = {
        **report.compared,
        "pretraining_helps": report.pretraining_helps,
        "scenes": report.scenes,
        "stages": [{"stage": s, "result": r, "seconds": round(t, 2)} for s, r, t in report.rows],
    }
    atomic.write_text(report.out / RESULTS_FILE, json.dumps(results, indent=1) + "\n")
