"""The SCRL shot encoder: a torchvision ResNet whose stem takes a shot's 3 keyframes as 9 channels.

Wu et al., "Scene Consistency Representation Learning for Video Scene Segmentation", CVPR 2022, Sec. 4.1 (implementation
details) and SCRL's ``models/backbones/visual/resnet.py``: a ResNet-50 whose ``conv1`` takes the 3 keyframes of a shot
stacked on channels (7x7, stride 2), ``zero_init_residual``, a 2048-d global-average-pooled feature, and the MoCo v2
projection head ``fc`` = Linear(2048, 2048) -> ReLU -> Linear(2048, dim).

The module *is* a torchvision ``ResNet`` (same attribute names), so its state-dict keys are
torchvision's: wrapped as ``encoder_q`` of the objective and by DDP they become the reference's
``module.encoder_q.conv1.weight``, ``module.encoder_q.fc.0.weight``, ... and checkpoints of the
original SCRL release load unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}
# Not taken from an ImageNet state dict: the stem has 3 input channels there, the classifier 1000 outputs.
NOT_FROM_IMAGENET = ("conv1.", "fc.")


class ShotEncoder(ResNet):
    """ResNet with a ``in_channels``-channel stem and a projection head; ``features`` skips the head."""

    def __init__(
        self,
        arch: str = "resnet50",
        in_channels: int = 9,
        dim: int = 2048,
        mlp: bool = True,
        zero_init_residual: bool = True,
    ):
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
        block, layers = ARCHS[arch]
        super().__init__(block, layers, num_classes=dim, zero_init_residual=zero_init_residual)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.feature_dim = self.fc.in_features
        if mlp:  # MoCo v2's head: the hidden layer is as wide as the feature
            self.fc = nn.Sequential(nn.Linear(self.feature_dim, self.feature_dim), nn.ReLU(inplace=True), self.fc)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled backbone feature (2048-d for ResNet-50) used downstream, before the head."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def arch_from_state_dict(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The ResNet depth of a backbone state dict, from its block type and the number of blocks per stage."""
    bottleneck = "layer1.0.conv3.weight" in state_dict
    blocks = [len({name.split(".")[1] for name in state_dict if name.startswith(f"layer{i}.")}) for i in range(1, 5)]
    for name, (block, layers) in ARCHS.items():
        if (block is Bottleneck) == bottleneck and layers == blocks:
            return name
    kind = "bottleneck" if bottleneck else "basic"
    raise ValueError(f"not a known ResNet: {kind} blocks per stage {blocks} (known: {', '.join(ARCHS)})")


@dataclass
class InitReport:
    """What :func:`init_from_imagenet` did, tensor by tensor."""

    loaded: list[str]
    skipped: list[str]  # in the file but not used (stem, classifier, or a shape that does not fit)
    kept: list[str]  # in the encoder but left at their random initialisation


def init_from_imagenet(encoder: ShotEncoder, state_dict: Mapping[str, torch.Tensor]) -> InitReport:
    """Copy every matching ImageNet weight into ``encoder`` except the stem and the classifier (as SCRL does).

    ``state_dict`` is a torchvision ResNet state dict (e.g. ``resnet50-19c8e357.pth``); tensors whose
    name or shape does not fit are skipped and reported, never silently dropped.
    """
    own = encoder.state_dict()
    loaded, skipped = [], []
    for name, tensor in state_dict.items():
        if name.startswith(NOT_FROM_IMAGENET) or name not in own or own[name].shape != tensor.shape:
            skipped.append(name)
        else:
            own[name] = tensor
            loaded.append(name)
    encoder.load_state_dict(own)
    kept = [name for name in own if name not in set(loaded)]
    return InitReport(loaded, skipped, kept)
