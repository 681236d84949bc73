"""Checkpoint files: atomic, loaded with weights_only, the reference's key prefix, RNG round trips."""

from __future__ import annotations

import random

import pytest
import torch

from vseg.errors import DataError
from vseg.io.checkpoints import load_checkpoint, save_checkpoint, strip_prefix, with_prefix
from vseg.runtime import capture_rng, restore_rng


class Sneaky:
    """Unpickling this would run code in a plain pickle.load; weights_only refuses it."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_round_trip_with_rng_states(tmp_path):
    path = tmp_path / "run" / "last.pth"
    torch.manual_seed(3)
    random.seed(3)
    state = capture_rng(torch.device("cpu"))
    expected = (torch.rand(3), random.random())
    save_checkpoint(path, {"epoch": 2, "state_dict": with_prefix({"encoder_q.w": torch.ones(2)}), "rng": [state]})
    assert [p.name for p in path.parent.iterdir()] == ["last.pth"]  # no temporary file left behind
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 2 and list(loaded["state_dict"]) == ["module.encoder_q.w"]
    assert list(strip_prefix(loaded["state_dict"], "module.encoder_q.")) == ["w"]
    restore_rng(loaded["rng"][0], torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]


def test_untrusted_pickles_and_garbage_are_refused_with_the_file_named(tmp_path):
    sneaky = tmp_path / "sneaky.pth"
    torch.save({"state_dict": {}, "x": Sneaky()}, sneaky)
    with pytest.raises(DataError, match="sneaky.pth: not a readable checkpoint"):
        load_checkpoint(sneaky)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="garbage.pth: not a readable checkpoint"):
        load_checkpoint(garbage)
    bare = tmp_path / "list.pth"
    torch.save([torch.ones(1)], bare)
    with pytest.raises(DataError, match="must be a dict"):
        load_checkpoint(bare)
    with pytest.raises(DataError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pth")
