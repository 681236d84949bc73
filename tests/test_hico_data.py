"""HiCo's samples: clip centres and gradual sampling, frame positions, decoding across pieces, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vseg.data.untrimmed import (
    UntrimmedClips,
    augment_clip,
    check_pieces,
    clip_centres,
    frame_positions,
    max_distance,
    read_window,
)
from vseg.data.augment import ViewSpec, apply_view, sample_view_params
from vseg.data.trimmed import LabelledClips, ListedVideo
from vseg.data.video_views import VideoViews, centre_view, view_starts
from vseg.errors import DataError
from vseg.io.cliplist import UntrimmedVideo, clip_file_name
from vseg.io.video import probe_video, write_video
from vseg.train.methods.hico import HicoDataConfig, clip_sampling, hico_view

from .synthetic_video import coded_frames, frame_code

FPS = 10
CODED = list(coded_frames(120))  # frame i shows the bits of i (tests/synthetic_video.py)


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> tuple[UntrimmedVideo, Path]:
    """A 12 s, 10 fps video in pieces of 5 s (frames 0-49, 50-99, 100-119), each frame showing its index."""
    clip_dir = tmp_path_factory.mktemp("pieces")
    spans = [(0, 5000), (5000, 10000), (10000, 12000)]
    for start, end in spans:
        write_video(clip_dir / clip_file_name("vid", start, end), CODED[start * FPS // 1000 : end * FPS // 1000], FPS)
    return UntrimmedVideo("vid", spans), clip_dir


def test_gradual_sampling_keeps_clip_1_within_max_dis_of_clip_0():
    assert max_distance((0.0, 1.0), 0.0) == 0.0
    assert max_distance((0.0, 1.0), 1.0) == 1.0
    assert max_distance((0.0, 1.0), 0.25) == pytest.approx(0.25)
    assert max_distance((0.0, 1.0), 1.7) == 1.0  # clamped
    assert max_distance(None, 0.5) is None
    generator = torch.Generator().manual_seed(0)
    clip = 16 * 4 / 30
    for progress in (0.0, 0.1, 0.5, 0.9, 1.0):
        d = max_distance((0.0, 1.0), progress)
        gaps, far = [], []
        for _ in range(400):
            c = clip_centres(60.0, 3, clip, d, topical=True, generator=generator)
            assert all(clip <= x <= 60.0 - clip for x in c)
            gaps.append(abs(c[1] - c[0]))
            far.append(c[2])
        assert max(gaps) <= d + 1e-9
        if d > 0:
            assert max(gaps) > 0.8 * d  # the bound is used, not just respected
        else:
            assert max(gaps) == 0.0  # at the start the two clips cover the same window (plain SimCLR)
        assert min(far) < 15 and max(far) > 45  # the topical clip is drawn anywhere in the video


def test_without_gradual_sampling_the_baseline_draws_clips_independently():
    generator = torch.Generator().manual_seed(1)
    gaps = [np.subtract(*clip_centres(60.0, 2, 2.0, None, False, generator)) for _ in range(200)]
    assert max(np.abs(gaps)) > 20


def test_a_short_video_centres_its_clips_at_the_lower_bound():
    # the reference's U(a, b) with b < a gives a
    assert clip_centres(3.0, 3, 2.0, 1.0, True, torch.Generator().manual_seed(0)) == [2.0, 2.0, 2.0]


def test_frame_positions_follow_the_reference_formula():
    positions = frame_positions(1.0, 1.0 + 64 / 30, 30.0, 1000, 16)
    expected = np.clip(np.linspace(30, 94, 16), 30, 93).astype(int)
    assert positions.tolist() == expected.tolist()
    assert positions[0] == 30 and positions[-1] == 93
    # the window's end past the last frame is clamped to it
    assert frame_positions(9.0, 11.0, 10.0, 100, 4).tolist() == [90, 93, 96, 99]


def test_a_window_is_read_across_piece_boundaries(pieces):
    video, clip_dir = pieces
    frames = read_window(video, clip_dir, 4.0, 6.0, 8)
    assert frames.shape == (8, 48, 96, 3) and frames.dtype == torch.uint8
    expected = frame_positions(4.0, 6.0, FPS, 100, 8)  # pieces 0 and 1 read as one sequence from 0 s
    decoded = [frame_code(frame.numpy()) for frame in frames]
    assert decoded == expected.tolist()
    assert expected[0] < 50 <= expected[-1]  # the window really spans two pieces
    last = read_window(video, clip_dir, 10.5, 12.0, 4)  # the short last piece, its positions relative to 10 s
    assert [frame_code(frame.numpy()) for frame in last] == (100 + frame_positions(0.5, 2.0, FPS, 20, 4)).tolist()


def test_samples_are_k_augmented_clips_seeded_by_epoch_and_index(pieces):
    video, clip_dir = pieces
    data = HicoDataConfig(frames=4, crop_size=16)
    dataset = UntrimmedClips([video, video], clip_dir, clip_sampling(data), hico_view(data), seed=3)
    sample = dataset[(0, 1, 0.0)]
    assert sample.shape == (3, 3, 4, 16, 16) and sample.dtype == torch.float32
    assert torch.equal(sample, dataset[(0, 1, 0.0)])
    assert not torch.equal(sample, dataset[(1, 1, 0.0)])
    centres = dataset.centres(0, 1, 0.0)
    assert centres[0] == centres[1]  # progress 0: the VCL pair shares its window
    assert abs(dataset.centres(0, 1, 1.0)[1] - dataset.centres(0, 1, 1.0)[0]) <= 1.0


def test_clip_augmentation_shares_its_parameters_over_the_frames():
    frames = torch.randint(0, 255, (1, 40, 50, 3), dtype=torch.uint8).repeat(6, 1, 1, 1)
    view = augment_clip(frames, hico_view(HicoDataConfig(crop_size=24)), torch.Generator().manual_seed(0))
    assert view.shape == (3, 6, 24, 24)
    assert all(torch.equal(view[:, 0], view[:, t]) for t in range(6))  # identical frames stay identical
    spec = hico_view(HicoDataConfig())
    assert spec.scale == pytest.approx((168**2 / 87040, 224**2 / 87040)) and spec.ratio == (1.0, 1.0)
    assert (spec.jitter_p, spec.jitter, spec.grayscale_p, spec.blur_p) == (0.8, (0.8, 0.8, 0.8, 0.2), 0.2, 0.0)
    assert spec.mean == (0.45,) * 3 and spec.std == (0.225,) * 3


def test_a_broken_piece_is_an_error_naming_it(pieces, tmp_path):
    video, clip_dir = pieces
    broken = tmp_path / "broken"
    broken.mkdir()
    for start, end in video.pieces:
        (broken / clip_file_name("vid", start, end)).write_bytes(b"not a video")
    data = HicoDataConfig(frames=4, crop_size=16)
    error = UntrimmedClips([video], broken, clip_sampling(data), hico_view(data))[(0, 0, 0.5)]
    assert isinstance(error, DataError) and error.path.parent == broken and "cannot decode" in error.reason
    (broken / clip_file_name("vid", 10000, 12000)).unlink()
    with pytest.raises(DataError, match=r"v_vid_0010000_0012000.mp4: piece listed in the training list is missing"):
        check_pieces([video], broken)


def test_evaluation_views_are_centre_crops_spread_over_the_video(pieces):
    video, clip_dir = pieces
    assert view_starts(10.0, 1) == [5.0]
    assert view_starts(10.0, 5) == [0.0, 2.0, 4.0, 6.0, 8.0]
    path = clip_dir / clip_file_name("vid", 0, 5000)
    views = VideoViews([path], frames=4, sampling_rate=8, target_fps=32.0, views=2, size=16)[0]
    assert views.shape == (2, 3, 4, 16, 16)
    for antialias in (False, True):
        gray = centre_view(torch.full((2, 40, 60, 3), 90, dtype=torch.uint8), 16, 0.875, 0.45, 0.225, antialias)
        assert gray.shape == (3, 2, 16, 16) and torch.allclose(gray, torch.tensor((90 / 255 - 0.45) / 0.225))
    assert isinstance(VideoViews([clip_dir / "missing.mp4"])[0], DataError)


def test_a_short_video_keeps_the_stride_and_repeats_its_last_frame(tmp_path):
    """HiCo's interval-based sampling of a 20-frame video (0.67 s at 30 fps, shorter than a 2.13 s clip) in training
    and in the test's views: frames 0, 4.2, 8.4, ... truncated, then the last frame (19) repeated."""
    path = tmp_path / "short.mp4"
    write_video(path, (np.full((48, 64, 3), 12 * i, np.uint8) for i in range(20)), 30)  # frame i is grey 12 i
    expected = [0, 4, 8, 12, 16, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19, 19]

    def indices(clip: torch.Tensor, mean: float, std: float) -> list[int]:  # 3 x T x S x S -> the frames' greys
        return [round(float(frame.mean() * std + mean) * 255 / 12) for frame in clip.unbind(1)]

    views = VideoViews([path], frames=16, sampling_rate=4, target_fps=30.0, views=2, size=16, crop_fraction=1.0)[0]
    assert [indices(view, 0.45, 0.225) for view in views] == [expected, expected]  # no room: both start at 0
    video = ListedVideo(path, 0, 1, probe_video(path))
    spec = ViewSpec(size=16, jitter_p=0, grayscale_p=0, blur_p=0, mean=(0.0,) * 3, std=(1.0,) * 3, antialias=False)
    clip, label = LabelledClips([video], frames=16, sampling_rate=4, target_fps=30.0, view=spec)[(0, 0, 0.0)]
    assert indices(clip, 0.0, 1.0) == expected and label == 0


def test_crops_resize_without_antialiasing_as_the_reference():
    """HiCo's fine-tuning resizes crops with ``F.interpolate(bilinear, align_corners=False)`` on float frames."""
    frames = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    params = sample_view_params(40, 40, ViewSpec(size=12, blur_p=0, flip_p=0), torch.Generator().manual_seed(0))
    top, left, h, w = params.crop
    crop = frames[..., top : top + h, left : left + w].float() / 255
    reference = torch.nn.functional.interpolate(crop, size=(12, 12), mode="bilinear", align_corners=False)
    plain = apply_view(frames, params, 12, (0.0,) * 3, (1.0,) * 3, antialias=False).view(2, 3, 12, 12)
    torch.testing.assert_close(plain, reference, atol=1e-6, rtol=0)
    smooth = apply_view(frames, params, 12, (0.0,) * 3, (1.0,) * 3).view(2, 3, 12, 12)
    assert (smooth - reference).abs().max() > 0.05  # antialiased: another filter
    view = centre_view(frames.permute(0, 2, 3, 1), 12, 1.0, 0.0, 1.0)  # the test's views, the same resize
    full = torch.nn.functional.interpolate(frames.float() / 255, size=(12, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(view, full.permute(1, 0, 2, 3), atol=1e-6, rtol=0)
