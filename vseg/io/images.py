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
