"""The SCRL objective: MoCo v2 with scene-consistency positives (Wu et al., CVPR 2022, Sec. 3).

Per step, for a batch of B shots made of B/16 clips of 16 consecutive shots (SCRL's ``models/core/SCRL_MoCo.py``):

    q   = normalize(encoder_q(view_q))                                  B x dim, through the MLP head
    k   = normalize(encoder_k(shuffle_bn(view_k)))                      the EMA key encoder, no gradient
    pos = positive key of each query (below)
    loss = CrossEntropy([<q, pos>, q @ queue] / T, target 0)            InfoNCE, Eq. 1 of MoCo
    enqueue(all_gather(pos))

Positives (``positive``):
- ``cluster`` (SCRL, "Scene Consistency"): in-batch K-means on the detached queries (24 clusters, centres
  snapped to distinct real samples); the positive of query i is the key of its cluster's centre sample.
  With ``soft_positive`` (Soft-SC, the reference's ``multi_positive``) it is mixed with the query's own key as the
  reference mixes it: ``pos = gamma * (k_i + k_centre)``, the mean of the two at the paper's gamma 0.5 (for other
  gammas the reference scales the sum rather than taking a convex mix, and so does vseg); without it (hard SC),
  ``pos = k_centre``.
- ``self``: ``pos = k_i`` (plain MoCo v2).
- ``nn`` (ShotCoL-style): the key of the most similar *other* shot of the same 16-shot clip, by the
  similarity of the detached queries.

Re-normalising the mixed key: the reference (``SCRL_MoCo.py``) does not: a mixed key has norm
below 1, which lowers ``<q, pos>`` and makes enqueued mixed keys weaker negatives. We keep that by
default to match the released checkpoints; ``renormalize_positive=True`` projects it back to the sphere.

Groups, the same on any number of ranks: the reference's batch is 128 shots per GPU, and each GPU clusters its own
128 queries and normalises its own 128 shots in BatchNorm. Here those sizes are settings of the objective, not of
the hardware: the global batch is cut into consecutive groups of ``cluster_group`` shots, each clustered on its
own, and both encoders see BatchNorm statistics of groups of ``bn_group`` shots (the query encoder of consecutive
shots, the key encoder of the shuffled global batch: MoCo's shuffle-BN, He et al., CVPR 2020, Sec. 3.3). The
shuffle and the K-means starts are drawn from a generator seeded by ``(seed, step)``, identical on every rank, so one
process and N ranks holding the same global batch compute the same clusters, keys and loss.

Similarities are computed in float32 even under bf16 autocast (``q . k`` and ``q . queue``, as the reference's fp32
training and HiCo's loss).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vseg.models.dist import all_gather_nograd, rank, shuffle_across_ranks, unshuffle_across_ranks, world_size
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
        soft_positive: bool = True,
        soft_gamma: float = 0.5,
        renormalize_positive: bool = False,
        kmeans_iters: int = 20,
        clip_len: int = 16,
        cluster_group: int = 128,
        bn_group: int = 128,
        seed: int = 0,
    ):
        super().__init__()
        if positive not in POSITIVES:
            raise ValueError(f"positive must be one of {', '.join(POSITIVES)}, got {positive!r}")
        self.momentum, self.temperature = momentum, temperature
        self.positive, self.clusters = positive, clusters
        self.soft_positive, self.soft_gamma = soft_positive, soft_gamma
        self.renormalize_positive, self.kmeans_iters = renormalize_positive, kmeans_iters
        self.clip_len, self.cluster_group, self.bn_group = clip_len, cluster_group, bn_group
        self.seed, self.steps = seed, 0
        self.encoder_q = make_encoder()
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for parameter in self.encoder_k.parameters():
            parameter.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def get_extra_state(self) -> dict[str, int]:
        """The step counter that seeds each step's shuffle and K-means starts (saved, so a resume repeats them)."""
        return {"steps": self.steps}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.steps = int(state["steps"])

    def _step_generator(self) -> torch.Generator:
        """This step's generator, the same on every rank."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.steps)

    @torch.no_grad()
    def _momentum_update(self) -> None:
        """EMA of the query encoder's weights into the key encoder (MoCo, Eq. 2)."""
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters(), strict=True):
            k.mul_(self.momentum).add_(q.detach(), alpha=1 - self.momentum)

    def _encode(self, encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Normalised embeddings, each ``bn_group`` consecutive images in a BatchNorm batch of their own."""
        if images.shape[0] % self.bn_group:
            shots = images.shape[0]
            raise ValueError(f"a batch of {shots} shots is not a whole number of BN groups of {self.bn_group}")
        return F.normalize(torch.cat([encoder(group) for group in images.split(self.bn_group)]).float(), dim=1)

    @torch.no_grad()
    def _keys(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Normalised keys, with BN groups drawn from the shuffled global batch (shuffle-BN)."""
        shuffled, inverse = shuffle_across_ranks(images, generator)
        return unshuffle_across_ranks(self._encode(self.encoder_k, shuffled), inverse)

    @torch.no_grad()
    def _positive_index(self, q: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """For each query, the shot whose key is (or is mixed into) its positive."""
        n = q.shape[0]
        if self.positive == "cluster":
            if n % self.cluster_group:
                groups = f"K-means groups of {self.cluster_group}"
                raise ValueError(f"a batch of {n} shots is not a whole number of {groups}")
            groups = q.split(self.cluster_group)
            seeds = torch.randint(2**62, (world_size(), len(groups)), generator=generator)[rank()]
            index = []
            for number, (group, seed) in enumerate(zip(groups, seeds.tolist(), strict=True)):
                start = torch.Generator().manual_seed(seed)
                assign, centres = kmeans_medoids(
                    group, min(self.clusters, group.shape[0]), max_iter=self.kmeans_iters, generator=start
                )
                index.append(centres[assign] + number * self.cluster_group)
            return torch.cat(index)
        if self.positive == "nn":
            clip = torch.arange(n, device=q.device) // self.clip_len
            similarity = q @ q.T
            similarity.masked_fill_((clip[:, None] != clip[None]) | torch.eye(n, dtype=torch.bool, device=q.device), -2)
            return similarity.argmax(1)
        return torch.arange(n, device=q.device)

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
        """One step's loss for B shots (B x C x H x W each view), B a multiple of the clip length and groups."""
        generator = self._step_generator()
        q = self._encode(self.encoder_q, view_q)
        with torch.no_grad():
            self._momentum_update()
            k = self._keys(view_k, generator)
            index = self._positive_index(q.detach(), generator)
            positive = k[index]
            if self.positive == "cluster" and self.soft_positive:
                positive = self.soft_gamma * (k + positive)
            if self.renormalize_positive:
                positive = F.normalize(positive, dim=1)
        with torch.autocast(q.device.type, enabled=False):  # similarities in float32, also under bf16 autocast
            l_pos = (q * positive).sum(1, keepdim=True)
            l_neg = q @ self.queue.clone().detach().float()
            logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature
            loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
        self._enqueue(positive)
        self.steps += 1
        return StepOutput(loss, logits.detach(), index)


def topk_accuracy(logits: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[torch.Tensor]:
    """Share of rows whose positive (column 0) is among the top-k logits, in percent (MoCo's acc@k).

    0-d tensors on the logits' device, so that a training step needs no host synchronisation.
    """
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    return [(top[:, :k] == 0).any(1).float().mean() * 100 for k in ks]
