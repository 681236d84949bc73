"""SCRL's training items: clips from puzzles or keyframes, per-item seeds, the epoch sampler, bad files."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from vseg.data.augment import TwoViewShotTransform
from vseg.data.clips import TwoViewClips, keyframe_clips, puzzle_clips, read_clip_frames
from vseg.data.sampler import EpochSampler, collate_or_error
from vseg.errors import DataError
from vseg.io.movienet import list_movies, select_movies
from vseg.config import PuzzlesConfig, config_to_yaml, load_config
from vseg.train.methods.scrl import ScrlConfig
from vseg.io.puzzles import SETTINGS_NAME, read_manifest
from vseg.presets import resolve_config
from vseg.train.methods.scrl import warn_if_other_split

from .conftest import SYNTH

TRANSFORM = TwoViewShotTransform.scrl(32)


def test_puzzle_and_keyframe_clips_hold_the_same_shots(synth_root, puzzle_root):
    from_puzzles = puzzle_clips(puzzle_root, 16, 3)
    from_keyframes, skipped = keyframe_clips(synth_root / "240P", 16, 3, list_movies(synth_root / "240P"))
    assert skipped == {}
    assert [(c.movie, c.first_shot) for c in from_puzzles] == [(c.movie, c.first_shot) for c in from_keyframes]
    assert [c.first_shot for c in from_puzzles[:2]] == [0, 16] and len(from_puzzles) == 3 * (
        SYNTH.shots_per_movie // 16
    )
    a = read_clip_frames(from_puzzles[3], 16, 3).float()
    b = read_clip_frames(from_keyframes[3], 16, 3).float()
    assert a.shape == b.shape == (16, 3, 3, SYNTH.height, SYNTH.width)
    assert (a - b).abs().mean() < 3  # the same pixels, up to the puzzle's JPEG re-encoding
    other = read_clip_frames(from_keyframes[4], 16, 3).float()
    assert (a - other).abs().mean() > 10


def test_split_selects_movies_for_keyframe_clips(synth_root):
    split = json.loads((synth_root / "meta" / "split318.json").read_text())
    movies, source = select_movies(synth_root / "240P", "train")
    clips, _ = keyframe_clips(synth_root / "240P", 16, 3, movies)
    assert {c.movie for c in clips} == set(split["train"])
    assert source == f"split train of {synth_root / 'meta' / 'split318.json'} ({len(split['train'])} movies)"


def test_a_movie_with_a_missing_keyframe_is_left_out_and_named(dataset):
    (dataset / "240P" / "tt9000001" / "shot_0005_img_2.jpg").unlink()
    clips, skipped = keyframe_clips(dataset / "240P", 16, 3, list_movies(dataset / "240P"))
    assert set(skipped) == {"tt9000001"} and "shot_0005_img_2.jpg" in str(skipped["tt9000001"])
    assert "tt9000001" not in {c.movie for c in clips}


def test_manifest_free_scrl_folder_is_indexed_by_listing(puzzle_root, tmp_path):
    copy = tmp_path / "scrl_puzzles"
    shutil.copytree(puzzle_root, copy)
    (copy / "manifest.json").unlink()
    index = read_manifest(copy)
    assert [(p.movie, p.first_shot) for p in index.puzzles] == [
        (p.movie, p.first_shot) for p in read_manifest(puzzle_root).puzzles
    ]


def test_layout_mismatch_with_the_config_is_an_error(puzzle_root):
    with pytest.raises(DataError, match="16 shots x 3 keyframes, the config asks for 8 x 3"):
        puzzle_clips(puzzle_root, 8, 3)


def test_items_are_two_views_seeded_by_epoch_and_index(puzzle_root):
    dataset = TwoViewClips(puzzle_clips(puzzle_root, 16, 3), TRANSFORM, seed=5)
    q, k = dataset[(0, 1)]
    assert q.shape == k.shape == (16, 9, 32, 32) and q.dtype == torch.float32
    assert not torch.equal(q, k)
    q_again, k_again = dataset[(0, 1)]
    assert torch.equal(q, q_again) and torch.equal(k, k_again)  # same (epoch, index): same views, any worker
    q_next_epoch, _ = dataset[(1, 1)]
    assert not torch.equal(q, q_next_epoch)
    assert not torch.equal(TwoViewClips(dataset.clips, TRANSFORM, seed=6)[(0, 1)][0], q)


def test_a_corrupt_puzzle_comes_back_as_its_error_and_stops_the_batch(puzzle_root, tmp_path):
    copy = tmp_path / "puzzles"
    shutil.copytree(puzzle_root, copy)
    bad = copy / "tt9000002" / "0001.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    dataset = TwoViewClips(puzzle_clips(copy, 16, 3), TRANSFORM)
    items = [dataset[(0, i)] for i in range(len(dataset))]
    errors = [item for item in items if isinstance(item, DataError)]
    assert len(errors) == 1 and "tt9000002/0001.jpg" in str(errors[0]) and "corrupt image" in str(errors[0])
    assert collate_or_error([items[0], errors[0]]) is errors[0]
    q, k = collate_or_error(items[:2])
    assert q.shape == (2, 16, 9, 32, 32)


def test_a_puzzle_that_is_not_a_16_by_3_grid_is_named(puzzle_root, tmp_path):
    copy = tmp_path / "puzzles"
    shutil.copytree(puzzle_root, copy)
    from PIL import Image

    Image.new("RGB", (100, 70)).save(copy / "tt9000000" / "0000.jpg")
    clip = puzzle_clips(copy, 16, 3)[0]
    with pytest.raises(DataError, match="0000.jpg.*100x70, not a grid of 16 rows x 3 keyframes"):
        read_clip_frames(clip, 16, 3)


def test_epoch_sampler_shards_ranks_and_tags_the_epoch():
    ranks = [EpochSampler(10, num_replicas=2, rank=r, seed=1) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(3)
    drawn = [list(sampler) for sampler in ranks]
    assert all(epoch == 3 and progress == 0 for part in drawn for epoch, _, progress in part)
    indices = [i for part in drawn for _, i, _ in part]
    assert len(indices) == 10 and sorted(indices) == list(range(10))  # disjoint shards covering all clips
    ranks[0].set_epoch(4)
    assert [i for _, i, _ in ranks[0]] != [i for _, i, _ in drawn[0]]  # reshuffled every epoch
    assert len(EpochSampler(11, num_replicas=2, rank=0)) == 5  # tail dropped


def test_epoch_sampler_tags_each_item_with_the_progress_of_its_step():
    sampler = EpochSampler(12, num_replicas=2, rank=1, seed=0)
    sampler.set_schedule(epochs=4, steps_per_epoch=3, batch_size=2)
    sampler.set_epoch(2)
    progress = [p for _, _, p in sampler]
    # 6 items per rank, 2 per step: steps 0, 0, 1, 1, 2, 2 of epoch 2 of 4
    assert progress == pytest.approx([(2 + s / 3) / 4 for s in (0, 0, 1, 1, 2, 2)])
    sampler.set_epoch(0)
    assert next(iter(sampler))[2] == 0.0


def test_keyframes_of_different_sizes_in_one_read_are_named(tmp_path):
    from PIL import Image

    from vseg.data.clips import read_frames

    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    Image.new("RGB", (41, 30)).save(tmp_path / "b.jpg")
    assert read_frames([tmp_path / "a.jpg", tmp_path / "a.jpg"]).shape == (2, 3, 30, 40)
    with pytest.raises(DataError, match="b.jpg: keyframe is 41x30 but a.jpg, read with it, is 40x30"):
        read_frames([tmp_path / "a.jpg", tmp_path / "b.jpg"])


def test_paper_preset_warns_when_the_puzzles_hold_other_movies(tmp_path, capsys):
    data = load_config(ScrlConfig, resolve_config("scrl/without_imagenet")).data  # train of movie1K
    folder = tmp_path / "puzzles"
    folder.mkdir()
    warn_if_other_split(folder, data)
    (folder / SETTINGS_NAME).write_text(config_to_yaml(PuzzlesConfig(split="train"), "prep puzzles"))
    warn_if_other_split(folder, data)
    (folder / SETTINGS_NAME).write_text(config_to_yaml(load_config(PuzzlesConfig, resolve_config("puzzles/scrl")), "x"))
    warn_if_other_split(folder, data)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 2  # no vseg_puzzles.yaml, then SceneSeg318's train split; the paper's puzzles are quiet
    assert "hold unknown movies (no vseg_puzzles.yaml), but the config asks for split train of movie1K" in warnings[0]
    assert "hold split train of meta/split318.json, but the config asks for split train of movie1K" in warnings[1]
