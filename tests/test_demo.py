"""``vseg demo``: every stage on built-in data, in a reduced configuration (``make demo`` runs the full one)."""

from __future__ import annotations

import csv
import json

import pytest

from vseg.cli import app
from vseg.demo import stage_configs
from vseg.errors import ConfigError

REDUCED = [
    "synth.movies=4",
    "synth.shots_per_movie=64",
    "synth.shot_frames=[16,24]",
    "synth.width=160",
    "synth.height=96",
    "scrl.train.epochs=1",
    "segment.train.epochs=3",
    "segment.train.val_from=1",
]


def test_demo_runs_every_stage_into_one_folder_and_resumes(runner, tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), *(arg for item in REDUCED for arg in ("--set", item))]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert str(out.resolve()) in result.output
    for stage in (
        "prep synth", "prep check", "prep puzzles", "pretrain scrl", "embed (pretrained)", "embed (random_init)",
        "segment (pretrained)", "segment (random_init)", "render video", "scenes",
    ):  # fmt: skip
        assert stage in result.output
    assert "4 movies, 256 shots" in result.output

    results = json.loads((out / "demo_results.json").read_text())
    for name in ("pretrained", "random_init"):  # the mean over 3 boundary models of different seeds
        runs = [json.loads((out / "segment" / name / f"seed{s}" / "metrics.json").read_text()) for s in (100, 101, 102)]
        for key in ("ap_movie", "f1_movie", "miou"):
            assert results[name][key] == pytest.approx(sum(run[key] for run in runs) / 3)
        assert all(run["split"] == "test" for run in runs)
    assert [row["stage"] for row in results["stages"]][:4] == [
        "prep synth",
        "prep check",
        "prep puzzles",
        "pretrain scrl",
    ]

    # The two encoders differ, and each boundary model was trained on its own embeddings.
    assert (out / "random_init" / "encoder.pth").is_file() and (out / "scrl" / "checkpoints" / "last.pth").is_file()
    assert sorted(p.name for p in (out / "embeddings" / "random_init").iterdir()) == [
        f"{name}.{ext}" for name in ("test", "train", "val") for ext in ("npz", "pkl")
    ]

    # vseg scenes ran on a video of held-out scenes, with colour histograms and optimal sequential grouping,
    # scored against the true cuts, which the report draws beside the found scenes.
    split = json.loads((out / "movienet" / "meta" / "split318.json").read_text())
    scenes = results["scenes"]
    assert scenes["video"].endswith(f"{split['test'][0]}.mp4") and scenes["scenes_true"] == 8
    assert scenes["report"] == str(out / "scenes" / "report.html") and "Open the scene report" in result.output
    rows = list(csv.DictReader((out / "scenes" / "scenes.csv").open()))
    assert len(rows) == scenes["scenes_found"] == len(json.loads((out / "scenes" / "scenes.json").read_text()))
    assert scenes["method"] == "osg" and scenes["features"] == "histogram"
    assert scenes["recall"] >= 0.6 and scenes["precision"] >= 0.6  # the demo's target (1.0 and 1.0 here)
    # cuts are paired one to one, so recall x true cuts and precision x found cuts count the same pairs
    pairs = scenes["recall"] * (scenes["scenes_true"] - 1)
    assert pairs == pytest.approx(scenes["precision"] * (scenes["scenes_found"] - 1)) and pairs == round(pairs)
    page = (out / "scenes" / "report.html").read_text()
    assert "optimal sequential grouping" in page and "true scenes (green, " in page

    checkpoint = out / "scrl" / "checkpoints" / "last.pth"
    trained_at = checkpoint.stat().st_mtime_ns
    outputs = [out / "video" / f"{split['test'][0]}.mp4", out / "scenes" / "report.html", out / "embeddings" /
               "pretrained" / "test.npz"]  # fmt: skip
    written_at = [path.stat().st_mtime_ns for path in outputs]
    again = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert checkpoint.stat().st_mtime_ns == trained_at  # finished stages are skipped, and say so
    rows = {row["stage"]: row for row in json.loads((out / "demo_results.json").read_text())["stages"]}
    for stage in ("pretrain scrl", "embed (pretrained)", "embed (random_init)", "render video", "scenes"):
        assert rows[stage]["result"].startswith("done before") and rows[stage]["seconds"] == 0.0, rows[stage]
    assert [path.stat().st_mtime_ns for path in outputs] == written_at
    again_results = json.loads((out / "demo_results.json").read_text())
    assert again_results["pretrained"] == results["pretrained"] and again_results["scenes"] == results["scenes"]

    # a changed setting redoes the stages it shapes, and a removed output its stage; the others stay done
    outputs[0].unlink()  # the video
    changed = runner.invoke(app, [*args, "--set", "scenes.min_scene_shots=2"], env={"COLUMNS": "200"})
    assert changed.exit_code == 0, changed.output
    rows = {row["stage"]: row for row in json.loads((out / "demo_results.json").read_text())["stages"]}
    assert [stage for stage, row in rows.items() if not row["result"].startswith("done before")] == [
        "prep synth", "prep check", "prep puzzles", "segment (pretrained)", "segment (random_init)", "render video",
        "scenes",
    ]  # fmt: skip
    assert outputs[0].is_file() and rows["embed (pretrained)"]["seconds"] == 0.0


def test_demo_overrides_reach_their_stage_and_unknown_stages_are_refused():
    configs = stage_configs(["scrl.train.epochs=2", "synth.movies=3", "scenes.min_scene_shots=2"], workers=1)
    assert configs["scrl"].train.epochs == 2 and configs["synth"].movies == 3 and configs["synth"].workers == 1
    assert configs["scenes"].min_scene_shots == 2 and configs["scenes"].embed.image_size == 64
    assert configs["segment"].model.hidden == 128  # the segment/cpu_tiny preset
    with pytest.raises(ConfigError, match="must start with one of synth, puzzles"):
        stage_configs(["epochs=2"])
    with pytest.raises(ConfigError, match="movie"):
        stage_configs(["synth.moviez=3"])
