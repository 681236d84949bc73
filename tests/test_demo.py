"""``vseg demo``: the pipeline on built-in data, under one folder."""

from __future__ import annotations

import json

from vseg.cli import app


def test_demo_runs_the_existing_stages_into_one_folder_and_resumes(runner, tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert str(out.resolve()) in result.output
    for stage in ("prep synth", "prep check", "prep puzzles", "pretrain scrl", "scene probe", "embed", "segment"):
        assert stage in result.output
    assert "8 movies, 1,280 shots" in result.output
    manifest = json.loads((out / "puzzles" / "manifest.json").read_text())
    split = json.loads((out / "movienet" / "meta" / "split318.json").read_text())
    train, test = split["train"], split["test"]
    assert [m["movie"] for m in manifest["movies"]] == train  # SCRL pre-trains on the train split
    assert manifest["puzzles"] == len(train) * (160 // 16)
    assert (out / "scrl" / "checkpoints" / "epoch_0004.pth").is_file()
    metrics = json.loads((out / "segment" / "metrics.json").read_text())
    assert metrics["split"] == "test" and 0 <= metrics["ap_movie"] <= 1 and metrics["movies"] == len(test)
    assert sorted(p.name for p in (out / "embeddings").iterdir()) == [
        f"{name}.{ext}" for name in ("test", "train", "val") for ext in ("npz", "pkl")
    ]
    again = runner.invoke(app, ["demo", "--out", str(out)], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "already trained" in again.output  # a second run resumes, retrains nothing
