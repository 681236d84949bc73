"""The true scenes drawn beside the found ones, where the truth is known: a green band in timeline.png, two strips
(found above true) in report.html, and true scene starts (frames) mapped onto detected shots."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from vseg.io.predictions import scenes_from_probabilities
from vseg.io.scene_report import _TRUTH_COLOURS, boundary_x, truth_band_y, write_report, write_timeline
from vseg.scenes.detect import true_boundaries


def test_the_timeline_gains_a_truth_band_whose_blocks_change_at_the_true_cuts(tmp_path):
    prob = np.array([0.1, 0.9, 0.2, 0.7, 0.3, 0.1, 0.2, 0.1])
    plain = write_timeline(tmp_path / "plain.png", prob, 0.5, [1, 3])
    path = write_timeline(tmp_path / "truth.png", prob, 0.5, [1, 3], truth=[1, 5])
    with Image.open(plain) as image:
        assert image.size == (1200, 260)
    with Image.open(path) as image:
        assert image.width == 1200 and image.height > 260
        row = np.asarray(image.convert("RGB"))[truth_band_y(260) + 4].astype(int)
    colours = [tuple(pixel) for pixel in row]
    dark, light = _TRUTH_COLOURS
    # the band alternates dark, light, dark green with the colour changing exactly at the true cuts' columns
    first, second = boundary_x(1, 8, 1200), boundary_x(5, 8, 1200)
    assert colours[first - 1] == dark and colours[first] == light
    assert colours[second - 1] == light and colours[second] == dark
    changes = [x for x in range(1, len(colours)) if colours[x] != colours[x - 1] and colours[x] in (dark, light)]
    assert {first, second} <= set(changes)


def test_the_report_shows_found_and_true_scenes_as_two_strips(tmp_path):
    prob = np.zeros(10)
    prob[[2, 6]] = 0.9
    frames = np.array([[10 * s, 10 * s + 9] for s in range(10)])
    scenes = scenes_from_probabilities("movie", prob, 0.5, frames, 25.0)
    path = write_report(tmp_path / "r.html", scenes, [], prob, "t", [], thumbs_per_scene=1, truth=[4])
    page = path.read_text()
    found = re.search(r'<div class="strip found">(.*?)</div>', page).group(1)
    truth = re.search(r'<div class="strip truth">(.*?)</div>', page).group(1)
    assert re.findall(r"width:([\d.]+)%", found) == ["30.0000", "40.0000", "30.0000"]
    assert re.findall(r"width:([\d.]+)%", truth) == ["50.0000", "50.0000"]
    assert "true scenes (green, 2)" in page and "Found scenes (blue, 3)" in page
    assert 'class="strip' not in write_report(tmp_path / "n.html", scenes, [], prob, "t", []).read_text()


def test_true_scene_starts_map_to_the_detected_shot_ending_nearest_before_them():
    table = np.array([[0, 23], [24, 59], [60, 99], [100, 139], [140, 199]])
    assert true_boundaries(table, [60, 138, 141]) == [1, 3]  # cuts a few frames off still find their shot
    assert true_boundaries(table[:1], [10]) == []
