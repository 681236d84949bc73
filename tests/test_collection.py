"""Scenes of a whole collection (``vseg scenes INPUT... --out DIR``) and the library front (``vseg.detect_scenes``,
``vseg.write_scenes``, ``vseg.detect_scenes_many``): a folder of two good videos (one in a sub-folder), a corrupt
file and a text file; index rows and statuses, a failure that stays alone, resume, --force, shards, @LIST, the Ray
engine on a real local runtime, and a library call that writes nothing and imports no torch."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import vseg
from vseg.cli import app
from vseg.config import ScenesConfig
from vseg.scenes.collection import find_videos, shard_of

from .synthetic_video import make_cut_video

FPS = 24


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """``good.mp4`` (7 shots), ``sub/deeper.mkv`` (5 shots), ``broken.mp4`` (a cut-off file header), ``notes.txt``
    and a hidden ``.hidden.mp4`` (neither is a video to find)."""
    root = tmp_path_factory.mktemp("library")
    make_cut_video(root / "good.mp4", 140, [20, 40, 60, 80, 100, 120], FPS, width=128, height=72)
    (root / "sub").mkdir()
    make_cut_video(root / "sub" / "deeper.mkv", 100, [20, 40, 60, 80], FPS, width=128, height=72, seed=1)
    (root / "broken.mp4").write_bytes((root / "good.mp4").read_bytes()[:3000])
    (root / "notes.txt").write_text("not a video\n")
    (root / ".hidden.mp4").write_bytes((root / "good.mp4").read_bytes())
    return root


def _run(runner, *args):
    return runner.invoke(app, ["scenes", *map(str, args)])


def _index(out: Path, name: str = "index") -> dict[str, dict]:
    return {Path(row["path"]).name: row for row in json.loads((out / f"{name}.json").read_text())["videos"]}


def _files(folder: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def first_run(library, tmp_path_factory):
    """``vseg scenes LIBRARY --out OUT --jobs 2``: (OUT, the CLI's result)."""
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("collection") / "out"
    return out, _run(CliRunner(), library, "--out", out, "--jobs", 2)


def test_a_folder_gives_a_folder_per_video_and_an_index(first_run, library):
    out, result = first_run
    assert result.exit_code == 1, result.output  # one video failed
    rows = _index(out)
    assert sorted(rows) == ["broken.mp4", "deeper.mkv", "good.mp4"]  # recursive; .txt and hidden files left out
    assert [rows[name]["status"] for name in ("good.mp4", "deeper.mkv", "broken.mp4")] == ["done", "done", "failed"]
    assert (rows["good.mp4"]["out"], rows["deeper.mkv"]["out"], rows["broken.mp4"]["out"]) == ("good", "sub/deeper", "")
    for name, shots in (("good.mp4", 7), ("deeper.mkv", 5)):
        row, folder = rows[name], out / rows[name]["out"]
        scenes = json.loads((folder / "scenes.json").read_text())
        assert (row["shots"], row["scenes"], row["reason"]) == (shots, len(scenes), "")
        assert scenes[-1]["last_shot"] == shots - 1 and row["frames"] == scenes[-1]["end_frame"] + 1
        for name in ("scenes.csv", "scenes.edl", "report.html", "timeline.png", "thumbnail.jpg", "vseg_done.json"):
            assert (folder / name).is_file(), name
    # the failure is alone and named, in the index and once on the terminal; it leaves no folder behind
    reason = rows["broken.mp4"]["reason"]
    assert reason.startswith(f"{library / 'broken.mp4'}: cannot read video"), reason
    assert result.output.count("broken.mp4: cannot read video") == 1
    assert "1 of 3 videos failed" in result.output and "Traceback" not in result.output
    assert not (out / "broken").exists() and not [p for p in out.rglob(".*")]  # no staging folder left
    # the CSV holds the same rows
    csv_lines = (out / "index.csv").read_text().splitlines()
    assert csv_lines[0] == "path,status,reason,out,scenes,shots,frames,seconds" and len(csv_lines) == 4
    html = (out / "index.html").read_text()
    assert 'href="good/report.html"' in html and 'src="sub/deeper/thumbnail.jpg"' in html
    assert "cannot read video" in html


def test_a_second_run_skips_everything_and_changes_nothing(first_run, library, runner):
    out, _ = first_run
    before = {path: stamp for path, stamp in _files(out).items() if not path.name.startswith("index.")}
    result = _run(runner, library, "--out", out, "--jobs", 2)
    assert result.exit_code == 1
    rows = _index(out)
    assert [rows[name]["status"] for name in ("good.mp4", "deeper.mkv", "broken.mp4")] == ["skipped", "skipped", "failed"]
    assert rows["good.mp4"]["scenes"] >= 1 and rows["good.mp4"]["shots"] == 7  # the earlier run's numbers
    after = {path: stamp for path, stamp in _files(out).items() if not path.name.startswith("index.")}
    assert after == before


def test_force_a_changed_file_or_changed_settings_redo_a_video(library, runner, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("good.mp4", "other.mp4"):
        (videos / name).write_bytes((library / "good.mp4").read_bytes())
    out = tmp_path / "out"
    assert _run(runner, videos, "--out", out, "--jobs", 1).exit_code == 0
    os.utime(videos / "other.mp4", ns=(1, 1))  # another modification time: the file may have changed
    assert _run(runner, videos, "--out", out, "--jobs", 1).exit_code == 0
    assert {name: row["status"] for name, row in _index(out).items()} == {"good.mp4": "skipped", "other.mp4": "done"}
    assert _run(runner, videos, "--out", out, "--jobs", 1, "--method", "window").exit_code == 0
    assert {row["status"] for row in _index(out).values()} == {"done"}
    assert "window scorer" in (out / "good" / "report.html").read_text()
    # settings that change no result (how many jobs) keep the videos done; --force redoes them
    assert _run(runner, videos, "--out", out, "--jobs", 2, "--method", "window").exit_code == 0
    assert {row["status"] for row in _index(out).values()} == {"skipped"}
    assert _run(runner, videos, "--out", out, "--jobs", 1, "--method", "window", "--force").exit_code == 0
    assert {row["status"] for row in _index(out).values()} == {"done"}


def test_shards_partition_the_sorted_inputs(tmp_path):
    for index in range(7):
        (tmp_path / f"v{index}.mp4").write_bytes(b"")
    videos = find_videos([tmp_path])
    assert [video.name for video, _ in videos] == [f"v{i}.mp4" for i in range(7)]
    for count in (1, 2, 3, 7, 9):
        shards = [shard_of(videos, f"{index}/{count}") for index in range(count)]
        names = [video.name for shard in shards for video, _ in shard]
        assert sorted(names) == sorted(video.name for video, _ in videos) and len(set(names)) == 7


def test_shards_write_their_own_index_and_together_cover_the_list(library, runner, tmp_path):
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# two videos\n{library / 'good.mp4'}\n\n{os.path.relpath(library / 'sub', tmp_path)}  # a folder\n")
    out = tmp_path / "out"
    for index in (0, 1):  # --split in this process, under the collection's progress bar
        result = _run(runner, f"@{listing}", "--out", out, "--shard", f"{index}/2", "--jobs", 1, "--split")
        assert result.exit_code == 0, result.output
    first, second = _index(out, "index-0-of-2"), _index(out, "index-1-of-2")
    assert sorted([*first, *second]) == ["deeper.mkv", "good.mp4"] and len(first) == len(second) == 1
    for folder in (out / "good", out / "sub" / "deeper"):
        scenes = json.loads((folder / "scenes.json").read_text())
        assert len(list((folder / "scenes").glob("*-scene-*.mp4"))) == len(scenes)


def test_bad_models_are_refused_before_any_video(library, runner, tmp_path):
    fake = tmp_path / "model.pth"
    fake.write_bytes(b"not a checkpoint")
    out = tmp_path / "out"
    result = _run(runner, library, "--out", out, "--segmenter", fake)
    assert result.exit_code == 2 and str(fake) in result.output and "Traceback" not in result.output
    assert not out.exists()
    missing = _run(runner, library / "nothing-here", tmp_path / "x.mp4", "--out", out)
    assert missing.exit_code == 2 and "nothing-here: no such video file, folder or @LIST" in missing.output
    several = _run(runner, library / "good.mp4", library / "sub" / "deeper.mkv")
    assert several.exit_code == 2 and "--out is needed" in several.output


def test_the_ray_engine_gives_the_same_scenes_as_the_local_one(first_run, library, tmp_path):
    """Each video a task of a real local Ray runtime (2 CPUs)."""
    ray = pytest.importorskip("ray")
    out, _ = first_run
    from typer.testing import CliRunner

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = _run(CliRunner(), library, "--out", tmp_path / "ray", "--engine", "ray", "--jobs", 2)
        values = {
            item.video.name if isinstance(item, vseg.Scenes) else Path(item.path).name: item
            for item in vseg.detect_scenes_many([library], engine="ray", jobs=2)
        }
    finally:
        ray.shutdown()
    assert result.exit_code == 1, result.output
    local, remote = _index(out), _index(tmp_path / "ray")
    assert {name: row["status"] for name, row in remote.items()} == {"good.mp4": "done", "deeper.mkv": "done",
                                                                     "broken.mp4": "failed"}  # fmt: skip
    assert {name: (row["scenes"], row["shots"], row["frames"]) for name, row in remote.items()} == {
        name: (row["scenes"], row["shots"], row["frames"]) for name, row in local.items()
    }
    for name in ("good", "sub/deeper"):
        assert (tmp_path / "ray" / name / "scenes.json").read_text() == (out / name / "scenes.json").read_text()
    assert isinstance(values["broken.mp4"], vseg.DataError) and "cannot read video" in str(values["broken.mp4"])
    found = json.loads((out / "good" / "scenes.json").read_text())
    assert [scene.as_row() for scene in values["good.mp4"]] == found


# ----------------------------------------------------------------------------------------------------- library


def test_detect_scenes_writes_nothing_and_imports_no_torch(library, tmp_path):
    """In a fresh interpreter: the scenes of a video, returned, with nothing written anywhere and torch not loaded."""
    script = (
        "import sys, vseg\n"
        f"result = vseg.detect_scenes({str(library / 'good.mp4')!r}, min_scene_shots=1, osg__scenes=3)\n"
        "print(len(result), result.shots, [s.first_shot for s in result], 'torch' in sys.modules)\n"
    )
    temp = tmp_path / "temp"
    temp.mkdir()
    before = _files(library)
    env = {**os.environ, "TMPDIR": str(temp)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    scenes, shots, firsts, torch_loaded = done.stdout.split(" ", 3)
    assert (scenes, shots, torch_loaded.strip().endswith("False")) == ("3", "7", True)
    assert _files(library) == before and sorted(p.name for p in tmp_path.iterdir()) == ["temp"]
    assert list(temp.iterdir()) == []


def test_detect_scenes_reports_progress_and_takes_settings(library, tmp_path):
    calls = []
    result = vseg.detect_scenes(library / "good.mp4", "scenes/default", progress=lambda *c: calls.append(c),
                                method="window", min_scene_shots=2)  # fmt: skip
    stages = [stage for stage, _, _ in calls]
    assert stages[0] == "shots" and stages[-1] == "done" and calls[-2][1:] == (140, 140)
    assert all(done <= total for _, done, total in calls)
    assert result.config.method == "window" and result.config.min_scene_shots == 2
    assert "window scorer" in result.scoring and result.features.shape == (7, 128)
    assert all(scene.shots >= 2 for scene in result)
    assert result.prob.shape == (7,) and result.prob[-1] == 0
    with pytest.raises(vseg.ConfigError, match="osg.scenez"):
        vseg.detect_scenes(library / "good.mp4", osg__scenez=3)
    files = vseg.write_scenes(result, tmp_path / "out", formats=["json", "edl"])
    assert sorted(path.name for path in files) == ["scenes.edl", "scenes.json"]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["scenes.edl", "scenes.json"]
    with pytest.raises(ValueError, match="unknown scene formats pdf"):
        vseg.write_scenes(result, tmp_path / "out", formats=["pdf"])


def test_an_encoder_object_gives_features_and_its_keyframes_are_cleaned_up(library, tmp_path, monkeypatch):
    import torch

    from vseg.eval.embed import load_shot_encoder
    from vseg.models.encoder import ShotEncoder

    torch.manual_seed(0)
    torch.save(ShotEncoder("resnet18", 9, 128, mlp=False).state_dict(), tmp_path / "encoder.pth")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    loaded = load_shot_encoder(tmp_path / "encoder.pth")
    config = ScenesConfig().model_copy(update={"embed": ScenesConfig().embed.model_copy(update={"image_size": 32, "device": "cpu", "workers": 0})})
    result = vseg.detect_scenes(library / "sub" / "deeper.mkv", config, encoder=loaded)
    assert result.features.shape == (5, 512) and np.isfinite(result.features).all()
    assert result.features_name == "encoder (resnet18)" and result.keyframes is None
    assert list(temp.iterdir()) == []  # the keyframes it needed were written there and removed


def test_an_interrupted_run_leaves_no_half_written_folder(library, tmp_path, monkeypatch):
    from vseg.scenes import collection, run_collection

    def interrupted(result, out, formats=None, progress=None):
        (out / "scenes.json").write_text("[]")  # a first file, then the user presses Ctrl-C
        raise KeyboardInterrupt

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "film.mp4").write_bytes((library / "good.mp4").read_bytes())
    out = tmp_path / "out"
    config = ScenesConfig(jobs=1)
    monkeypatch.setattr(collection, "write_scenes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_collection([videos], out, config)
    assert not (out / "film").exists() and (out / ".film.partial").is_dir()  # only the hidden staging folder
    monkeypatch.undo()
    report = run_collection([videos], out, config)
    assert [row.status for row in report.rows] == ["done"]
    assert sorted(path.name for path in out.iterdir()) == ["film", "index.csv", "index.html", "index.json"]


def test_an_encoder_embeds_at_the_size_it_was_trained_at(library, tmp_path):
    """The size a checkpoint records is the size scenes embed at, unless one is given (with a warning)."""
    import dataclasses

    import torch

    from vseg.eval.embed import embed_keyframes, load_shot_encoder
    from vseg.models.encoder import ShotEncoder

    torch.manual_seed(0)
    torch.save(ShotEncoder("resnet18", 9, 128, mlp=False).state_dict(), tmp_path / "encoder.pth")
    loaded = dataclasses.replace(load_shot_encoder(tmp_path / "encoder.pth"), image_size=32)  # trained at 32 px
    assert vseg.load_models(encoder=loaded).image_size == 32
    assert vseg.load_models(encoder=load_shot_encoder(tmp_path / "encoder.pth")).image_size == 224  # unrecorded
    config = ScenesConfig().model_copy(update={"embed": ScenesConfig().embed.model_copy(update={"device": "cpu", "workers": 0})})
    result = vseg.detect_scenes(library / "good.mp4", config, encoder=loaded, keyframes=tmp_path / "kf")
    device = torch.device("cpu")
    at = {size: embed_keyframes(loaded, result.keyframes, config.embed, device, size) for size in (32, 64)}
    assert np.array_equal(result.features, at[32]) and not np.allclose(result.features, at[64])
    from vseg import ui

    warned = []
    original, ui.warn = ui.warn, warned.append
    try:
        assert vseg.load_models(encoder=loaded, image_size=64).image_size == 64
    finally:
        ui.warn = original
    assert len(warned) == 1 and "trained at 32 px" in warned[0]


def test_scenes_that_cannot_be_met_say_why_and_the_report_has_a_poster(library, tmp_path):
    result = vseg.detect_scenes(library / "good.mp4", osg__scenes=5, min_scene_shots=3)  # 7 shots: 2 scenes at most
    assert len(result) == 2
    assert result.warnings == [
        f"{library / 'good.mp4'}: 5 scenes asked for (--scenes), 2 found: 7 shots make at most 2 scenes of at "
        "least 3 shots (--min-scene-shots)"
    ]
    assert vseg.detect_scenes(library / "good.mp4", osg__scenes=2, min_scene_shots=3).warnings == []
    page = vseg.write_scenes(result, tmp_path, formats=["report"])[0].read_text()
    assert re.search(r'<video id="player"[^>]* poster="data:image/jpeg;base64,[A-Za-z0-9+/=]{200,}"', page)
    assert "2 scenes asked" not in page and "5 scenes asked for" in page  # the warning is among the notes
