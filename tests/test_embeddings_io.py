"""Embedding files: the .npz round trip, the SCRL pickle in every protocol, and the safe unpickler."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from vseg.errors import DataError
from vseg.io.embeddings import Embeddings, read_embeddings, write_npz, write_scrl_pickle


def _embeddings() -> Embeddings:
    rng = np.random.default_rng(0)
    return Embeddings.concat(
        {"tt01": rng.normal(size=(5, 8)), "tt02": rng.normal(size=(3, 8))},
        {"tt01": np.array([0, 1, 0, 0, 1]), "tt02": np.array([0, 0, 1])},
        frames={"tt01": np.arange(10).reshape(5, 2), "tt02": np.arange(6).reshape(3, 2)},
        fps={"tt02": 25.0},
    )


def test_npz_round_trip_keeps_every_array(tmp_path):
    original = _embeddings()
    write_npz(tmp_path / "set.npz", original)
    loaded = read_embeddings(tmp_path / "set.npz")
    assert loaded.movies == ["tt01", "tt02"] and loaded.offsets.tolist() == [0, 5, 8]
    np.testing.assert_array_equal(loaded.features, original.features.astype(np.float32))
    np.testing.assert_array_equal(loaded.labels, [0, 1, 0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(loaded.frames, original.frames)
    assert loaded.movie_fps() == {"tt02": 25.0}
    assert loaded.per_movie(loaded.labels)["tt02"].tolist() == [0, 0, 1]
    with np.load(tmp_path / "set.npz", allow_pickle=False) as npz:  # readable without pickle
        assert sorted(npz.files) == ["features", "format", "fps", "frames", "labels", "movies", "offsets"]


def test_scrl_pickle_layout_and_round_trip(tmp_path):
    original = _embeddings()
    write_scrl_pickle(tmp_path / "set.pkl", original)
    with open(tmp_path / "set.pkl", "rb") as stream:
        raw = pickle.load(stream)
    assert list(raw) == ["tt01", "tt02"] and len(raw["tt01"]) == 5
    emb, label = raw["tt01"][1]
    assert emb.shape == (1, 8) and emb.dtype == np.float32 and label.dtype == np.int64 and int(label) == 1
    loaded = read_embeddings(tmp_path / "set.pkl")  # the name does not matter, the content does
    np.testing.assert_array_equal(loaded.features, original.features)
    np.testing.assert_array_equal(loaded.labels, original.labels)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_reference_pickles_of_any_protocol_load_and_minus_one_reads_as_one(tmp_path, protocol):
    data = {"tt9": [(np.ones((1, 4), np.float32), np.int64(-1)), (np.zeros((1, 4), np.float32), np.array(0))]}
    (tmp_path / "ref.bin").write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = read_embeddings(tmp_path / "ref.bin")
    assert loaded.labels.tolist() == [1, 0] and loaded.features.sum() == 4.0


class _RunsCode:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    target = tmp_path / "created_by_pickle"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"tt1": [(_RunsCode(target), 0)]}))
    with pytest.raises(DataError, match=r"evil\.pkl: unsafe or invalid pickle: refused to load posix\.mkdir"):
        read_embeddings(tmp_path / "evil.pkl")
    assert not target.exists()
    (tmp_path / "class.pkl").write_bytes(pickle.dumps({"tt1": [(np.ones(3), 0)], "x": Embeddings}))
    with pytest.raises(DataError, match="refused to load vseg.io.embeddings.Embeddings"):
        read_embeddings(tmp_path / "class.pkl")


def test_files_that_are_not_embeddings_are_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not an embedding file"):
        read_embeddings(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="missing.npz: embedding file not found"):
        read_embeddings(tmp_path / "missing.npz")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match="expected a non-empty"):
        read_embeddings(tmp_path / "list.pkl")
    (tmp_path / "ragged.pkl").write_bytes(pickle.dumps({"a": [(np.ones(3), 0)], "b": [(np.ones(4), 0)]}))
    with pytest.raises(DataError, match=r"embeddings of different sizes: \[3, 4\]"):
        read_embeddings(tmp_path / "ragged.pkl")
    np.savez(tmp_path / "other.npz", x=np.ones(3))
    with pytest.raises(DataError, match="not a vseg embedding file"):
        read_embeddings(tmp_path / "other.npz")
