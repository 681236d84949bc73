"""Checkpoints: written atomically, loaded safely (``weights_only=True``), in the reference's key layout.

A checkpoint is a dict (as SCRL's ``pretrain_main.py`` saves it, with more in it)::

    format        "vseg-checkpoint/1"
    method, arch  "scrl", "resnet50"
    epoch, step   epochs and optimiser steps completed
    state_dict    the whole objective as DDP would name it: module.encoder_q.*, module.encoder_k.*, module.queue, ...
    optimizer     the optimiser's state dict
    scheduler     {"schedule", "base_lr", "lr"}: the lr is a pure function of the epoch, so this is all it needs
    rng           one RNG state per rank: {"torch", "cuda", "python"} (vseg.runtime.capture_rng)
    world_size    ranks of the run that wrote it
    config        the effective config (JSON types)
    vseg_version

The ``module.`` prefix is written in one process too, so that tools written for the original release read ours and
``vseg embed`` reads theirs. Every command that takes a checkpoint loads it here: a file that is not one (text,
random bytes, a truncated or foreign file) is a DataError naming it, whatever ``torch.load`` raised.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vseg.errors import DataError
from vseg.io import atomic

FORMAT = "vseg-checkpoint/1"
PREFIX = "module."
LAST = "last.pth"
CLIP_SIZE_KEYS = {"hico": "crop_size", "finetune": "crop_size"}  # where older runs' configs hold their crop size


def epoch_name(epoch: int) -> str:
    """File name of the checkpoint written after ``epoch`` completed epochs: ``epoch_0004.pth``."""
    return f"epoch_{epoch:04d}.pth"


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a checkpoint."""
    with atomic.atomic_path(Path(path)) as tmp:
        torch.save(dict(payload), tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True`` (tensors and plain containers, no code).

    DataError naming the file when it is missing, a folder, unreadable, or not a dict that ``torch.load`` reads.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "checkpoint not found")
    if path.is_dir():
        raise DataError(path, "is a folder, not a checkpoint file")
    try:
        with warnings.catch_warnings():  # the weights-only unpickler warns about pickle protocols before failing
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - on foreign bytes torch.load raises KeyError, struct.error, ...
        raise DataError(path, f"not a readable checkpoint ({_load_failure(path, exc)})") from None
    if not isinstance(checkpoint, dict):
        raise DataError(path, f"a checkpoint must be a dict, this file holds a {type(checkpoint).__name__}")
    return checkpoint


def _load_failure(path: Path, exc: Exception) -> str:
    """Why ``torch.load`` could not read ``path``, in a few words."""
    with path.open("rb") as stream:
        head = stream.read(4)
    if not head:
        return "the file is empty"
    text = str(exc)
    if head == b"PK\x03\x04":  # torch.save's zip format
        first = text.split(". ")[0].strip()
        return f"a zip archive that is not a whole torch.save file, truncated or of another kind: {first}"
    if "WeightsUnpickler error:" in text:  # torch's message tells the user to turn weights_only off: we do not
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        return f"not a torch.save file, or one holding objects other than tensors and plain containers: {detail}"
    if isinstance(exc, EOFError):
        return "the file ends early (truncated)"
    return f"not a torch.save file: {type(exc).__name__} {text.splitlines()[0] if text else ''}".rstrip()


def with_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    return {prefix + name: tensor for name, tensor in state_dict.items()}


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, with it removed (``module.encoder_q.conv1.weight`` -> ``encoder_q.conv1...``)."""
    return {name[len(prefix) :]: tensor for name, tensor in state_dict.items() if name.startswith(prefix)}


def method_note(checkpoint: dict) -> str:
    """``"a vseg hico checkpoint, "`` when the checkpoint names its method, else nothing: said when it holds no
    encoder of the kind a command takes."""
    method = checkpoint.get("method")
    return f"a vseg {method} checkpoint, " if isinstance(method, str) else ""


def fill_weights(
    path: Path,
    own: dict[str, torch.Tensor],
    weights: dict[str, torch.Tensor],
    names: list[str],
    prefix: str,
    what: str,
) -> dict[str, torch.Tensor]:
    """``own`` (a model's state dict) with ``names`` taken from a checkpoint's ``weights`` (found under ``prefix``).

    DataError listing the ``what`` weights the checkpoint lacks (BatchNorm's ``num_batches_tracked`` counters are
    not weights and may be absent), or naming the first one that is no tensor or whose shape does not fit.
    """
    missing = [n for n in names if n not in weights and not n.endswith("num_batches_tracked")]
    if missing:
        shown = ", ".join(prefix + name for name in missing[:8]) + (", ..." if len(missing) > 8 else "")
        raise DataError(path, f"{len(missing)} {what} weights missing: {shown}")
    odd = [n for n in names if n in weights and not isinstance(weights[n], torch.Tensor)]
    if odd:
        raise DataError(path, f"{prefix}{odd[0]} is a {type(weights[odd[0]]).__name__}, not a tensor")
    wrong = [n for n in names if n in weights and weights[n].shape != own[n].shape]
    if wrong:
        name = wrong[0]
        shapes = f"{tuple(weights[name].shape)}, expected {tuple(own[name].shape)}"
        raise DataError(path, f"{prefix}{name} has shape {shapes}")
    return {**own, **{name: weights[name] for name in names if name in weights}}


def fill_all_weights(
    path: Path, own: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], prefix: str, what: str
) -> dict[str, torch.Tensor]:
    """:func:`fill_weights` for every tensor of ``own``, and a DataError naming the first of ``weights`` that is none
    of ``own``'s: every tensor of the checkpoint's module is mapped."""
    unexpected = [name for name in weights if name not in own]
    if unexpected:
        raise DataError(path, f"{prefix}{unexpected[0]} is no tensor of the {what} ({len(unexpected)} such tensors)")
    return fill_weights(path, own, weights, list(own), prefix, what)


S3DG_PREFIXES = ("module.backbone.", "backbone.", "module.", "")
"""Where an S3D-G backbone sits in a checkpoint's state dict, tried in this order: a vseg HiCo (or fine-tuning) run's
``module.backbone.*``, the reference's ``backbone.*``, a DDP-wrapped or a bare S3D-G state dict."""


@dataclass
class S3DGWeights:
    """The S3D-G backbone weights found in a checkpoint (prefix removed), and what was learned about it."""

    weights: dict[str, torch.Tensor]
    prefix: str
    gating: bool  # whether the weights have S3D-G's self-gating (Mixed_3b.gating_*)
    layout: str  # "vseg hico", "vseg finetune" or "state dict"
    image_size: int | None = None  # the crop size it was trained at, when the checkpoint records it


def read_s3dg_weights(path: Path) -> S3DGWeights:
    """The S3D-G backbone of a vseg HiCo or fine-tuning checkpoint, or of a bare S3D-G state dict; DataError naming
    the file when it holds none (a SCRL checkpoint, say). Whether every weight is there is for the caller to check
    against its model (:func:`fill_weights`)."""
    path = Path(path)
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict):
        raise DataError(path, f"its 'state_dict' is a {type(state).__name__}, not a dict")
    prefix = next((p for p in S3DG_PREFIXES if f"{p}Conv_1a.conv1.weight" in state), None)
    if prefix is None:
        keys = ", ".join(list(state)[:4])
        raise DataError(
            path,
            f"{method_note(checkpoint)}no S3D-G backbone in it "
            f"(no Conv_1a weights under backbone.; first keys: {keys})",
        )
    weights = strip_prefix(state, prefix)
    gating = any(name.startswith("Mixed_3b.gating") for name in weights)
    layout = f"vseg {checkpoint['method']}" if "method" in checkpoint else "state dict"
    return S3DGWeights(weights, prefix, gating, layout, recorded_size(checkpoint, CLIP_SIZE_KEYS))


def recorded_size(checkpoint: Mapping[str, Any], config_keys: Mapping[str, str]) -> int | None:
    """The image size a vseg checkpoint's encoder was trained at: its ``image_size``, or for a run written before that
    key existed, its config's ``data.<key>`` where ``config_keys`` names the key for the checkpoint's method; None for
    other checkpoints (a release, a bare state dict)."""
    if checkpoint.get("format") != FORMAT:
        return None
    size = checkpoint.get("image_size")
    key = config_keys.get(str(checkpoint.get("method")))
    if size is None and key is not None:
        size = (checkpoint.get("config") or {}).get("data", {}).get(key)
    return size if isinstance(size, int) else None


BASSL_PREFIXES = ("module.", "")
"""Where BaSSL's modules sit in a checkpoint's state dict: a vseg bassl run's ``module.shot_encoder.*`` and
``module.crn.*``, or BaSSL's released Lightning checkpoints' ``shot_encoder.*`` and ``crn.*``."""


@dataclass
class BasslWeights:
    """The weights of a BaSSL checkpoint, by module (prefixes removed): ``shot_encoder``, ``crn`` (empty when the
    checkpoint has none, as BaSSL's shot-level baselines), ``heads`` (the pretext heads, ``loss.*``)."""

    shot_encoder: dict[str, torch.Tensor]
    crn: dict[str, torch.Tensor]
    heads: dict[str, torch.Tensor]
    prefix: str
    layout: str  # "vseg bassl" or "BaSSL release"


def bassl_weights(checkpoint: dict[str, Any], path: Path) -> BasslWeights | None:
    """The BaSSL weights of a loaded checkpoint, or None when it holds no ``shot_encoder.conv1.weight`` (under
    ``module.`` or not). A tensor outside ``shot_encoder``, ``crn`` and ``loss`` is a DataError naming it, so that no
    weight is dropped unnoticed."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        return None
    prefix = next((p for p in BASSL_PREFIXES if f"{p}shot_encoder.conv1.weight" in state), None)
    if prefix is None:
        return None
    parts = {name: strip_prefix(state, f"{prefix}{name}.") for name in ("shot_encoder", "crn", "loss")}
    known = sum(len(part) for part in parts.values())
    if known != len(state):
        other = next(k for k in state if not k.startswith(tuple(f"{prefix}{n}." for n in parts)))
        raise DataError(path, f"{other} belongs to no BaSSL module (shot_encoder, crn, loss)")
    layout = "vseg bassl" if checkpoint.get("format") == FORMAT else "BaSSL release"
    return BasslWeights(parts["shot_encoder"], parts["crn"], parts["loss"], prefix, layout)
