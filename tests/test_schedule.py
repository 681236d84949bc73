"""Learning-rate schedules and the linear scaling rule, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest

from vseg.config import OptimConfig
from vseg.train.schedule import base_lr, lr_at


def test_linear_scaling_from_the_reference_batch():
    assert base_lr(OptimConfig(lr=0.03, reference_batch=1024), 1024) == pytest.approx(0.03)
    assert base_lr(OptimConfig(lr=0.03, reference_batch=1024), 256) == pytest.approx(0.0075)


def test_scrl_quarter_cosine_ends_near_half_the_start():
    optim = OptimConfig(schedule="scrl_cosine")
    assert lr_at(optim, 0.03, 0, 0, 935, 100) == pytest.approx(0.03)
    assert lr_at(optim, 0.03, 50, 0, 935, 100) == pytest.approx(0.03 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(optim, 0.03, 99, 0, 935, 100) / 0.03 == pytest.approx(0.5078, abs=1e-4)
    # per epoch: constant inside an epoch
    assert lr_at(optim, 0.03, 7, 0, 935, 100) == lr_at(optim, 0.03, 7, 934, 935, 100)


def test_full_cosine_is_per_step_and_reaches_zero():
    optim = OptimConfig(schedule="cosine")
    assert lr_at(optim, 0.1, 0, 0, 10, 4) == pytest.approx(0.1)
    assert lr_at(optim, 0.1, 2, 0, 10, 4) == pytest.approx(0.05)
    assert lr_at(optim, 0.1, 1, 5, 10, 4) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 1.5 / 4)))
    assert lr_at(optim, 0.1, 3, 9, 10, 4) < 0.001


def test_step_schedule_and_warmup():
    optim = OptimConfig(schedule="step", milestones=[2, 4], gamma=0.1)
    assert [round(lr_at(optim, 1.0, e, 0, 10, 6), 6) for e in range(6)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    warm = OptimConfig(schedule="step", milestones=[], warmup_epochs=2)
    assert lr_at(warm, 1.0, 0, 5, 10, 6) == pytest.approx(0.25)
    assert lr_at(warm, 1.0, 1, 5, 10, 6) == pytest.approx(0.75)
    assert lr_at(warm, 1.0, 2, 0, 10, 6) == pytest.approx(1.0)


def test_warmup_from_its_start_lr_joins_the_cosine_where_the_warmup_ends():
    """hico/hacs_s's shape (SlowFast's ``get_lr_at_epoch``): 5 warm-up epochs from 0.001 in a straight line to the
    cosine's value at epoch 5, then the per-step cosine over all 120 epochs; 10 steps an epoch."""
    optim = OptimConfig(schedule="cosine", warmup_epochs=5, warmup_start_lr=0.001)
    joined = 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 120))  # 0.89229...
    assert lr_at(optim, 0.9, 0, 0, 10, 120) == pytest.approx(0.001)
    assert lr_at(optim, 0.9, 2, 5, 10, 120) == pytest.approx(0.001 + (joined - 0.001) * 2.5 / 5)
    assert lr_at(optim, 0.9, 4, 9, 10, 120) == pytest.approx(0.001 + (joined - 0.001) * 4.9 / 5)
    assert lr_at(optim, 0.9, 5, 0, 10, 120) == pytest.approx(joined)  # no jump where the warm-up ends
    assert lr_at(optim, 0.9, 5, 1, 10, 120) == pytest.approx(0.9 * 0.5 * (1 + math.cos(math.pi * 5.1 / 120)))
    assert lr_at(optim, 0.9, 60, 0, 10, 120) == pytest.approx(0.45)
    assert lr_at(optim, 0.9, 119, 9, 10, 120) < 1e-4
