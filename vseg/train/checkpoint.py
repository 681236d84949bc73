"""Checkpoints: written atomically, loaded safely (``weights_only=True``), in the reference's key layout.

A checkpoint is a dict (scrl.md 2.6, with more in it)::

    format        "vseg-checkpoint/1"
    method, arch  "scrl", "resnet50"
    epoch, step   epochs and optimiser steps completed
    state_dict    the whole objective as DDP would name it: module.encoder_q.*, module.encoder_k.*, module.queue, ...
    optimizer     the optimiser's state dict
    scheduler     {"schedule", "base_lr", "lr"}: the lr is a pure function of the epoch, so this is all it needs
    rng           one RNG state per rank: {"torch", "cuda", "python"}
    world_size    ranks of the run that wrote it
    config        the effective config (JSON types)
    vseg_version

The ``module.`` prefix is written in one process too, so that tools written for the original release read ours and
``vseg embed`` reads theirs.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vseg.errors import DataError
from vseg.io import atomic

FORMAT = "vseg-checkpoint/1"
PREFIX = "module."
LAST = "last.pth"


def epoch_name(epoch: int) -> str:
    """File name of the checkpoint written after ``epoch`` completed epochs: ``epoch_0004.pth``."""
    return f"epoch_{epoch:04d}.pth"


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a checkpoint."""
    with atomic.atomic_path(Path(path)) as tmp:
        torch.save(dict(payload), tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True`` (tensors and plain containers, no code)."""
    try:
        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "checkpoint not found") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(path, f"not a readable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict):
        raise DataError(path, f"a checkpoint must be a dict, this file holds a {type(checkpoint).__name__}")
    return checkpoint


def with_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    return {prefix + name: tensor for name, tensor in state_dict.items()}


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, with it removed (``module.encoder_q.conv1.weight`` -> ``encoder_q.conv1...``)."""
    return {name[len(prefix) :]: tensor for name, tensor in state_dict.items() if name.startswith(prefix)}


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's RNG states: torch CPU, the device's CUDA generator, Python's ``random``."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"torch": torch.get_rng_state(), "cuda": cuda, "python": random.getstate()}


def restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
