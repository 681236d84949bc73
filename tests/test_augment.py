"""Two-view shot augmentation: one parameter set per shot per view, shared by all 3 keyframes."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image

from vseg.data.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    KEY_VIEW,
    QUERY_VIEW,
    JitterParams,
    TwoViewShotTransform,
    ViewParams,
    ViewSpec,
    apply_view,
    blur_kernel_size,
    gaussian_blur,
    sample_crop,
    sample_view_params,
    stack_frames,
)

H, W, S = 40, 64, 32
MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)
FULL_FRAME = {"scale": (1.0, 1.0), "ratio": (W / H, W / H)}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _noise(seed: int = 0, high: int = 256) -> torch.Tensor:
    """A uint8 HxWx3 frame of noise, so that any difference in crop, flip or colour shows."""
    return torch.randint(0, high, (H, W, 3), dtype=torch.uint8, generator=_gen(seed))


def _blocks(view: torch.Tensor) -> list[torch.Tensor]:
    return [view[3 * f : 3 * f + 3] for f in range(view.shape[0] // 3)]


def _unnormalise(block: torch.Tensor) -> torch.Tensor:
    return block * STD + MEAN


def test_query_and_key_views_match_the_reference():
    for spec in (QUERY_VIEW, KEY_VIEW):
        assert spec.size == 224
        assert spec.scale == (0.2, 1.0)
        assert spec.ratio == pytest.approx((3 / 4, 4 / 3))
        assert spec.blur_p == 0.5 and spec.blur_sigma == (0.1, 2.0) and spec.flip_p == 0.5
        assert spec.mean == IMAGENET_MEAN and spec.std == IMAGENET_STD
    assert QUERY_VIEW.jitter_p == 0 and QUERY_VIEW.grayscale_p == 0
    assert KEY_VIEW.jitter_p == 0.5 and KEY_VIEW.grayscale_p == 0.2
    assert KEY_VIEW.jitter == (0.4, 0.4, 0.4, 0.1)


def test_shapes_dtype_and_input_layouts_agree():
    frames = [_noise(f) for f in range(3)]
    layouts = {
        "hwc tensors": frames,
        "chw tensors": [f.permute(2, 0, 1).contiguous() for f in frames],
        "numpy hwc": [f.numpy() for f in frames],
        "pil": [Image.fromarray(f.numpy()) for f in frames],
        "stacked nchw": torch.stack(frames).permute(0, 3, 1, 2),
        "stacked nhwc": torch.stack(frames),
    }
    transform = TwoViewShotTransform.scrl(S)
    results = {name: transform(value, _gen(3)) for name, value in layouts.items()}
    q_ref, k_ref = results["hwc tensors"]
    assert q_ref.shape == k_ref.shape == (9, S, S)
    assert q_ref.dtype == k_ref.dtype == torch.float32
    for name, (q, k) in results.items():
        assert torch.equal(q, q_ref) and torch.equal(k, k_ref), name


@pytest.mark.parametrize("spec", [QUERY_VIEW, KEY_VIEW], ids=["query", "key"])
def test_identical_frames_give_identical_blocks(spec):
    frame = _noise()
    spec = replace(spec, size=S)
    gen = _gen(1)
    for _ in range(30):
        params = sample_view_params(H, W, spec, gen)
        view = apply_view([frame, frame.clone(), frame.clone()], params, S)
        first, second, third = _blocks(view)
        assert torch.equal(first, second) and torch.equal(first, third), params


def test_identical_frames_give_identical_blocks_through_the_transform():
    frame = _noise()
    transform = TwoViewShotTransform.scrl(S)
    gen = _gen(2)
    for _ in range(20):
        for view in transform([frame, frame, frame], gen):
            first, second, third = _blocks(view)
            assert torch.equal(first, second) and torch.equal(first, third)


def test_different_frames_share_the_crop():
    """Frames that differ by a constant offset stay a constant apart only if they are cropped and blurred alike."""
    base = _noise(high=150)
    offsets = (0, 40, 80)
    frames = [base + k for k in offsets]
    spec = replace(QUERY_VIEW, size=S)
    gen = _gen(4)
    for _ in range(20):
        blocks = _blocks(apply_view(frames, sample_view_params(H, W, spec, gen), S))
        for block, k in zip(blocks[1:], offsets[1:], strict=True):
            expected = (k / 255 / STD).expand(3, S, S)
            # the uint8 resize rounds, so a pixel may be one grey level (1 / 255 / std < 0.02) off
            torch.testing.assert_close(block - blocks[0], expected, atol=0.02, rtol=0)


def test_flip_is_applied_to_all_frames_at_once():
    """Frames with a bright left half: after the view, all 3 are bright on the same side."""
    frames = []
    for k in range(3):
        frame = torch.full((H, W, 3), 10 * k, dtype=torch.uint8)
        frame[:, : W // 2] = 200 + 20 * k
        frames.append(frame)
    spec = ViewSpec(size=S, blur_p=0.0, **FULL_FRAME)
    gen = _gen(5)
    sides = []
    for _ in range(40):
        blocks = _blocks(apply_view(frames, sample_view_params(H, W, spec, gen), S))
        bright_left = {bool(b[..., : S // 2].mean() > b[..., S // 2 :].mean()) for b in blocks}
        assert len(bright_left) == 1
        sides.append(bright_left.pop())
    assert 5 < sum(sides) < 35


def test_flip_parameter_mirrors_the_output():
    frames = [_noise(f) for f in range(3)]
    params = ViewParams(crop=(3, 5, 30, 40), flip=False, jitter=None, grayscale=False, blur_sigma=1.0)
    plain = apply_view(frames, params, S)
    flipped = apply_view(frames, replace(params, flip=True), S)
    assert torch.equal(flipped, plain.flip(-1))


def test_views_differ_and_params_vary_between_calls():
    frames = [_noise(f) for f in range(3)]
    q, k = TwoViewShotTransform.scrl(S)(frames, _gen(6))
    assert not torch.allclose(q, k)
    gen = _gen(7)
    drawn = [sample_view_params(H, W, KEY_VIEW, gen) for _ in range(20)]
    assert len({p.crop for p in drawn}) > 15
    assert len({p.flip for p in drawn}) == 2


def test_query_never_jitters_or_grays_and_key_rates_match():
    gen = _gen(8)
    for _ in range(300):
        params = sample_view_params(H, W, QUERY_VIEW, gen)
        assert params.jitter is None and not params.grayscale
    n = 2000
    drawn = [sample_view_params(H, W, KEY_VIEW, gen) for _ in range(n)]
    assert abs(sum(p.jitter is not None for p in drawn) / n - 0.5) < 0.05
    assert abs(sum(p.grayscale for p in drawn) / n - 0.2) < 0.04
    assert abs(sum(p.blur_sigma is not None for p in drawn) / n - 0.5) < 0.05
    assert abs(sum(p.flip for p in drawn) / n - 0.5) < 0.05
    for p in drawn:
        if p.jitter is not None:
            assert sorted(p.jitter.order) == [0, 1, 2, 3]
            assert all(0.6 <= f <= 1.4 for f in (p.jitter.brightness, p.jitter.contrast, p.jitter.saturation))
            assert -0.1 <= p.jitter.hue <= 0.1
        if p.blur_sigma is not None:
            assert 0.1 <= p.blur_sigma <= 2.0
    assert len({p.jitter.order for p in drawn if p.jitter is not None}) > 12
    sigmas = [p.blur_sigma for p in drawn if p.blur_sigma is not None]
    assert min(sigmas) < 0.15 and max(sigmas) > 1.95 and abs(float(np.mean(sigmas)) - 1.05) < 0.1


def test_forced_jitter_and_grayscale_are_applied():
    frames = [_noise(f) for f in range(3)]
    spec = replace(KEY_VIEW, size=S, jitter_p=1.0, grayscale_p=1.0)
    gen = _gen(9)
    for _ in range(10):
        params = sample_view_params(H, W, spec, gen)
        assert params.jitter is not None and params.grayscale
        for block in _blocks(apply_view(frames, params, S)):
            grey = _unnormalise(block)
            torch.testing.assert_close(grey[0], grey[1], atol=1e-5, rtol=0)
            torch.testing.assert_close(grey[0], grey[2], atol=1e-5, rtol=0)


def test_jitter_changes_colours_in_the_sampled_order():
    frames = [_noise(f) for f in range(3)]
    jitter = JitterParams((0, 1, 2, 3), brightness=1.3, contrast=0.7, saturation=1.4, hue=0.08)
    params = ViewParams(crop=(0, 0, H, W), flip=False, jitter=jitter, grayscale=False, blur_sigma=None)
    plain = apply_view(frames, replace(params, jitter=None), S)
    forward = apply_view(frames, params, S)
    backward = apply_view(frames, replace(params, jitter=jitter._replace(order=(3, 2, 1, 0))), S)
    assert (forward - plain).abs().mean() > 0.05
    assert (forward - backward).abs().mean() > 1e-3
    expected = F.to_dtype(F.resized_crop(stack_frames(frames), 0, 0, H, W, [S, S], antialias=True), scale=True)
    for op, factor in ((F.adjust_hue, 0.08), (F.adjust_saturation, 1.4), (F.adjust_contrast, 0.7)):
        expected = op(expected, factor)
    expected = F.adjust_brightness(expected, 1.3)
    torch.testing.assert_close(backward, F.normalize(expected, IMAGENET_MEAN, IMAGENET_STD).reshape(9, S, S))


def test_gray_first_grays_before_the_jitter_so_a_hue_shift_leaves_the_gray_clip_alone():
    """HiCo's fine-tuning (``AUGMENTATION.GRAY_FIRST``): a hue shift of a gray image changes nothing, while a gray
    image of a hue-shifted one has other grey levels."""
    frames = [_noise(f) for f in range(3)]
    hue = JitterParams((3, 0, 1, 2), brightness=None, contrast=None, saturation=None, hue=0.25)
    params = ViewParams(crop=(0, 0, H, W), flip=False, jitter=None, grayscale=True, blur_sigma=None, gray_first=True)
    gray = apply_view(frames, params, S)
    torch.testing.assert_close(apply_view(frames, replace(params, jitter=hue), S), gray, atol=1e-5, rtol=0)
    assert (apply_view(frames, replace(params, jitter=hue, gray_first=False), S) - gray).abs().mean() > 0.05
    assert sample_view_params(H, W, ViewSpec(gray_first=True), _gen(1)).gray_first


def test_mid_grey_maps_to_the_normalised_grey():
    frames = [torch.full((H, W, 3), 128, dtype=torch.uint8)] * 3
    q, _ = TwoViewShotTransform.scrl(S)(frames, _gen(10))
    expected = ((128 / 255 - MEAN) / STD).expand(3, S, S)
    for block in _blocks(q):
        torch.testing.assert_close(block, expected, atol=1e-5, rtol=0)
    assert abs(float(q[0, 0, 0]) - (0.5 - 0.485) / 0.229) < 0.02


def test_seeded_generator_is_deterministic():
    frames = [_noise(f) for f in range(3)]
    transform = TwoViewShotTransform.scrl(S)
    q1, k1 = transform(frames, _gen(11))
    q2, k2 = transform(frames, _gen(11))
    q3, k3 = transform(frames, _gen(12))
    assert torch.equal(q1, q2) and torch.equal(k1, k2)
    assert not (torch.equal(q1, q3) and torch.equal(k1, k3))
    torch.manual_seed(13)
    g1 = transform(frames)
    torch.manual_seed(13)
    g2 = transform(frames)
    assert torch.equal(g1[0], g2[0]) and torch.equal(g1[1], g2[1])


def test_crop_boxes_stay_in_bounds_with_the_area_and_ratio_drawn():
    height, width = 240, 426
    gen = _gen(14)
    boxes = [sample_crop(height, width, (0.2, 1.0), (3 / 4, 4 / 3), gen) for _ in range(2000)]
    fractions = []
    for top, left, h, w in boxes:
        assert 0 <= top and 0 <= left and 0 < h and 0 < w
        assert top + h <= height and left + w <= width
        fractions.append(h * w / (height * width))
        assert 3 / 4 - 0.02 <= w / h <= 4 / 3 + 0.02
    assert 0.2 - 0.005 <= min(fractions) < 0.23
    # a 426x240 frame is wider than 4:3, so no crop covers more than 320x240 (75%) of it
    assert 0.7 < max(fractions) <= 320 * 240 / (height * width) + 1e-9
    assert 0.35 < float(np.mean(fractions)) < 0.55
    assert len({(top, left) for top, left, _, _ in boxes}) > 1000
    square = [sample_crop(240, 240, (0.2, 1.0), (3 / 4, 4 / 3), gen) for _ in range(500)]
    assert max(h * w for _, _, h, w in square) / 240**2 > 0.9


def test_crop_falls_back_to_the_centre_with_a_clamped_ratio():
    assert sample_crop(10, 1000, (0.2, 1.0), (3 / 4, 4 / 3), _gen()) == (0, (1000 - 13) // 2, 10, 13)
    assert sample_crop(1000, 10, (0.2, 1.0), (3 / 4, 4 / 3), _gen()) == ((1000 - 13) // 2, 0, 13, 10)
    # a square of the whole area never fits in 30x40, so the centre 30x30 square is taken
    assert sample_crop(30, 40, (1.0, 1.0), (1.0, 1.0), _gen()) == (0, 5, 30, 30)


def test_blur_kernel_and_separable_blur_match_torchvision():
    assert [blur_kernel_size(s) for s in (0.1, 0.5, 1.0, 2.0)] == [3, 5, 7, 13]
    assert blur_kernel_size(2.0, size=4) == 7
    images = torch.rand(3, 3, S, S, generator=_gen(15))
    for sigma in (0.1, 0.7, 2.0):
        k = blur_kernel_size(sigma)
        torch.testing.assert_close(gaussian_blur(images, sigma), F.gaussian_blur(images, [k, k], [sigma, sigma]))
    flat = torch.full((2, 3, S, S), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    params = ViewParams(crop=(0, 0, H, W), flip=False, jitter=None, grayscale=False, blur_sigma=None)
    frames = [_noise(f) for f in range(3)]
    sharp, blurred = apply_view(frames, params, S), apply_view(frames, replace(params, blur_sigma=1.5), S)
    assert _unnormalise(blurred[:3]).std() < 0.7 * _unnormalise(sharp[:3]).std()


def test_invalid_specs_and_inputs_are_rejected():
    with pytest.raises(ValueError, match="jitter_p"):
        ViewSpec(jitter_p=1.5)
    with pytest.raises(ValueError, match="scale"):
        ViewSpec(scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="size"):
        stack_frames([_noise(), torch.zeros(H + 1, W, 3, dtype=torch.uint8)])
    with pytest.raises(ValueError, match="laid out"):
        stack_frames([torch.zeros(H, W, 4, dtype=torch.uint8)])
    params = ViewParams(crop=(10, 0, H, W), flip=False, jitter=None, grayscale=False, blur_sigma=None)
    with pytest.raises(ValueError, match="outside"):
        apply_view([_noise()] * 3, params, S)


def test_transform_is_picklable_and_sized():
    transform = pickle.loads(pickle.dumps(TwoViewShotTransform.scrl(48)))
    assert transform.query == replace(QUERY_VIEW, size=48) and transform.key == replace(KEY_VIEW, size=48)
    q, k = transform([_noise(f) for f in range(3)], _gen(16))
    assert q.shape == k.shape == (9, 48, 48)
    assert math.isfinite(float(q.abs().max())) and math.isfinite(float(k.abs().max()))
