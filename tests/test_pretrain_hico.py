"""``vseg pretrain hico`` end to end: prep clips -> torchrun on 2 gloo ranks -> embed --clips -> probe; and a resume
of the last epoch on 2 ranks from the run's epoch checkpoint, which must end with the same weights bit for bit.

The synthetic untrimmed videos are sequences of segments of four moving-pattern kinds in random colours
(:mod:`vseg.prep.synth_video`). The test checks the whole path and that the objective is being learned (VCL's
loss falls and its accuracy rises), not that the backbone learned the kinds: at this scale no probe separates the
pre-trained network from random init (measured with this test's run, embedded at its training size, k-NN top-1 over
64 held-out segments: random colours 0.23 trained against 0.22 and 0.23 for two random inits; black and white
segments 0.31 trained against 0.98 and 0.91 at random init, which tells stripe orientations apart by itself). The
trained backbone's pooled features barely differ between videos (30 distinct among 32 when rounded to 4 decimals):
the heads' BatchNorm magnifies small differences, so VCL's loss falls while the backbone has learned little.
Nor does retrieval on data where colour gives nothing (issue 28, ``benchmarks/hico_retrieval.py``): over 96
augmented VCL pairs of 16 held-out black-and-white videos (chance 0.011), this run's backbone finds the partner for
0.021 of clips and random inits for 0.104, 0.052 and 0.073; runs on black-and-white videos with Adam (12 or 100
epochs), a higher VCL temperature or no colour jitter do no better, and VCL's loss ends at log 10 (collapsed) in
most of them. BENCHMARKS.md, "Does HiCo learn on synthetic untrimmed videos at CPU scale?", has the measurements.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vseg.cli import app
from vseg.config import ClipsConfig
from vseg.io.embeddings import read_embeddings
from vseg.prep.clips import make_clips
from vseg.prep.synth_video import write_labelled_videos, write_untrimmed_video
from vseg.io.checkpoints import epoch_name, load_checkpoint

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "vseg" / "configs" / "hico" / "cpu_tiny.yaml"
# Fewer epochs than cpu_tiny's 40 keep the suite short; the loss still falls clearly by then (measured, two runs:
# 7.15 and 7.48 in epoch 1, 5.58 and 5.55 in epoch 12; VCL acc@1 0, 0, 6 % in epochs 1-3 and 19, 22, 41 % in 10-12).
EPOCHS = 12
# The probe embeds at the clip geometry of training (hico/cpu_tiny: 8 frames of 32 x 32), as a user embeds a model.
AT_TRAINING_SIZE = ["--set", "clips.frames=8", "--set", "clips.size=32", "--views", "2", "-j", "0"]


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory) -> Path:
    """16 untrimmed videos of 24 s (10 fps, 96 x 72) cut into 5 s pieces by prep clips."""
    videos = tmp_path_factory.mktemp("untrimmed")
    for i in range(16):
        write_untrimmed_video(videos / f"video{i}.mp4", seconds=24, seed=i)
    root = tmp_path_factory.mktemp("clips")
    report = make_clips([videos], root, ClipsConfig(workers=2))
    assert not report.failed and report.clips == 16 * 5
    return root


@pytest.fixture(scope="module")
def probe_lists(tmp_path_factory) -> tuple[Path, Path]:
    """8 labelled videos to fit and 8 to test: the probe here checks the path, not a margin (see the docstring)."""
    folder = tmp_path_factory.mktemp("segments")
    return write_labelled_videos(folder, "train", 8, seed=100), write_labelled_videos(folder, "test", 8, seed=200)


def _equal(a, b) -> bool:
    """Tensors bit for bit (torch.equal), anything else by ``==``."""
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def _probe(runner, checkpoint: Path, lists: tuple[Path, Path], out: Path) -> dict:
    for listing in lists:
        result = runner.invoke(
            app, ["embed", str(checkpoint), "--clips", str(listing), "--out", str(out), *AT_TRAINING_SIZE]
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "probe",
            "--train",
            str(out / "train.npz"),
            "--test",
            str(out / "test.npz"),
            "--k",
            "5",
            "-o",
            str(out / "p.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "p.json").read_text())


def _torchrun_hico(clip_root: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``vseg pretrain hico`` (hico/cpu_tiny, EPOCHS epochs) on 2 gloo ranks, one thread each."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "vseg", "pretrain", "hico", "--config", str(TINY), "--data", str(clip_root), "--out", str(out),
        "--set", "train.workers=0", "--set", f"train.epochs={EPOCHS}", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=out.parent)


def test_torchrun_two_gloo_ranks_trains_resumes_exactly_and_the_probe_reads_the_checkpoint(
    runner, clip_root, probe_lists, tmp_path
):
    out = tmp_path / "run"
    done = _torchrun_hico(clip_root, out, "--set", f"train.checkpoint_every={EPOCHS - 1}")
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = load_checkpoint(out / "checkpoints" / "last.pth")
    assert checkpoint["method"] == "hico" and checkpoint["world_size"] == 2
    assert checkpoint["epoch"] == EPOCHS
    state = checkpoint["state_dict"]
    assert state["module.backbone.Conv_1a.conv1.weight"].shape == (64, 3, 1, 7, 7)
    assert "module.topic_head.net.0.weight" in state or any(k.startswith("module.topic_head.") for k in state)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert len(epochs) == EPOCHS and {"loss", "vcl", "tcl", "pos", "neg", "acc1", "clips_per_s"} <= set(
        epochs[0]
    )
    first, last = np.mean([r["loss"] for r in epochs[:3]]), np.mean([r["loss"] for r in epochs[-3:]])
    assert last < first - 0.5, (first, last)
    first, last = np.mean([r["acc1"] for r in epochs[:3]]), np.mean([r["acc1"] for r in epochs[-3:]])
    assert last > first + 10, (first, last)  # percent of VCL anchors whose partner beats every negative

    # the checkpoint's backbone goes through embed --clips and probe
    report = _probe(runner, out / "checkpoints" / "last.pth", probe_lists, tmp_path / "trained")
    assert report["train_videos"] == report["test_videos"] == 8 and report["classes"] == 4
    assert report["chance"] == 0.25 and report["k"] == 5
    embedded = read_embeddings(tmp_path / "trained" / "test.npz")
    assert embedded.features.shape == (8, 1024) and embedded.labels.tolist() == [i % 4 for i in range(8)]
    assert embedded.movies[0] == "test_00.mp4" and np.isfinite(embedded.features).all()

    # the last epoch again on 2 ranks, resumed from the straight run's epoch checkpoint into another folder, ends
    # with the same weights and BN statistics bit for bit, and the same optimiser state (LARS's momentum buffers)
    resumed = tmp_path / "resumed"
    again = _torchrun_hico(clip_root, resumed, "--resume", str(out / "checkpoints" / epoch_name(EPOCHS - 1)))
    assert again.returncode == 0, again.stderr[-3000:]
    a, b = load_checkpoint(out / "checkpoints" / "last.pth"), load_checkpoint(resumed / "checkpoints" / "last.pth")
    assert a["epoch"] == b["epoch"] == EPOCHS and a["step"] == b["step"] == 4 * EPOCHS
    assert a["state_dict"].keys() == b["state_dict"].keys()
    different = [k for k, v in a["state_dict"].items() if not _equal(v, b["state_dict"][k])]
    assert not different, different[:5]
    moments, again_moments = a["optimizer"]["state"], b["optimizer"]["state"]
    assert moments and moments.keys() == again_moments.keys()
    assert all(_equal(v, again_moments[i][name]) for i in moments for name, v in moments[i].items())
    rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [EPOCHS]
