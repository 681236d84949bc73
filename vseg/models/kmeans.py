"""In-batch K-means whose centres are real batch samples: SCRL's "Scene Consistency" positive selection.

Wu et al., "Scene Consistency Representation Learning for Video Scene Segmentation", CVPR 2022,
Sec. 3.2 ("Scene Consistency"): every training step clusters the query embeddings of the batch and
takes, as the positive of each shot, the key of the sample standing for its cluster. The reference
code (``cluster/Group.py``, ``KMeans_Mixed``) does this with a medoid-like K-means:

* start from ``k`` distinct random samples as centres;
* assign every sample to its nearest centre (squared Euclidean distance);
* for clusters ``c = 0 .. k-1`` in order, move centre ``c`` to the sample nearest to the mean of the
  samples assigned to ``c``, skipping samples already taken by clusters ``0 .. c-1`` in this pass, so
  the ``k`` centres stay distinct samples;
* stop once ``shift ** 2 < shift_threshold``, ``shift`` being the summed squared movement of the
  centres, or after ``max_iter`` passes; return the last assignment and the centres' sample indices.

Differences from the reference, all deliberate:

* indices are int64 tensors (the reference keeps them in a float numpy array and indexes with it);
* after every assignment, each centre's own sample is forced into its cluster
  (``assign[centre_idx] = arange(k)``). Without duplicate rows this changes nothing (a centre is at
  distance 0 from itself and > 0 from every other centre); with identical rows the argmin tie could
  send a centre's sample to another cluster, leave its cluster empty and make its mean NaN;
* the returned assignment, computed from the centres of the last pass *before* they moved (as in the
  reference), also gets the returned centres forced in, so ``assign[centre_idx[c]] == c`` always holds
  and ``centre_idx[assign[i]]`` is a sample of ``i``'s own cluster. The other samples keep the
  reference's labels;
* ties are broken towards the lowest index, as numpy's argmin does, and rounding does not decide them:
  among the candidates within ``1000 * eps64 * max |x - mean(x)|^2`` of the smallest distance the first
  is taken. Exact ties are common (the mean of a 2-sample cluster is equidistant from both samples);
  the reference, in float32 on the GPU, lets rounding pick either;
* everything runs on ``x``'s device (the reference copies distances to the CPU for the indexing). The
  distances come from one float64 Gram matrix of the centred data (``|a|^2 - 2 a.b + |b|^2``): float64
  so that the ties above are resolved the same on every device and by a pure-Python check, and the Gram
  matrix so that a pass costs no product with D. Memory is O(N^2): this is for batches, not datasets.
"""

from __future__ import annotations

import torch

__all__ = ["kmeans_medoids"]


def _near_min(d: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    """Mask of the entries within ``tol`` of their row's minimum (last dim): the candidates tied for the minimum."""
    return d <= d.min(dim=-1, keepdim=True).values + tol


def _first(mask: torch.Tensor) -> torch.Tensor:
    """Index of the first True along the last dim (``argmax`` returns the first of equal maxima)."""
    return mask.to(torch.uint8).argmax(dim=-1)


@torch.no_grad()
def kmeans_medoids(
    x: torch.Tensor,
    k: int,
    max_iter: int = 20,
    shift_threshold: float = 1e-2,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the rows of ``x`` (N, D) into ``k`` clusters whose centres are ``k`` distinct rows of ``x``.

    Returns ``(assign, centre_idx)``: ``assign`` int64 (N,) with values in ``[0, k)``, the cluster of each
    sample, and ``centre_idx`` int64 (k,), distinct row indices, the sample standing for each cluster;
    both on ``x``'s device. Every cluster holds at least its own centre (``assign[centre_idx[c]] == c``).
    The initial centres are ``torch.randperm(N, generator=generator)[:k]`` (the global RNG when
    ``generator`` is None; on the generator's device, else the CPU), so a seeded generator gives the same
    result on the same data. Any float dtype is accepted (computed in float64, float32 on MPS); NaN or inf
    in ``x``, ``x`` not 2-D, ``k`` outside ``[1, N]`` or ``max_iter < 1`` raise ValueError. See the module
    docstring for the algorithm (SCRL's ``Group.py``) and what was fixed.
    """
    if x.dim() != 2:
        raise ValueError(f"kmeans_medoids expects x of shape (N, D), got shape {tuple(x.shape)}")
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"kmeans_medoids needs 1 <= k <= N (number of samples), got k={k} with N={n}")
    if max_iter < 1:
        raise ValueError(f"kmeans_medoids needs max_iter >= 1, got {max_iter}")

    device = x.device
    x = x.detach().to(torch.float32 if device.type == "mps" else torch.float64)  # MPS has no float64
    x = x - x.mean(dim=0)  # distances are unchanged; less is lost to cancellation in |a|^2 - 2 a.b + |b|^2
    gram = x @ x.T  # (N, N): every distance below is read from it, so one pass costs no product with D
    sq_norm = gram.diagonal()  # (N,) |x_i|^2
    tol = 1000 * torch.finfo(gram.dtype).eps * sq_norm.max()
    if not bool(torch.isfinite(tol)):
        raise ValueError("kmeans_medoids got non-finite values (NaN or inf) in x")
    ks = torch.arange(k, device=device)
    rows = torch.arange(n, device=device)
    inf = torch.tensor(float("inf"), dtype=gram.dtype, device=device)

    rng_device = generator.device if generator is not None else torch.device("cpu")
    centre_idx = torch.randperm(n, generator=generator, device=rng_device)[:k].to(device)

    for _ in range(max_iter):
        # Nearest centre per sample: |x - c|^2 = |x|^2 - 2 x.c + |c|^2, and |x|^2 is the same for every centre.
        assign = _first(_near_min(sq_norm[centre_idx].unsqueeze(0) - 2.0 * gram[:, centre_idx], tol))
        assign[centre_idx] = ks  # each centre keeps its own sample: no empty cluster, even with duplicates

        one_hot = torch.zeros(n, k, dtype=gram.dtype, device=device)
        one_hot[rows, assign] = 1.0
        # (k, N): |x_i - mean_c|^2 up to the per-cluster constant |mean_c|^2; mean_c . x_i = (one_hot^T G)_ci / n_c.
        to_mean = sq_norm.unsqueeze(0) - 2.0 * (one_hot.T @ gram) / one_hot.sum(dim=0).unsqueeze(1)
        near = _near_min(to_mean, tol)  # (k, N)
        first = _first(near)
        # The greedy pass keeps every first choice unless some cluster's tied candidates include a sample chosen
        # by a cluster before it (two clusters choosing the same sample is one such case): then run it.
        if not bool(near[:, first].tril(diagonal=-1).any()):
            new_idx = first
        else:
            new_idx = torch.empty(k, dtype=torch.long, device=device)
            taken = torch.zeros(n, dtype=torch.bool, device=device)
            for c in range(k):
                pick = _first(_near_min(torch.where(taken, inf, to_mean[c]), tol))
                new_idx[c] = pick
                taken[pick] = True

        # sum_c |x_new - x_old|^2
        shift = (sq_norm[new_idx] + sq_norm[centre_idx] - 2.0 * gram[new_idx, centre_idx]).clamp(min=0).sum()
        centre_idx = new_idx
        if shift.item() ** 2 < shift_threshold:
            break

    assign[centre_idx] = ks
    return assign, centre_idx
