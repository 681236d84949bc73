"""The SCRL objective: MoCo v2 with scene-consistency positives (Wu et al., CVPR 2022, Sec. 3).

Per step, for a batch of B shots made of B/16 clips of 16 consecutive shots (scrl.md 2.2):

    q   = normalize(encoder_q(view_q))                                  B x dim, through the MLP head
    k   = normalize(encoder_k(shuffle_bn(view_k)))                      the EMA key encoder, no gradient
    pos = positive key of each query (below)
    loss = CrossEntropy([<q, pos>, q @ queue] / T, target 0)            InfoNCE, Eq. 1 of MoCo
    enqueue(all_gather(pos))

Positives (``positive``):
- ``cluster`` (SCRL, "Scene Consistency"): in-batch K-means on the detached queries (24 clusters, centres
  snapped to distinct real samples); the positive of query i is the key of its cluster's centre sample,
  mixed with its own key: ``pos = (1 - gamma) * k_i + gamma * k_centre`` (Soft-SC, gamma = 0.5 gives the
  reference's ``(k_i + k_centre) / 2``; gamma = 1 is hard SC).
- ``self``: ``pos = k_i`` (plain MoCo v2).
- ``nn`` (ShotCoL-style): the key of the most similar *other* shot of the same 16-shot clip, by the
  similarity of the detached queries.

Re-normalising the mixed key: the reference does not (scrl.md 2.2, pitfall e): a mixed key has norm
below 1, which lowers ``<q, pos>`` and makes enqueued mixed keys weaker negatives. We keep that by
default to match the released checkpoints; ``renormalize_positive=True`` projects it back to the sphere.

Shuffle-BN: with several ranks, keys are computed on a random slice of the global batch (MoCo's
batch shuffle), so a query and its key never share BN statistics. In one process, the same effect comes
from ``key_bn_groups`` > 1: the permuted batch is split into that many groups, each normalised on its
own statistics (as MoCo's single-GPU SplitBatchNorm demo does). With one group the key BN sees the whole
batch, the same samples as the query BN, which is the leak shuffle-BN exists to prevent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vseg.models.dist import all_gather_nograd, shuffle_across_ranks, unshuffle_across_ranks, world_size
from vseg.models.kmeans import kmeans_medoids

POSITIVES = ("cluster", "self", "nn")


@dataclass
class StepOutput:
    loss: torch.Tensor
    logits: torch.Tensor  # B x (1 + queue): column 0 is the positive
    positive_index: torch.Tensor  # the shot whose key (mixed or not) is each query's positive


class SCRL(nn.Module):
    """Query and EMA key encoders, the key queue, and the InfoNCE loss with scene-consistency positives."""

    def __init__(
        self,
        make_encoder: Callable[[], nn.Module],
        dim: int = 2048,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.07,
        positive: str = "cluster",
        clusters: int = 24,
        soft_gamma: float = 0.5,
        renormalize_positive: bool = False,
        kmeans_iters: int = 20,
        clip_len: int = 16,
        key_bn_groups: int = 1,
    ):
        super().__init__()
        if positive not in POSITIVES:
            raise ValueError(f"positive must be one of {', '.join(POSITIVES)}, got {positive!r}")
        self.momentum, self.temperature = momentum, temperature
        self.positive, self.clusters, self.soft_gamma = positive, clusters, soft_gamma
        self.renormalize_positive, self.kmeans_iters = renormalize_positive, kmeans_iters
        self.clip_len, self.key_bn_groups = clip_len, key_bn_groups
        self.encoder_q = make_encoder()
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for parameter in self.encoder_k.parameters():
            parameter.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        """EMA of the query encoder's weights into the key encoder (MoCo, Eq. 2)."""
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters(), strict=True):
            k.mul_(self.momentum).add_(q.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def _keys(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised keys, with BN statistics that do not match the queries' (shuffle-BN)."""
        if world_size() > 1:
            shuffled, inverse = shuffle_across_ranks(images)
            return unshuffle_across_ranks(F.normalize(self.encoder_k(shuffled), dim=1), inverse)
        permutation = torch.randperm(images.shape[0], device=images.device)
        groups = images[permutation].chunk(self.key_bn_groups)
        keys = torch.cat([F.normalize(self.encoder_k(group), dim=1) for group in groups])
        return keys[torch.argsort(permutation)]

    @torch.no_grad()
    def _positive_index(self, q: torch.Tensor) -> torch.Tensor:
        """For each query, the shot whose key is (or is mixed into) its positive."""
        if self.positive == "cluster":
            assign, centres = kmeans_medoids(q, min(self.clusters, q.shape[0]), max_iter=self.kmeans_iters)
            return centres[assign]
        if self.positive == "nn":
            n = q.shape[0]
            clip = torch.arange(n, device=q.device) // self.clip_len
            similarity = q @ q.T
            similarity.masked_fill_((clip[:, None] != clip[None]) | torch.eye(n, dtype=torch.bool, device=q.device), -2)
            return similarity.argmax(1)
        return torch.arange(q.shape[0], device=q.device)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = all_gather_nograd(keys)
        size = self.queue.shape[1]
        if size % keys.shape[0]:
            raise ValueError(f"queue size {size} must be a multiple of the global batch {keys.shape[0]}")
        start = int(self.queue_ptr)
        self.queue[:, start : start + keys.shape[0]] = keys.T.to(self.queue.dtype)
        self.queue_ptr[0] = (start + keys.shape[0]) % size

    def forward(self, view_q: torch.Tensor, view_k: torch.Tensor) -> StepOutput:
        """One step's loss for B shots (B x C x H x W each view), B a multiple of the clip length."""
        q = F.normalize(self.encoder_q(view_q), dim=1)
        with torch.no_grad():
            self._momentum_update()
            k = self._keys(view_k)
            index = self._positive_index(q.detach().float())
            positive = k[index]
            if self.positive == "cluster":
                positive = (1 - self.soft_gamma) * k + self.soft_gamma * positive
            if self.renormalize_positive:
                positive = F.normalize(positive, dim=1)
        l_pos = (q * positive.to(q.dtype)).sum(1, keepdim=True)
        l_neg = q @ self.queue.clone().detach().to(q.dtype)
        logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
        loss = F.cross_entropy(logits.float(), torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
        self._enqueue(positive)
        return StepOutput(loss, logits.detach(), index)


def topk_accuracy(logits: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[torch.Tensor]:
    """Share of rows whose positive (column 0) is among the top-k logits, in percent (MoCo's acc@k).

    0-d tensors on the logits' device, so that a training step needs no host synchronisation.
    """
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    return [(top[:, :k] == 0).any(1).float().mean() * 100 for k in ks]
