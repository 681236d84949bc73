"""S3D-G: separable 3D Inception with self-gating (Xie et al., ECCV 2018), HiCo's backbone (Qing et al., CVPR 2022).

The layout is the CoCLR-style S3D-G that HiCo's ``Inception3D`` uses (``models/base/backbone.py``). Shapes for a 16 x
112 x 112 clip:

    Conv_1a      STConv3d k7 s2 p3, temporal stride 2 too       64 x 8 x 56 x 56
    MaxPool_2a   (1,3,3) s(1,2,2) p(0,1,1)                      64 x 8 x 28 x 28
    Conv_2b      1x1x1 conv                                     64 x 8 x 28 x 28
    Conv_2c      STConv3d k3 s1 p1                             192 x 8 x 28 x 28
    MaxPool_3a   (1,3,3) s(1,2,2) p(0,1,1); Mixed_3b, 3c      256, 480 x 8 x 14 x 14
    MaxPool_4a   (3,3,3) s2 p1; Mixed_4b .. 4f                 512 .. 832 x 4 x 7 x 7
    MaxPool_5a   (2,2,2) s2, no padding; Mixed_5b, 5c          832, 1024 x 2 x 3 x 3

MaxPool_5a has no padding in the reference: ``floor((4 - 2) / 2) + 1 = 2`` frames and ``floor((7 - 2) / 2) + 1 = 3``
pixels, so 4x7x7 becomes 2x3x3 (padding 1 would give 3x4x4).

- ``STConv3d``: a (1,k,k) spatial conv then a (k,1,1) temporal conv, no biases, each followed by BN (eps 1e-3,
  momentum 0.1, the SimCLR run's ``cfg.BN``) and ReLU. An int stride is used temporally as well.
- ``InceptionBaseConv3D``: a 1x1x1 conv, BN with PyTorch's default eps (1e-5, as the reference), ReLU.
- ``InceptionBlock3D``: four branches (1x1; 1x1 -> STConv 3; 1x1 -> STConv 3; 3x3x3 max-pool -> 1x1), each
  gated by ``sigmoid(FC(mean_{T,H,W}(x))) * x`` (S3D-G's self-gating; ``gating=False`` gives plain S3D), then
  concatenated along the channels.

Init: conv weights N(0, 0.01), BN weight 1 and bias 0; the gating FCs keep PyTorch's default init. Every BN module
is named ``bn``, ``bn1`` or ``bn2``, so name rules such as "contains bn or norm" select all of them. The module names
follow the reference (``Conv_1a.conv1``, ``Mixed_3b.branch1.1.bn2``, ``Mixed_3b.gating_b0.fc``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Mixed blocks: name -> (input channels, [b0, b1-reduce, b1-out, b2-reduce, b2-out, b3-out]).
MIXED: dict[str, tuple[int, tuple[int, int, int, int, int, int]]] = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def _init_conv_bn(conv: nn.Conv3d, *bns: nn.BatchNorm3d) -> None:
    nn.init.normal_(conv.weight, mean=0.0, std=0.01)
    for bn in bns:
        nn.init.ones_(bn.weight)
        nn.init.zeros_(bn.bias)


class STConv3d(nn.Module):
    """Separable conv: (1,k,k) spatial then (k,1,1) temporal, each with BN and ReLU (HiCo's ``STConv3d``)."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        temporal_stride: int | None = None,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        t_stride = stride if temporal_stride is None else temporal_stride
        k, s, p = kernel_size, stride, padding
        self.conv1 = nn.Conv3d(in_planes, out_planes, (1, k, k), stride=(1, s, s), padding=(0, p, p), bias=False)
        self.bn1 = nn.BatchNorm3d(out_planes, eps=bn_eps, momentum=bn_momentum)
        self.conv2 = nn.Conv3d(
            out_planes, out_planes, (k, 1, 1), stride=(t_stride, 1, 1), padding=(p, 0, 0), bias=False
        )
        self.bn2 = nn.BatchNorm3d(out_planes, eps=bn_eps, momentum=bn_momentum)
        self.relu = nn.ReLU(inplace=True)
        _init_conv_bn(self.conv1, self.bn1)
        _init_conv_bn(self.conv2, self.bn2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))


class InceptionBaseConv3D(nn.Module):
    """1x1x1 conv (no bias) -> BN (default eps 1e-5, as the reference) -> ReLU (``InceptionBaseConv3D``)."""

    def __init__(self, in_planes: int, out_planes: int):
        super().__init__()
        self.conv = nn.Conv3d(in_planes, out_planes, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm3d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        _init_conv_bn(self.conv, self.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SelfGating(nn.Module):
    """S3D-G's feature gating: ``sigmoid(FC(mean over T, H, W of x))`` scales each channel of ``x``."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return weights[:, :, None, None, None] * x


class InceptionBlock3D(nn.Module):
    """Four branches, each self-gated when ``gating``, concatenated along the channels (HiCo's ``Inception3D``)."""

    def __init__(
        self,
        in_planes: int,
        out_planes: Sequence[int],
        gating: bool = True,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        if len(out_planes) != 6:
            raise ValueError(f"out_planes needs 6 numbers [b0, b1a, b1b, b2a, b2b, b3], got {list(out_planes)}")
        b0, b1a, b1b, b2a, b2b, b3 = out_planes
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.branch0 = nn.Sequential(InceptionBaseConv3D(in_planes, b0))
        self.branch1 = nn.Sequential(InceptionBaseConv3D(in_planes, b1a), STConv3d(b1a, b1b, 3, 1, 1, **bn))
        self.branch2 = nn.Sequential(InceptionBaseConv3D(in_planes, b2a), STConv3d(b2a, b2b, 3, 1, 1, **bn))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), InceptionBaseConv3D(in_planes, b3))
        self.out_channels = b0 + b1b + b2b + b3
        self.gating = gating
        if gating:
            self.gating_b0, self.gating_b1 = SelfGating(b0), SelfGating(b1b)
            self.gating_b2, self.gating_b3 = SelfGating(b2b), SelfGating(b3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        if self.gating:
            gates = (self.gating_b0, self.gating_b1, self.gating_b2, self.gating_b3)
            outs = [gate(out) for gate, out in zip(gates, outs, strict=True)]
        return torch.cat(outs, dim=1)


class S3DG(nn.Module):
    """S3D-G backbone: ``B x 3 x T x H x W`` clips -> ``B x 1024`` (``forward``) or the last feature map.

    ``forward_features`` gives ``B x 1024 x T/8 x H'' x W''`` (2 x 3 x 3 for 16 x 112 x 112), ``forward`` its global
    average. ``gating=False`` drops the self-gating (plain S3D). ``bn_eps``/``bn_momentum`` apply to the BNs of the
    separable convs (the 1x1x1 convs keep PyTorch's defaults, as the reference).
    """

    out_dim = 1024

    def __init__(self, in_channels: int = 3, gating: bool = True, bn_eps: float = 1e-3, bn_momentum: float = 0.1):
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.Conv_1a = STConv3d(in_channels, 64, kernel_size=7, stride=2, padding=3, **bn)
        self.MaxPool_2a = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.Conv_2b = InceptionBaseConv3D(64, 64)
        self.Conv_2c = STConv3d(64, 192, kernel_size=3, stride=1, padding=1, **bn)
        self.MaxPool_3a = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.Mixed_3b = InceptionBlock3D(*MIXED["Mixed_3b"], gating, **bn)
        self.Mixed_3c = InceptionBlock3D(*MIXED["Mixed_3c"], gating, **bn)
        self.MaxPool_4a = nn.MaxPool3d((3, 3, 3), stride=(2, 2, 2), padding=(1, 1, 1))
        self.Mixed_4b = InceptionBlock3D(*MIXED["Mixed_4b"], gating, **bn)
        self.Mixed_4c = InceptionBlock3D(*MIXED["Mixed_4c"], gating, **bn)
        self.Mixed_4d = InceptionBlock3D(*MIXED["Mixed_4d"], gating, **bn)
        self.Mixed_4e = InceptionBlock3D(*MIXED["Mixed_4e"], gating, **bn)
        self.Mixed_4f = InceptionBlock3D(*MIXED["Mixed_4f"], gating, **bn)
        self.MaxPool_5a = nn.MaxPool3d((2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0))
        self.Mixed_5b = InceptionBlock3D(*MIXED["Mixed_5b"], gating, **bn)
        self.Mixed_5c = InceptionBlock3D(*MIXED["Mixed_5c"], gating, **bn)
        self.gating = gating

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``B x C x T x H x W`` -> ``B x 1024 x T' x H' x W'`` (the output of Mixed_5c)."""
        for layer in self.children():  # registration order is the layer order
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x C x T x H x W`` -> ``B x 1024``: global average over T', H', W' of :meth:`forward_features`."""
        return self.forward_features(x).mean(dim=(2, 3, 4))
