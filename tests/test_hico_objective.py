"""HiCo's heads and losses against direct loop computations, the model's forward, and the cross-rank gather."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vseg.models.dist import all_gather_with_grad
from vseg.models.hico import (
    HiCo,
    ProjectionMLP,
    TopicHead,
    gather_with_grad,
    simclr_loss,
    tcl_loss,
    vcl_logits,
    vcl_loss,
)


def _unit(n: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=1)


def _direct_vcl(z: torch.Tensor, k: int, tau: float, anchors=(0, 1)) -> float:
    """HiCo's ``contrastive_hico`` literally: anchors clip0 and clip1, each the other's positive; negatives: other
    videos' clips."""
    s = (z @ z.T).tolist()
    videos, losses = z.shape[0] // k, []
    for v in range(videos):
        for a, partner in ((anchors[0], anchors[1]), (anchors[1], anchors[0])):
            i, j = v * k + a, v * k + partner
            p = math.exp(min(max(s[i][j], -1.0), 1.0) / tau)
            neg = sum(math.exp(s[i][c] / tau) for c in range(z.shape[0]) if c // k != v)
            losses.append(-math.log(p / (p + neg)))
    return sum(losses) / len(losses)


def _direct_simclr(z: torch.Tensor, tau: float) -> float:
    """HiCo's ``contrastive_instance_discrimination`` with K = 2: every clip an anchor, the other clip of its video
    the positive."""
    s = (z @ z.T).tolist()
    losses = []
    for i in range(z.shape[0]):
        j = i + 1 if i % 2 == 0 else i - 1
        p = math.exp(min(max(s[i][j], -1.0), 1.0) / tau)
        neg = sum(math.exp(s[i][c] / tau) for c in range(z.shape[0]) if c // 2 != i // 2)
        losses.append(-math.log(p / (p + neg)))
    return sum(losses) / len(losses)


def _direct_tcl(logits: torch.Tensor, video: list[int], gamma: float) -> tuple[float, float, float]:
    q = torch.sigmoid(logits.double()).tolist()
    pos, neg = [], []
    for i in range(len(video)):
        for j in range(len(video)):
            if i == j:
                continue
            (pos if video[i] == video[j] else neg).extend(q[i][j])  # both output channels
    pos_loss = sum(-((1 - x) ** gamma) * math.log(x + 1e-5) for x in pos) / len(pos)
    neg_loss = sum(-(x**gamma) * math.log(1 - x + 1e-5) for x in neg) / len(neg)
    return pos_loss + neg_loss, sum(pos) / len(pos), sum(neg) / len(neg)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_vcl_equals_the_direct_formula(tau):
    z = _unit(9)  # 3 videos x 3 clips
    assert float(vcl_loss(z, 3, tau)) == pytest.approx(_direct_vcl(z, 3, tau), abs=1e-9)
    assert float(vcl_loss(z.float(), 3, tau)) == pytest.approx(_direct_vcl(z, 3, tau), abs=1e-6)
    assert float(vcl_loss(z, 3, tau, anchors=(0, 2))) == pytest.approx(_direct_vcl(z, 3, tau, (0, 2)), abs=1e-9)


def test_vcl_logits_layout_and_the_far_clip_role():
    z = _unit(9)
    logits = vcl_logits(z, 3, 0.1)
    assert logits.shape == (6, 10)  # 2 anchors per video; positive + 9 columns
    s = z @ z.T
    assert torch.allclose(logits[0, 0], s[0, 1] / 0.1) and torch.allclose(logits[1, 0], s[1, 0] / 0.1)
    assert torch.allclose(logits[2, 0], s[3, 4] / 0.1)  # video 1's clip0 -> clip1
    assert torch.isinf(logits[0, 1:4]).all() and torch.isfinite(logits[0, 4:]).all()  # own video masked
    # clip2 is no anchor and no positive: moving video 0's clip2 changes only the other videos' negatives
    moved = z.clone()
    moved[2] = _unit(1, seed=5)[0]
    before, after = vcl_logits(z, 3, 0.1), vcl_logits(moved, 3, 0.1)
    assert torch.equal(before[:2], after[:2])
    assert not torch.allclose(before[2:], after[2:])


def test_simclr_equals_the_direct_formula_and_vcl_with_two_clips():
    z = _unit(8)  # 4 videos x 2 clips
    assert float(simclr_loss(z, 0.1)) == pytest.approx(_direct_simclr(z, 0.1), abs=1e-9)
    assert float(simclr_loss(z.float(), 0.1)) == pytest.approx(_direct_simclr(z, 0.1), abs=1e-6)
    assert float(simclr_loss(z, 0.1)) == pytest.approx(float(vcl_loss(z, 2, 0.1)), abs=1e-12)


def test_losses_reject_a_partial_video():
    with pytest.raises(ValueError, match="whole number of videos"):
        vcl_loss(_unit(8), 3)
    with pytest.raises(ValueError, match="anchors"):
        vcl_loss(_unit(9), 3, anchors=(1, 1))


def test_tcl_equals_the_direct_formula():
    video = [0, 0, 0, 1, 1, 1]
    logits = torch.randn(6, 6, 2, generator=torch.Generator().manual_seed(3)) * 3
    loss, pos, neg = tcl_loss(logits, torch.tensor(video), gamma=0.5)
    expected = _direct_tcl(logits, video, 0.5)
    assert float(loss) == pytest.approx(expected[0], abs=1e-6)
    assert float(pos) == pytest.approx(expected[1], abs=1e-6)
    assert float(neg) == pytest.approx(expected[2], abs=1e-6)
    assert float(tcl_loss(logits, torch.tensor(video), gamma=2.0)[0]) == pytest.approx(
        _direct_tcl(logits, video, 2.0)[0], abs=1e-6
    )


def test_tcl_labels_same_video_pairs_positive_in_both_orders_diagonal_excluded():
    video = torch.tensor([0, 0, 1, 1, 2, 2])
    same = video[:, None] == video[None]
    eye = torch.eye(6, dtype=torch.bool)
    right = torch.where(same, 20.0, -20.0)[..., None].expand(6, 6, 2).clone()
    assert float(tcl_loss(right, video)[0]) < 1e-4
    one_wrong = math.log(1e5) / 12  # -log(q + 1e-5) with q ~ 2e-9, averaged over 3 videos x 2 orders x 2 channels
    wrong_pair = right.clone()
    wrong_pair[0, 1, 1] = -20.0  # one channel of one same-video pair
    assert float(tcl_loss(wrong_pair, video)[0]) == pytest.approx(one_wrong, rel=1e-3)
    wrong_pair = right.clone()
    wrong_pair[1, 0, 0] = -20.0  # the reverse order is a positive too
    assert float(tcl_loss(wrong_pair, video)[0]) == pytest.approx(one_wrong, rel=1e-3)
    wrong_pair = right.clone()
    wrong_pair[0, 2, 0] = 20.0  # a pair of different videos is a negative: 4 x 6 ordered pairs x 2 channels
    assert float(tcl_loss(wrong_pair, video)[0]) == pytest.approx(math.log(1e5) / 48, rel=1e-3)
    diagonal = right.clone()
    diagonal[eye] = torch.tensor([-20.0, 7.0])  # i == j is neither positive nor negative
    assert torch.equal(tcl_loss(diagonal, video)[0], tcl_loss(right, video)[0])
    _, pos, neg = tcl_loss(torch.where(same & ~eye, 1.0, -2.0)[..., None].expand(6, 6, 2), video)
    assert float(pos) == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item())
    assert float(neg) == pytest.approx(torch.sigmoid(torch.tensor(-2.0)).item())


def test_tcl_gradients_stay_finite_on_saturated_logits():
    video = torch.tensor([0, 0, 1, 1])
    logits = torch.tensor([30.0, -30.0, 200.0, -200.0]).repeat(8)[:32].view(4, 4, 2).requires_grad_()
    loss, _, _ = tcl_loss(logits, video)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_tcl_without_negatives_counts_zero():
    loss, pos, neg = tcl_loss(torch.zeros(3, 3, 2), torch.zeros(3, dtype=torch.long))
    assert float(neg) == 0.0 and float(pos) == 0.5
    assert float(loss) == pytest.approx(-(0.5**0.5) * math.log(0.5 + 1e-5), abs=1e-6)


def test_topic_head_scores_both_orders():
    torch.manual_seed(0)
    head = TopicHead(dim=4, hidden=6)
    z = torch.randn(5, 4)
    out = head(z)
    assert out.shape == (5, 5, 2)
    assert torch.allclose(out[..., 1], out[..., 0].T)  # [i, j, 1] == [j, i, 0]
    g = head.predictor
    assert torch.allclose(out[1, 3, 0], g(torch.cat([z[1], z[3]]))[0], atol=1e-6)
    assert torch.allclose(out[1, 3, 1], g(torch.cat([z[3], z[1]]))[0], atol=1e-6)
    assert g[0].in_features == 8 and g[0].out_features == 6 and g[2].out_features == 1


def test_projection_mlp():
    head = ProjectionMLP(16, 32, 8)
    out = head(torch.randn(6, 16))
    assert out.shape == (6, 8) and torch.allclose(out.norm(dim=1), torch.ones(6), atol=1e-6)
    assert head.bn1.eps == 1e-3 and head.bn1.momentum == 0.1 and isinstance(head.bn2, nn.BatchNorm1d)
    assert isinstance(ProjectionMLP(16, 32, 8, bn=False).bn1, nn.Identity)


class TinyBackbone(nn.Module):
    """A small 3D conv net with BN that returns a feature map (HiCo pools it)."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.conv = nn.Conv3d(3, dim, 3, padding=1)
        self.bn = nn.BatchNorm3d(dim)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _clips(b: int, k: int) -> torch.Tensor:
    return torch.randn(b, k, 3, 2, 6, 6, generator=torch.Generator().manual_seed(1))


def _hico(**kwargs) -> HiCo:
    torch.manual_seed(0)
    return HiCo(TinyBackbone(), feature_dim=16, proj_mid=32, proj_dim=8, topic_hidden=16, **kwargs)


def test_hico_forward_loss_and_gradients_reach_the_backbone():
    model = _hico()
    out = model(_clips(4, 3))
    assert torch.isfinite(out.loss) and out.loss.requires_grad
    assert out.loss.item() == pytest.approx(float(out.vcl + out.tcl), abs=1e-5)  # world size 1, weights 1
    assert float(out.tcl) > 0 and 0 < float(out.pos) < 1 and 0 < float(out.neg) < 1
    assert out.logits.shape == (8, 13) and 0 <= float(out.acc1) <= 100
    out.loss.backward()
    assert model.backbone.conv.weight.grad.abs().sum() > 0
    assert model.tcl_head.fc1.weight.grad.abs().sum() > 0 and model.topic_head.predictor[0].weight.grad is not None
    backbone_keys = [key for key in model.state_dict() if key.startswith("backbone.")]
    assert backbone_keys == [f"backbone.{key}" for key in model.backbone.state_dict()]


def test_hico_weights_and_losses_match_the_functions():
    model = _hico(vcl_weight=2.0, tcl_weight=0.5, tcl_group=3)
    clips = _clips(3, 3)
    out = model(clips)
    with torch.no_grad():
        h = model.features(clips.flatten(0, 1))  # train-mode BN: the same batch gives the same features
        vcl = vcl_loss(model.vcl_head(h), 3)
        tcl = tcl_loss(model.topic_head(model.tcl_head(h)), torch.arange(3).repeat_interleave(3))[0]
    assert float(out.vcl) == pytest.approx(float(vcl), abs=1e-6)
    assert float(out.tcl) == pytest.approx(float(tcl), abs=1e-6)
    assert out.loss.item() == pytest.approx(2.0 * float(out.vcl) + 0.5 * float(out.tcl), abs=1e-5)


def test_tcl_pairs_clips_within_groups_of_videos_and_averages_the_groups():
    model = _hico(tcl_group=2)
    clips = _clips(4, 3)
    out = model(clips)
    with torch.no_grad():
        z = model.tcl_head(model.features(clips.flatten(0, 1)))
        ids = torch.arange(2).repeat_interleave(3)
        groups = [tcl_loss(model.topic_head(group), ids) for group in z.split(6)]
    assert float(out.tcl) == pytest.approx((float(groups[0][0]) + float(groups[1][0])) / 2, abs=1e-6)
    assert float(out.pos) == pytest.approx((float(groups[0][1]) + float(groups[1][1])) / 2, abs=1e-6)
    with torch.no_grad():  # one group of all 4 videos is another objective (more negatives per positive)
        everything = tcl_loss(model.topic_head(z), torch.arange(4).repeat_interleave(3))[0]
    assert abs(float(everything) - float(out.tcl)) > 1e-4
    with pytest.raises(ValueError, match="3 videos are not a whole number of TCL groups of 2"):
        model(_clips(3, 3))


def test_simclr_baseline_without_the_topic_head():
    model = _hico(clips_per_video=2, topical=False)
    assert not hasattr(model, "tcl_head") and not hasattr(model, "topic_head")
    clips = _clips(4, 2)
    out = model(clips)
    assert float(out.tcl) == 0.0 and float(out.pos) == 0.0
    with torch.no_grad():
        z = model.vcl_head(model.features(clips.flatten(0, 1)))
    assert float(out.vcl) == pytest.approx(float(simclr_loss(z)), abs=1e-6)
    assert out.loss.item() == pytest.approx(float(out.vcl), abs=1e-6)
    out.loss.backward()
    assert model.backbone.conv.weight.grad.abs().sum() > 0


def test_hico_rejects_the_wrong_number_of_clips():
    with pytest.raises(ValueError, match="clips"):
        _hico()(_clips(2, 2))


def test_gather_with_grad_is_the_identity_in_one_process():
    z = torch.randn(4, 3, requires_grad=True)
    assert gather_with_grad(z) is z and all_gather_with_grad(z) is z


GLOBAL_VIDEOS, CLIPS, DIM = 4, 3, 4  # 2 videos per rank


def _global_z() -> torch.Tensor:
    return _unit(GLOBAL_VIDEOS * CLIPS, DIM, seed=11).float()


def _two_rank_vcl(rank: int) -> tuple:
    """VCL over the gathered z of 2 ranks (on the session's gloo ranks): what rank ``rank`` gathered, its z's
    gradient, and its loss."""
    per_rank = GLOBAL_VIDEOS * CLIPS // 2
    local = _global_z()[rank * per_rank : (rank + 1) * per_rank].clone().requires_grad_()
    gathered = all_gather_with_grad(local)
    loss = dist.get_world_size() * vcl_loss(gathered, CLIPS)  # as HiCo.forward: every global anchor, x world
    loss.backward()
    return gathered.detach(), local.grad.clone(), loss.detach()


def _one_step(rank: int, world_size: int) -> tuple[dict[str, torch.Tensor], float]:
    """One LARS step (hico/cpu_tiny's optimiser) of HiCo with TCL groups of 2 videos on this rank's share of 4 videos
    (DDP with 2 ranks: one TCL group each); BN in eval mode, whose output does not depend on how the batch is split
    (on CPU, BN is per rank: only CUDA's SyncBN makes the train-mode statistics global). The weights after it and
    this rank's L_tcl."""
    from vseg.config import load_config
    from vseg.presets import preset
    from vseg.train.methods.hico import HicoConfig
    from vseg.train.trainer import build_optimizer

    model = _hico(tcl_group=2).eval()
    optimizer = build_optimizer(model, load_config(HicoConfig, preset("hico/cpu_tiny")).optim)
    wrapped = nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    share = 4 // world_size
    out = wrapped(_clips(4, 3)[share * rank : share * (rank + 1)])
    optimizer.zero_grad()
    out.loss.backward()
    optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, float(out.tcl)


def test_gather_with_grad_gives_the_global_gradient_with_two_gloo_ranks(gloo_ranks):
    results = gloo_ranks.run(_two_rank_vcl)
    z = _global_z().requires_grad_()
    loss = vcl_loss(z, CLIPS)
    loss.backward()
    per_rank = GLOBAL_VIDEOS * CLIPS // 2
    for rank in (0, 1):
        gathered, grad, rank_loss = results[rank]
        assert torch.equal(gathered, z.detach())  # rank order, every slice
        assert float(rank_loss) == pytest.approx(2 * loss.item(), abs=1e-5)
        # only rank r's loss reaches rank r's z; x world_size, so DDP's average gives the global gradient
        assert torch.allclose(grad, 2 * z.grad[rank * per_rank : (rank + 1) * per_rank], atol=1e-6)
    assert z.grad.abs().sum() > 0


def test_one_step_with_tcl_groups_split_across_two_gloo_ranks_leaves_the_weights_of_one_process(gloo_ranks):
    """4 videos in TCL groups of 2: one process averages L_tcl over both groups, each of 2 ranks holds one group and
    DDP averages the gradients; VCL gathers across ranks. The same weights after one LARS step."""
    results = gloo_ranks.run(_one_step, 2)
    single, tcl = _one_step(0, 1)
    assert tcl == pytest.approx((results[0][1] + results[1][1]) / 2, abs=1e-6)
    before = _hico(tcl_group=2).state_dict()
    assert not torch.allclose(single["topic_head.predictor.0.weight"], before["topic_head.predictor.0.weight"])
    for rank in (0, 1):
        weights = results[rank][0]
        far = {k: float((weights[k] - single[k]).abs().max()) for k in single}
        assert max(far.values()) < 1e-5, sorted(far.items(), key=lambda kv: -kv[1])[:3]
