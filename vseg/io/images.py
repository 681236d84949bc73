"""Reading keyframes: one decode per file, every failure reported as a DataError naming the file."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vseg.errors import DataError


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


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) read from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as opened:
            return opened.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(path, f"cannot read image header ({exc})") from None
