"""Optimal sequential grouping at feature-film length: time and memory for a video of N shots.

A 2-hour film has about 2,000 shots. The features are synthetic (scenes of 3-30 shots, each shot its scene's
random centre plus noise, 2048-d like SCRL's ResNet-50), so the scenes found can be checked too. Each run is timed
in the same process against the window scorer on the same features (the baseline); peak memory is what numpy
allocates during the call (tracemalloc), best of ``--repeat`` runs for the time.

    python benchmarks/osg_scale.py [--shots 500 1000 2000 4000] [--dim 2048] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from vseg.eval.osg import optimal_sequential_grouping
from vseg.eval.scorer import boundary_probabilities


def film(shots: int, dim: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """``shots`` features in scenes of 3-30 shots, and the true boundaries."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < shots:
        sizes.append(int(rng.integers(3, 31)))
    sizes[-1] -= sum(sizes) - shots
    if sizes[-1] < 3:
        sizes[-2] += sizes.pop()
    centres = rng.normal(size=(len(sizes), dim)).astype(np.float32)
    features = np.concatenate([c + 0.8 * rng.normal(size=(n, dim)).astype(np.float32) for c, n in zip(centres, sizes)])
    return features, [int(b) for b in np.cumsum(sizes)[:-1] - 1]


def timed(function, repeat: int) -> tuple[float, float, object]:
    """Best wall time of ``repeat`` calls, peak traced MiB of one call, and its result."""
    best = np.inf
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return best, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| shots | true scenes | found | exact boundaries | window scorer s | OSG s | OSG / window | OSG peak MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shots in args.shots:
        features, truth = film(shots, args.dim)
        window_s, _, _ = timed(lambda: boundary_probabilities(features), args.repeat)
        osg_s, peak, result = timed(lambda: optimal_sequential_grouping(features, min_shots=3), args.repeat)
        exact = len(set(result.boundaries) & set(truth)) / len(truth)
        print(f"| {shots:,} | {len(truth) + 1} | {result.scenes} | {exact:.3f} | {window_s:.3f} | {osg_s:.2f} | "
              f"{osg_s / window_s:.0f}x | {peak:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
