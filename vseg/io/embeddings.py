"""Shot embedding files: vseg's ``.npz`` and the SCRL pickle, read and written here only.

``<split>.npz`` (the default; ``numpy.load(..., allow_pickle=False)`` reads it, no code runs)::

    format     "vseg-embeddings/1"
    movies     (M,) str          movie ids, in split order
    offsets    (M + 1,) int64    movie m owns rows offsets[m]:offsets[m + 1]
    features   (N, D) float32    one row per shot, in shot order
    labels     (N,) int64        0/1 boundary labels (1 = last shot of a scene); absent for unlabelled movies
    frames     (N, 2) int64      start and end frame of each shot; absent without shot tables
    fps        (M,) float64      frames per second of each movie; NaN where unknown; absent when none is known

``<split>.pkl`` is the format of SCRL's ``extract_embeddings.py``: ``{imdb: [(feature float32 (1, D),
label int64 0-d), ...]}`` in shot order, labelled movies only. It is read with :class:`SafeUnpickler`, which builds
numpy arrays, numbers, strings, lists, tuples and dicts and refuses everything else, so a crafted pickle cannot run
code.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vseg.errors import DataError
from vseg.io import atomic

FORMAT = "vseg-embeddings/1"

try:  # numpy >= 2 moved the pickling helpers to numpy._core; pickles name either module
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles spell bytes as ``_codecs.encode(text, "latin1")``; this allows that call and no other."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refused _codecs.encode with arguments other than (str, 'latin1')")
    return text.encode("latin1")


# What a pickle of numpy arrays and scalars needs, whichever numpy (1.x or 2.x) and protocol (2-5) wrote it.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _multiarray._reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _multiarray.scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _numeric._frombuffer for core in ("core", "_core")},
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler for data only: numpy arrays and scalars plus Python's built-in containers and numbers.

    Any other global (a function, a class, ``os.system``...) raises ``pickle.UnpicklingError`` naming it.
    """

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name} (only numpy arrays and plain data are allowed)"
            ) from None


def safe_load_pickle(path: Path):
    """Unpickle a data-only file with :class:`SafeUnpickler`; DataError naming the file on anything else."""
    try:
        with open(path, "rb") as stream:
            return SafeUnpickler(stream).load()
    except FileNotFoundError:
        raise DataError(path, "embedding file not found") from None
    except pickle.UnpicklingError as exc:
        raise DataError(path, f"unsafe or invalid pickle: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise DataError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None


@dataclass
class Embeddings:
    """The shot embeddings of a set of movies, concatenated in movie order (see the module docstring)."""

    movies: list[str]
    offsets: np.ndarray
    features: np.ndarray
    labels: np.ndarray | None = None
    frames: np.ndarray | None = None
    fps: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.features = np.asarray(self.features, dtype=np.float32)
        if self.features.ndim != 2 or len(self.offsets) != len(self.movies) + 1:
            raise ValueError("features must be (N, D) and offsets one longer than movies")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.features) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must rise from 0 to the number of feature rows")
        for name, width in (("labels", None), ("frames", 2)):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.int64)
                if len(value) != len(self.features) or (width and value.shape[1:] != (width,)):
                    raise ValueError(f"{name} must have one entry per feature row")
                setattr(self, name, value)
        if self.fps is not None:
            self.fps = np.asarray(self.fps, dtype=np.float64)
            if self.fps.shape != (len(self.movies),):
                raise ValueError("fps must have one entry per movie")

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def rows(self, index: int) -> slice:
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))

    def per_movie(self, array: np.ndarray | None) -> dict[str, np.ndarray]:
        """``array`` (one entry per shot) cut into a ``{movie: entries}`` dict; empty for None."""
        if array is None:
            return {}
        return {movie: array[self.rows(i)] for i, movie in enumerate(self.movies)}

    def movie_fps(self) -> dict[str, float]:
        """The known frame rates, by movie."""
        if self.fps is None:
            return {}
        return {movie: float(fps) for movie, fps in zip(self.movies, self.fps, strict=True) if np.isfinite(fps)}

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i, movie in enumerate(self.movies):
            yield movie, self.features[self.rows(i)]

    @classmethod
    def concat(
        cls,
        movies: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray] | None = None,
        frames: Mapping[str, np.ndarray] | None = None,
        fps: Mapping[str, float] | None = None,
    ) -> Embeddings:
        """Build from per-movie arrays (in the mapping's order); frames and fps may cover only some movies."""
        ids = list(movies)
        offsets = np.concatenate([[0], np.cumsum([len(movies[m]) for m in ids])])
        dim = next((np.asarray(movies[m]).shape[1] for m in ids), 0)
        features = np.concatenate([np.asarray(movies[m], np.float32) for m in ids]) if ids else np.zeros((0, dim))
        stacked_labels = np.concatenate([labels[m] for m in ids]).astype(np.int64) if labels is not None else None
        stacked_frames = None
        if frames and all(m in frames for m in ids):
            stacked_frames = np.concatenate([np.asarray(frames[m], np.int64).reshape(-1, 2) for m in ids])
        rates = np.array([fps.get(m, np.nan) for m in ids], np.float64) if fps else None
        return cls(ids, offsets, features, stacked_labels, stacked_frames, rates)


def write_npz(path: Path, embeddings: Embeddings) -> None:
    """Write ``embeddings`` as an (uncompressed) ``.npz``, atomically."""
    arrays = {
        "format": np.array(FORMAT),
        "movies": np.array(embeddings.movies, dtype=str),
        "offsets": embeddings.offsets,
        "features": embeddings.features,
    }
    for name in ("labels", "frames", "fps"):
        if getattr(embeddings, name) is not None:
            arrays[name] = getattr(embeddings, name)
    with atomic.atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as stream:  # a file object: np.savez would append ".npz" to the temporary name
            np.savez(stream, **arrays)


def write_scrl_pickle(path: Path, embeddings: Embeddings) -> None:
    """Write the SCRL pickle (labelled sets only): ``{imdb: [(feature (1, D) float32, label int64 0-d), ...]}``."""
    if embeddings.labels is None:
        raise ValueError("the SCRL pickle needs labels")
    data = {
        movie: [
            (row[None, :].copy(), np.array(label, dtype=np.int64))
            for row, label in zip(features, embeddings.labels[embeddings.rows(i)], strict=True)
        ]
        for i, (movie, features) in enumerate(embeddings)
    }
    atomic.write_bytes(Path(path), pickle.dumps(data, protocol=4))


def read_embeddings(path: Path) -> Embeddings:
    """Read a ``.npz`` or SCRL ``.pkl`` embedding file, told apart by their first bytes, not by the name."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
    except FileNotFoundError:
        raise DataError(path, "embedding file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc})") from None
    if head.startswith(b"PK"):
        return _read_npz(path)
    if head.startswith(b"\x80"):
        return _read_scrl_pickle(path)
    raise DataError(path, "not an embedding file: expected a vseg .npz or an SCRL .pkl")


def _read_npz(path: Path) -> Embeddings:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(path, f"not a readable .npz ({exc})") from None
    if str(arrays.get("format", "")) != FORMAT:
        raise DataError(path, f"not a vseg embedding file (format {str(arrays.get('format', 'missing'))!r})")
    try:
        return Embeddings(
            [str(m) for m in arrays["movies"]],
            arrays["offsets"],
            arrays["features"],
            arrays.get("labels"),
            arrays.get("frames"),
            arrays.get("fps"),
        )
    except (KeyError, ValueError) as exc:
        raise DataError(path, f"inconsistent embedding file ({exc})") from None


def _read_scrl_pickle(path: Path) -> Embeddings:
    data = safe_load_pickle(path)
    if not isinstance(data, dict) or not data:
        raise DataError(path, "expected a non-empty {imdb: [(embedding, label), ...]} dict (the SCRL pickle)")
    features, labels = {}, {}
    for movie, shots in data.items():
        try:
            rows = [np.asarray(emb, dtype=np.float32).reshape(-1) for emb, _ in shots]
            labels[str(movie)] = np.array([int(np.asarray(label).reshape(())) for _, label in shots], np.int64)
            features[str(movie)] = np.stack(rows)
        except (TypeError, ValueError) as exc:
            raise DataError(path, f"movie {movie}: expected a list of (embedding, label) pairs ({exc})") from None
    dims = {f.shape[1] for f in features.values()}
    if len(dims) != 1:
        raise DataError(path, f"embeddings of different sizes: {sorted(dims)}")
    labels = {movie: np.where(values == -1, 1, values) for movie, values in labels.items()}  # -1 is read as 1
    if any(not np.isin(values, (0, 1)).all() for values in labels.values()):
        raise DataError(path, "labels must be 0, 1 or -1")
    return Embeddings.concat(features, labels)
