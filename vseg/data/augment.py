"""SCRL's two-view shot augmentation, with one parameter set drawn per shot per view (SCRL's ``data/movienet_data.py``).

SCRL (Sec. 4.1, and the augmentation lists of its code) makes a query and a key view of the same shot, whose 3
keyframes are stacked as 9 channels:

- query ("base"): RandomResizedCrop(224, scale=(0.2, 1.0)) -> GaussianBlur(sigma ~ U[0.1, 2.0]) with p=0.5 ->
  RandomHorizontalFlip(0.5) -> Normalize(ImageNet mean/std);
- key ("color"): RandomResizedCrop(224, (0.2, 1.0)) -> ColorJitter(0.4, 0.4, 0.4, 0.1) with p=0.5 ->
  RandomGrayscale(0.2) -> GaussianBlur with p=0.5 -> RandomHorizontalFlip(0.5) -> Normalize.

The reference meant the 3 keyframes of a shot to share their random parameters, and re-seeded Python ``random``
before each frame to get that; but torchvision >= 0.8 draws the crop, flip, jitter and apply-coins from the torch
RNG, so only the blur sigma was really shared. Here the fix is deliberate: `sample_view_params` draws the crop box,
the jitter factors and order, the grayscale, blur and flip decisions once per shot per view, and `apply_view` applies
them to all frames as one batch, so the frames cannot come apart.

Other differences from the reference, all small: the crop is resized on the uint8 tensor (bilinear, antialiased)
and everything after it runs on float32 in [0, 1] without PIL round trips or uint8 rounding between steps; the blur
is torchvision's ``gaussian_blur`` with reflect padding and a kernel of ``2 * ceil(3 * sigma) + 1`` taps, where the
reference used PIL's ``GaussianBlur(radius=sigma)`` (a Gaussian of standard deviation sigma, approximated by box
blurs). Randomness comes from a ``torch.Generator`` when one is given, else from the global torch RNG, which
DataLoader seeds differently in each worker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Frame = Image.Image | torch.Tensor | np.ndarray
"""One RGB keyframe: a PIL image, or a uint8 (or float in [0, 1]) array or tensor laid out HxWx3 or 3xHxW."""

_CROP_ATTEMPTS = 10


@dataclass(frozen=True)
class ViewSpec:
    """How one view is augmented; the defaults are SCRL's query view at 224 px (no colour jitter, no grayscale).

    ``gray_first``: grayscale before the colour jitter (HiCo's fine-tuning, ``AUGMENTATION.GRAY_FIRST``), else after.
    ``antialias``: the crop is resized with antialiased bilinear filtering on the uint8 frames; false: plain bilinear
    on the float frames (``F.interpolate``, as HiCo's fine-tuning ``_functional_video.resized_crop``).
    """

    size: int = 224
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    jitter_p: float = 0.0
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    grayscale_p: float = 0.0
    gray_first: bool = False
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    flip_p: float = 0.5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    antialias: bool = True

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {self.ratio}")
        for name in ("jitter_p", "grayscale_p", "blur_p", "flip_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ValueError(
                f"jitter must be (brightness, contrast, saturation, hue) >= 0, hue <= 0.5, got {self.jitter}"
            )
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < min <= max, got {self.blur_sigma}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values each, std > 0, got {self.mean} and {self.std}")


QUERY_VIEW = ViewSpec()
"""SCRL's query view ("base"): crop, blur with p=0.5, flip, normalise."""

KEY_VIEW = ViewSpec(jitter_p=0.5, grayscale_p=0.2)
"""SCRL's key view ("color"): crop, colour jitter with p=0.5, grayscale with p=0.2, blur with p=0.5, flip, normalise."""


class JitterParams(NamedTuple):
    """Colour-jitter factors as torchvision's ``ColorJitter.get_params``: op order, then None where strength is 0.

    ``order`` is a permutation of (0, 1, 2, 3) = (brightness, contrast, saturation, hue).
    """

    order: tuple[int, ...]
    brightness: float | None
    contrast: float | None
    saturation: float | None
    hue: float | None


@dataclass(frozen=True)
class ViewParams:
    """One view's random draws for one shot; every frame of the shot gets exactly these.

    ``crop`` is (top, left, height, width) in input pixels, as torchvision's (i, j, h, w); ``jitter`` is None when
    colour jitter is not applied, ``blur_sigma`` None when blur is not applied; ``gray_first``: a grayscale comes
    before the jitter.
    """

    crop: tuple[int, int, int, int]
    flip: bool
    jitter: JitterParams | None
    grayscale: bool
    blur_sigma: float | None
    gray_first: bool = False


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _coin(p: float, generator: torch.Generator | None) -> bool:
    """True with probability p; p of 0 or 1 draws nothing from the RNG."""
    if p <= 0:
        return False
    if p >= 1:
        return True
    return torch.rand((), generator=generator).item() < p


def sample_crop(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop, as torchvision's ``RandomResizedCrop.get_params``.

    Up to 10 tries draw an area fraction from ``scale`` and a log-uniform aspect ratio from ``ratio``, keeping the
    first box that fits in the image; if none fits, the centre crop of the whole image with its aspect ratio clamped
    to ``ratio`` is returned (its area may then be below ``scale[0]``).
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(_CROP_ATTEMPTS):
        target_area = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, max(1, min(height, round(width / ratio[0])))
    elif in_ratio > ratio[1]:
        w, h = max(1, min(width, round(height * ratio[1]))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_jitter(
    strengths: tuple[float, float, float, float], generator: torch.Generator | None = None
) -> JitterParams:
    """Op order and factors as torchvision's ``ColorJitter.get_params``: brightness, contrast and saturation
    from U[max(0, 1 - s), 1 + s], hue from U[-s, s], and None for a strength of 0."""
    order = tuple(int(k) for k in torch.randperm(4, generator=generator))
    factors = [_uniform(max(0.0, 1 - s), 1 + s, generator) if s > 0 else None for s in strengths[:3]]
    hue = _uniform(-strengths[3], strengths[3], generator) if strengths[3] > 0 else None
    return JitterParams(order, factors[0], factors[1], factors[2], hue)


def sample_view_params(height: int, width: int, spec: ViewSpec, generator: torch.Generator | None = None) -> ViewParams:
    """Draw one view's parameters for a shot whose frames are ``height`` x ``width`` pixels.

    Draws in this order: crop box, jitter coin (and factors), grayscale coin, blur coin (and sigma), flip coin.
    A probability of 0 or 1 draws no coin, so the query view never consumes jitter or grayscale draws.
    """
    crop = sample_crop(height, width, spec.scale, spec.ratio, generator)
    jitter = sample_jitter(spec.jitter, generator) if _coin(spec.jitter_p, generator) else None
    grayscale = _coin(spec.grayscale_p, generator)
    blur_sigma = _uniform(*spec.blur_sigma, generator) if _coin(spec.blur_p, generator) else None
    flip = _coin(spec.flip_p, generator)
    return ViewParams(crop, flip, jitter, grayscale, blur_sigma, gray_first=spec.gray_first)


def blur_kernel_size(sigma: float, size: int | None = None) -> int:
    """Taps of the Gaussian kernel for ``sigma``: ``2 * ceil(3 * sigma) + 1``, i.e. +-3 sigma (3 to 13 taps for
    SCRL's sigma in [0.1, 2.0]); with ``size`` the radius is capped at ``size - 1`` so reflect padding still works."""
    radius = max(1, math.ceil(3 * sigma))
    if size is not None:
        radius = max(0, min(radius, size - 1))
    return 2 * radius + 1


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur float images (... x H x W) with a Gaussian of standard deviation ``sigma``, reflect-padded.

    The same result as torchvision's ``gaussian_blur`` with ``blur_kernel_size`` taps, but as two 1-d passes
    (2k instead of k * k multiplies per pixel; about 6x faster at sigma = 2 on CPU).
    """
    height, width = images.shape[-2:]
    radius = blur_kernel_size(sigma, min(height, width)) // 2
    if radius == 0:
        return images
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    flat = images.reshape(1, -1, height, width)
    channels = flat.shape[1]
    flat = torch.nn.functional.pad(flat, [radius, radius, radius, radius], mode="reflect")
    flat = torch.nn.functional.conv2d(flat, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    flat = torch.nn.functional.conv2d(flat, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return flat.reshape(images.shape)


def _to_chw(frame: Frame) -> torch.Tensor:
    if isinstance(frame, Image.Image):
        return F.pil_to_tensor(frame if frame.mode == "RGB" else frame.convert("RGB"))
    tensor = torch.from_numpy(np.ascontiguousarray(frame)) if isinstance(frame, np.ndarray) else frame
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3:
        raise ValueError(f"a frame must be a PIL image or a 3-d array/tensor, got {type(frame).__name__}")
    if tensor.shape[0] == 3:
        return tensor
    if tensor.shape[-1] == 3:
        return tensor.permute(2, 0, 1)
    raise ValueError(f"a frame must be laid out 3xHxW or HxWx3, got shape {tuple(tensor.shape)}")


def stack_frames(frames: Sequence[Frame] | torch.Tensor) -> torch.Tensor:
    """The shot's frames as one N x 3 x H x W tensor (uint8 stays uint8); a 4-d tensor N x 3 x H x W or
    N x H x W x 3 is taken as already stacked. Frames must share one size."""
    if isinstance(frames, torch.Tensor) and frames.ndim == 4:
        if frames.shape[1] == 3:
            batch = frames
        elif frames.shape[-1] == 3:
            batch = frames.permute(0, 3, 1, 2)
        else:
            raise ValueError(f"stacked frames must be Nx3xHxW or NxHxWx3, got shape {tuple(frames.shape)}")
    else:
        if len(frames) == 0:
            raise ValueError("a shot needs at least one frame")
        chw = [_to_chw(frame) for frame in frames]
        sizes = {tuple(t.shape[1:]) for t in chw}
        if len(sizes) != 1:
            raise ValueError(f"the frames of a shot must share one size, got (H, W) {sorted(sizes)}")
        batch = torch.stack(chw)
    if batch.dtype != torch.uint8 and not batch.is_floating_point():
        raise ValueError(f"frames must be uint8 or float, got {batch.dtype}")
    return batch


_JITTER_OPS = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)


def apply_view(
    frames: Sequence[Frame] | torch.Tensor,
    params: ViewParams,
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    antialias: bool = True,
) -> torch.Tensor:
    """Apply one view's parameters to all frames of a shot at once: a float32 (3 * N) x size x size tensor.

    Frame k fills channels 3k..3k+2 (9 channels for SCRL's 3 keyframes). Steps: crop and resize on the uint8
    tensor (bilinear, antialiased; without ``antialias``, plain bilinear on the frames scaled to [0, 1]), scale to
    [0, 1], colour jitter in the sampled order, grayscale (3 channels; before the jitter when ``params.gray_first``),
    Gaussian blur (`gaussian_blur`), horizontal flip, normalise with ``mean`` and ``std``.
    """
    batch = stack_frames(frames)
    height, width = batch.shape[-2:]
    top, left, h, w = params.crop
    if not (0 <= top and 0 <= left and 0 < h and 0 < w and top + h <= height and left + w <= width):
        raise ValueError(f"crop box {params.crop} (top, left, height, width) is outside the {height}x{width} frames")
    x = batch if antialias else F.to_dtype(batch, torch.float32, scale=True)
    x = F.resized_crop(x, top, left, h, w, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=antialias)
    x = F.to_dtype(x, torch.float32, scale=True)
    if params.grayscale and params.gray_first:
        x = F.rgb_to_grayscale(x, num_output_channels=3)
    if params.jitter is not None:
        factors = params.jitter[1:]
        for op in params.jitter.order:
            if factors[op] is not None:
                x = _JITTER_OPS[op](x, factors[op])
    if params.grayscale and not params.gray_first:
        x = F.rgb_to_grayscale(x, num_output_channels=3)
    if params.blur_sigma is not None:
        x = gaussian_blur(x, params.blur_sigma)
    if params.flip:
        x = F.horizontal_flip(x)
    x = F.normalize(x, list(mean), list(std))
    return x.reshape(-1, size, size)


@dataclass(frozen=True)
class TwoViewShotTransform:
    """frames of one shot -> (query, key), each (3 * N) x S x S float32 with its own parameters shared by all frames.

    Picklable, so it can be handed to DataLoader workers; without a generator each call draws from the global torch
    RNG, which DataLoader seeds per worker.
    """

    query: ViewSpec = QUERY_VIEW
    key: ViewSpec = KEY_VIEW

    @classmethod
    def scrl(cls, size: int = 224) -> TwoViewShotTransform:
        """SCRL's query and key views at ``size`` x ``size`` pixels (224 in the paper)."""
        return cls(replace(QUERY_VIEW, size=size), replace(KEY_VIEW, size=size))

    def sample(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> tuple[ViewParams, ViewParams]:
        """One shot's query then key parameters, for frames of ``height`` x ``width`` pixels."""
        return sample_view_params(height, width, self.query, generator), sample_view_params(
            height, width, self.key, generator
        )

    def __call__(
        self, frames: Sequence[Frame] | torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = stack_frames(frames)
        q_params, k_params = self.sample(batch.shape[-2], batch.shape[-1], generator)
        q = apply_view(batch, q_params, self.query.size, self.query.mean, self.query.std)
        k = apply_view(batch, k_params, self.key.size, self.key.mean, self.key.std)
        return q, k
