"""In-batch medoid K-means (SCRL's ``Group.py``): invariants, determinism, a pure-Python reference, edge cases."""

from __future__ import annotations

import pytest
import torch

from vseg.models.kmeans import kmeans_medoids


def _reference(x: torch.Tensor, k: int, max_iter: int, shift_threshold: float, seed: int) -> tuple[list, list]:
    """SCRL's ``cluster/Group.py`` (``KMeans_Mixed``) in Python lists and floats, plus the documented fixes."""
    rows = [[float(v) for v in row] for row in x.tolist()]
    n = len(rows)

    def dist(a, b):
        return sum((p - q) ** 2 for p, q in zip(a, b, strict=True))

    centre_idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].tolist()
    for _ in range(max_iter):
        centres = [rows[j] for j in centre_idx]
        assign = []
        for row in rows:
            d = [dist(row, c) for c in centres]
            assign.append(d.index(min(d)))
        for c, j in enumerate(centre_idx):
            assign[j] = c
        new_idx = []
        for c in range(k):
            members = [rows[i] for i in range(n) if assign[i] == c]
            mean = [sum(col) / len(members) for col in zip(*members, strict=True)]
            d = [float("inf") if i in new_idx else dist(rows[i], mean) for i in range(n)]
            new_idx.append(d.index(min(d)))
        shift = sum(dist(rows[a], rows[b]) for a, b in zip(new_idx, centre_idx, strict=True))
        centre_idx = new_idx
        if shift**2 < shift_threshold:
            break
    for c, j in enumerate(centre_idx):
        assign[j] = c
    return assign, centre_idx


def _run(x, k, seed, **kwargs):
    return kmeans_medoids(x, k, generator=torch.Generator().manual_seed(seed), **kwargs)


def _check_valid(x, k, assign, centre_idx):
    n = x.shape[0]
    assert assign.dtype == torch.int64 and centre_idx.dtype == torch.int64
    assert assign.shape == (n,) and centre_idx.shape == (k,)
    assert assign.device == x.device and centre_idx.device == x.device
    assert int(assign.min()) >= 0 and int(assign.max()) < k
    assert int(centre_idx.min()) >= 0 and int(centre_idx.max()) < n
    assert centre_idx.unique().numel() == k, "centres must be k distinct samples"
    assert torch.equal(assign[centre_idx], torch.arange(k, device=x.device)), "each centre belongs to its own cluster"
    assert bool((torch.bincount(assign, minlength=k) > 0).all()), "no cluster may be empty"


def _blobs(seed: int, n_blobs: int = 4, per_blob: int = 30, dim: int = 16, spread: float = 0.3):
    g = torch.Generator().manual_seed(1000 + seed)
    centres = torch.randn(n_blobs, dim, generator=g) * 5.0
    x = centres.repeat_interleave(per_blob, 0) + spread * torch.randn(n_blobs * per_blob, dim, generator=g)
    return x, torch.arange(n_blobs).repeat_interleave(per_blob)


@pytest.mark.parametrize(("n", "d", "k"), [(128, 64, 24), (40, 8, 5), (10, 3, 1), (7, 2, 7)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_output_is_valid(n, d, k, seed):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    assign, centre_idx = _run(x, k, seed)
    _check_valid(x, k, assign, centre_idx)


@pytest.mark.parametrize("seed", range(4))
def test_matches_pure_python_reference(seed):
    g = torch.Generator().manual_seed(seed)
    n, d, k = [(40, 6, 6), (30, 4, 9), (25, 5, 3), (36, 3, 12)][seed]
    x = torch.randn(n, d, generator=g)
    for max_iter in (1, 2, 20):
        assign, centre_idx = _run(x, k, seed, max_iter=max_iter)
        ref_assign, ref_centres = _reference(x, k, max_iter, 1e-2, seed)
        assert centre_idx.tolist() == ref_centres, f"max_iter={max_iter}"
        assert assign.tolist() == ref_assign, f"max_iter={max_iter}"


def test_max_iter_bounds_the_passes():
    # Data on which one pass is not enough: max_iter=1 must stop after exactly one pass.
    x = torch.randn(60, 4, generator=torch.Generator().manual_seed(5))
    one = _reference(x, 8, 1, 1e-2, seed=3)
    assert one != _reference(x, 8, 20, 1e-2, seed=3), "test data must need more than one pass"
    assign, centre_idx = _run(x, 8, 3, max_iter=1)
    _check_valid(x, 8, assign, centre_idx)
    assert (assign.tolist(), centre_idx.tolist()) == one
    with pytest.raises(ValueError, match="max_iter"):
        _run(x, 8, 3, max_iter=0)


def test_shift_threshold_stops_early():
    # Small data: the first pass moves the centres by a shift of about 0.023 (> 0.01, but shift^2 < 0.01), so the
    # default threshold stops there (the reference squares the summed squared movement before comparing).
    x = 0.1 * torch.randn(60, 4, generator=torch.Generator().manual_seed(5))
    early = _reference(x, 8, 20, 1e-2, seed=3)
    assert early == _reference(x, 8, 1, 1e-2, seed=3) != _reference(x, 8, 20, 0.0, seed=3)
    assert tuple(t.tolist() for t in _run(x, 8, 3)) == early
    assert tuple(t.tolist() for t in _run(x, 8, 3, shift_threshold=0.0)) == _reference(x, 8, 20, 0.0, seed=3)


def test_deterministic_under_a_seeded_generator():
    x = torch.randn(128, 32, generator=torch.Generator().manual_seed(0))
    a1, c1 = _run(x, 24, seed=11)
    a2, c2 = _run(x, 24, seed=11)
    assert torch.equal(a1, a2) and torch.equal(c1, c2)
    others = [_run(x, 24, seed=s) for s in range(12, 16)]
    assert any(not torch.equal(c1, c) for _, c in others), "different seeds should (almost always) differ"
    torch.manual_seed(3)
    g1 = kmeans_medoids(x, 24)
    torch.manual_seed(3)
    g2 = kmeans_medoids(x, 24)
    assert all(torch.equal(p, q) for p, q in zip(g1, g2, strict=True)), "the global RNG is used when generator=None"


def _one_start_per_blob_seeds(truth: torch.Tensor, k: int, count: int) -> list[int]:
    """The first ``count`` seeds whose start (the documented ``randperm(N)[:k]``) puts one centre in each blob."""
    seeds = []
    for seed in range(1000):
        start = torch.randperm(len(truth), generator=torch.Generator().manual_seed(seed))[:k]
        if sorted(truth[start].tolist()) == list(range(k)):
            seeds.append(seed)
            if len(seeds) == count:
                return seeds
    raise AssertionError("not enough seeds")


def test_recovers_well_separated_blobs():
    # Like the reference, the start is uniformly random (no k-means++), so from a start with two centres in one blob
    # the algorithm may stop in a local minimum (a blob split, two blobs merged). From a start with one centre per
    # blob it must find the blobs exactly: every blob in a single cluster, 4 different clusters (adjusted Rand 1).
    for data_seed in range(3):
        x, truth = _blobs(data_seed)
        for seed in _one_start_per_blob_seeds(truth, 4, count=4):
            assign, centre_idx = _run(x, 4, seed)
            _check_valid(x, 4, assign, centre_idx)
            labels = [set(assign[truth == b].tolist()) for b in range(4)]
            assert all(len(s) == 1 for s in labels), (data_seed, seed, labels)
            assert len(set().union(*labels)) == 4, (data_seed, seed, labels)
            assert sorted(truth[centre_idx].tolist()) == [0, 1, 2, 3], "one centre per blob"


def test_blobs_are_never_merged_when_k_is_generous():
    # With 3 centres per blob on average, a cluster may still straddle blobs only if some blob got no start at all.
    x, truth = _blobs(0, n_blobs=3, per_blob=20)
    tested = 0
    for seed in range(10):
        start = torch.randperm(60, generator=torch.Generator().manual_seed(seed))[:9]
        if set(truth[start].tolist()) != {0, 1, 2}:
            continue
        tested += 1
        assign, centre_idx = _run(x, 9, seed)
        _check_valid(x, 9, assign, centre_idx)
        for c in range(9):
            assert len(set(truth[assign == c].tolist())) == 1, f"cluster {c} mixes blobs (seed {seed})"
    assert tested >= 5


def test_exact_ties_go_to_the_lowest_index():
    # Pairs a = p + e, b = p - e: the mean of a 2-sample cluster is equidistant from both samples. Float rounding
    # must not decide: the first index wins, as argmin does in exact arithmetic.
    g = torch.Generator().manual_seed(8)
    centres, offsets = torch.randn(5, 32, generator=g) * 10.0, torch.randn(5, 32, generator=g) * 0.1
    x = torch.cat([centres + offsets, centres - offsets])
    order = torch.randperm(10, generator=g)
    x, pair = x[order], torch.arange(10)[order] % 5
    for seed in _one_start_per_blob_seeds(pair, 5, count=3):
        assign, centre_idx = _run(x, 5, seed)
        _check_valid(x, 5, assign, centre_idx)
        expected = {min(torch.nonzero(pair == q).flatten().tolist()) for q in range(5)}
        assert set(centre_idx.tolist()) == expected


def test_duplicate_rows_leave_no_cluster_empty():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.ones(50, 8), torch.randn(6, 8, generator=g)])[torch.randperm(56, generator=g)]
    for seed in range(10):
        assign, centre_idx = _run(x, 12, seed)
        _check_valid(x, 12, assign, centre_idx)
    same = torch.zeros(20, 4)
    assign, centre_idx = _run(same, 5, seed=0)
    _check_valid(same, 5, assign, centre_idx)


def test_k_equal_to_n_puts_every_sample_in_its_own_cluster():
    x = torch.randn(9, 5, generator=torch.Generator().manual_seed(1))
    assign, centre_idx = _run(x, 9, seed=2)
    _check_valid(x, 9, assign, centre_idx)
    assert sorted(centre_idx.tolist()) == list(range(9))
    assert torch.equal(centre_idx[assign], torch.arange(9))


@pytest.mark.parametrize(("shape", "k"), [((5, 3), 6), ((5, 3), 0), ((0, 3), 1), ((5,), 2), ((2, 3, 4), 1)])
def test_bad_input_raises_value_error(shape, k):
    with pytest.raises(ValueError, match="kmeans_medoids"):
        kmeans_medoids(torch.randn(shape), k)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises_value_error(bad):
    x = torch.randn(10, 4)
    x[3, 2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        kmeans_medoids(x, 3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_matches_its_float32_copy(dtype):
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(4)).to(dtype)
    assign, centre_idx = _run(x, 8, seed=1)
    _check_valid(x, 8, assign, centre_idx)
    ref_assign, ref_centres = _run(x.float(), 8, seed=1)
    assert torch.equal(assign, ref_assign) and torch.equal(centre_idx, ref_centres)


def test_no_grad_and_input_untouched():
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(6), requires_grad=True)
    before = x.detach().clone()
    assign, centre_idx = _run(x, 4, seed=0)
    assert not assign.requires_grad and not centre_idx.requires_grad
    assert torch.equal(x.detach(), before)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    x = torch.randn(128, 256, generator=torch.Generator().manual_seed(7))
    cpu = _run(x, 24, seed=3)
    gpu = _run(x.cuda(), 24, seed=3)
    _check_valid(x.cuda(), 24, *gpu)
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])
