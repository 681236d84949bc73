"""BaSSL: boundary-aware self-supervised pre-training of a shot encoder and a contextual relation network.

Mun et al., "Boundary-aware Self-supervised Learning for Video Scene Segmentation", 2022 (arXiv 2201.05277), and its
code (kakaobrain/bassl, Apache-2.0): ``model/shot_encoder/resnet.py``, ``model/crn/trn.py``, ``model/head.py`` and
``pretrain/loss/pretext_task.py`` (``BaSSLLoss``).

A training window is ``N = 2 * 8 + 1`` consecutive shots (the dense sequence) and its two edge shots augmented again
(the sparse sequence), one keyframe each. Every image goes through the ResNet-50 (``shot_encoder``, 2048-d); the
2048-2048-128 head ``head_nce`` embeds them on the unit sphere. The pseudo-boundary (Sec. 3.2) is the split of the
dense sequence into two contiguous groups that dynamic time warping aligns with the two sparse shots
(:func:`pseudo_boundary`). Four losses, summed unweighted (Sec. 3.3):

- SSM, shot-scene matching: InfoNCE (temperature 0.1, negatives from the whole global batch) between each sparse shot
  and the mean of the dense shots aligned to it, averaged over the two;
- CGM, contextual group matching: the CRN output of the centre shot with one shot of its own group (label 1) and one
  of the other group (label 0), L2-normalised and concatenated, through a linear 2-way classifier;
- PP, pseudo-boundary prediction: the CRN output at the boundary shot (1) against a non-boundary shot (0);
- MSM, masked shot modelling: 15 % of the dense shots replaced by a learned mask embedding, the CRN output there
  regressed (MSE, through BERT's MLM head) onto the encoder's feature of the masked shot (no gradient to the target).

The contextual relation network (CRN) is a 2-layer BERT encoder (768-d, 8 heads, GELU, post-LayerNorm with eps 1e-12,
dropout 0.1) over ``[CLS] + N`` shots: each 2048-d shot feature (or the mask embedding) is projected to 768-d, the
[CLS] token is the mean of the shot features, learned position embeddings are added. The reference builds it from
Hugging Face's ``BertEncoder``; here it is written out with the same parameter names, so that the released Lightning
checkpoints (``shot_encoder.*``, ``crn.*``, ``loss.head_*``) load tensor for tensor. As in the reference, every layer
keeps PyTorch's default initialisation (``BertEncoder`` alone never runs BERT's ``init_weights``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vseg.models.dist import all_gather_full_grad, rank
from vseg.models.encoder import ShotEncoder

SPARSE_SHOTS = 2  # the two edge shots of the window, augmented a second time


class BasslShotEncoder(ShotEncoder):
    """BaSSL's shot encoder: a torchvision ResNet on one RGB keyframe (``zero_init_residual``), no projection head.

    ``features`` of a ``B x 3K x H x W`` input (K keyframes stacked on channels, as vseg's evaluation views are) is the
    mean of the K keyframes' pooled features, as BaSSL's ``extract_shot_representation`` averages them; the state-dict
    keys are torchvision's (``conv1.weight``, ``layer1.0.bn1.weight``, ...) as in BaSSL's ``shot_encoder.*``.
    """

    def __init__(self, arch: str = "resnet50", zero_init_residual: bool = True):
        super().__init__(arch, in_channels=3, dim=1, mlp=False, zero_init_residual=zero_init_residual)
        self.fc = nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            return super().features(x)
        batch, channels = x.shape[:2]
        if channels % 3:
            raise ValueError(f"expected 3 channels per keyframe, got {channels}")
        frames = x.reshape(batch * (channels // 3), 3, *x.shape[2:])
        return super().features(frames).view(batch, channels // 3, -1).mean(1)


@dataclass(frozen=True)
class CrnConfig:
    """The CRN's sizes (BaSSL's ``MODEL.contextual_relation_network.params.trn``)."""

    input_dim: int = 2048
    hidden: int = 768
    layers: int = 2
    heads: int = 8
    intermediate: int = 3072
    dropout: float = 0.1  # hidden_dropout_prob
    attention_dropout: float = 0.1  # attention_probs_dropout_prob
    shots: int = 17  # 2 * neighbor_size + 1; the CRN has one more position, for [CLS]


class ShotEmbedding(nn.Module):
    """Shot features -> CRN input: mask embedding, [CLS] = mean of the shots, Linear to ``hidden``, positions,
    LayerNorm, dropout (``trn.py::ShotEmbedding``)."""

    def __init__(self, cfg: CrnConfig):
        super().__init__()
        positions = cfg.shots + 1
        self.shot_embedding = nn.Linear(cfg.input_dim, cfg.hidden)
        self.position_embedding = nn.Embedding(positions, cfg.hidden)
        self.mask_embedding = nn.Embedding(2, cfg.input_dim, padding_idx=0)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = nn.Dropout(cfg.dropout)
        self.register_buffer("pos_ids", torch.arange(positions, dtype=torch.long))

    def forward(self, shots: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:  # masked shots become the mask embedding (row 1; row 0 is the padding row, all zeros)
            shots = shots * (1 - mask.to(shots.dtype))[:, :, None] + self.mask_embedding(mask.long())
        tokens = torch.cat([shots.mean(dim=1, keepdim=True), shots], dim=1)
        x = self.shot_embedding(tokens) + self.position_embedding(self.pos_ids[: tokens.shape[1]])[None]
        return self.dropout(self.LayerNorm(x))


class _SelfAttention(nn.Module):
    def __init__(self, cfg: CrnConfig):
        super().__init__()
        self.heads, self.p = cfg.heads, cfg.attention_dropout
        self.query, self.key, self.value = (nn.Linear(cfg.hidden, cfg.hidden) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.query, self.key, self.value))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0)  # scale 1/sqrt(d/h)
        return out.transpose(1, 2).reshape(b, t, d)


class _AddNorm(nn.Module):
    """BERT's ``BertSelfOutput`` / ``BertOutput``: dense, dropout, LayerNorm of the sum with the residual."""

    def __init__(self, cfg: CrnConfig, width: int):
        super().__init__()
        self.dense = nn.Linear(width, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, cfg: CrnConfig):
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _AddNorm(cfg, cfg.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x), x)


class _Intermediate(nn.Module):
    def __init__(self, cfg: CrnConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.intermediate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    """One post-LayerNorm transformer layer with Hugging Face's ``BertLayer`` parameter names."""

    def __init__(self, cfg: CrnConfig):
        super().__init__()
        self.attention = _Attention(cfg)
        self.intermediate = _Intermediate(cfg)
        self.output = _AddNorm(cfg, cfg.intermediate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(x)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, cfg: CrnConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class ContextualRelationNetwork(nn.Module):
    """BaSSL's ``TransformerCRN``: ``B x N x 2048`` shot features -> (``B x (N + 1) x 768`` outputs with [CLS] first,
    the centre shot's output ``B x 768``, BaSSL's ``pooling_method: center``). Every position attends to every other
    (the reference's attention mask is all ones)."""

    def __init__(self, cfg: CrnConfig = CrnConfig()):
        super().__init__()
        self.cfg = cfg
        self.shot_embedding = ShotEmbedding(cfg)
        self.encoder = _Encoder(cfg)

    def forward(self, shots: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self.encoder(self.shot_embedding(shots, mask))
        return encoded, encoded[:, encoded.shape[1] // 2]


class MlpHead(nn.Module):
    """``model/head.py::MlpHead``: Linear-ReLU-Linear, then L2 normalisation (2048-2048-128 in BaSSL)."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 2048, output_dim: int = 128):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model(x), dim=-1)


class _Transform(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(x)))


class _Predictions(nn.Module):
    def __init__(self, hidden: int, output_dim: int):
        super().__init__()
        self.transform = _Transform(hidden)
        self.decoder = nn.Linear(hidden, output_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(output_dim))
        self.decoder.bias = self.bias  # tied, as Hugging Face ties them: both names are in the state dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x))


class MaskedShotHead(nn.Module):
    """BERT's MLM head (``BertOnlyMLMHead``) with the 2048-d shot feature as its "vocabulary": dense, GELU,
    LayerNorm, Linear to 2048 (``trn.py::BertMLMHead``)."""

    def __init__(self, hidden: int = 768, output_dim: int = 2048):
        super().__init__()
        self.predictions = _Predictions(hidden, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictions(x)


class PretextHeads(nn.Module):
    """The heads of the pretext tasks in ``tasks``, named as BaSSL's loss module holds them (``loss.head_*``); the SSM
    head, which also finds the pseudo-boundary, always (as in the reference, which builds only the enabled heads)."""

    def __init__(
        self,
        feature_dim: int = 2048,
        hidden: int = 768,
        head_hidden: int = 2048,
        head_dim: int = 128,
        tasks: tuple[str, ...] = ("ssm", "cgm", "pp", "msm"),
    ):
        super().__init__()
        self.head_nce = MlpHead(feature_dim, head_hidden, head_dim)
        if "msm" in tasks:
            self.head_msm = MaskedShotHead(hidden, feature_dim)
        if "pp" in tasks:
            self.head_pp = nn.Linear(hidden, 2)
        if "cgm" in tasks:
            self.head_cgm = nn.Linear(2 * hidden, 2)


@torch.no_grad()
def pseudo_boundary(sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """The pseudo-boundary of each window: the last dense shot that DTW aligns with the first sparse shot.

    ``sparse``: ``B x 2 x D`` and ``dense``: ``B x N x D`` unit vectors; the cost of aligning two shots is 1 - cosine.
    BaSSL runs tslearn's ``dtw_path_from_metric`` on the ``2 x N`` cost matrix. With costs >= 0 and two rows, the
    optimal path is one split: dense shots ``0..k`` align with the first sparse shot and ``k+1..N-1`` with the second
    (a vertical step would add a cost, never remove one), so ``k`` minimises ``cum0[k] + sum1 - cum1[k]`` over
    ``0 <= k <= N-2``. Among equal costs the largest ``k`` is taken, as tslearn's backtracking from the end prefers
    the diagonal step. Computed in float32. Returns ``k`` per window (``B``, long).
    """
    cost = 1 - torch.einsum("bsd,bnd->bsn", sparse.float(), dense.float())
    cum = cost.cumsum(dim=2)
    split = cum[:, 0, :-1] + cum[:, 1, -1:] - cum[:, 1, :-1]  # B x (N - 1)
    last = split.shape[1] - 1
    return last - split.flip(1).argmin(dim=1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """BaSSL's ``_compute_nce_loss`` on the pairs ``(a_i, b_i)``: each of the ``2B`` unit vectors of ``[a; b]`` against
    its partner (positive) and every other vector of the global batch but itself (negatives), ``-log(pos / (pos +
    neg))`` averaged over this rank's ``2B`` rows. All ranks' vectors are gathered with full gradients, so any
    number of ranks computes the loss of one process holding the whole batch. In float32."""
    local = torch.cat([a, b]).float()
    rows = local.shape[0]
    everyone = all_gather_full_grad(local)
    offset = rank() * rows
    own = torch.arange(rows, device=local.device)
    itself = F.one_hot(own + offset, everyone.shape[0]).bool()
    logits = (local @ everyone.T / temperature).masked_fill(itself, float("-inf"))
    return F.cross_entropy(logits, (own + rows // 2) % rows + offset)


@dataclass
class BasslOutput:
    """One step of the objective: the summed loss and each pretext task's (``ssm``, ``cgm``, ``pp``, ``msm``,
    the ones switched on), and PP's and CGM's accuracies (%) for the logs."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


class BaSSL(nn.Module):
    """The BaSSL objective around a shot encoder and a CRN; ``tasks`` names the pretext tasks to sum (all four in the
    paper). Attributes are named as BaSSL's ``PretrainingWrapper``'s, so its checkpoints map key for key:
    ``shot_encoder.*``, ``crn.*``, ``loss.head_*``."""

    TASKS = ("ssm", "cgm", "pp", "msm")

    def __init__(
        self,
        shot_encoder: BasslShotEncoder,
        crn: ContextualRelationNetwork,
        heads: PretextHeads,
        temperature: float = 0.1,
        pp_negatives: int = 1,
        tasks: tuple[str, ...] = TASKS,
    ):
        super().__init__()
        unknown = set(tasks) - set(self.TASKS)
        if unknown or not tasks:
            raise ValueError(f"tasks must be a non-empty subset of {self.TASKS}, got {tasks}")
        if not 1 <= pp_negatives <= crn.cfg.shots - 1:
            raise ValueError(f"pp_negatives must be in 1..{crn.cfg.shots - 1}, got {pp_negatives}")
        self.shot_encoder, self.crn, self.loss = shot_encoder, crn, heads
        self.temperature, self.pp_negatives, self.tasks = temperature, pp_negatives, tuple(tasks)

    def forward(self, video: torch.Tensor, mask: torch.Tensor) -> BasslOutput:
        """``video``: ``B x (2 + N) x 3 x H x W``, the sparse shots then the dense ones; ``mask``: ``B x N`` 0/1, the
        dense shots MSM masks."""
        b, t = video.shape[:2]
        features = self.shot_encoder(video.flatten(0, 1)).view(b, t, -1)
        dense = features[:, SPARSE_SHOTS:]
        embedded = self.loss.head_nce(features)
        sparse_emb, dense_emb = embedded[:, :SPARSE_SHOTS], embedded[:, SPARSE_SHOTS:]
        boundary = pseudo_boundary(sparse_emb, dense_emb)
        terms: dict[str, torch.Tensor] = {}
        if "msm" in self.tasks:
            terms["msm"] = self._msm(dense, mask)
        if "ssm" in self.tasks:
            terms["ssm"] = self._ssm(sparse_emb, dense_emb, boundary)
        if "pp" in self.tasks or "cgm" in self.tasks:
            context = self.crn(dense)[0][:, 1:]
            if "pp" in self.tasks:
                terms["pp"] = self._pp(context, boundary)
            if "cgm" in self.tasks:
                terms["cgm"] = self._cgm(context, boundary)
        return BasslOutput(sum(terms.values()), terms)

    def _msm(self, dense: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``_compute_msm_loss``: MSE between the MLM head at the masked positions and the (detached) features."""
        context = self.crn(dense, mask)[0][:, 1:]
        where = mask.bool()
        return F.mse_loss(self.loss.head_msm(context[where]).float(), dense.detach()[where].float())

    def _ssm(self, sparse: torch.Tensor, dense: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        """``_compute_ssm_loss``: each sparse shot against the normalised mean of the dense shots of its group."""
        positions = torch.arange(dense.shape[1], device=dense.device)
        first = (positions[None] <= boundary[:, None]).to(dense.dtype)  # B x N: 1 in the first group
        groups = torch.stack([first, 1 - first], dim=1)  # B x 2 x N
        scenes = F.normalize(torch.einsum("bgn,bnd->bgd", groups, dense) / groups.sum(2, keepdim=True), dim=-1)
        return sum(nt_xent(sparse[:, s], scenes[:, s], self.temperature) for s in range(SPARSE_SHOTS)) / SPARSE_SHOTS

    def _pp(self, context: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        """``_compute_pp_loss``: the boundary shot (label 1) against ``pp_negatives`` other shots drawn without
        replacement (label 0), one cross-entropy over all."""
        b, n = context.shape[:2]
        rows = torch.arange(b, device=context.device)
        draw = torch.rand(b, n, device=context.device)
        draw[rows, boundary] = 2.0  # never drawn
        negatives = draw.argsort(dim=1)[:, : self.pp_negatives]  # B x k
        picked = torch.cat([context[rows, boundary], *(context[rows, column] for column in negatives.T)])
        labels = torch.zeros(picked.shape[0], dtype=torch.long, device=context.device)
        labels[:b] = 1
        return F.cross_entropy(self.loss.head_pp(picked).float(), labels)

    def _cgm(self, context: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        """``_compute_cgm_loss``: [centre; shot of its group] (label 1) and [centre; shot of the other group] (label 0),
        outputs L2-normalised, through a linear 2-way classifier."""
        b, n = context.shape[:2]
        rows = torch.arange(b, device=context.device)
        own, other = group_partners(boundary, n)
        unit = F.normalize(context, dim=-1)
        centre = unit[:, n // 2]
        pairs = torch.cat([torch.cat([centre, unit[rows, own]], dim=1), torch.cat([centre, unit[rows, other]], dim=1)])
        labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(b, dtype=torch.long)]).to(context.device)
        return F.cross_entropy(self.loss.head_cgm(pairs).float(), labels)


def group_partners(boundary: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CGM's shots for windows of ``n`` shots split after ``boundary`` (``B``): one drawn uniformly from the centre
    shot's group without the centre, one from the other group (BaSSL draws one from each group and sorts them by
    group). The groups are ``0..boundary`` and ``boundary+1..n-1``; the centre is ``n // 2``."""
    centre = n // 2
    centre_first = centre <= boundary
    first_size, second_size = boundary + 1, n - 1 - boundary
    u = torch.rand(2, len(boundary), device=boundary.device)
    own_size = torch.where(centre_first, first_size, second_size) - 1
    own = torch.where(centre_first, 0, boundary + 1) + (u[0] * own_size).long().clamp(max=own_size - 1)
    own = own + (own >= centre).long()  # skip the centre
    other_size = torch.where(centre_first, second_size, first_size)
    other = torch.where(centre_first, boundary + 1, 0) + (u[1] * other_size).long().clamp(max=other_size - 1)
    return own, other


def build_bassl(
    arch: str = "resnet50",
    crn: CrnConfig = CrnConfig(),
    head_hidden: int = 2048,
    head_dim: int = 128,
    temperature: float = 0.1,
    pp_negatives: int = 1,
    tasks: tuple[str, ...] = BaSSL.TASKS,
) -> BaSSL:
    """The BaSSL objective with a fresh shot encoder (``zero_init_residual``), CRN and heads."""
    encoder = BasslShotEncoder(arch)
    if encoder.feature_dim != crn.input_dim:
        raise ValueError(f"a {arch} gives {encoder.feature_dim}-d features, the CRN takes {crn.input_dim}-d")
    heads = PretextHeads(encoder.feature_dim, crn.hidden, head_hidden, head_dim, tasks)
    return BaSSL(encoder, ContextualRelationNetwork(crn), heads, temperature, pp_negatives, tasks)



class BoundaryCRN(nn.Module):
    """BaSSL's fine-tuning model (``finetune/finetune_wrapper.py``): the CRN over a window of frozen shot features and
    ``head_sbd``, a linear 2-way boundary classifier on the centre shot's output. ``B x N x D`` -> ``B x 2`` logits."""

    def __init__(self, crn: ContextualRelationNetwork):
        super().__init__()
        self.crn = crn
        self.head_sbd = nn.Linear(crn.cfg.hidden, 2)

    def forward(self, shots: torch.Tensor) -> torch.Tensor:
        return self.head_sbd(self.crn(shots)[1])


def balanced_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """BaSSL's fine-tuning loss: cross-entropy where boundaries and non-boundaries each weigh half, every shot of a
    class ``0.5 / (count of its class + eps)`` (``training_step``)."""
    loss = F.cross_entropy(logits.float(), labels, reduction="none")
    positive = (labels == 1).float()
    weights = 0.5 * positive / (positive.sum() + eps) + 0.5 * (1 - positive) / ((1 - positive).sum() + eps)
    return (weights * loss).sum()
