"""The training-free scene methods of ``vseg scenes`` behind one call, as per-shot boundary probabilities.

``window``: the windowed scorer of :mod:`vseg.eval.scorer` (a probability per shot, boundaries where it is above
the threshold). ``osg``: Optimal Sequential Grouping (:mod:`vseg.eval.osg`), which chooses the scenes as a whole; its
"probability" is 1 at the shots that end a scene and 0 elsewhere, so that the threshold keeps exactly its scenes.
"""

from __future__ import annotations

import numpy as np

from vseg.config import ScenesConfig
from vseg.eval.osg import boundary_indicator, optimal_sequential_grouping
from vseg.eval.scorer import boundary_probabilities

SCENE_COUNTS = {"cost_curve": "elbow of the cost curve", "singular_values": "log-elbow of the singular values"}


def training_free_boundaries(features: np.ndarray, config: ScenesConfig) -> tuple[np.ndarray, str]:
    """``(prob, description)``: the boundary probability of every shot by ``config.method``, and a line saying how
    it was found (for the report)."""
    if config.method == "window":
        scorer = config.scorer
        prob = boundary_probabilities(features, scorer.window, scorer.offset)
        return prob, f"training-free window scorer (window {scorer.window}, offset {scorer.offset})"
    osg = config.osg
    grouped = optimal_sequential_grouping(
        features, config.min_scene_shots, osg.max_scene_shots, osg.scenes, osg.distance, osg.cost, osg.scene_count
    )
    how = "given" if osg.scenes else SCENE_COUNTS[osg.scene_count]
    description = (
        f"optimal sequential grouping ({grouped.scenes} scenes, {how}; {osg.cost} cost {grouped.cost:.3f}, "
        f"{osg.distance.replace('_', ' ')} distance)"
    )
    return boundary_indicator(len(features), grouped.boundaries), description
