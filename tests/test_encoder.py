"""The 9-channel ResNet shot encoder and its ImageNet initialisation."""

from __future__ import annotations

import torch
import torchvision

from vseg.models.encoder import ShotEncoder, init_from_imagenet


def test_shapes_keys_and_zero_init_residual():
    encoder = ShotEncoder("resnet18", dim=128).eval()
    x = torch.randn(2, 9, 64, 64)
    assert encoder.features(x).shape == (2, 512)
    assert encoder(x).shape == (2, 128)
    assert encoder.conv1.weight.shape == (64, 9, 7, 7)
    keys = set(encoder.state_dict())
    assert {"conv1.weight", "fc.0.weight", "fc.2.weight", "layer4.1.bn2.weight"} <= keys
    assert torch.count_nonzero(encoder.layer1[0].bn2.weight) == 0  # last BN of each block starts at 0


def test_resnet50_feature_and_head_sizes_match_the_reference():
    encoder = ShotEncoder("resnet50")
    assert encoder.feature_dim == 2048
    assert [tuple(encoder.fc[i].weight.shape) for i in (0, 2)] == [(2048, 2048), (2048, 2048)]
    assert torch.count_nonzero(encoder.layer1[0].bn3.weight) == 0


def test_imagenet_init_loads_all_but_stem_and_classifier():
    imagenet = torchvision.models.resnet18().state_dict()
    for tensor in imagenet.values():
        if tensor.is_floating_point():
            tensor.fill_(0.5)
    encoder = ShotEncoder("resnet18", dim=128)
    report = init_from_imagenet(encoder, imagenet)
    assert set(report.skipped) == {"conv1.weight", "fc.weight", "fc.bias"}
    assert len(report.loaded) == len(imagenet) - 3
    assert torch.all(encoder.layer3[1].conv2.weight == 0.5)
    assert not torch.all(encoder.conv1.weight == 0.5)
    assert {"conv1.weight", "fc.0.weight", "fc.2.bias"} <= set(report.kept)


def test_imagenet_init_reports_shape_mismatches():
    imagenet = torchvision.models.resnet50().state_dict()  # Bottleneck weights do not fit a ResNet-18
    report = init_from_imagenet(ShotEncoder("resnet18", dim=128), imagenet)
    assert "layer1.0.conv1.weight" in report.skipped
    assert "layer1.0.conv3.weight" in report.skipped  # no such tensor in a BasicBlock
