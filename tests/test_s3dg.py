"""The S3D-G backbone: layer shapes for 16 x 112 x 112 clips, self-gating, BN settings, init and size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vseg.models.s3dg import MIXED, S3DG, InceptionBlock3D, SelfGating, STConv3d


@pytest.fixture(scope="module")
def model() -> S3DG:
    torch.manual_seed(0)
    return S3DG().eval()


def test_layer_shapes_for_a_16x112x112_clip(model):
    shapes = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
        for name, module in model.named_children()
    ]
    try:
        with torch.no_grad():
            x = torch.randn(1, 3, 16, 112, 112)
            features = model.forward_features(x)
            pooled = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    assert features.shape == (1, 1024, 2, 3, 3)
    assert pooled.shape == (1, 1024) and model.out_dim == 1024
    assert torch.allclose(pooled, features.mean(dim=(2, 3, 4)), atol=1e-6)
    assert shapes == {  # the table of vseg.models.s3dg's docstring
        "Conv_1a": (64, 8, 56, 56),
        "MaxPool_2a": (64, 8, 28, 28),
        "Conv_2b": (64, 8, 28, 28),
        "Conv_2c": (192, 8, 28, 28),
        "MaxPool_3a": (192, 8, 14, 14),
        "Mixed_3b": (256, 8, 14, 14),
        "Mixed_3c": (480, 8, 14, 14),
        "MaxPool_4a": (480, 4, 7, 7),
        "Mixed_4b": (512, 4, 7, 7),
        "Mixed_4c": (512, 4, 7, 7),
        "Mixed_4d": (512, 4, 7, 7),
        "Mixed_4e": (528, 4, 7, 7),
        "Mixed_4f": (832, 4, 7, 7),
        "MaxPool_5a": (832, 2, 3, 3),  # no padding: 4x7x7 -> 2x3x3
        "Mixed_5b": (832, 2, 3, 3),
        "Mixed_5c": (1024, 2, 3, 3),
    }


def test_batch_dimension_and_per_sample_independence_in_eval(model):
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model(x)
        first = model(x[:1])
        model.train()  # batch statistics: activations of order 1 (in eval at init they shrink to ~1e-16)
        try:
            trained = model(x)
        finally:
            model.eval()
    assert features.shape == (2, 1024, 1, 1, 1)
    assert pooled.shape == (2, 1024)
    assert (pooled[:1] - first).abs().max() <= 1e-4 * pooled.abs().max()  # same result alone or in a batch
    assert trained.abs().mean() > 0.01
    assert not torch.allclose(trained[0], trained[1], rtol=1e-2, atol=1e-3)


def test_gating_changes_the_output():
    torch.manual_seed(0)
    gated, plain = S3DG(gating=True), S3DG(gating=False)  # train mode: BN on batch statistics
    missing, unexpected = plain.load_state_dict(gated.state_dict(), strict=False)
    assert not missing and unexpected and all(".gating_b" in key for key in unexpected)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        a, b = gated(x), plain(x)
    assert a.shape == b.shape == (2, 1024)
    assert (a - b).abs().mean() > 0.1 * b.abs().mean()


def test_self_gating_is_sigmoid_of_fc_of_the_mean():
    gate = SelfGating(2)
    with torch.no_grad():
        gate.fc.weight.copy_(torch.tensor([[1.0, 0.0], [2.0, -1.0]]))
        gate.fc.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.zeros(1, 2, 1, 1, 2)
    x[0, 0, 0, 0] = torch.tensor([1.0, 3.0])  # channel means 2 and 1
    x[0, 1, 0, 0] = torch.tensor([0.0, 2.0])
    weights = torch.sigmoid(torch.tensor([1 * 2 + 0.5, 2 * 2 - 1 * 1 + 0.0]))
    assert torch.allclose(gate(x), x * weights[None, :, None, None, None])


def test_inception_block_gates_each_branch_then_concatenates():
    torch.manual_seed(0)
    block = InceptionBlock3D(4, [2, 2, 3, 1, 2, 2]).eval()
    assert block.out_channels == 2 + 3 + 2 + 2
    x = torch.randn(2, 4, 3, 5, 5)
    with torch.no_grad():
        expected = []
        for i in range(4):
            out = getattr(block, f"branch{i}")(x)
            fc = getattr(block, f"gating_b{i}").fc
            weights = torch.sigmoid(out.mean(dim=(2, 3, 4)) @ fc.weight.T + fc.bias)
            expected.append(out * weights[:, :, None, None, None])
        assert torch.allclose(block(x), torch.cat(expected, dim=1), atol=1e-6)
        plain = InceptionBlock3D(4, [2, 2, 3, 1, 2, 2], gating=False).eval()
        plain.load_state_dict(block.state_dict(), strict=False)
        ungated = torch.cat([getattr(block, f"branch{i}")(x) for i in range(4)], dim=1)
        assert torch.allclose(plain(x), ungated)


def test_bn_settings_names_and_init(model):
    bns = {name: m for name, m in model.named_modules() if isinstance(m, nn.BatchNorm3d)}
    assert bns and all("bn" in name for name in bns)
    for name, bn in bns.items():
        parent = model.get_submodule(name.rsplit(".", 1)[0])
        assert bn.eps == (1e-3 if isinstance(parent, STConv3d) else 1e-5), name
        assert bn.momentum == 0.1
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert model.Conv_1a.bn1.eps == 1e-3 and model.Conv_2b.bn.eps == 1e-5
    assert model.Conv_1a.conv1.stride == (1, 2, 2) and model.Conv_1a.conv2.stride == (2, 1, 1)  # temporal stride 2
    assert model.Conv_1a.conv1.kernel_size == (1, 7, 7) and model.Conv_1a.conv2.kernel_size == (7, 1, 1)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert all(conv.bias is None for conv in convs)
    big = model.Mixed_5c.branch1[1].conv1.weight.detach()
    assert abs(float(big.std()) - 0.01) < 5e-4 and abs(float(big.mean())) < 5e-4


def test_parameter_count():
    gated = sum(p.numel() for p in S3DG().parameters())
    plain = sum(p.numel() for p in S3DG(gating=False).parameters())
    assert 7.8e6 < plain < 8.0e6  # S3D, about 7.9M parameters
    # the gating FCs: one dim x dim Linear (with bias) per branch output of every Mixed block
    gates = sum(c * c + c for _, planes in MIXED.values() for c in (planes[0], planes[2], planes[4], planes[5]))
    assert gated - plain == gates
    assert 9.0e6 < gated < 9.2e6
