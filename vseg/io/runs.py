"""Run folders of the training stages (``vseg pretrain``, ``vseg segment``): where a run is resumed from, which
config changes a resume accepts, and ``metrics.jsonl``.

A run folder::

    OUT/config.yaml                 the effective config
    OUT/metrics.jsonl               one JSON object a line: {"event": "step" or "epoch", "epoch", "step", ...}
    OUT/checkpoints/last.pth        the checkpoint a ``--resume auto`` continues from (vseg.io.checkpoints)
    OUT/tensorboard/                the same rows for TensorBoard, when asked for
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vseg.config import StageConfig
from vseg.errors import ConfigError
from vseg.io import atomic
from vseg.io.checkpoints import LAST

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
# Keys that may change when a run of any method is resumed (a method adds its own, ``Method.resumable``); any other
# difference from the checkpoint's config is refused.
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.workers",
    "train.log_every",
    "train.checkpoint_every",
    "train.tensorboard",
    "train.steps_per_epoch",
    "data.root",
}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resumable(saved: dict[str, Any], config: StageConfig, path: Path, resumable: tuple[str, ...] = ()) -> None:
    """Refuse to resume with a config that differs from the checkpoint's other than in RESUMABLE_CHANGES and the
    ``resumable`` keys of the run's method."""
    old, new = _flatten(saved), _flatten(config.model_dump(mode="json"))
    allowed = RESUMABLE_CHANGES.union(resumable)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in allowed)
    if changed:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise ConfigError(f"{path}: cannot resume with a different config ({shown}{more}); use another --out")


def find_resume_checkpoint(out: Path, resume: str | None) -> Path | None:
    """The checkpoint to resume from: ``auto`` = OUT/checkpoints/last.pth if any, or an explicit path."""
    last = out / "checkpoints" / LAST
    if resume is None:
        if last.exists():
            raise ConfigError(
                f"{out} already holds a run ({last}); pass --resume auto to continue it, or choose another --out"
            )
        return None
    if resume == "auto":
        return last if last.exists() else None
    if not Path(resume).is_file():
        raise ConfigError(f"{resume}: --resume expects 'auto' or a checkpoint file, and this file does not exist")
    return Path(resume)


class MetricsLog:
    """metrics.jsonl (and TensorBoard) on rank 0; rows of an epoch that a resume repeats are dropped first."""

    def __init__(self, out: Path, start_epoch: int, tensorboard: bool):
        self.path = out / METRICS_FILE
        if self.path.exists():
            kept = [
                line
                for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("epoch", 0) <= start_epoch
            ]
            atomic.write_text(self.path, "".join(f"{line}\n" for line in kept))
        self.file = self.path.open("a", encoding="utf-8")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("train.tensorboard needs the tensorboard package: pip install tensorboard") from None
            self.writer = SummaryWriter(str(out / "tensorboard"))

    def write(self, row: dict[str, Any], step: int) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("event", "epoch", "step") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{row['event']}/{key}", value, step)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
