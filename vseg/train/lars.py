"""LARS with Nesterov momentum, as HiCo trains (You, Gitman and Ginsburg, "Large Batch Training of Convolutional
Networks", 2017, Algorithm 1; HiCo's ``models/utils/lars.py``), and HiCo's parameter groups.

For each parameter ``w`` with gradient ``g``, in its group's ``lr``, ``weight_decay`` (wd) and ``momentum`` (m)::

    local = eta * ||w|| / (||g|| + wd * ||w||)      1 if the group has lars_exclude=True; zero norms: see below
    d     = (g + wd * w) * local * lr
    buf   = m * buf + d                              buf starts at 0, so the first step gives buf = d
    w    -= d + m * buf                              Nesterov; without it, w -= buf

Zero norms, the group option ``zero_norm``:

- ``reference`` (HiCo's ``models/utils/lars.py``, from OpenSelfSup): the formula whenever its denominator
  ``||g|| + wd * ||w||`` is not 0, else ``local = 1`` (the reference's bare ``except`` around a Python-float division
  by zero). So ``||w|| = 0 < ||g||`` gives ``local = 0``: a zero-initialised parameter that is not LARS-excluded,
  such as a BN bias in the ``hacs_s`` and ``baseline_s`` presets, never moves; ``||w|| = ||g|| = 0`` gives 1;
  ``||g|| = 0 < ||w||`` gives ``eta / wd`` (1 when wd is 0).
- ``sgd`` (the default of :class:`LARS`): ``local = 1``, a plain SGD step, whenever ``||w||`` or ``||g||`` is 0, as
  most LARS implementations do, so zero-initialised parameters can learn.

Both keep the norms on the device (no host sync).

Parameter groups (:func:`lars_param_groups`), ``reference`` (the default, as HiCo builds them): BN/normalisation
parameters (a name containing "bn" or "norm", or any parameter of a normalisation module) get no weight decay and
skip the LARS scaling when ``bn_lars_exclude``; every other parameter, biases included, gets ``weight_decay`` and the
LARS scaling. ``no_bias_decay`` also puts the other biases with BN (the usual SimCLR/BYOL practice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

NORM_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


LARS_ZERO_NORM = ("sgd", "reference")


def _norm(t: torch.Tensor) -> torch.Tensor:
    """The L2 norm, accumulated in at least float32."""
    return torch.linalg.vector_norm(t, dtype=torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else None)


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling for SGD with (Nesterov) momentum; see the module docstring.

    Group options: ``lr``, ``momentum``, ``weight_decay``, ``eta``, ``nesterov``, ``lars_exclude`` (local lr 1) and
    ``zero_norm`` (``"sgd"`` or ``"reference"``: the local lr when a norm is 0).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 0.001,
        nesterov: bool = True,
        lars_exclude: bool = False,
        zero_norm: str = "sgd",
    ):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if momentum < 0:
            raise ValueError(f"invalid momentum {momentum}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight_decay {weight_decay}")
        if eta < 0:
            raise ValueError(f"invalid LARS coefficient eta {eta}")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs a momentum above 0")
        if zero_norm not in LARS_ZERO_NORM:
            raise ValueError(f"zero_norm must be one of {', '.join(LARS_ZERO_NORM)}, got {zero_norm!r}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "nesterov": nesterov,
            "lars_exclude": lars_exclude,
            "zero_norm": zero_norm,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, wd, eta = group["lr"], group["momentum"], group["weight_decay"], group["eta"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LARS does not support sparse gradients")
                g = p.grad
                d = g.add(p, alpha=wd).mul_(lr)
                if not group["lars_exclude"]:
                    w_norm, g_norm = _norm(p), _norm(g)
                    denominator = g_norm + wd * w_norm
                    trust = eta * w_norm / denominator
                    if group["zero_norm"] == "reference":
                        scaled = denominator > 0
                    else:
                        scaled = (w_norm > 0) & (g_norm > 0)
                    d.mul_(torch.where(scaled, trust, torch.ones_like(trust)).to(d.dtype))
                if momentum:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = d.clone()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).add_(d)
                    d = d.add(buf, alpha=momentum) if group["nesterov"] else buf
                p.sub_(d)
        return loss


def _is_no_decay(name: str, parameter: torch.Tensor, norm_params: set[int]) -> str | None:
    if id(parameter) in norm_params or "bn" in name or "norm" in name:
        return "bn"
    if name.endswith("bias"):
        return "bias"
    return None


LARS_GROUPINGS = ("reference", "no_bias_decay")


def lars_param_groups(
    model: nn.Module, weight_decay: float, bn_lars_exclude: bool, grouping: str = "reference"
) -> list[dict[str, Any]]:
    """HiCo's parameter groups (``models/utils/optimizer.py``), each with a ``name`` for logs; empty groups are left
    out.

    - ``bn``: parameters of normalisation modules, or whose name contains "bn" or "norm": weight decay 0,
      ``lars_exclude=bn_lars_exclude``;
    - ``bias``: the other biases (names ending in "bias"): with ``grouping="reference"`` as ``decay`` (HiCo), with
      ``"no_bias_decay"`` as ``bn``;
    - ``decay``: everything else (conv, linear and gating weights): ``weight_decay``, LARS-scaled.

    Parameters with ``requires_grad=False`` are left out.
    """
    if grouping not in LARS_GROUPINGS:
        raise ValueError(f"grouping must be one of {', '.join(LARS_GROUPINGS)}, got {grouping!r}")
    norm_params = {id(p) for m in model.modules() if isinstance(m, NORM_MODULES) for p in m.parameters(recurse=False)}
    groups: dict[str, list[torch.Tensor]] = {"bn": [], "bias": [], "decay": []}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            groups[_is_no_decay(name, parameter, norm_params) or "decay"].append(parameter)
    no_decay = {"weight_decay": 0.0, "lars_exclude": bn_lars_exclude}
    decay = {"weight_decay": weight_decay, "lars_exclude": False}
    settings = {"bn": no_decay, "bias": decay if grouping == "reference" else no_decay, "decay": decay}
    return [{"name": key, "params": params, **settings[key]} for key, params in groups.items() if params]

