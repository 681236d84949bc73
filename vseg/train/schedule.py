"""Learning-rate schedules, as functions of the (fractional) epoch.

- ``scrl_cosine``: SCRL's per-epoch ``lr0 * 0.5 * (1 + cos(0.5 * pi * e / E))`` (``pretrain_main.py``). The extra 0.5 in
  the angle makes it a quarter cosine: the lr falls from lr0 to about 0.508 * lr0 at the last epoch, never to zero. Kept
  as the default to match the released checkpoints.
- ``cosine``: the standard full cosine ``lr0 * 0.5 * (1 + cos(pi * t / E))``, updated every step, ending near 0.
- ``warmup_cosine``: the full cosine over the epochs after the warm-up W,
  ``lr0 * 0.5 * (1 + cos(pi * (t - W) / (E - W)))`` per step, so the warm-up ends at lr0 (pl_bolts' ``linear_warmup_decay(cosine=True)``, as BaSSL schedules).
- ``step``: ``lr0 * gamma ** (number of milestones <= e)``, per epoch (the reference's alternative to cosine).

All three take an optional linear warm-up over the first ``warmup_epochs``, per step, as SlowFast's (and so HiCo's)
``lr_policy``: from ``warmup_start_lr`` (0 by default) in a straight line to the schedule's value at the end of the
warm-up. The base lr follows the linear scaling rule: ``lr0 = lr * batch_size / reference_batch`` (Goyal et al., 2017).
"""

from __future__ import annotations

import bisect
import math

from vseg.config import OptimConfig


def base_lr(optim: OptimConfig, batch_size: int) -> float:
    """The configured lr scaled linearly from ``reference_batch`` to the actual global batch."""
    return optim.lr * batch_size / optim.reference_batch


def step_lr(lr0: float, gamma: float, milestones: list[int], epoch: int) -> float:
    """``lr0 * gamma ** (number of milestones <= epoch)`` for the 0-based ``epoch`` (MoCo's ``epoch >= milestone``).

    ``vseg segment`` counts its epochs from 1 and has its own (:func:`vseg.eval.segment.epoch_lr`)."""
    return lr0 * gamma ** bisect.bisect_right(sorted(milestones), epoch)


def _scheduled(optim: OptimConfig, lr0: float, t: float, epochs: int) -> float:
    """The schedule without warm-up at fractional epoch ``t``."""
    epoch = math.floor(t)
    if optim.schedule == "scrl_cosine":
        return lr0 * 0.5 * (1 + math.cos(0.5 * math.pi * epoch / epochs))
    if optim.schedule == "cosine":
        return lr0 * 0.5 * (1 + math.cos(math.pi * t / epochs))
    if optim.schedule == "warmup_cosine":
        warmup = min(optim.warmup_epochs, epochs)
        progress = (t - warmup) / max(epochs - warmup, 1e-12)
        return lr0 * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return step_lr(lr0, optim.gamma, optim.milestones, epoch)


def lr_at(optim: OptimConfig, lr0: float, epoch: int, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The lr for step ``step`` (0-based) of epoch ``epoch`` (0-based) of an ``epochs``-epoch run."""
    t = epoch + step / max(steps_per_epoch, 1)
    if t < optim.warmup_epochs:
        start = optim.warmup_start_lr
        return start + (_scheduled(optim, lr0, optim.warmup_epochs, epochs) - start) * t / optim.warmup_epochs
    return _scheduled(optim, lr0, t, epochs)
