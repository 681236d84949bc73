"""``vseg prep synth``: a small MovieNet-layout dataset of procedurally drawn movies with known scenes.

A movie is a sequence of scenes; a scene is a *setting* (a 960x540 canvas: a two-part gradient
background, a texture, and 4-9 shapes in a palette) and each of its shots is a different *framing* of
that setting (a crop between 35% and 90% of the canvas width, often centred on an object, with a small
camera move across the shot's 3 keyframes). What makes telling scenes apart non-trivial for an untrained
encoder, while a trained one learns it on CPU in minutes:

- all settings of a movie draw their hues around one movie hue, so neighbouring scenes share colours;
- framings of one setting show different parts of it (a close-up and a wide shot differ a lot);
- every shot gets its own lighting (brightness and colour gain, ``lighting_jitter``);
- three "actors" (figures in fixed colours) recur across all scenes of a movie, in about 40% of shots.

Everything is drawn from ``numpy.random.default_rng((seed, movie, stream))``: the same config writes
the same bytes, and the scene structure (``plan_movie``) can be recomputed without rendering.

Writes ``<out>/240P/<imdb>/shot_SSSS_img_J.jpg``, ``label318/<imdb>.txt`` (boundaries; about 1 in 10
written as -1, "uncertain", as in SceneSeg318), ``shot_movie318/<imdb>.txt``, ``meta/split318.json``,
``meta/<imdb>.json`` (fps, frames, size), ``meta/synth.json`` (each movie's scenes as shot ranges, and its fps)
and ``vseg_synth.yaml``.

``write_movie_video`` renders one movie (or its first scenes) as an H.264 video of every frame, with the same
settings and shots, to test scene detection on a video whose shot cuts and scene boundaries are known.
"""

from __future__ import annotations

import colorsys
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vseg import ui
from vseg.config import SynthConfig, config_to_yaml
from vseg.io import atomic
from vseg.io.movienet import MovieNetLayout, format_labels, format_shot_table, keyframe_name
from vseg.io.video import write_video
from vseg.parallel import default_workers, run_jobs

CANVAS = (960, 540)
CONFIG_NAME = "vseg_synth.yaml"
STRUCTURE, RENDER = 0, 1  # independent random streams per movie
UNCERTAIN_SHARE = 0.1


FIRST_ID = 9_000_000


def movie_id(index: int) -> str:
    """Synthetic movies get ids in the IMDb style MovieNet uses: ``tt9000000``, ``tt9000001``, ..."""
    return f"tt{FIRST_ID + index:07d}"


def movie_index(imdb: str) -> int:
    """The index of the synthetic movie ``imdb`` (the inverse of :func:`movie_id`)."""
    return int(imdb.removeprefix("tt")) - FIRST_ID


@dataclass(frozen=True)
class MoviePlan:
    """The structure of one synthetic movie: scene lengths, shot frame ranges and the label file."""

    imdb: str
    scene_lengths: tuple[int, ...]
    shot_frames: tuple[tuple[int, int], ...]
    labels: tuple[int, ...]  # as written: 0, 1 or -1 for every shot but the last

    @property
    def scenes(self) -> list[tuple[int, int]]:
        """(first shot, last shot) of each scene."""
        ends = np.cumsum(self.scene_lengths)
        return [(int(end - length), int(end - 1)) for end, length in zip(ends, self.scene_lengths, strict=True)]


def plan_movie(config: SynthConfig, index: int) -> MoviePlan:
    """Draw one movie's scene structure (cheap; no pixels)."""
    rng = np.random.default_rng((config.seed, index, STRUCTURE))
    low, high = config.scene_shots
    lengths: list[int] = []
    while sum(lengths) < config.shots_per_movie:
        lengths.append(int(rng.integers(low, high + 1)))
    lengths[-1] -= sum(lengths) - config.shots_per_movie
    if lengths[-1] < low and len(lengths) > 1:  # fold a too-short last scene into the previous one
        short = lengths.pop()
        lengths[-1] += short
    durations = rng.integers(config.shot_frames[0], config.shot_frames[1] + 1, size=config.shots_per_movie)
    starts = np.concatenate([[0], np.cumsum(durations)[:-1]])
    frames = tuple((int(s), int(s + d - 1)) for s, d in zip(starts, durations, strict=True))
    last_shots = set(np.cumsum(lengths) - 1)
    labels = tuple(
        (-1 if rng.random() < UNCERTAIN_SHARE else 1) if shot in last_shots else 0
        for shot in range(config.shots_per_movie - 1)
    )
    return MoviePlan(movie_id(index), tuple(lengths), frames, labels)


# ----------------------------------------------------------------------------------------- drawing


def _colour(hue: float, rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, rng.uniform(0.25, 0.9), rng.uniform(0.3, 0.95))
    return int(r * 255), int(g * 255), int(b * 255)


def _gradient(top: tuple[int, ...], bottom: tuple[int, ...], height: int, width: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    column = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    return np.broadcast_to(column, (height, width, 3))


def render_setting(rng: np.random.Generator, movie_hue: float) -> tuple[Image.Image, list[tuple[int, int]]]:
    """Draw one scene's setting; return it and the centres of its objects (targets of close-ups)."""
    width, height = CANVAS
    palette = [_colour(movie_hue + rng.normal(0, 0.12), rng) for _ in range(6)]
    horizon = int(height * rng.uniform(0.3, 0.7))
    pixels = np.concatenate(
        [
            _gradient(palette[0], palette[1], horizon, width),
            _gradient(palette[2], palette[3], height - horizon, width),
        ]
    )
    if rng.random() < 0.8:  # a texture: stripes at some angle and period, on the wall or on the floor
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        angle, period = rng.uniform(0, math.pi), rng.uniform(10, 60)
        wave = np.sin(2 * math.pi * (xs * math.cos(angle) + ys * math.sin(angle)) / period)
        if rng.random() < 0.4:  # a checker pattern instead of stripes
            wave = wave * np.sin(2 * math.pi * (-xs * math.sin(angle) + ys * math.cos(angle)) / period)
        region = (ys < horizon) if rng.random() < 0.5 else (ys >= horizon)
        alpha = (wave > 0) & region
        strength = rng.uniform(0.2, 0.5)
        pixels = np.where(alpha[..., None], (1 - strength) * pixels + strength * np.asarray(palette[4]), pixels)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    centres = []
    for _ in range(int(rng.integers(4, 10))):
        size = rng.uniform(0.06, 0.3) * width
        cx, cy = rng.uniform(0.05, 0.95) * width, rng.uniform(0.15, 0.95) * height
        box = (cx - size / 2, cy - size * rng.uniform(0.3, 0.6), cx + size / 2, cy + size * rng.uniform(0.3, 0.6))
        fill = palette[int(rng.integers(0, len(palette)))]
        outline = palette[int(rng.integers(0, len(palette)))]
        kind = rng.integers(0, 5)
        if kind == 0:
            draw.rectangle(box, fill=fill, outline=outline, width=4)
        elif kind == 1:
            draw.ellipse(box, fill=fill, outline=outline, width=4)
        elif kind == 2:
            draw.ellipse(box, outline=fill, width=int(size * 0.12) + 1)
        else:
            sides = 3 if kind == 3 else int(rng.integers(5, 8))
            draw.regular_polygon((cx, cy, size / 2), sides, rotation=float(rng.uniform(0, 360)), fill=fill)
        centres.append((int(cx), int(cy)))
    return image, centres


def _actors(rng: np.random.Generator) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """Three recurring figures of a movie: (head colour, body colour)."""
    return [(_colour(rng.random(), rng), _colour(rng.random(), rng)) for _ in range(3)]


def _draw_actor(image: Image.Image, colours, x: float, scale: float) -> None:
    width, height = image.size
    draw = ImageDraw.Draw(image)
    body_h = scale * height
    head = body_h * 0.28
    top = height - body_h
    draw.ellipse((x - head / 2, top, x + head / 2, top + head), fill=colours[0])
    draw.rounded_rectangle(
        (x - head * 0.7, top + head * 1.05, x + head * 0.7, height), radius=head / 3, fill=colours[1]
    )


KEYFRAME_TIMES = (0.0, 0.5, 1.0)  # camera times of a shot's 3 keyframes: its first, middle and last frame


@dataclass(frozen=True)
class _Shot:
    """One shot's random draws: a framing of a setting, its camera move, its cast and its lighting."""

    setting: Image.Image
    size: tuple[int, int]
    crop: tuple[float, float]
    centre: tuple[float, float]
    move: np.ndarray
    zoom: float
    cast: list
    gain: np.ndarray

    def pixels(self, t: float) -> np.ndarray:
        """The shot's frame at camera time ``t`` in [0, 1] (0: first frame, 1: last), HxWx3 uint8 RGB."""
        width, height = CANVAS
        scale = 1 + (self.zoom - 1) * t
        w, h = self.crop[0] * scale, self.crop[1] * scale
        fit = min(1.0, width / w, height / h)  # frames narrower than the canvas: the widest framings would overflow
        w, h = w * fit, h * fit
        x = min(max(self.centre[0] + self.move[0] * t - w / 2, 0), width - w)
        y = min(max(self.centre[1] + self.move[1] * t - h / 2, 0), height - h)
        frame = self.setting.resize(self.size, Image.Resampling.BILINEAR, box=(x, y, x + w, y + h))
        for colours, position, stature in self.cast:
            _draw_actor(frame, colours, (position + 0.05 * t) * self.size[0], stature)
        lit = np.asarray(frame, np.float32) * self.gain
        return np.clip(lit, 0, 255).astype(np.uint8)


def _draw_shot(
    rng: np.random.Generator,
    setting: Image.Image,
    centres: list[tuple[int, int]],
    actors: list,
    size: tuple[int, int],
    lighting_jitter: float,
) -> _Shot:
    """Draw one shot of a setting (all of its randomness, whatever frames are rendered of it later)."""
    width, height = CANVAS
    crop_w = rng.uniform(0.35, 0.9) * width
    crop_h = crop_w * size[1] / size[0]
    if centres and rng.random() < 0.5:  # a close-up of an object
        cx, cy = centres[int(rng.integers(0, len(centres)))]
    else:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    move = rng.uniform(-0.15, 0.15, size=2) * crop_w
    zoom = rng.uniform(0.9, 1.1)
    cast = [(colours, rng.uniform(0.1, 0.9), rng.uniform(0.45, 0.8)) for colours in actors if rng.random() < 0.4]
    gain = rng.uniform(1 - lighting_jitter, 1 + lighting_jitter) * rng.uniform(
        1 - lighting_jitter / 2, 1 + lighting_jitter / 2, size=3
    )
    return _Shot(setting, size, (crop_w, crop_h), (cx, cy), move, zoom, cast, gain)


def render_shot(
    rng: np.random.Generator,
    setting: Image.Image,
    centres: list[tuple[int, int]],
    actors: list,
    size: tuple[int, int],
    lighting_jitter: float,
    times: Sequence[float] = KEYFRAME_TIMES,
) -> list[Image.Image]:
    """Frames of one shot of a setting at camera ``times`` in [0, 1]; by default its 3 keyframes (first, middle
    and last frame). Draws the same random numbers whatever ``times`` are."""
    shot = _draw_shot(rng, setting, centres, actors, size, lighting_jitter)
    return [Image.fromarray(shot.pixels(t)) for t in times]


def _replay_shots(
    config: SynthConfig, index: int, scene_lengths: Sequence[int], size: tuple[int, int]
) -> Iterator[_Shot]:
    """Replay movie ``index``'s render stream: every shot of the scenes with ``scene_lengths`` (the plan's, or its
    first ones), in order, framed for frames of ``size``. Lazy: a scene's setting is drawn when its first shot is
    reached."""
    rng = np.random.default_rng((config.seed, index, RENDER))
    movie_hue = rng.random()
    actors = _actors(rng)
    for length in scene_lengths:
        setting, centres = render_setting(rng, movie_hue)
        for _ in range(length):
            yield _draw_shot(rng, setting, centres, actors, size, config.lighting_jitter)


@dataclass(frozen=True)
class RenderJob:
    index: int
    plan: MoviePlan
    directory: str
    config: SynthConfig


def render_movie(job: RenderJob) -> int:
    """Render and write every keyframe of one movie into ``job.directory``; return the shot count."""
    config = job.config
    directory = Path(job.directory)
    shots = _replay_shots(config, job.index, job.plan.scene_lengths, (config.width, config.height))
    for number, shot in enumerate(shots):
        for j, t in enumerate(KEYFRAME_TIMES):
            with atomic.atomic_path(directory / keyframe_name(number, j)) as tmp:
                Image.fromarray(shot.pixels(t)).save(tmp, format="JPEG", quality=config.jpeg_quality)
    return sum(job.plan.scene_lengths)


# ------------------------------------------------------------------------------------------- video


@dataclass(frozen=True)
class MovieVideo:
    """A synthetic movie written as a video, with its true structure in frame numbers of the video."""

    path: Path
    fps: float
    frames: int
    size: tuple[int, int]  # (width, height)
    shot_starts: tuple[int, ...]  # first frame of every shot (0 first)
    scene_starts: tuple[int, ...]  # first frame of every scene (0 first)
    scenes: tuple[tuple[int, int], ...]  # (first shot, last shot) of each scene, shot indices as in the plan


def _frame_times(frames: int) -> list[float]:
    """Camera times of every frame of a shot of ``frames`` frames: evenly from 0 (first) to 1 (last)."""
    return [j / (frames - 1) for j in range(frames)] if frames > 1 else [0.0]


def _video_frames(
    config: SynthConfig, index: int, plan: MoviePlan, scenes: int, size: tuple[int, int]
) -> Iterator[np.ndarray]:
    """Every frame of the first ``scenes`` scenes of a movie, one at a time."""
    lengths = plan.scene_lengths[:scenes]
    shots = _replay_shots(config, index, lengths, size)
    for shot, (start, end) in zip(shots, plan.shot_frames[: sum(lengths)], strict=True):
        for t in _frame_times(end - start + 1):
            yield shot.pixels(t)


def write_movie_video(
    config: SynthConfig, index: int, path: Path, scenes: int | None = None, size: tuple[int, int] | None = None
) -> MovieVideo:
    """Write movie ``index`` of ``config`` (its first ``scenes`` scenes; all when None) as an H.264 video of every
    frame, at ``config.fps``, and return where its true shot cuts and scene boundaries are.

    The settings and shots are those of the keyframe dataset (the same random replay as ``render_movie``): shot
    k has the frames of ``plan_movie(config, index).shot_frames[k]``, its frame j of n at camera time
    j / (n - 1), so its first, middle (for odd n) and last frames are keyframes 0, 1 and 2 of shot k, rendered at
    ``size`` (width, height; both even; default: the keyframe size rounded down to even numbers). Frames are
    rendered one at a time while ffmpeg encodes them.
    """
    if scenes is not None and scenes < 1:
        raise ValueError(f"scenes must be at least 1, got {scenes}")
    plan = plan_movie(config, index)
    scene_ranges = tuple(plan.scenes[:scenes])
    size = size or (config.width // 2 * 2, config.height // 2 * 2)
    shot_starts = tuple(start for start, _ in plan.shot_frames[: scene_ranges[-1][1] + 1])
    frames = write_video(path, _video_frames(config, index, plan, len(scene_ranges), size), config.fps)
    return MovieVideo(
        path=Path(path),
        fps=config.fps,
        frames=frames,
        size=size,
        shot_starts=shot_starts,
        scene_starts=tuple(shot_starts[first] for first, _ in scene_ranges),
        scenes=scene_ranges,
    )


# --------------------------------------------------------------------------------------- the stage


def split_ids(ids: list[str], config: SynthConfig) -> dict[str, list[str]]:
    """Train, val and test movies in order; each split gets at least one movie when there are three."""
    n = len(ids)
    n_val, n_test = round(n * config.val_fraction), round(n * config.test_fraction)
    if n >= 3:
        n_val, n_test = max(n_val, 1 if config.val_fraction else 0), max(n_test, 1 if config.test_fraction else 0)
    n_train = max(n - n_val - n_test, 1)
    n_val = min(n_val, n - n_train)
    return {"train": ids[:n_train], "val": ids[n_train : n_train + n_val], "test": ids[n_train + n_val :]}


@dataclass
class SynthReport:
    out: Path
    movies: int
    shots: int
    scenes: int
    rendered: int
    skipped: int
    seconds: float


def make_synth(out: Path, config: SynthConfig) -> SynthReport:
    """Write the synthetic dataset under ``out`` (see the module docstring). Resumes: finished movies stay."""
    started = time.perf_counter()
    layout = MovieNetLayout(Path(out))
    atomic.write_text(layout.root / CONFIG_NAME, config_to_yaml(config, "prep synth"))
    plans = [plan_movie(config, i) for i in range(config.movies)]
    jobs = []
    for index, plan in enumerate(plans):
        final = layout.keyframes / plan.imdb
        if not final.is_dir():
            staging = atomic.staging_dir(final)  # made by the first keyframe written into it
            atomic.clean_staging(staging)
            jobs.append(RenderJob(index, plan, str(staging), config))
    workers = min(config.workers or default_workers(), max(len(jobs), 1))
    with (
        ui.progress("synth", total=len(jobs) * config.shots_per_movie, unit="shots") as advance,
        closing(run_jobs(render_movie, jobs, workers)) as results,
    ):
        for job, shots, error in results:
            if error is not None:
                raise error
            final = layout.keyframes / job.plan.imdb
            atomic.commit_dir(atomic.staging_dir(final), final)
            advance(shots)
    for plan in plans:
        atomic.write_text(layout.label_file(plan.imdb), format_labels(plan.labels))
        atomic.write_text(layout.shot_table_file(plan.imdb), format_shot_table(plan.shot_frames))
        meta = {"fps": config.fps, "frames": int(plan.shot_frames[-1][1]) + 1, "width": config.width}
        atomic.write_text(layout.meta_file(plan.imdb), json.dumps({**meta, "height": config.height}) + "\n")
    ids = [plan.imdb for plan in plans]
    atomic.write_text(layout.split_file, json.dumps(split_ids(ids, config), indent=1) + "\n")
    truth = {plan.imdb: {"fps": config.fps, "scenes": plan.scenes} for plan in plans}
    atomic.write_text(layout.root / "meta" / "synth.json", json.dumps({"movies": truth}) + "\n")
    return SynthReport(
        out=layout.root,
        movies=len(plans),
        shots=len(plans) * config.shots_per_movie,
        scenes=sum(len(plan.scene_lengths) for plan in plans),
        rendered=len(jobs),
        skipped=len(plans) - len(jobs),
        seconds=time.perf_counter() - started,
    )
