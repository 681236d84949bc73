"""Collectives that work the same in one process (no process group) and under torchrun."""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@torch.no_grad()
def all_gather_nograd(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0 (rank order); no gradient flows back."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def shuffle_across_ranks(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's batch shuffle (He et al., CVPR 2020, Sec. 3.3): each rank gets a random slice of the global batch.

    Returns this rank's shuffled slice and the permutation that undoes it (for :func:`unshuffle_across_ranks`).
    The permutation is drawn from ``generator`` (a CPU generator), which every rank must seed alike: then the
    ranks agree on it without a broadcast, and one process holding the whole batch draws the same one.
    """
    gathered = all_gather_nograd(x)
    permutation = torch.randperm(gathered.shape[0], generator=generator).to(x.device)
    return gathered[permutation.view(world_size(), -1)[rank()]], torch.argsort(permutation)


@torch.no_grad()
def unshuffle_across_ranks(x: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Undo :func:`shuffle_across_ranks`: this rank gets back the rows of its own original samples."""
    return all_gather_nograd(x)[inverse.view(world_size(), -1)[rank()]]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0 (rank order); only this rank's slice carries gradient.

    The other ranks' slices are plain copies (HiCo's ``construct_logits_with_gradient``, ``models/utils/losses.py``): a
    loss on the gathered tensor back-propagates into the local ``x`` only. Every rank must pass the same shape. In one
    process (no process group) it returns ``x`` itself.
    """
    if world_size() == 1:
        return x
    parts = list(all_gather_nograd(x.detach()).chunk(world_size()))
    parts[rank()] = x
    return torch.cat(parts)


class _GatherWithFullGrad(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient of the gathered tensor and hands each rank its slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rows = x.shape[0]
        return all_gather_nograd(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[rank() * ctx.rows : (rank() + 1) * ctx.rows]


def all_gather_full_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0 (rank order), with the gradient of every rank's loss flowing back
    into each rank's slice (VISSL's ``GatherLayer``, which BaSSL's ``gather_from_all`` is): the summed losses of all
    ranks, averaged by DDP, get the gradient of one process holding the whole batch. Returns ``x`` in one process."""
    if world_size() == 1:
        return x
    return _GatherWithFullGrad.apply(x)
