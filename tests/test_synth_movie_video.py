"""``write_movie_video``: a synthetic movie as a video of every frame, with the keyframe dataset's shots."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vseg.config import SynthConfig
from vseg.io.movienet import MovieNetLayout
from vseg.io.video import open_video
from vseg.prep.synth import make_synth, movie_id, plan_movie, render_setting, render_shot, write_movie_video

CONFIG = SynthConfig(
    movies=1, shots_per_movie=12, scene_shots=(2, 4), shot_frames=(6, 12), width=96, height=64, seed=5, workers=1
)


def _decode(path) -> np.ndarray:
    """Every frame of a video, as a (frames, H, W, 3) uint8 array."""
    reader = open_video(path)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two images, on 0..255."""
    return float(np.abs(a.astype(np.float32) - np.asarray(b, np.float32)).mean())


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The whole movie 0 of CONFIG as a video, and its decoded frames."""
    video = write_movie_video(CONFIG, 0, tmp_path_factory.mktemp("video") / "movie.mp4")
    return video, _decode(video.path)


@pytest.fixture(scope="module")
def keyframes(tmp_path_factory):
    """The keyframe dataset of CONFIG: the folder of movie 0's JPEG keyframes."""
    root = tmp_path_factory.mktemp("synth")
    make_synth(root, CONFIG)
    return MovieNetLayout(root).keyframes / movie_id(0)


def _shot_args(seed: int):
    rng = np.random.default_rng(seed)
    setting, centres = render_setting(rng, 0.3)
    return rng, setting, centres


def test_render_shot_times_draw_the_same_numbers():
    rng, setting, centres = _shot_args(1)
    default = render_shot(rng, setting, centres, [], (96, 64), 0.25)
    after_default = rng.random()
    rng, setting, centres = _shot_args(1)
    explicit = render_shot(rng, setting, centres, [], (96, 64), 0.25, times=(0.0, 0.5, 1.0))
    assert [np.asarray(f).tolist() for f in explicit] == [np.asarray(f).tolist() for f in default]
    rng, setting, centres = _shot_args(1)
    reversed_ends = render_shot(rng, setting, centres, [], (96, 64), 0.25, times=(1.0, 0.25, 0.0))
    assert rng.random() == after_default  # the same draws, whatever the times
    assert np.array_equal(np.asarray(reversed_ends[0]), np.asarray(default[2]))
    assert np.array_equal(np.asarray(reversed_ends[2]), np.asarray(default[0]))
    assert len(reversed_ends) == 3 and reversed_ends[1].size == (96, 64)


def test_video_has_every_frame_of_the_plan(full):
    video, frames = full
    plan = plan_movie(CONFIG, 0)
    assert video.frames == len(frames) == plan.shot_frames[-1][1] + 1
    assert open_video(video.path).get_avg_fps() == pytest.approx(CONFIG.fps)
    assert video.fps == CONFIG.fps and video.size == (96, 64) and frames.shape[1:] == (64, 96, 3)
    assert video.shot_starts == tuple(start for start, _ in plan.shot_frames)
    assert video.scenes == tuple(plan.scenes) and len(video.scenes) >= 3
    assert video.scene_starts == tuple(plan.shot_frames[first][0] for first, _ in plan.scenes)
    assert video.scene_starts[0] == 0


def test_shot_ends_are_the_keyframes(full, keyframes):
    video, frames = full
    shots = plan_movie(CONFIG, 0).shot_frames
    images = [[np.asarray(Image.open(keyframes / f"shot_{s:04d}_img_{j}.jpg")) for j in range(3)] for s in range(12)]
    for shot, (start, end) in enumerate(shots):
        first, middle, last = images[shot]
        assert _mad(frames[start], first) < 12 and _mad(frames[end], last) < 12
        if (end - start) % 2 == 0:  # an odd frame count has a middle frame, at camera time 0.5
            assert _mad(frames[(start + end) // 2], middle) < 12
        nearest = min(range(len(shots)), key=lambda other: _mad(frames[start], images[other][0]))
        assert nearest == shot  # no shot is off by one


def test_cuts_are_much_larger_than_camera_moves(full):
    video, frames = full
    change = np.array([_mad(a, b) for a, b in zip(frames[:-1], frames[1:], strict=True)])  # frame i to i + 1
    cut = np.zeros(len(change), dtype=bool)
    cut[np.asarray(video.shot_starts[1:]) - 1] = True
    assert change[cut].min() > 2 * change[~cut].max()


def test_first_scenes_only(full, tmp_path):
    video, frames = full
    part = write_movie_video(CONFIG, 0, tmp_path / "part.mkv", scenes=2)
    first = _decode(part.path)
    assert part.frames == len(first) == video.scene_starts[2]
    assert part.scenes == video.scenes[:2] and part.scene_starts == video.scene_starts[:2]
    assert part.shot_starts == video.shot_starts[: video.scenes[1][1] + 1]
    assert max(_mad(a, b) for a, b in zip(first, frames, strict=False)) < 2  # the same pictures, encoded apart


def test_default_size_is_even_and_scenes_must_be_positive(tmp_path):
    odd = CONFIG.model_copy(update={"width": 97, "height": 67})
    video = write_movie_video(odd, 0, tmp_path / "odd.mp4", scenes=1)
    assert video.size == (96, 66) and _decode(video.path).shape[1:] == (66, 96, 3)
    with pytest.raises(ValueError, match="scenes"):
        write_movie_video(CONFIG, 0, tmp_path / "none.mp4", scenes=0)
