"""The views of :mod:`vseg.data.augment`, applied to a whole batch at once on the training device.

Workers draw each item's parameters exactly as the per-shot path does (:func:`~vseg.data.augment.sample_view_params`,
same generator, same order) and ship them packed in a float64 row (:func:`pack_params`); the training process
decodes the JPEGs on the device and applies :func:`apply_views`, which does what
:func:`~vseg.data.augment.apply_view` does to each item, with every item's own parameters, in a few batched tensor
operations (the same code on CPU and CUDA):

- crop and resize: antialiased bilinear resampling written as two batched matrix products, ``Wy @ image @ Wx^T``,
  whose per-item weight matrices hold PyTorch's antialiased bilinear weights (``upsample_bilinear2d_aa``) for the
  item's crop box and are zero outside it; the result is rounded to whole grey levels, as the per-shot path's uint8
  resize is;
- colour jitter: torchvision's ``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation`` and ``adjust_hue``
  (float formulas) with per-item factors, each op applied to the items that drew it at that position of their order;
- grayscale (ITU-R 601-2 luma, as torchvision; after the jitter, or before it), flip (a per-item select);
- blur: one grouped convolution per axis with per-item Gaussian kernels of the batch's largest radius, the smaller
  kernels padded with zero taps, so reflect padding gives the per-shot result;
- normalisation.

For HiCo's clips (Qing et al., CVPR 2022; the reference's ``ContrastiveGenerator``) the workers cut the crop box
out of the decoded uint8 frames (:func:`crop_item`) and the collation pads the crops to one size
(:func:`stack_crops`), so that only the crops travel.

torchvision's v2 kernels take one factor per call and kornia would add a dependency for what is a few lines of
tensor math here, so neither is used for the batched steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vseg.data.augment import ViewParams

PARAMS = 16
"""Length of a packed parameter row: top, left, height, width, flip, jitter applied, jitter order (4), brightness,
contrast, saturation, hue (NaN: op not applied), grayscale (0: none, 1: after the jitter, 2: before it), blur sigma
(0: no blur)."""

_LUMA = (0.2989, 0.587, 0.114)
GRAY_AFTER_JITTER, GRAY_BEFORE_JITTER = 1.0, 2.0  # the grayscale slot of a packed row (0: no grayscale)


def pack_params(params: ViewParams) -> torch.Tensor:
    """One item's view parameters as a float64 row of :data:`PARAMS` values (exact for the integer crop box)."""
    jitter = params.jitter
    order = jitter.order if jitter is not None else (0, 1, 2, 3)
    factors = jitter[1:] if jitter is not None else (None,) * 4
    row = [
        *params.crop,
        float(params.flip),
        float(jitter is not None),
        *order,
        *(math.nan if f is None else f for f in factors),
        (GRAY_BEFORE_JITTER if params.gray_first else GRAY_AFTER_JITTER) if params.grayscale else 0.0,
        params.blur_sigma or 0.0,
    ]
    return torch.tensor(row, dtype=torch.float64)


def _aa_weights(starts: torch.Tensor, lengths: torch.Tensor, extent: int, size: int) -> torch.Tensor:
    """``B x size x extent`` weights resampling each item's ``[start, start + length)`` to ``size`` pixels.

    PyTorch's antialiased bilinear weights (``_compute_indices_min_size_weights_aa``): scale ``length / size``,
    support ``max(scale, 1)``, taps ``max(1 - |x - centre + 0.5| / max(scale, 1), 0)`` over the pixels within the
    support, normalised; zero outside the crop.
    """
    device = starts.device
    scale = (lengths / size).unsqueeze(1)  # B x 1
    support = scale.clamp(min=1.0)
    centre = scale * (torch.arange(size, device=device, dtype=torch.float64) + 0.5)  # B x size
    low = (centre - support + 0.5).clamp(min=0).floor()
    high = torch.minimum((centre + support + 0.5).floor(), lengths.unsqueeze(1))
    x = torch.arange(extent, device=device, dtype=torch.float64) - starts.unsqueeze(1)  # B x extent, crop coordinates
    x = x.unsqueeze(1)  # B x 1 x extent
    taps = (1 - ((x - centre.unsqueeze(2) + 0.5) / support.unsqueeze(2)).abs()).clamp(min=0)
    taps = taps * ((x >= low.unsqueeze(2)) & (x < high.unsqueeze(2)))
    return taps / taps.sum(dim=2, keepdim=True)


def resized_crops(images: torch.Tensor, params: torch.Tensor, size: int) -> torch.Tensor:
    """``B x N x 3 x H x W`` uint8 (or float in [0, 255]) -> ``B x N x 3 x size x size`` float32 in [0, 1]: each
    item's crop box resized with antialiased bilinear filtering, rounded to whole grey levels."""
    batch, _, _, height, width = images.shape
    boxes = params[:, :4].to(images.device)
    rows = _aa_weights(boxes[:, 0], boxes[:, 2], height, size).float()
    cols = _aa_weights(boxes[:, 1], boxes[:, 3], width, size).float()
    planes = images[0].numel() // (height * width)  # 3N
    across = images.float().reshape(batch, planes * height, width) @ cols.transpose(1, 2)  # B x 3N*H x size
    down = across.view(batch, planes, height, size).transpose(2, 3).reshape(batch, planes * size, height)
    out = (down @ rows.transpose(1, 2)).view(batch, planes, size, size).transpose(2, 3)  # bmm, no broadcast copies
    return out.round_().div_(255).reshape(batch, -1, 3, size, size)


def _grey(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(dim=-3)
    return (r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2]).unsqueeze(-3)


def _per_item(factor: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return factor.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _per_item(factor, x)
    return (x * f + other * (1 - f)).clamp_(0, 1)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """torchvision's (Pillow's) RGB -> HSV on float images, channels at dim -3."""
    r, g, b = x.unbind(dim=-3)
    minc, maxc = torch.aminmax(x, dim=-3)
    equal = maxc == minc
    span = torch.where(equal, torch.ones_like(maxc), maxc - minc)
    s = (maxc - minc) / torch.where(equal, torch.ones_like(maxc), maxc)
    rc, gc, bc = ((maxc.unsqueeze(-3) - x) / span.unsqueeze(-3)).unbind(dim=-3)
    red, green = maxc == r, (maxc == g) & (maxc != r)
    h = torch.where(red, bc - gc, torch.where(green, 2.0 + rc - bc, 4.0 + gc - rc))
    h = (h / 6.0 + 1.0).fmod(1.0)
    return torch.stack((h, s, maxc), dim=-3)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """torchvision's HSV -> RGB on float images."""
    h, s, v = x.unbind(dim=-3)
    h6 = h * 6
    i = torch.floor(h6)
    f = h6 - i
    i = i.to(torch.int64).remainder(6)
    p = ((1.0 - s) * v).clamp(0, 1)
    q = ((1.0 - s * f) * v).clamp(0, 1)
    t = ((1.0 - s + s * f) * v).clamp(0, 1)
    vpqt = torch.stack((v, p, q, t), dim=-3)
    select = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]], device=x.device)
    return vpqt.gather(-3, select[:, i].movedim(0, -3))


def _brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * _per_item(factor, x)).clamp_(0, 1)


def _contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, _grey(x).mean(dim=(-3, -2, -1), keepdim=True), factor)


def _saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, _grey(x), factor)


def _hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    hsv = _rgb_to_hsv(x)
    h = (hsv[..., 0, :, :] + _per_item(factor, hsv[..., 0, :, :])).remainder(1.0)
    return _hsv_to_rgb(torch.stack((h, hsv[..., 1, :, :], hsv[..., 2, :, :]), dim=-3))


_JITTER_OPS = (_brightness, _contrast, _saturation, _hue)


def grayscale(x: torch.Tensor, params: torch.Tensor, when: float) -> torch.Tensor:
    """``B x N x 3 x S x S`` floats with the items whose grayscale slot is ``when`` (GRAY_AFTER_JITTER or
    GRAY_BEFORE_JITTER) turned gray, as torchvision's ``rgb_to_grayscale`` with 3 output channels."""
    selected = params[:, 14] == when
    if not bool(selected.any()):
        return x
    return torch.where(selected.to(x.device).view(-1, 1, 1, 1, 1), _grey(x).expand_as(x), x)


def color_jitter(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Per-item colour jitter of ``B x N x 3 x S x S`` floats: at each of the 4 positions of the items' op orders,
    each op is applied to the items that put it there and drew a factor for it."""
    active = params[:, 5] > 0
    if not bool(active.any()):
        return x
    order, factors = params[:, 6:10].long(), params[:, 10:14]
    for position in range(4):
        for op, apply in enumerate(_JITTER_OPS):
            chosen = torch.nonzero(active & (order[:, position] == op) & ~factors[:, op].isnan()).flatten()
            if len(chosen):
                index = chosen.to(x.device)
                x[index] = apply(x[index], factors[chosen, op].to(x.device))
    return x


def gaussian_blurs(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Blur each item of ``B x ... x S x S`` with its own sigma (0: unchanged) as
    :func:`vseg.data.augment.gaussian_blur`: ``2 * ceil(3 * sigma) + 1`` taps, reflect padding."""
    blurred = sigmas > 0
    if not bool(blurred.any()):
        return x
    height, width = x.shape[-2:]
    sigmas = sigmas.double().cpu()
    # vseg.data.augment.blur_kernel_size, per item: radius ceil(3 sigma) >= 1, at most the side - 1; 0 for no blur
    radii = (3 * sigmas).ceil().clamp(min=1, max=min(height, width) - 1).where(blurred.cpu(), 0).long()
    radius = int(radii.max())
    if radius == 0:
        return x
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    safe = sigmas.where(blurred.cpu(), 1.0).unsqueeze(1)
    taps = torch.exp(-0.5 * (offsets / safe) ** 2) * (offsets.abs() <= radii.unsqueeze(1))
    kernels = taps / taps.sum(dim=1, keepdim=True)  # an item without blur keeps the centre tap alone
    planes = x[0].numel() // (height * width)
    kernels = kernels.to(device=x.device, dtype=x.dtype).repeat_interleave(planes, dim=0)
    flat = torch.nn.functional.pad(x.reshape(1, -1, height, width), [radius] * 4, mode="reflect")
    groups = flat.shape[1]
    flat = torch.nn.functional.conv2d(flat, kernels.view(groups, 1, 1, -1), groups=groups)
    flat = torch.nn.functional.conv2d(flat, kernels.view(groups, 1, -1, 1), groups=groups)
    return flat.reshape(x.shape)


def apply_views(
    images: torch.Tensor,
    params: torch.Tensor,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """``B x N x 3 x H x W`` uint8 frames and ``B x PARAMS`` packed parameters -> ``B x N x 3 x size x size``
    float32: item b is ``apply_view(images[b], params b, ...)`` up to float rounding, on ``images.device``."""
    if params.shape != (len(images), PARAMS):
        raise ValueError(f"params must be {len(images)} x {PARAMS}, got {tuple(params.shape)}")
    with torch.autocast(images.device.type, enabled=False):
        x = resized_crops(images, params, size)
        x = grayscale(x, params, GRAY_BEFORE_JITTER)
        x = color_jitter(x, params)
        x = grayscale(x, params, GRAY_AFTER_JITTER)
        x = gaussian_blurs(x, params[:, 15])
        flip = (params[:, 4] > 0).to(x.device).view(-1, 1, 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
        shape = (1, 1, 3, 1, 1)
        mean_t = torch.tensor(mean, device=x.device, dtype=x.dtype).view(shape)
        std_t = torch.tensor(std, device=x.device, dtype=x.dtype).view(shape)
        return (x - mean_t) / std_t


def crop_item(frames: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut an item's crop box out of its ``N x 3 x H x W`` uint8 frames (a loader worker ships the crop, not the
    frames) and return it with its parameter row, the box moved to the crop's own corner."""
    top, left, height, width = (int(v) for v in params[:4])
    moved = params.clone()
    moved[:2] = 0
    return frames[..., top : top + height, left : left + width].contiguous(), moved


def stack_crops(crops: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of different sizes as one ``B x N x 3 x Hmax x Wmax`` uint8 tensor, zero-padded right and below (the
    resampling weights are zero outside each item's box, so the padding is never read), and their ``B x PARAMS``."""
    height, width = max(c.shape[-2] for c in crops), max(c.shape[-1] for c in crops)
    out = torch.zeros(len(crops), *crops[0].shape[:-2], height, width, dtype=crops[0].dtype)
    for item, crop in enumerate(crops):
        out[item, ..., : crop.shape[-2], : crop.shape[-1]] = crop
    return out, torch.stack(list(params))
