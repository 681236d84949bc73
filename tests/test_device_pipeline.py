"""The device pipeline (``data.pipeline device``), run on the CPU: batched views equal the per-shot views, the
parameters keep their distributions and seeds, bad JPEGs and out-of-memory are one line, and no CUDA is touched."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from torchvision.transforms import RandomResizedCrop

from vseg.data.augment import (
    IMAGENET_STD,
    KEY_VIEW,
    QUERY_VIEW,
    TwoViewShotTransform,
    apply_view,
    sample_view_params,
)
from vseg.data.batch_augment import PARAMS, apply_views, pack_params
from vseg.data.clips import TwoViewClips, keyframe_clips, puzzle_clips
from vseg.data.encoded_clips import EncodedClips, TwoViewDecoder, collate_encoded
from vseg.errors import ConfigError, DataError
from vseg.io.movienet import list_movies
from vseg.runtime import out_of_memory, resolve_pipeline
from vseg.train import trainer

from .conftest import SYNTH
from .test_pretrain import SMALL, _pretrain

TRANSFORM = TwoViewShotTransform.scrl(32)
CPU = torch.device("cpu")


def grey_levels(difference: torch.Tensor, std=IMAGENET_STD) -> float:
    """The largest of ``difference`` (normalised units) in grey levels of the channel that has it."""
    scale = 255 * torch.tensor(std, dtype=torch.float32)
    channels = difference.movedim(-3, 0).flatten(1)  # C x everything (C the third-last axis)
    if channels.shape[0] != len(std):  # keyframes stacked as 9 channels: R G B R G B R G B
        channels = difference.movedim(-3, 0).unflatten(0, (-1, len(std))).transpose(0, 1).flatten(1)
    return float((channels.amax(1) * scale).max())


# README: the two pipelines give the same pixels up to one grey level before the colour operations (uint8 resize
# weights against float ones, libjpeg-turbo against OpenCV). Colour jitter then scales a difference by its factors
# (brightness, contrast, saturation up to 1.4 each, contrast and saturation mixing in the mean): measured at most
# 3.8 grey levels after them with these seeds, so they are held to 5.
ONE_GREY_LEVEL, AFTER_JITTER = 1.0 + 1e-3, 5.0


def _smooth_frames(items: int, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randint(0, 256, (items * 3, 3, 48, 80), generator=generator).float()
    return torch.nn.functional.avg_pool2d(noise, 5, 1, 2).round().to(torch.uint8).view(items, 3, 3, 48, 80)


@pytest.mark.parametrize(
    "spec",
    [
        QUERY_VIEW,
        KEY_VIEW,
        replace(KEY_VIEW, jitter_p=1.0, grayscale_p=0.5, blur_p=1.0),
        replace(KEY_VIEW, jitter_p=1.0, grayscale_p=0.5, blur_p=1.0, gray_first=True),
    ],
    ids=["query", "key", "key-forced", "key-gray-first"],
)
def test_batched_views_equal_the_per_shot_views(spec):
    generator = torch.Generator().manual_seed(3)
    frames = _smooth_frames(12, generator)
    spec = replace(spec, size=24)
    drawn = [sample_view_params(48, 80, spec, generator) for _ in range(12)]
    expected = torch.stack([apply_view(f, p, 24, spec.mean, spec.std) for f, p in zip(frames, drawn, strict=True)])
    got = apply_views(frames, torch.stack([pack_params(p) for p in drawn]), 24, spec.mean, spec.std)
    assert got.shape == (12, 3, 3, 24, 24) and got.dtype == torch.float32
    difference = (got.flatten(1, 2) - expected).abs()
    # uint8 resize with fixed-point weights: one grey level (0.017 here) apart at most before the colour ops
    bound = ONE_GREY_LEVEL if spec.jitter_p == 0 and spec.grayscale_p == 0 else AFTER_JITTER
    assert difference.mean() < 5e-3 and grey_levels(difference) <= bound, (difference.mean(), grey_levels(difference))


@pytest.mark.parametrize("source", ["puzzles", "keyframes"])
def test_encoded_clips_decode_to_the_views_of_the_cpu_pipeline(source, puzzle_root, synth_root):
    if source == "puzzles":
        clips = puzzle_clips(puzzle_root, 16, 3)
    else:
        clips = keyframe_clips(synth_root / "240P", 16, 3, list_movies(synth_root / "240P"))[0]
    per_shot, encoded = TwoViewClips(clips, TRANSFORM, seed=5), EncodedClips(clips, TRANSFORM, seed=5)
    expected = per_shot[(2, 3)]
    batch = collate_encoded([encoded[(2, 3)]])
    assert len(batch.files) == (1 if source == "puzzles" else 48) and batch.params.shape == (1, 16, 2, PARAMS)
    assert all(f.dtype == torch.uint8 and f.ndim == 1 for f in batch.files)  # workers ship bytes, not pixels
    got = TwoViewDecoder(TRANSFORM)(batch, CPU)
    for view, reference, bound in zip(got, expected, (ONE_GREY_LEVEL, AFTER_JITTER), strict=True):  # query, key
        assert view.shape == reference.shape == (16, 9, 32, 32)
        difference = (view - reference).abs()
        assert difference.mean() < 5e-3 and grey_levels(difference) <= bound, grey_levels(difference)


def test_worker_parameters_are_the_per_shot_draws_of_the_item_seed(puzzle_root):
    from vseg.data.sampler import item_seed

    encoded = EncodedClips(puzzle_clips(puzzle_root, 16, 3), TRANSFORM, seed=9)
    item = encoded[(4, 2)]
    generator = torch.Generator().manual_seed(item_seed(9, 4, 2))
    height, width = SYNTH.height, SYNTH.width
    expected = [TRANSFORM.sample(height, width, generator) for _ in range(16)]
    packed = torch.stack([torch.stack([pack_params(q), pack_params(k)]) for q, k in expected])
    torch.testing.assert_close(item.params, packed, rtol=0, atol=0, equal_nan=True)
    assert not torch.equal(encoded[(5, 2)].params.nan_to_num(), item.params.nan_to_num())


def test_packed_parameter_draws_keep_the_key_view_distributions():
    generator = torch.Generator().manual_seed(0)
    rows = torch.stack([pack_params(sample_view_params(240, 426, KEY_VIEW, generator)) for _ in range(3000)])
    rate = lambda column: float((rows[:, column] > 0).double().mean())  # noqa: E731
    assert abs(rate(4) - 0.5) < 0.04 and abs(rate(5) - 0.5) < 0.04  # flip, jitter
    assert abs(rate(14) - 0.2) < 0.03 and abs(rate(15) - 0.5) < 0.04  # grayscale, blur
    area, aspect = rows[:, 2] * rows[:, 3] / (240 * 426), rows[:, 3] / rows[:, 2]
    torch.manual_seed(0)  # torchvision's RandomResizedCrop draws from the global RNG
    boxes = torch.tensor([RandomResizedCrop.get_params(torch.empty(240, 426), [0.2, 1.0], [3 / 4, 4 / 3])
                          for _ in range(3000)], dtype=torch.float64)  # fmt: skip
    reference_area, reference_aspect = boxes[:, 2] * boxes[:, 3] / (240 * 426), boxes[:, 3] / boxes[:, 2]
    assert area.min() >= 0.19 and area.max() <= 0.76  # 240 x 320 at most: the aspect ratio stops at 4/3
    assert abs(float(area.mean() - reference_area.mean())) < 0.015
    assert abs(float(aspect.mean() - reference_aspect.mean())) < 0.015
    assert (rows[:, 0] + rows[:, 2]).max() <= 240 and (rows[:, 1] + rows[:, 3]).max() <= 426
    jittered = rows[rows[:, 5] > 0]
    assert sorted(set(map(tuple, jittered[:, 6:10].long().tolist()))) == sorted(
        set(map(tuple, torch.stack([torch.randperm(4) for _ in range(500)]).tolist()))
    )  # every op order turns up
    for column, (low, high) in zip(range(10, 14), [(0.6, 1.4)] * 3 + [(-0.1, 0.1)], strict=True):
        values = jittered[:, column]
        assert values.min() >= low and values.max() <= high
        assert abs(float(values.mean()) - (low + high) / 2) < 0.03 * (high - low) * 2
    sigmas = rows[rows[:, 15] > 0, 15]
    assert sigmas.min() >= 0.1 and sigmas.max() <= 2.0 and abs(float(sigmas.mean()) - 1.05) < 0.05
    assert not rows[rows[:, 5] == 0, 10:14].isfinite().any()  # no jitter: no factors


def test_a_corrupt_jpeg_decoded_in_the_batch_names_its_file(puzzle_root, tmp_path):
    copy = tmp_path / "puzzles"
    shutil.copytree(puzzle_root, copy)
    bad = copy / "tt9000001" / "0000.jpg"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # the header is whole, the scan is cut
    encoded = EncodedClips(puzzle_clips(copy, 16, 3), TRANSFORM)
    batch = collate_encoded([encoded[(0, i)] for i in range(len(encoded))])  # the worker reads headers only
    with pytest.raises(DataError) as caught:
        TwoViewDecoder(TRANSFORM)(batch, CPU)
    message = str(caught.value)
    assert message.startswith(str(bad)) and "corrupt image (Image is incomplete or truncated)" in message
    assert "\n" not in message and ".cpp" not in message


def test_a_png_is_refused_by_the_worker_with_its_name(puzzle_root, tmp_path):
    from PIL import Image

    copy = tmp_path / "puzzles"
    shutil.copytree(puzzle_root, copy)
    target = copy / "tt9000000" / "0001.jpg"
    Image.open(target).save(target, format="PNG")
    error = EncodedClips(puzzle_clips(copy, 16, 3), TRANSFORM)[(0, 1)]
    assert isinstance(error, DataError) and str(error).startswith(str(target)) and "not a JPEG" in str(error)


def test_device_pipeline_trains_end_to_end_on_the_cpu_without_touching_cuda(runner, puzzle_root, tmp_path, monkeypatch):
    def no_cuda(*args, **kwargs):
        raise AssertionError("CUDA was initialised")

    monkeypatch.setattr(torch.cuda, "_lazy_init", no_cuda)
    one_step = ["--set", "train.steps_per_epoch=1", "--set", "data.pipeline=device", "--set", "data.image_size=32"]
    result = _pretrain(runner, puzzle_root, tmp_path / "run", "--epochs", "1", *SMALL, *one_step)
    assert result.exit_code == 0, result.output
    assert "pipeline: JPEG decoding and augmentation on cpu" in result.output
    assert (tmp_path / "run" / "checkpoints" / "last.pth").is_file()


def test_pipeline_choice_follows_the_device():
    assert resolve_pipeline("auto", CPU) == "cpu" and resolve_pipeline("auto", torch.device("cuda", 0)) == "device"
    assert resolve_pipeline("cpu", torch.device("cuda", 0)) == "cpu" and resolve_pipeline("device", CPU) == "device"


def test_out_of_memory_names_the_batch_size_to_lower(runner, puzzle_root, tmp_path, monkeypatch):
    from vseg.eval.embed import iter_features

    cuda = torch.device("cuda", 0)
    exc = torch.cuda.OutOfMemoryError("CUDA out of memory.\nmore")
    error = out_of_memory(cuda, "batch_size", 64, "--batch-size N", exc)
    assert isinstance(error, ConfigError)
    assert str(error) == (
        "out of memory on cuda:0 with batch_size 64: lower batch_size (--batch-size N); CUDA out of memory."
    )

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "train_step", oom)
    result = _pretrain(runner, puzzle_root, tmp_path / "run", *SMALL)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    expected = "with train.batch_size 32 (32 per rank): lower train.batch_size (--set train.batch_size=N); CUDA out"
    assert expected in " ".join(result.output.split())

    encoder = torch.nn.Identity()
    encoder.features = oom
    with pytest.raises(ConfigError, match=r"with batch_size 4: lower batch_size \(--batch-size N\); CUDA out"):
        next(iter_features(encoder, torch.zeros(8, 9, 16, 16), batch_size=4))


def test_hico_crops_become_the_per_clip_views_on_the_device(tmp_path):
    from vseg.data.untrimmed import ClipSampling, CroppedClips, UntrimmedClips, clip_views
    from vseg.io.cliplist import UntrimmedVideo, clip_file_name
    from vseg.io.video import write_video
    from vseg.train.methods.hico import HicoDataConfig, hico_view

    noise = torch.randint(0, 256, (60, 3, 48, 96), generator=torch.Generator().manual_seed(1)).float()
    frames = list(torch.nn.functional.avg_pool2d(noise, 7, 1, 3).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    for name, size in [("a", None), ("b", (40, 32))]:  # two frame sizes in one batch: the crops are padded
        video = frames if size is None else [np.ascontiguousarray(f[: size[1], : size[0]]) for f in frames]
        write_video(tmp_path / clip_file_name(name, 0, 6000), video, 10)
    videos = [UntrimmedVideo("a", [(0, 6000)]), UntrimmedVideo("b", [(0, 6000)])]
    data = HicoDataConfig(frames=4, crop_size=16, crop_scale=(0.3, 0.9), crop_ratio=(0.75, 1.33), blur_p=0.5)
    sampling, view = ClipSampling(3, 4, 1.0, (0.0, 1.0), True), hico_view(data)
    per_clip = UntrimmedClips(videos, tmp_path, sampling, view, seed=2)
    cropped = UntrimmedClips(videos, tmp_path, sampling, view, seed=2, crops_only=True)
    keys = [(0, 0, 0.5), (3, 1, 0.5)]
    expected = per_clip.collate_fn([per_clip[key] for key in keys])
    batch = cropped.collate_fn([cropped[key] for key in keys])
    assert isinstance(batch, CroppedClips) and batch.frames.dtype == torch.uint8 and batch.params.shape == (6, PARAMS)
    assert batch.frames.shape[:3] == (6, 4, 3) and batch.frames.shape[-1] < 96  # crops, not frames
    got = clip_views(batch, view, CPU)
    assert got.shape == expected.shape == (2, 3, 3, 4, 16, 16)
    difference = (got - expected).abs()  # batch x clips x C x T x H x W; HiCo's jitter and grayscale are on
    assert difference.mean() < 5e-3 and grey_levels(difference.transpose(2, 3), view.std) <= AFTER_JITTER


def test_embed_views_made_on_the_device_match_the_reference_preprocessing(synth_root, tmp_path):
    from vseg.config import EmbedConfig
    from vseg.data.shots import EncodedShots, MovieShots, collate_encoded_shots, device_eval_views
    from vseg.eval.embed import load_shot_encoder, run_embed
    from vseg.io.checkpoints import FORMAT
    from vseg.io.embeddings import read_embeddings
    from vseg.io.movienet import index_movie
    from vseg.models.encoder import ShotEncoder

    keyframes = index_movie(synth_root / "240P" / list_movies(synth_root / "240P")[0], 3)
    reference = torch.stack([MovieShots(keyframes, 64)[i] for i in range(4)])
    batch = collate_encoded_shots([EncodedShots(keyframes, 64)[i] for i in range(4)], size=64)
    assert len(batch.files) == 12 and all(f.dtype == torch.uint8 for f in batch.files)
    views = device_eval_views(batch, CPU)
    assert views.shape == reference.shape == (4, 9, 64, 64)
    difference = (views - reference).abs()  # tensor resize against PIL's, libjpeg-turbo against OpenCV's decode
    assert difference.mean() < 1e-4 and grey_levels(difference) <= ONE_GREY_LEVEL, grey_levels(difference)
    torch.manual_seed(0)
    state = {f"module.encoder_q.{k}": v for k, v in ShotEncoder("resnet18", 9, 32).state_dict().items()}
    torch.save({"format": FORMAT, "state_dict": state}, tmp_path / "ours.pth")
    config = EmbedConfig(image_size=64, workers=0, batch_size=16, split="test", pipeline="device")
    run_embed(tmp_path / "ours.pth", synth_root, tmp_path / "out", config)
    embedded = read_embeddings(tmp_path / "out" / "test.npz")
    first = index_movie(synth_root / "240P" / embedded.movies[0], 3)
    with torch.inference_mode():
        expected = load_shot_encoder(tmp_path / "ours.pth").encoder.features(
            torch.stack([MovieShots(first, 64)[i] for i in range(8)])
        ).numpy()
    got = embedded.features[:8]
    cosine = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    assert cosine.min() > 0.9999  # measured 0.9999998; different synthetic shots reach 0.9957 with this network
