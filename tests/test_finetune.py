"""``vseg finetune``: HiCo's fine-tuning and test on labelled synthetic videos, its linear modes, its refusals; and
HiCo pre-training on trimmed videos (``data.trimmed_list``).

The labelled videos are single segments of the four moving-pattern kinds of :mod:`vseg.prep.synth_video` (chance
0.25). At test scale a random-init S3D-G does not learn the kinds in a few steps, so the learning test checks that a
fine-tuning step fits a fixed batch; the comparison with HiCo pre-training and the frozen probe is in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import vseg.train.methods.finetune as finetune_module
from vseg.cli import app
from vseg.config import load_config
from vseg.data.augment import ViewSpec
from vseg.errors import ConfigError
from vseg.data.trimmed import LabelledClips, TrimmedClips, listed_videos
from vseg.data.video_views import interval_indices, interval_span, view_starts
from vseg.data.untrimmed import ClipSampling, CroppedClips, clip_views
from vseg.io.checkpoints import FORMAT, load_checkpoint, save_checkpoint, with_prefix
from vseg.io.cliplist import read_labelled_lines
from vseg.models.classifier import ClipClassifier
from vseg.models.s3dg import S3DG
from vseg.prep.synth_video import KINDS, render_segment, write_labelled_videos
from vseg.presets import preset
from vseg.runtime import DistEnv
from vseg.train.methods.finetune import FinetuneConfig, FinetuneMethod, class_count
from vseg.train.methods.hico import HicoConfig, HicoMethod, hico_view
from vseg.train.schedule import base_lr, lr_at
from vseg.train.trainer import build_optimizer, train_step

REPO = Path(__file__).resolve().parent.parent
ONE_RANK = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
FAST = ["--set", "train.workers=0", "--set", "test.views=2"]


@pytest.fixture(scope="module")
def lists(tmp_path_factory) -> tuple[Path, Path]:
    """8 training and 4 test videos of 2 s (10 fps, 96 x 72), the four kinds in turn, and their lists."""
    folder = tmp_path_factory.mktemp("labelled")
    train = write_labelled_videos(folder, "train", 8, seed=100, seconds=2)
    return train, write_labelled_videos(folder, "test", 4, seed=200, seconds=2)


@pytest.fixture(scope="module")
def hico_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint laid out as ``vseg pretrain hico`` writes it (S3D-G under module.backbone., a head beside it)."""
    torch.manual_seed(1)
    state = {f"backbone.{k}": v for k, v in S3DG().state_dict().items()}
    path = tmp_path_factory.mktemp("init") / "hico.pth"
    save_checkpoint(path, {"format": FORMAT, "method": "hico", "state_dict": with_prefix({**state,
                    "vcl_head.weight": torch.zeros(2, 2)})})  # fmt: skip
    return path


def _env() -> dict[str, str]:
    """One thread per rank, and this checkout's vseg (the ranks run in another folder)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def test_torchrun_fine_tunes_from_a_hico_checkpoint_tests_on_10_views_and_resumes(
    lists, hico_checkpoint, runner, tmp_path
):
    train, test = lists
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "vseg", "finetune", "--config", "finetune/cpu_tiny", "--train", str(train), "--test", str(test),
        "--init", str(hico_checkpoint), "--out", str(out), "--epochs", "2", "--set", "train.batch_size=4",
        "--set", "train.workers=0",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["views"] == 10 and metrics["test_videos"] == 4 and metrics["classes"] == 4
    assert 0 <= metrics["top1"] <= 1 and metrics["top5"] == 1.0  # 4 classes: every label is in the top 5
    assert 0 <= metrics["single_view_top1"] <= 1 and metrics["checkpoint"] == "checkpoints/last.pth"
    checkpoint = load_checkpoint(out / "checkpoints" / "last.pth")
    assert checkpoint["method"] == "finetune" and checkpoint["world_size"] == 2 and checkpoint["epoch"] == 2
    state = checkpoint["state_dict"]
    assert state["module.head.weight"].shape == (4, 1024)
    init = load_checkpoint(hico_checkpoint)["state_dict"]["module.backbone.Conv_1a.conv1.weight"]
    trained = state["module.backbone.Conv_1a.conv1.weight"]
    assert not torch.equal(init, trained)  # full fine-tuning moved the backbone, which started from --init
    assert (out / "config.yaml").read_text().startswith("# effective config of `vseg finetune`")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2] and "acc1" in rows[-1]

    # one more epoch in one process: the run continues from last.pth and is tested again
    (out / "metrics.json").unlink()
    result = runner.invoke(app, ["finetune", "--config", "finetune/cpu_tiny", "--train", str(train), "--test",
                                 str(test), "--init", str(hico_checkpoint), "--out", str(out), "--epochs", "3",
                                 "--resume", "auto", "--set", "train.batch_size=4", "--set", "train.workers=0",
                                 ])  # fmt: skip
    assert result.exit_code == 0, result.output
    resumed = load_checkpoint(out / "checkpoints" / "last.pth")
    # 8 videos in global batches of 4: 2 steps an epoch on any number of ranks. The optimiser, the step counter and
    # the schedule went on from epoch 2 (a restart would have Adam at step 2 and the warm-up's lr)
    assert resumed["epoch"] == 3 and resumed["step"] == 6
    assert {int(state["step"]) for state in resumed["optimizer"]["state"].values()} == {6}
    config = load_config(FinetuneConfig, preset("finetune/cpu_tiny"), ["train.batch_size=4", "train.epochs=3"])
    lr = lr_at(config.optim, base_lr(config.optim, 4), epoch=2, step=1, steps_per_epoch=2, epochs=3)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["event"] == "epoch"] == [1, 2, 3] and rows[-1]["lr"] == pytest.approx(lr)
    assert not torch.equal(resumed["state_dict"]["module.head.weight"], state["module.head.weight"])
    assert json.loads((out / "metrics.json").read_text())["test_videos"] == 4


# The test phase by hand: 4 test videos (labels 0-3) x 4 views, each view's logits set in this table. Summing the
# views' softmax scores gets videos 0, 1 and 3 right; summing logits would get video 0 wrong (one view's 10 outweighs
# three views' 3); the centre view (index 2 of 4) alone gets videos 0 and 3 right.
VIEW_LOGITS = torch.tensor([
    [[0.0, 10, 0, 0], [3, 0, 0, 0], [3, 0, 0, 0], [3, 0, 0, 0]],
    [[0.0, 3, 0, 0], [0, 3, 0, 0], [0, 0, 1, 0], [0, 3, 0, 0]],
    [[5.0, 0, 0, 0]] * 4,
    [[0.0, 0, 0, 4]] * 4,
])  # fmt: skip


class _NumberedViews(torch.utils.data.Dataset):
    """Stands for VideoViews: view v of video i is a clip filled with the number 10 i + v."""

    def __init__(self, paths, views, **_):
        self.paths, self.views = paths, views

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return torch.stack([torch.full((3, 2, 4, 4), 10.0 * index + v) for v in range(self.views)])


class _TableModel(nn.Module):
    """Reads each clip's number back and returns that view's row of VIEW_LOGITS."""

    def forward(self, clips):
        code = clips[:, 0, 0, 0, 0].round().long()
        return VIEW_LOGITS[code // 10, code % 10]


def _test_phase(rank: int, world_size: int, out: str) -> tuple[torch.Tensor, dict]:
    """The test phase over :class:`_NumberedViews` with :class:`_TableModel` as ``rank`` of ``world_size`` (2: on the
    session's gloo ranks): the gathered scores and the metrics."""
    views = finetune_module.VideoViews
    finetune_module.VideoViews = _NumberedViews
    try:
        config = FinetuneConfig()
        config.test.views, config.test.batch_size, config.train.workers = 4, 1, 0
        method = FinetuneMethod(config)
        method.classes = 4
        method.test_videos = [SimpleNamespace(path=Path(f"v{i}.mp4"), label=i) for i in range(4)]
        env = DistEnv(rank=rank, world_size=world_size, local_rank=rank, device=torch.device("cpu"))
        return method._test_scores(_TableModel(), env), method.finish(_TableModel(), env, Path(out))
    finally:
        finetune_module.VideoViews = views


def _one_training_step(rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """One step of ``finetune/cpu_tiny`` (Adam, BN in groups of 2 clips) on this rank's share of a global batch of 4
    clips, through the trainer's ``train_step`` and DDP when there are ranks; the weights after it. In float64: Adam's
    first step moves a weight by about lr x sign(gradient), so in float32 the weights whose gradient is rounding
    noise (deep S3D-G layers on 32 px clips) would land 2 lr apart depending on the order of the sums."""
    env = DistEnv(rank=rank, world_size=world_size, local_rank=rank, device=torch.device("cpu"))
    config = load_config(FinetuneConfig, preset("finetune/cpu_tiny"), ["model.bn_group=2"])
    method = FinetuneMethod(config)
    method.classes = 4
    torch.manual_seed(0)
    model = method.build_model(env, 4).double().train()
    optimizer = build_optimizer(model, config.optim)
    wrapped = nn.parallel.DistributedDataParallel(model) if env.world_size > 1 else model
    clips = torch.randn(4, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = torch.arange(4)
    share = slice(2 * env.rank, 2 * env.rank + 2) if env.world_size > 1 else slice(None)
    train_step(method, wrapped, optimizer, (clips[share], labels[share]), env, amp=False)
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def test_the_test_phase_sums_view_softmaxes_and_gathers_every_ranks_share(gloo_ranks, tmp_path):
    """2 gloo ranks score videos 0, 2 and 1, 3; the gathered scores are every video's, in list order."""
    results, one = gloo_ranks.run(_test_phase, 2, str(tmp_path)), _test_phase(0, 1, str(tmp_path / "one"))
    expected = torch.softmax(VIEW_LOGITS, dim=2)
    for rank in (0, 1):
        scores, metrics = results[rank]
        assert torch.allclose(scores, expected, atol=1e-6)
        assert metrics["top1"] == 0.75 and metrics["single_view_top1"] == 0.5 and metrics["views"] == 4
        assert metrics["top5"] == metrics["single_view_top5"] == 1.0 and metrics["test_videos"] == 4
    assert json.loads((tmp_path / "metrics.json").read_text())["top1"] == 0.75  # written by rank 0
    assert torch.allclose(one[0], expected, atol=1e-6) and one[1]["top1"] == 0.75


def test_one_fine_tuning_step_on_two_gloo_ranks_leaves_the_weights_of_one_process(gloo_ranks):
    """With BN over groups of 2 clips (``model.bn_group``, as the reference's per-GPU BN), one process with the global
    batch of 4 and 2 gloo ranks with 2 clips each normalise the same groups, and DDP averages the ranks' mean losses'
    gradients into the global mean's: one Adam step of ``train_step`` leaves the same weights."""
    results = gloo_ranks.run(_one_training_step, 2)
    single = _one_training_step(0, 1)
    torch.manual_seed(0)
    method = FinetuneMethod(load_config(FinetuneConfig, preset("finetune/cpu_tiny")))
    method.classes = 4
    before = dict(method.build_model(ONE_RANK, 4).double().named_parameters())
    moved = [name for name in single if not torch.equal(single[name], before[name])]
    assert "head.weight" in moved and "backbone.Conv_1a.conv1.weight" in moved
    for rank in (0, 1):
        weights = results[rank]
        far = {name: float((weights[name] - single[name]).abs().max()) for name in single}
        assert max(far.values()) < 1e-12, sorted(far.items(), key=lambda kv: -kv[1])[:3]


def test_a_fine_tuning_step_learns_a_fixed_batch(lists):
    """Full fine-tuning from random init fits 4 clips of 4 kinds: the loss falls well below log(4)."""
    config = load_config(FinetuneConfig, preset("finetune/cpu_tiny"), [
        f"data.train_list={lists[0]}", f"data.test_list={lists[1]}"])  # fmt: skip
    method = FinetuneMethod(config)
    dataset = method.build_dataset(ONE_RANK)
    torch.manual_seed(0)
    model = method.build_model(ONE_RANK, 8)
    clips, labels = zip(*(dataset[(0, i, 0.0)] for i in range(4)), strict=True)
    batch = (torch.stack(clips), torch.tensor(labels))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss, metrics = method.step(model, batch, ONE_RANK)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.25 * losses[0], losses
    assert float(metrics["acc1"]) == 100


@pytest.mark.parametrize("mode", ["linear", "frozen"])
def test_linear_modes_train_the_head_alone_and_differ_in_the_bn_statistics(mode):
    torch.manual_seed(0)
    model = ClipClassifier(S3DG(), classes=3, mode=mode)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    assert len(optimizer.param_groups[0]["params"]) == 2  # the head's weight and bias
    model.train()
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 8, 32, 32)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert torch.equal(before["backbone.Conv_1a.conv1.weight"], after["backbone.Conv_1a.conv1.weight"])
    bn_moved = not torch.equal(before["backbone.Conv_1a.bn1.running_mean"], after["backbone.Conv_1a.bn1.running_mean"])
    assert bn_moved == (mode == "linear")  # the reference's linear mode: BN statistics keep moving
    assert model.backbone.training == (mode == "linear")


@pytest.mark.parametrize("mode", ["full", "linear"])
def test_bn_groups_normalise_as_separate_batches(mode):
    # the reference's per-GPU BN on 8 GPUs: a batch of 2 x 4 clips with bn_group 4 gives the logits of two separate
    # batches of 4, not those of one batch of 8
    torch.manual_seed(0)

    def backbone():  # a small one: conv, BN, pool (S3D-G's BN layers behave the same)
        return torch.nn.Sequential(torch.nn.Conv3d(3, 6, 1), torch.nn.BatchNorm3d(6), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten())  # fmt: skip

    grouped = ClipClassifier(backbone(), classes=3, dim=6, mode=mode, bn_group=4).train()
    whole = ClipClassifier(backbone(), classes=3, dim=6, mode=mode).train()
    whole.load_state_dict(grouped.state_dict())
    clips = torch.randn(8, 3, 2, 4, 4)
    clips[4:] = clips[4:] * 3 + 1  # the second group has other statistics
    with torch.no_grad():
        separate = torch.cat([whole(clips[:4]), whole(clips[4:])])
        logits = grouped(clips)
        assert torch.allclose(logits, separate, atol=1e-5)
        assert not torch.allclose(logits, whole(clips), atol=1e-3)
        whole.load_state_dict(grouped.state_dict())
        assert torch.equal(grouped.eval()(clips), whole.eval()(clips))  # at test time: running statistics


def test_finetune_presets_group_bn_as_the_reference_gpus():
    sizes = {name: load_config(FinetuneConfig, preset(f"finetune/{name}")).model.bn_group for name in
             ("ucf101", "ucf101_linear", "hmdb51", "hmdb51_linear")}  # fmt: skip
    assert sizes == {"ucf101": 16, "ucf101_linear": 16, "hmdb51": 8, "hmdb51_linear": 8}
    config = load_config(FinetuneConfig, preset("finetune/ucf101"))
    method = FinetuneMethod(config.model_copy(update={"model": config.model.model_copy(update={"bn_group": 24})}))
    method.classes = 3
    with pytest.raises(ConfigError, match="model.bn_group 24 must divide the 128 clips of each rank's batch"):
        method.build_model(ONE_RANK, 128)


def _refused(result, path: Path, *parts: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.output
    assert all(part in lines[0] for part in parts), lines[0]


def _finetune(runner, train: Path, test: Path, out: Path, *extra: str):
    return runner.invoke(app, ["finetune", "--config", "finetune/cpu_tiny", "--train", str(train), "--test", str(test),
                               "--out", str(out), *FAST, *extra])  # fmt: skip


def _copy_list(source: Path, target: Path, edit) -> Path:
    lines = source.read_text().splitlines()
    target.write_text("".join(f"{line}\n" for line in edit(lines)))
    return target


def test_a_missing_or_unreadable_video_is_named_with_its_line_before_anything_is_written(lists, runner, tmp_path):
    train, test = lists
    folder = train.parent
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    bad = _copy_list(train, tmp_path / "bad.txt", lambda lines: [
        *(f"{folder / line}" for line in lines[:2]), "gone.mp4 1", "broken.mp4 2", "gone_too.mp4 3"])  # fmt: skip
    out = tmp_path / "run"
    _refused(_finetune(runner, bad, test, out), bad, "line 3: ", "gone.mp4: video missing", "(3 bad lines in all)")
    assert not out.exists()
    only_broken = _copy_list(bad, tmp_path / "broken.txt", lambda lines: [*lines[:2], "broken.mp4 3"])
    _refused(_finetune(runner, only_broken, test, out), only_broken, "line 3: ", "broken.mp4: cannot read video")
    assert not out.exists()


def test_labels_outside_the_classes_another_methods_checkpoint_and_one_class_are_refused(lists, runner, tmp_path):
    train, test = lists
    out = tmp_path / "run"
    _refused(_finetune(runner, train, test, out, "--set", "model.classes=3"), train, "line 4: label 3 is outside 0..2")
    scrl = tmp_path / "scrl.pth"
    encoder = with_prefix({"encoder_q.conv1.weight": torch.zeros(1)})
    save_checkpoint(scrl, {"format": FORMAT, "method": "scrl", "state_dict": encoder})
    _refused(_finetune(runner, train, test, out, "--init", str(scrl)), scrl, "a vseg scrl checkpoint", "no S3D-G")
    one = _copy_list(train, train.parent / "one_class.txt", lambda lines: [ln for ln in lines if ln.endswith(" 1")])
    _refused(_finetune(runner, one, test, out, "--set", "model.classes=4"), one, "at least two classes")
    assert not out.exists()
    entries = read_labelled_lines(train)
    assert class_count([(train, entries)], None) == 4


def test_hico_on_trimmed_videos_draws_its_clips_from_each_listed_file(lists):
    train, _ = lists
    config = load_config(HicoConfig, preset("hico/cpu_tiny"), [f"data.trimmed_list={train}"])
    dataset = HicoMethod(config).build_dataset(ONE_RANK)
    assert isinstance(dataset, TrimmedClips) and len(dataset) == 8
    assert dataset.videos[0].duration == pytest.approx(2.0) and dataset.videos[3].label == 3
    sample = dataset[(0, 3, 0.5)]
    assert sample.shape == (3, 3, 8, 32, 32) and torch.equal(sample, dataset[(0, 3, 0.5)])
    assert load_config(HicoConfig, preset("hico/pt_k400")).train.epochs == 200
    # the device pipeline: workers ship uint8 crops, and the views made from them are the per-clip views
    device = HicoMethod(
        load_config(HicoConfig, preset("hico/cpu_tiny"), [f"data.trimmed_list={train}", "data.pipeline=device"])
    )
    cropped = device.build_dataset(ONE_RANK)
    batch = cropped.collate_fn([cropped[(0, 3, 0.5)], cropped[(0, 1, 0.5)]])
    assert isinstance(batch, CroppedClips) and batch.frames.dtype == torch.uint8
    views = clip_views(batch, hico_view(config.data), torch.device("cpu"))
    expected = dataset.collate_fn([sample, dataset[(0, 1, 0.5)]])
    assert views.shape == expected.shape == (2, 3, 3, 8, 32, 32)
    assert (views - expected).abs().mean() < 5e-3


def _reference_indices(length: int, fps: float, u: float, frames=16, rate=4, target=30) -> list[int]:
    """HiCo's ``_interval_based_sampling`` for a random start ``random.uniform(0, max_idx) = max_idx * u``."""
    clip_length = frames * rate * fps / target
    start = max(length - clip_length, 0) * u
    index = torch.linspace(start, start + clip_length - 1, frames)
    return torch.clamp(index, 0, length - 1).long().tolist()


def test_short_video_frames_as_the_reference_computes_them():
    dataset = LabelledClips([], frames=16, sampling_rate=4, target_fps=30.0, view=ViewSpec(size=16))
    # 40 frames at 30 fps, shorter than a clip's 64: the nominal stride 63 / 15 = 4.2 from frame 0, the last frame
    # repeated; not 16 frames stretched over the 40
    short = dataset.indices(40, 30.0, torch.Generator().manual_seed(0))
    assert short == [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 39, 39, 39, 39, 39, 39]
    for length, fps in ((300, 30.0), (100, 25.0), (500, 29.97)):  # a random start in [0, length - span]
        for seed in range(3):
            u = torch.rand((), generator=torch.Generator().manual_seed(seed), dtype=torch.float64).item()
            got = dataset.indices(length, fps, torch.Generator().manual_seed(seed))
            assert got == _reference_indices(length, fps, u), (length, fps, seed)
    # the test's views: starts at max_start * i / views, one view at the centre
    span, max_start = interval_span(300, 30.0, 16, 4, 30.0)
    assert (span, max_start) == (64.0, 236.0)
    assert view_starts(max_start, 10) == pytest.approx([0, 23.6, 47.2, 70.8, 94.4, 118, 141.6, 165.2, 188.8, 212.4])
    assert view_starts(max_start, 1) == [118.0]
    assert interval_indices(0.0, 64.0, 40, 16) == short


def test_labelled_clips_start_anywhere_a_whole_clip_fits(lists):
    videos = listed_videos(lists[0], read_labelled_lines(lists[0]), ONE_RANK)
    dataset = LabelledClips(videos, frames=4, sampling_rate=8, target_fps=32.0, view=ViewSpec(size=16, blur_p=0), seed=5)
    starts = [dataset.indices(100, 32.0, torch.Generator().manual_seed(s))[0] for s in range(50)]
    assert 0 <= min(starts) and max(starts) <= 100 - 32 and max(starts) - min(starts) > 30
    clip, label = dataset[(2, 1, 0.0)]
    assert clip.shape == (3, 4, 16, 16) and label == 1
    sampling = ClipSampling(3, 4, 1.0, (0.0, 1.0), True)
    assert TrimmedClips(videos, sampling, ViewSpec(size=16, blur_p=0))[0].shape == (3, 3, 4, 16, 16)


def test_finetune_is_its_own_command_and_not_a_pretraining_method(runner):
    listed = runner.invoke(app, ["pretrain", "--help"])
    assert listed.exit_code == 0 and "hico" in listed.output and "finetune" not in listed.output
    assert runner.invoke(app, ["pretrain", "finetune"]).exit_code == 2
    shown = runner.invoke(app, ["finetune", "--help"])
    assert shown.exit_code == 0 and "--init" in shown.output and "finetune/ucf101" in shown.output


def test_a_fixed_palette_renders_every_segment_in_its_two_colours_and_the_default_in_random_ones():
    """The benchmark's black-and-white videos: colour no longer tells segments apart (BENCHMARKS.md)."""
    black_white = ((0, 0, 0), (255, 255, 255))
    for kind in range(len(KINDS)):
        frames = np.stack(list(render_segment(kind, 3, 72, 96, np.random.default_rng(kind), black_white)))
        assert (frames == frames[..., :1]).all()  # grey: R = G = B
        assert frames.min() < 30 and frames.max() > 225  # the stripes span black to white
    coloured = np.stack(list(render_segment(0, 3, 72, 96, np.random.default_rng(0))))
    assert (coloured != coloured[..., :1]).any()
