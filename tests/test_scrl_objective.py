"""The SCRL objective: EMA, queue, positives (cluster / self / nn), Soft-SC mixing and shuffle-BN."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from vseg.models.dist import shuffle_across_ranks, unshuffle_across_ranks
from vseg.models.scrl import SCRL, topk_accuracy

DIM, QUEUE = 8, 64


class TinyEncoder(nn.Module):
    """A small conv net with BN, so that BN statistics matter as in the real encoder."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(9, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.fc = nn.Linear(8, DIM)

    def forward(self, x):
        return self.fc(self.net(x))


def _model(**kwargs) -> SCRL:
    torch.manual_seed(0)
    return SCRL(TinyEncoder, dim=DIM, queue_size=QUEUE, clusters=4, **kwargs)


def _views(batch=32):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(batch, 9, 8, 8, generator=generator), torch.randn(batch, 9, 8, 8, generator=generator)


def test_step_shapes_queue_and_pointer():
    model = _model(positive="self")
    view_q, view_k = _views()
    out = model(view_q, view_k)
    assert out.logits.shape == (32, 1 + QUEUE) and torch.isfinite(out.loss)
    assert int(model.queue_ptr) == 32
    model(view_q, view_k)
    assert int(model.queue_ptr) == 0  # wrapped around a queue of 64
    assert torch.allclose(model.queue.norm(dim=0), torch.ones(QUEUE), atol=1e-5)


def test_key_encoder_is_an_ema_of_the_query_encoder():
    model = _model(positive="self", momentum=0.9)
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.add_(1.0)
    before_q = [p.clone() for p in model.encoder_q.parameters()]
    before_k = [p.clone() for p in model.encoder_k.parameters()]
    model(*_views())
    for q, k_old, k_new in zip(before_q, before_k, model.encoder_k.parameters(), strict=True):
        assert torch.allclose(k_new, 0.9 * k_old + 0.1 * q, atol=1e-6)
    assert all(not p.requires_grad for p in model.encoder_k.parameters())


def _keys(model, view_k):
    with torch.no_grad():
        return F.normalize(model.encoder_k(view_k), dim=1)


@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_cluster_positive_is_the_soft_mix_of_own_and_centre_keys(gamma):
    model = _model(positive="cluster", soft_gamma=gamma).eval()  # eval: keys do not depend on BN batches
    view_q, view_k = _views()
    out = model(view_q, view_k)
    k = _keys(model, view_k)
    expected = (1 - gamma) * k + gamma * k[out.positive_index]
    assert torch.allclose(model.queue[:, :32].T, expected, atol=1e-5)  # the mixed keys are enqueued
    q = F.normalize(model.encoder_q(view_q), dim=1)
    assert torch.allclose(out.logits[:, 0], (q * expected).sum(1) / 0.07, atol=1e-4)
    centres = out.positive_index.unique()
    assert len(centres) == 4 and all(out.positive_index[c] == c for c in centres)  # a centre is its own centre


def test_renormalized_positive_is_on_the_sphere():
    model = _model(positive="cluster", renormalize_positive=True).eval()
    model(*_views())
    assert torch.allclose(model.queue[:, :32].norm(dim=0), torch.ones(32), atol=1e-5)


def test_nn_positive_is_another_shot_of_the_same_clip():
    model = _model(positive="nn", clip_len=16)
    out = model(*_views())
    index = out.positive_index
    shots = torch.arange(32)
    assert torch.all(index // 16 == shots // 16) and torch.all(index != shots)


def test_self_positive_is_plain_moco():
    model = _model(positive="self").eval()
    view_q, view_k = _views()
    out = model(view_q, view_k)
    assert torch.equal(out.positive_index, torch.arange(32))
    assert torch.allclose(model.queue[:, :32].T, _keys(model, view_k), atol=1e-6)


def test_single_process_shuffle_bn_undoes_its_permutation():
    # One BN group sees the whole batch, so shuffling must give exactly the unshuffled keys.
    model = _model(positive="self", key_bn_groups=1)
    view_k = _views()[1]
    assert torch.allclose(model._keys(view_k), _keys(model, view_k), atol=1e-5)
    # Two groups normalise each half on its own statistics: the keys change (that is the point).
    model.key_bn_groups = 2
    assert not torch.allclose(model._keys(view_k), _keys(model, view_k), atol=1e-3)


def test_queue_must_hold_whole_batches():
    model = SCRL(TinyEncoder, dim=DIM, queue_size=50, positive="self")
    with pytest.raises(ValueError, match="multiple of the global batch"):
        model(*_views())


def test_topk_accuracy_by_hand():
    logits = torch.tensor([[5.0, 1, 2], [1.0, 5, 2], [2.0, 5, 1]])
    assert [float(a) for a in topk_accuracy(logits, (1, 2))] == pytest.approx([100 / 3, 200 / 3])


def _two_rank_shuffle(rank, init_file, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)  # ranks draw differently; the permutation still comes from rank 0
        x = torch.arange(8, dtype=torch.float32).view(4, 2) + 100 * rank
        shuffled, inverse = shuffle_across_ranks(x)
        restored = unshuffle_across_ranks(shuffled * 2, inverse)
        results[rank] = (x, shuffled, restored)
    finally:
        dist.destroy_process_group()


def test_cross_rank_shuffle_and_unshuffle_with_two_gloo_ranks(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(_two_rank_shuffle, args=(str(tmp_path / "init"), results), nprocs=2, join=True)
    everything = torch.cat([results[0][0], results[1][0]])
    shuffled = torch.cat([results[0][1], results[1][1]])
    assert sorted(shuffled[:, 0].tolist()) == sorted(everything[:, 0].tolist())  # a permutation of the global batch
    assert not torch.equal(shuffled, everything)
    for rank in (0, 1):
        assert torch.equal(results[rank][2], results[rank][0] * 2)  # each rank gets its own rows back
