"""HiCo's heads and objective (Qing et al., "Learning from Untrimmed Videos: Self-Supervised Video Representation
Learning with Hierarchical Consistency", CVPR 2022; code: alibaba-mmai-research/HiCo).

Per step, for B videos x K clips (K = 3: clip0 and clip1 close in time, clip2 anywhere in the same video):

    h   = backbone(clips)                      B*K x 1024, video-major, clip-minor
    z_v = normalize(MLP_v(h))                  VCL projection, 128-d
    z_t = normalize(MLP_t(h))                  TCL projection, its own weights
    P_g = TopicHead(z_t of group g)            pairwise topic logits of each group of tcl_group videos (K clips each)
    Z   = gather_with_grad(z_v)                the global batch; only the local slice carries gradient
    loss = vcl_weight * world_size * L_vcl(Z) + tcl_weight * mean_g L_tcl(P_g)

- Visual consistency (VCL, ``contrastive_hico``): InfoNCE whose anchors are clip0 and clip1 of every video of the global
  batch, each the other's positive, ``exp(clamp(s, -1, 1) / tau)``; the negatives are ``exp(s / tau)`` over every clip
  (far clips included) of every *other* video. ``L_vcl`` is the mean over the 2B anchors of ``-log(p / (p + neg))``.
  Every rank computes it over all global anchors; the ``world_size`` factor cancels DDP's gradient averaging, so the net
  gradient is that of ``L_vcl`` on the global batch.
- Topical consistency (TCL, ``contrastive_hico``): a focal-style BCE (gamma 0.5, no alpha) on ``sigmoid(P)``: two
  different clips of one video (both orders, both output channels) are positives, clips of different videos negatives;
  the positive and negative terms are averaged separately. The reference pairs the 4 videos of each GPU; here the pairs
  are taken within consecutive groups of ``tcl_group`` videos (4) and the group losses averaged, so the objective is the
  same on any number of ranks (DDP's gradient average over ranks is the mean over all groups).
- SimCLR baseline (``Loss_Contrastive``, ``topical=False``, K = 2): each clip's positive is the other clip of its video,
  the denominator the positive plus every clip of the other videos, averaged over all 2B clips.

The contrastive losses are computed as cross-entropies over ``[positive, negatives]`` logits (log-sum-exp), which is
the formula above with same-video non-positives masked to ``-inf``; the TCL's ``(1 - q) ** gamma`` and
``q ** gamma`` go through ``logsigmoid`` so that saturated logits give finite gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vseg.models.dist import all_gather_with_grad as gather_with_grad
from vseg.models.dist import world_size

__all__ = [
    "HiCo",
    "HiCoOutput",
    "ProjectionMLP",
    "TopicHead",
    "gather_with_grad",
    "simclr_logits",
    "simclr_loss",
    "tcl_loss",
    "vcl_logits",
    "vcl_loss",
]


class ProjectionMLP(nn.Module):
    """HiCo's projection ``MLP`` (``contrastive_head.py``): Linear -> BN -> ReLU, Linear -> BN -> ReLU, Linear,
    L2-normalised.

    BatchNorm1d (eps 1e-3, momentum 0.1) on ``N x C`` is the reference's BatchNorm3d on ``N x C x 1 x 1 x 1``.
    ``bn=False`` drops both BNs (``HEAD_BN: false``). There is no final BN.
    """

    def __init__(self, in_dim: int = 1024, mid: int = 1024, out: int = 128, bn: bool = True, bn_eps: float = 1e-3):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, mid)
        self.bn1 = nn.BatchNorm1d(mid, eps=bn_eps, momentum=0.1) if bn else nn.Identity()
        self.fc2 = nn.Linear(mid, mid)
        self.bn2 = nn.BatchNorm1d(mid, eps=bn_eps, momentum=0.1) if bn else nn.Identity()
        self.fc3 = nn.Linear(mid, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.fc2(x)))
        return F.normalize(self.fc3(x), dim=1)


class TopicHead(nn.Module):
    """HiCo's topical predictor (``MLPTopicalPredictorSingleGPU``): logits for every ordered pair.

    ``g = Linear(2*dim -> hidden) -> ReLU -> Linear(hidden -> 1)``; for ``n x dim`` embeddings ``z`` it returns
    ``n x n x 2`` with ``[i, j, 0] = g(cat(z_i, z_j))`` and ``[i, j, 1] = g(cat(z_j, z_i))`` (so
    ``[i, j, 1] == [j, i, 0]``; ``g`` is evaluated once per ordered pair).
    """

    def __init__(self, dim: int = 128, hidden: int = 256):
        super().__init__()
        self.predictor = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, d = z.shape
        pairs = torch.cat([z[:, None].expand(n, n, d), z[None].expand(n, n, d)], dim=-1)
        scores = self.predictor(pairs).squeeze(-1)  # [i, j] = g(cat(z_i, z_j))
        return torch.stack([scores, scores.T], dim=-1)


def _check_batch(n: int, clips_per_video: int) -> None:
    if clips_per_video < 2:
        raise ValueError(f"contrastive losses need at least 2 clips per video, got {clips_per_video}")
    if n % clips_per_video:
        raise ValueError(f"{n} embeddings are not a whole number of videos of {clips_per_video} clips")


def _pair_logits(
    z: torch.Tensor, anchor: torch.Tensor, positive: torch.Tensor, clips_per_video: int, temperature: float
) -> torch.Tensor:
    """``M x (1 + n)`` logits per (anchor, positive) pair: column 0 the positive ``clamp(s, -1, 1) / tau``, then
    ``s / tau`` against every clip, ``-inf`` where that clip belongs to the anchor's video (not a negative)."""
    z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z  # float32 under autocast, float64 kept
    video = torch.arange(z.shape[0], device=z.device) // clips_per_video
    with torch.autocast(z.device.type, enabled=False):  # the similarities in full precision, even under bf16 autocast
        sim = z[anchor] @ z.T
    pos = sim.gather(1, positive[:, None]).clamp(-1.0, 1.0) / temperature
    neg = (sim / temperature).masked_fill(video[anchor][:, None] == video[None], float("-inf"))
    return torch.cat([pos, neg], dim=1)


def vcl_logits(
    z: torch.Tensor, clips_per_video: int, temperature: float = 0.1, anchors: tuple[int, int] = (0, 1)
) -> torch.Tensor:
    """VCL's ``2B x (1 + B*K)`` logits (``contrastive_hico``), positive in column 0.

    Rows are video-major: anchor ``anchors[0]`` (positive ``anchors[1]``), then ``anchors[1]`` (positive
    ``anchors[0]``) of video 0, and so on. ``z`` is the global ``B*K x dim`` batch, video-major, clip-minor.
    """
    _check_batch(z.shape[0], clips_per_video)
    a, b = anchors
    if a == b or not (0 <= a < clips_per_video and 0 <= b < clips_per_video):
        raise ValueError(f"anchors must be two different clip indices below {clips_per_video}, got {anchors}")
    base = torch.arange(z.shape[0] // clips_per_video, device=z.device) * clips_per_video
    anchor = torch.stack([base + a, base + b], dim=1).reshape(-1)
    positive = torch.stack([base + b, base + a], dim=1).reshape(-1)
    return _pair_logits(z, anchor, positive, clips_per_video, temperature)


def vcl_loss(
    z: torch.Tensor, clips_per_video: int, temperature: float = 0.1, anchors: tuple[int, int] = (0, 1)
) -> torch.Tensor:
    """L_vcl (``contrastive_hico``): mean over the 2B anchors of ``-log(p / (p + neg))``; see :func:`vcl_logits`."""
    logits = vcl_logits(z, clips_per_video, temperature, anchors)
    return F.cross_entropy(logits, logits.new_zeros(logits.shape[0], dtype=torch.long))


def simclr_logits(z: torch.Tensor, temperature: float = 0.1, clips_per_video: int = 2) -> torch.Tensor:
    """The SimCLR baseline's logits (``contrastive_instance_discrimination``): one row per ordered pair (i, j) of
    different clips of one video.

    Row order: anchor-major, then the anchor's partners ``i+1, i+2, ...`` (cyclic within the video). With K = 2 that
    is one row per clip, its positive the other clip of its video.
    """
    _check_batch(z.shape[0], clips_per_video)
    k = clips_per_video
    anchor = torch.arange(z.shape[0], device=z.device).repeat_interleave(k - 1)
    offset = torch.arange(1, k, device=z.device).repeat(z.shape[0])
    positive = anchor // k * k + (anchor % k + offset) % k
    return _pair_logits(z, anchor, positive, k, temperature)


def simclr_loss(z: torch.Tensor, temperature: float = 0.1, clips_per_video: int = 2) -> torch.Tensor:
    """SimCLR's loss (``Loss_Contrastive``): mean over the (anchor, positive) pairs of ``-log(p / (p + neg))``, where
    ``neg`` sums ``exp(s / tau)`` over every clip of every other video. With K = 2: the mean over all 2B clips."""
    logits = simclr_logits(z, temperature, clips_per_video)
    return F.cross_entropy(logits, logits.new_zeros(logits.shape[0], dtype=torch.long))


def tcl_loss(
    logits: torch.Tensor, video_ids: torch.Tensor, gamma: float = 0.5, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L_tcl (``contrastive_hico``) on ``n x n x 2`` topic logits; returns (loss, mean positive q, mean negative q).

    ``q = sigmoid(logits)``; positives are pairs ``i != j`` of the same video (``video_ids[i] == video_ids[j]``), both
    orders and both channels; negatives are pairs of different videos. The loss is
    ``mean_pos(-(1-q)^gamma * log(q + eps)) + mean_neg(-q^gamma * log(1 - q + eps))``. A term without any pair (one
    video only, or one clip per video) counts 0 and its mean probability is reported as 0.
    """
    n = logits.shape[0]
    same = video_ids[:, None] == video_ids[None]
    pos_mask = same & ~torch.eye(n, dtype=torch.bool, device=logits.device)
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    q, one_minus_q = torch.sigmoid(x), torch.sigmoid(-x)
    # (1 - q) ** gamma and q ** gamma through logsigmoid: the same values, no infinite gradient where q hits 0 or 1.
    pos_terms = -torch.exp(gamma * F.logsigmoid(-x[pos_mask])) * torch.log(q[pos_mask] + eps)
    neg_terms = -torch.exp(gamma * F.logsigmoid(x[~same])) * torch.log(one_minus_q[~same] + eps)
    zero = x.new_zeros(())

    def mean(t: torch.Tensor) -> torch.Tensor:
        return t.mean() if t.numel() else zero

    loss = mean(pos_terms) + mean(neg_terms)
    return loss, mean(q[pos_mask]).detach(), mean(q[~same]).detach()


@dataclass
class HiCoOutput:
    loss: torch.Tensor  # the loss to back-propagate: vcl_weight * world_size * vcl + tcl_weight * tcl
    vcl: torch.Tensor  # L_vcl (or the SimCLR loss), detached
    tcl: torch.Tensor  # L_tcl (0 without the topic head), detached
    pos: torch.Tensor  # mean sigmoid(P) over the TCL positive pairs (0 without the topic head)
    neg: torch.Tensor  # mean sigmoid(P) over the TCL negative pairs (0 without the topic head)
    acc1: torch.Tensor  # % of VCL (or SimCLR) rows whose positive beats every negative
    logits: torch.Tensor  # the VCL (or SimCLR) logits over the global batch, positive in column 0, detached


class HiCo(nn.Module):
    """HiCo (``ContrastiveHeadTopicPred``, ``Loss_HiCo``): a backbone, the VCL projection, and the TCL projection with
    its topic head.

    ``topical=False`` (and K = 2) gives the SimCLR baseline (``s3dg-baseline-s.yaml``): no TCL modules, ``tcl = 0``. The
    encoder that downstream use extracts is ``self.backbone`` (state-dict keys ``backbone.*``); it maps
    ``N x 3 x T x H x W`` to ``N x feature_dim`` (a feature map ``N x C x ...`` is averaged over its trailing dims).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int = 1024,
        clips_per_video: int = 3,
        topical: bool = True,
        temperature: float = 0.1,
        gamma: float = 0.5,
        vcl_weight: float = 1.0,
        tcl_weight: float = 1.0,
        proj_mid: int = 1024,
        proj_dim: int = 128,
        topic_hidden: int = 256,
        tcl_group: int = 4,
    ):
        super().__init__()
        if clips_per_video < 2:
            raise ValueError(f"HiCo needs at least 2 clips per video, got {clips_per_video}")
        self.clips_per_video, self.topical = clips_per_video, topical
        self.temperature, self.gamma = temperature, gamma
        self.vcl_weight, self.tcl_weight, self.tcl_group = vcl_weight, tcl_weight, tcl_group
        self.backbone = backbone
        self.vcl_head = ProjectionMLP(feature_dim, proj_mid, proj_dim)
        if topical:
            self.tcl_head = ProjectionMLP(feature_dim, proj_mid, proj_dim)
            self.topic_head = TopicHead(proj_dim, topic_hidden)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's ``N x feature_dim`` features of ``N x 3 x T x H x W`` clips."""
        h = self.backbone(x)
        return h.flatten(2).mean(-1) if h.dim() > 2 else h

    def _tcl(self, z: torch.Tensor, videos: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L_tcl and the mean positive and negative q, each averaged over the groups of ``tcl_group`` videos."""
        if videos % self.tcl_group:
            raise ValueError(f"{videos} videos are not a whole number of TCL groups of {self.tcl_group}")
        video_ids = torch.arange(self.tcl_group, device=z.device).repeat_interleave(k)
        terms = [tcl_loss(self.topic_head(group), video_ids, self.gamma) for group in z.split(self.tcl_group * k)]
        return tuple(torch.stack(values).mean() for values in zip(*terms, strict=True))

    def forward(self, clips: torch.Tensor) -> HiCoOutput:
        """One step's loss for ``B x K x 3 x T x H x W`` clips (this rank's B videos)."""
        if clips.dim() != 6 or clips.shape[1] != self.clips_per_video:
            raise ValueError(
                f"expected B x {self.clips_per_video} x C x T x H x W clips, got shape {tuple(clips.shape)}"
            )
        b, k = clips.shape[:2]
        h = self.features(clips.flatten(0, 1))
        z = gather_with_grad(self.vcl_head(h))
        if self.topical:
            logits = vcl_logits(z, k, self.temperature)
        else:
            logits = simclr_logits(z, self.temperature, k)
        vcl = F.cross_entropy(logits, logits.new_zeros(logits.shape[0], dtype=torch.long))
        loss = self.vcl_weight * world_size() * vcl
        tcl = pos = neg = vcl.new_zeros(())
        if self.topical:
            tcl, pos, neg = self._tcl(self.tcl_head(h), b, k)
            loss = loss + self.tcl_weight * tcl
        acc1 = (logits.argmax(dim=1) == 0).float().mean() * 100
        return HiCoOutput(loss, vcl.detach(), tcl.detach(), pos, neg, acc1.detach(), logits.detach())
