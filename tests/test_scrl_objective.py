"""The SCRL objective: EMA, queue, positives (cluster / self / nn), Soft-SC mixing and shuffle-BN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vseg.config import load_config
from vseg.models.dist import shuffle_across_ranks, unshuffle_across_ranks
from vseg.models.kmeans import kmeans_medoids
from vseg.models.scrl import SCRL, topk_accuracy
from vseg.presets import preset
from vseg.runtime import DistEnv
from vseg.train.methods.scrl import ScrlConfig, ScrlMethod
from vseg.train.trainer import build_optimizer, train_step

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
    kwargs = {"cluster_group": 32, "bn_group": 32, **kwargs}
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


@pytest.mark.parametrize("soft, gamma", [(True, 0.5), (True, 0.3), (False, 0.5)])
def test_cluster_positive_is_the_references_soft_sc_or_hard_sc(soft, gamma):
    model = _model(positive="cluster", soft_positive=soft, soft_gamma=gamma).eval()  # eval: keys use no BN batch
    view_q, view_k = _views()
    out = model(view_q, view_k)
    k = _keys(model, view_k)
    # SCRL_MoCo.py: (k_centre + k) * gamma with multi_positive, else k_centre alone
    expected = gamma * (k + k[out.positive_index]) if soft else k[out.positive_index]
    assert torch.allclose(model.queue[:, :32].T, expected, atol=1e-5)  # the mixed keys are enqueued
    q = F.normalize(model.encoder_q(view_q), dim=1)
    assert torch.allclose(out.logits[:, 0], (q * expected).sum(1) / 0.07, atol=1e-4)
    centres = out.positive_index.unique()
    assert len(centres) == 4 and all(out.positive_index[c] == c for c in centres)  # a centre is its own centre


def test_logits_loss_and_cluster_positives_by_hand():
    """The whole step written out from SCRL_MoCo.py: logits ``[q . pos, q . queue] / T`` with the queue as it was
    *before* this step's keys go in, the loss ``CE(logits, 0)``, and positives from K-means of the *queries* (each
    query's cluster centre), the K-means started from the step generator's draw after the shuffle-BN permutation."""
    model = _model(positive="cluster", soft_positive=False).eval()  # eval: BN uses running statistics
    view_q, view_k = _views()
    queue_before = model.queue.clone()
    out = model(view_q, view_k)
    q, k = F.normalize(model.encoder_q(view_q), dim=1), _keys(model, view_k)
    generator = torch.Generator().manual_seed(0 * 1_000_003 + 0)  # seed 0, step 0
    torch.randperm(32, generator=generator)  # the shuffle-BN permutation comes first
    seed = int(torch.randint(2**62, (1, 1), generator=generator)[0, 0])
    assign, centres = kmeans_medoids(q.double(), 4, max_iter=20, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(out.positive_index, centres[assign])
    from_keys = kmeans_medoids(k.double(), 4, max_iter=20, generator=torch.Generator().manual_seed(seed))
    assert not torch.equal(from_keys[1][from_keys[0]], centres[assign])  # clustering the keys would be caught
    logits = torch.cat([(q * k[centres[assign]]).sum(1, keepdim=True), q @ queue_before], dim=1) / 0.07
    assert torch.allclose(out.logits, logits, atol=1e-4)
    assert not torch.allclose(out.logits[:, 1:33], (q @ model.queue[:, :32]) / 0.07, atol=1e-2)  # not the new keys
    by_hand = (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()  # -log softmax at index 0
    assert float(out.loss.detach()) == pytest.approx(float(by_hand), abs=1e-4)


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
    model = _model(positive="self", bn_group=32)
    view_k = _views()[1]
    assert torch.allclose(model._keys(view_k, torch.Generator().manual_seed(0)), _keys(model, view_k), atol=1e-5)
    # Two groups normalise each half on its own statistics: the keys change (that is the point).
    model.bn_group = 16
    keys = model._keys(view_k, torch.Generator().manual_seed(0))
    assert not torch.allclose(keys, _keys(model, view_k), atol=1e-3)
    # ... and each group is a random half of the batch, not the first and second halves
    halves = torch.cat([_keys(model, half) for half in view_k.split(16)])
    assert not torch.allclose(keys, halves, atol=1e-3)


def test_queries_are_normalised_in_bn_groups_of_consecutive_shots():
    model = _model(positive="self", bn_group=16)
    view_q = _views()[0]
    expected = torch.cat([F.normalize(model.encoder_q(half), dim=1) for half in view_q.split(16)])
    assert torch.allclose(model._encode(model.encoder_q, view_q), expected, atol=1e-6)
    with pytest.raises(ValueError, match="not a whole number of BN groups of 12"):
        model.bn_group = 12
        model(*_views())


def test_each_cluster_group_is_clustered_on_its_own():
    model = _model(positive="cluster", cluster_group=8)
    out = model(*_views())
    index = out.positive_index
    assert torch.all(index // 8 == torch.arange(32) // 8)  # every positive comes from the query's own 8-shot group
    assert all(len(index[g * 8 : (g + 1) * 8].unique()) == 4 for g in range(4))  # 4 clusters in each group


def test_similarities_are_float32_under_bf16_autocast():
    model = _model(positive="cluster")
    view_q, view_k = _views()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(view_q, view_k)
    assert out.logits.dtype == torch.float32 and out.loss.dtype == torch.float32


def test_step_counter_is_saved_and_seeds_the_step():
    model = _model(positive="cluster")
    model(*_views())
    state = model.state_dict()
    assert state["_extra_state"] == {"steps": 1}
    again = _model(positive="cluster")
    again.load_state_dict(state)
    assert again.steps == 1
    assert torch.equal(model(*_views()).positive_index, again(*_views()).positive_index)


def test_queue_must_hold_whole_batches():
    model = SCRL(TinyEncoder, dim=DIM, queue_size=50, positive="self", bn_group=32)
    with pytest.raises(ValueError, match="multiple of the global batch"):
        model(*_views())


def test_topk_accuracy_by_hand():
    logits = torch.tensor([[5.0, 1, 2], [1.0, 5, 2], [2.0, 5, 1]])
    assert [float(a) for a in topk_accuracy(logits, (1, 2))] == pytest.approx([100 / 3, 200 / 3])


GROUPS = {"cluster_group": 16, "bn_group": 8}


def _shuffle_on_rank(rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This rank's rows, the rows the shuffle gave it, and its own rows (doubled) back from the unshuffle."""
    torch.manual_seed(rank)  # the global RNGs differ; the permutation comes from the generator seeded alike
    x = torch.arange(8, dtype=torch.float32).view(4, 2) + 100 * rank
    shuffled, inverse = shuffle_across_ranks(x, torch.Generator().manual_seed(5))
    return x, shuffled, unshuffle_across_ranks(shuffled * 2, inverse)


def _objective_on_rank(rank: int) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Two forwards of SCRL on this rank's 16 of 32 shots: the positives' global indices, the losses, the queue."""
    model = _model(positive="cluster", **GROUPS)
    torch.manual_seed(100 + rank)  # the ranks' global RNGs differ, as under torchrun
    view_q, view_k = _views()
    outputs = [model(view_q[16 * rank : 16 * (rank + 1)], view_k[16 * rank : 16 * (rank + 1)]) for _ in range(2)]
    return [o.positive_index + 16 * rank for o in outputs], [o.loss.detach() for o in outputs], model.queue.clone()


TRAINER_STEP = ["model.dim=16", "model.queue_size=128"]
ONE_PROCESS = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _trainer_step(rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """One step of ``pretrain scrl``'s own pieces (scrl/cpu_tiny's model, optimiser and ``train_step``, under DDP with
    2 ranks) on this rank's share of a global batch of 4 clips x 16 shots; the weights and queue after it."""
    config = load_config(ScrlConfig, preset("scrl/cpu_tiny"), TRAINER_STEP)
    env = DistEnv(rank=rank, world_size=world_size, local_rank=rank, device=torch.device("cpu"))
    method = ScrlMethod(config)
    torch.manual_seed(0)
    model = method.build_model(env, 64)
    optimizer = build_optimizer(model, config.optim)
    wrapped = nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    generator = torch.Generator().manual_seed(3)
    clips = [torch.randn(4, 16, 9, 16, 16, generator=generator) for _ in range(2)]  # query and key views
    share = slice(4 // world_size * rank, 4 // world_size * (rank + 1))
    train_step(method, wrapped, optimizer, tuple(view[share] for view in clips), env, amp=False)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if torch.is_tensor(v) and v.is_floating_point()}


def test_cross_rank_shuffle_and_unshuffle_with_two_gloo_ranks(gloo_ranks):
    results = gloo_ranks.run(_shuffle_on_rank)
    everything = torch.cat([results[0][0], results[1][0]])
    shuffled = torch.cat([results[0][1], results[1][1]])
    assert sorted(shuffled[:, 0].tolist()) == sorted(everything[:, 0].tolist())  # a permutation of the global batch
    assert not torch.equal(shuffled, everything)
    for rank in (0, 1):
        assert torch.equal(results[rank][2], results[rank][0] * 2)  # each rank gets its own rows back


def test_one_process_and_two_gloo_ranks_train_the_same_objective(gloo_ranks):
    """The same global batch of 32 shots, once in one process and once as 2 ranks of 16: the same K-means groups
    and assignments, the same keys (shuffle-BN over the global batch), the same loss and queue, for two steps."""
    results = gloo_ranks.run(_objective_on_rank)
    model = _model(positive="cluster", **GROUPS)
    view_q, view_k = _views()
    single = [model(view_q, view_k) for _ in range(2)]
    for step in range(2):
        ranks = torch.cat([results[0][0][step], results[1][0][step]])
        assert torch.equal(ranks, single[step].positive_index)
        mean_loss = (results[0][1][step] + results[1][1][step]) / 2  # DDP averages the ranks' gradients alike
        assert float(mean_loss) == pytest.approx(float(single[step].loss.detach()), abs=1e-5)
    for rank in (0, 1):
        assert torch.allclose(results[rank][2], model.queue, atol=1e-5)


def test_one_training_step_leaves_the_same_weights_on_one_process_and_two_gloo_ranks(gloo_ranks):
    """The whole step, not only the forward: after SGD with momentum and weight decay, DDP's averaged gradients on 2
    ranks of 32 shots give the weights, EMA key encoder and queue that one process gets from all 64. BN running
    statistics are each rank's own (DDP copies rank 0's at the next forward), so they are left out."""
    trained = gloo_ranks.run(_trainer_step, 2)
    single = _trainer_step(0, 1)
    for rank in (0, 1):
        ranks = trained[rank]
        assert ranks.keys() == single.keys()
        compared = [k for k in single if ".running_" not in k]
        assert len(compared) > 100 and "queue" in compared and "encoder_k.fc.2.weight" in compared
        far = [k for k in compared if not torch.allclose(ranks[k], single[k], rtol=1e-4, atol=1e-6)]
        assert not far, far[:5]
    torch.manual_seed(0)
    at_init = ScrlMethod(load_config(ScrlConfig, preset("scrl/cpu_tiny"), TRAINER_STEP)).build_model(ONE_PROCESS, 64)
    assert not torch.allclose(at_init.encoder_q.conv1.weight, single["encoder_q.conv1.weight"], atol=1e-4)
