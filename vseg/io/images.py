"""Reading keyframes: one decode per file, every failure reported as a DataError naming the file."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from vseg.errors import DataError

if TYPE_CHECKING:
    import torch


def load_rgb(path: str | Path, size: tuple[int, int] | None = None) -> Image.Image:
    """Decode an image fully as RGB, optionally resized to ``size`` = (width, height) with bicubic filtering.

    A missing, truncated or non-image file raises DataError; the image is decoded here, not lazily later.
    """
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened if opened.mode == "RGB" else opened.convert("RGB")
    except FileNotFoundError:
        raise DataError(path, "image missing") from None
    except UnidentifiedImageError:
        raise DataError(path, "not an image (corrupt or wrong format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"corrupt image ({exc})") from None
    if size is not None and image.size != tuple(size):
        image = image.resize(tuple(size), Image.Resampling.BICUBIC)
    return image


def load_rgb_opencv(path: str | Path) -> Image.Image:
    """Decode an image as SCRL's ``extract_embeddings.py`` does, ``cv2.imread`` then BGR -> RGB, as a PIL image.

    A missing file or one OpenCV cannot decode raises DataError.
    """
    import cv2

    if not Path(path).is_file():
        raise DataError(path, "image missing")
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise DataError(path, "not an image (corrupt or wrong format)")
    return Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) read from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as opened:
            return opened.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(path, f"cannot read image header ({exc})") from None


def read_jpeg_bytes(path: str | Path) -> tuple[torch.Tensor, tuple[int, int]]:
    """A JPEG file's bytes as a 1-d uint8 tensor, and its (width, height) from the header (nothing is decoded).

    A missing file, or one whose header is not a JPEG's, raises DataError naming the file.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(path, "image missing") from None
    except OSError as exc:
        raise DataError(path, f"cannot read image ({exc.strerror})") from None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            kind, size = opened.format, opened.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        raise DataError(path, "not an image (corrupt or wrong format)") from None
    if kind != "JPEG":
        raise DataError(path, f"is a {kind}, not a JPEG: the device pipeline decodes JPEG only (data.pipeline cpu)")
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8), size


def decode_jpegs(files: list[torch.Tensor], paths: list[str], device: torch.device) -> list[torch.Tensor]:
    """Decode JPEG bytes to ``3 x H x W`` uint8 RGB tensors on ``device`` (nvJPEG on CUDA, libjpeg on CPU), all in
    one call; a file that fails raises DataError naming it (found by decoding the files one by one on the CPU)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 points to TorchCodec, without nvJPEG
        try:
            return decode_jpeg(files, mode=ImageReadMode.RGB, device=device)
        except RuntimeError as batch_error:
            for data, path in zip(files, paths, strict=True):
                try:
                    decode_jpeg(data, mode=ImageReadMode.RGB)
                except RuntimeError as exc:
                    detail = str(exc).splitlines()[0].rsplit(", ", 1)[-1]  # not torchvision's source location
                    raise DataError(path, f"corrupt image ({detail})") from None
            raise batch_error
