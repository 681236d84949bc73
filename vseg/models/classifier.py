"""A clip classifier for fine-tuning: a backbone, global average pooling, dropout and a linear head.

HiCo evaluates its encoders by fine-tuning them on UCF101 and HMDB51 (Qing et al., CVPR 2022, Sec. 4.1) with the
head of its code base (``BaseHead``: global average pool, dropout 0, ``Linear(1024, classes)``; softmax only at
test time). The backbone is trained in one of three ways:

- ``full``: every weight is trained (fine-tuning);
- ``linear``: only the head is trained, but the backbone stays in train mode, so its BatchNorm layers normalise with
  batch statistics and keep updating their running statistics (the reference's linear fine-tuning,
  ``TRAIN.ONLY_LINEAR``);
- ``frozen``: only the head is trained and the backbone is kept in eval mode, a strict frozen-feature probe (the
  later ``DONOT_UPDATE_BN`` option of the reference's code base).

``bn_group``: in training, the backbone sees the batch in consecutive groups of this many clips, each a BatchNorm
batch of its own. The reference fine-tunes on 8 GPUs without SyncBN, so its BN normalises over each GPU's share of
the batch (16 clips for UCF101, 8 for HMDB51); groups give the same statistics whatever the number of devices.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

BackboneMode = Literal["full", "linear", "frozen"]


class ClipClassifier(nn.Module):
    """``B x 3 x T x H x W`` clips -> ``B x classes`` logits; the backbone must return pooled ``B x dim`` features."""

    def __init__(
        self,
        backbone: nn.Module,
        classes: int,
        dim: int = 1024,
        dropout: float = 0.0,
        mode: BackboneMode = "full",
        bn_group: int | None = None,
    ):
        super().__init__()
        if mode not in ("full", "linear", "frozen"):
            raise ValueError(f"mode must be full, linear or frozen, got {mode!r}")
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, classes)
        self.mode = mode
        self.bn_group = bn_group
        if mode != "full":
            self.backbone.requires_grad_(False)  # the gradient the reference computed for it was never used

    def train(self, mode: bool = True) -> ClipClassifier:
        super().train(mode)
        if self.mode == "frozen":
            self.backbone.eval()
        return self

    def _features(self, clips: torch.Tensor) -> torch.Tensor:
        if self.bn_group is None or not self.backbone.training:
            return self.backbone(clips)
        return torch.cat([self.backbone(group) for group in clips.split(self.bn_group)])

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if self.mode == "full":
            features = self._features(clips)
        else:
            with torch.no_grad():
                features = self._features(clips)
        return self.head(self.dropout(features))
