"""LARS against a hand computation of HiCo's ``models/utils/lars.py`` update, and HiCo's parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vseg.models.hico import HiCo
from vseg.models.s3dg import S3DG
from vseg.config import load_config
from vseg.presets import CONFIG_DIR
from vseg.train.lars import LARS, lars_param_groups
from vseg.train.methods.hico import HicoConfig
from vseg.train.trainer import build_optimizer

LR, M, WD, ETA = 0.5, 0.9, 0.01, 0.1


def _norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def _reference_local(wn, gn, wd, eta):
    """HiCo's ``models/utils/lars.py``: Python floats, and its bare ``except`` turns a division by zero into 1."""
    try:
        return eta * wn / (gn + wd * wn)
    except ZeroDivisionError:
        return 1.0


def _hand_steps(w, grads, lr=LR, m=M, wd=WD, eta=ETA, nesterov=True, exclude=False, zero_norm="sgd"):
    """HiCo's ``models/utils/lars.py`` step in plain Python: local, d, buf, then w -= d + m * buf (or w -= buf);
    ``zero_norm="sgd"`` gives local 1 where a norm is 0 instead."""
    buf = [0.0] * len(w)
    for g in grads:
        wn, gn = _norm(w), _norm(g)
        if exclude:
            local = 1.0
        elif zero_norm == "reference":
            local = _reference_local(wn, gn, wd, eta)
        else:
            local = 1.0 if wn == 0 or gn == 0 else eta * wn / (gn + wd * wn)
        d = [(gi + wd * wi) * local * lr for gi, wi in zip(g, w, strict=True)]
        buf = [m * b + di for b, di in zip(buf, d, strict=True)]
        step = [di + m * b for di, b in zip(d, buf, strict=True)] if nesterov else buf
        w = [wi - si for wi, si in zip(w, step, strict=True)]
    return w


def _lars_steps(w, grads, **group):
    p = nn.Parameter(torch.tensor(w, dtype=torch.float64))
    options = {k: group.pop(k) for k in ("nesterov", "zero_norm") if k in group}
    optimizer = LARS([{"params": [p], **group}], lr=LR, momentum=M, weight_decay=WD, eta=ETA, **options)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
    return p.detach().tolist()


W0 = [0.3, -1.2, 2.0]
G1, G2 = [0.05, 0.4, -0.1], [-0.2, 0.1, 0.3]


@pytest.mark.parametrize("steps", [1, 2])
def test_nesterov_steps_match_the_formula(steps):
    grads = [G1, G2][:steps]
    assert _lars_steps(W0, grads) == pytest.approx(_hand_steps(W0, grads), abs=1e-12)


def test_one_step_by_numbers():
    # ||w|| = 2.3516, ||g|| = 0.4153: local = 0.1 * 2.3516 / (0.4153 + 0.0235) = 0.53590; the first step moves w by
    # (1 + m) * d, d = (g + wd * w) * local * lr
    wn, gn = _norm(W0), _norm(G1)
    local = ETA * wn / (gn + WD * wn)
    assert local == pytest.approx(0.53590, abs=1e-4)
    expected = [w - (1 + M) * (g + WD * w) * local * LR for w, g in zip(W0, G1, strict=True)]
    assert _lars_steps(W0, [G1]) == pytest.approx(expected, abs=1e-12)


def test_plain_momentum_without_nesterov():
    grads = [G1, G2]
    got = _lars_steps(W0, grads, nesterov=False)
    assert got == pytest.approx(_hand_steps(W0, grads, nesterov=False), abs=1e-12)
    assert got != pytest.approx(_hand_steps(W0, grads), abs=1e-6)


def test_group_options_exclusion_and_weight_decay():
    grads = [G1, G2]
    assert _lars_steps(W0, grads, lars_exclude=True) == pytest.approx(_hand_steps(W0, grads, exclude=True), abs=1e-12)
    assert _lars_steps(W0, grads, weight_decay=0.0) == pytest.approx(_hand_steps(W0, grads, wd=0.0), abs=1e-12)
    excluded = _lars_steps(W0, [G1], lars_exclude=True)  # local = 1: the step is (1 + m) * (g + wd * w) * lr
    assert excluded == pytest.approx([w - 1.9 * (g + WD * w) * LR for w, g in zip(W0, G1, strict=True)], abs=1e-12)


def test_zero_weights_or_gradients_use_local_one():
    zero_w = _lars_steps([0.0, 0.0], [[0.2, -0.4]])
    assert zero_w == pytest.approx([-(1 + M) * 0.2 * LR, (1 + M) * 0.4 * LR], abs=1e-12)
    zero_g = _lars_steps([1.0, -2.0], [[0.0, 0.0]])  # only the weight decay moves it, with local = 1
    assert zero_g == pytest.approx([1.0 - 1.9 * WD * LR, -2.0 + 1.9 * WD * 2.0 * LR], abs=1e-12)
    both = _lars_steps([0.0, 0.0], [[0.0, 0.0], [0.0, 0.0]])
    assert both == [0.0, 0.0]


def test_reference_zero_norm_as_hicos_lars():
    # ||w|| = 0 < ||g||: local 0, so the weight stays at 0 however long it trains (a zero BN bias in hacs_s)
    grads = [[0.2, -0.4], [0.1, 0.3], [-0.5, 0.2]]
    assert _lars_steps([0.0, 0.0], grads, zero_norm="reference") == [0.0, 0.0]
    assert _hand_steps([0.0, 0.0], grads, zero_norm="reference") == [0.0, 0.0]
    # ||g|| = 0 < ||w||: local = eta / wd, the weight decays by (1 + m) * eta * lr * w
    zero_g = _lars_steps([1.0, -2.0], [[0.0, 0.0]], zero_norm="reference")
    assert zero_g == pytest.approx([1.0 - 1.9 * ETA * LR, -2.0 + 1.9 * ETA * 2.0 * LR], abs=1e-12)
    # both 0: the reference's except gives local 1, no error; nothing moves
    assert _lars_steps([0.0, 0.0], [[0.0, 0.0]], zero_norm="reference") == [0.0, 0.0]
    # otherwise the same as the sgd mode
    assert _lars_steps(W0, [G1, G2], zero_norm="reference") == pytest.approx(_hand_steps(W0, [G1, G2]), abs=1e-12)
    with pytest.raises(ValueError, match="zero_norm must be one of sgd, reference"):
        LARS([nn.Parameter(torch.ones(1))], lr=0.1, zero_norm="python")


@pytest.mark.parametrize(("preset", "bias_moves"), [("hacs_s", False), ("baseline_s", False), ("hacs_l", True)])
def test_hico_presets_keep_zero_bn_biases_as_the_reference(preset, bias_moves):
    # hacs_s, baseline_s: BN is LARS-scaled, so its zero bias gets local lr 0; hacs_l: BN is excluded (local lr 1)
    config = load_config(HicoConfig, CONFIG_DIR / "hico" / f"{preset}.yaml")
    model = Small()
    optimizer = build_optimizer(model, config.optim)
    model.bn(model.conv(torch.randn(2, 3, 4, 4, 4))).square().mean().backward()
    assert model.bn.bias.grad.abs().sum() > 0
    optimizer.step()
    assert bool(model.bn.bias.detach().abs().sum() > 0) is bias_moves


def test_parameters_without_gradient_are_left_alone():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    optimizer = LARS([a, b], lr=LR)
    a.grad = torch.ones(2)
    optimizer.step()
    assert torch.equal(b.detach(), torch.ones(2)) and not torch.equal(a.detach(), torch.ones(2))
    assert b not in optimizer.state


def test_defaults_and_validation():
    optimizer = LARS([nn.Parameter(torch.ones(1))], lr=0.1)
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"], group["eta"], group["nesterov"]) == (0.9, 1e-6, 0.001, True)
    assert group["lars_exclude"] is False
    with pytest.raises(ValueError, match="Nesterov"):
        LARS([nn.Parameter(torch.ones(1))], lr=0.1, momentum=0.0)


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm3d(4)
        self.ln = nn.LayerNorm(4)  # no "bn"/"norm" in its name: found by its type
        self.fc = nn.Linear(4, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


@pytest.mark.parametrize("exclude", [False, True])
def test_param_groups_as_the_reference(exclude):
    model = Small()
    groups = {g["name"]: g for g in lars_param_groups(model, 1e-6, exclude)}
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    assert ids["bn"] == {id(p) for p in (model.bn.weight, model.bn.bias, model.ln.weight, model.ln.bias)}
    assert ids["bias"] == {id(model.fc.bias)}
    assert ids["decay"] == {id(model.conv.weight), id(model.fc.weight)}
    assert groups["bn"]["weight_decay"] == 0.0 and groups["bn"]["lars_exclude"] is exclude
    # HiCo's optimizer.py: only "bn"/"norm" parameters are special; other biases decay and are LARS-scaled
    assert groups["bias"]["weight_decay"] == 1e-6 and groups["bias"]["lars_exclude"] is False
    assert groups["decay"]["weight_decay"] == 1e-6 and groups["decay"]["lars_exclude"] is False


def test_param_groups_without_bias_decay_put_biases_with_bn():
    groups = {g["name"]: g for g in lars_param_groups(Small(), 1e-6, True, "no_bias_decay")}
    assert groups["bias"]["weight_decay"] == 0.0 and groups["bias"]["lars_exclude"] is True
    with pytest.raises(ValueError, match="grouping must be one of reference, no_bias_decay"):
        lars_param_groups(Small(), 1e-6, True, "other")


def test_param_groups_of_hico_with_s3dg_and_a_lars_step():
    model = HiCo(S3DG(), clips_per_video=3)
    groups = {g["name"]: g for g in lars_param_groups(model, 1e-6, True)}
    norm_ids = {
        id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()
    }
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    assert ids["bn"] == norm_ids  # every BN (backbone and heads) by name and by type
    assert id(model.backbone.Conv_1a.conv1.weight) in ids["decay"]
    assert id(model.backbone.Mixed_3b.gating_b0.fc.weight) in ids["decay"]
    assert id(model.backbone.Mixed_3b.gating_b0.fc.bias) in ids["bias"]
    assert id(model.topic_head.predictor[2].bias) in ids["bias"]
    everything = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(everything) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    optimizer = LARS(list(groups.values()), lr=0.3)
    assert [g["lars_exclude"] for g in optimizer.param_groups] == [True, False, False]
