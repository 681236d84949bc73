"""Which shot detector should `vseg scenes` use? Each detector of `vseg prep shots` on rendered videos whose true shot
cuts and scenes are known, scored by its shots and by the scenes `vseg scenes` then finds.

Videos (rendered here, nothing downloaded):
- the first ``--scenes`` scenes of the demo's synthetic val and test movies (``vseg.prep.synth.write_movie_video``,
  426x240 at 24 fps), except the demo's own video (the first test movie), which is scored on its own line;
- one video of moving patterns (``vseg.prep.synth_video.write_untrimmed_video``: stripes and rings that drift
  0.25-0.5 rad per frame, the fast motion a detector must not cut), its segment starts the true cuts.

Per detector and video: shot cuts found within 2 frames of a true one (recall, precision), and the scene cuts of
`vseg scenes` (colour histograms, optimal sequential grouping, the scenes preset but for the detector) within 3 s
(``vseg.eval.metrics.cut_recall_precision``).

    python benchmarks/shot_detectors.py [--scenes 16] [--movies 7] [--detectors content adaptive] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np

from vseg import ui
from vseg.config import ScenesConfig, load_config
from vseg.demo import VIDEO_SCENES, stage_configs
from vseg.eval.metrics import cut_recall_precision
from vseg.io.movienet import read_shot_table
from vseg.prep.synth import movie_id, movie_index, split_ids, write_movie_video
from vseg.prep.synth_video import write_untrimmed_video
from vseg.presets import preset
from vseg.scenes import run_scenes

SHOT_TOLERANCE = 2  # frames
SCENE_TOLERANCE = 3.0  # seconds


def shot_scores(true_cuts: np.ndarray, found_cuts: np.ndarray) -> tuple[float, float]:
    """Recall and precision of shot cuts (first frames of shots after the first) within SHOT_TOLERANCE frames."""
    return cut_recall_precision(true_cuts.astype(float), found_cuts.astype(float), SHOT_TOLERANCE)


def score(video: Path, fps: float, shot_starts, scene_starts, detector: str, out: Path) -> dict:
    """Run ``vseg scenes`` with ``detector`` on ``video``; its shot and scene scores."""
    config = load_config(ScenesConfig, preset("scenes/default"), [f"shots.detector={detector}"])
    found = run_scenes(video, out, config)
    table = read_shot_table(next((out / "shots" / "shot_txt").iterdir()))
    shot_recall, shot_precision = shot_scores(np.asarray(shot_starts[1:]), np.asarray([row[0] for row in table[1:]]))
    row = {"shots": len(table), "true_shots": len(shot_starts), "shot_recall": shot_recall,
           "shot_precision": shot_precision}  # fmt: skip
    if scene_starts is not None:
        cuts = np.asarray([scene.start_time for scene in found.scenes[1:]])
        recall, precision = cut_recall_precision(np.asarray(scene_starts[1:]) / fps, cuts, SCENE_TOLERANCE)
        row.update(scenes=len(found.scenes), true_scenes=len(scene_starts), recall=recall, precision=precision)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=16, help="scenes rendered of each movie")
    parser.add_argument("--movies", type=int, default=7, help="val and test movies rendered (the demo's excluded)")
    parser.add_argument("--detectors", nargs="+", default=["content", "adaptive"])
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.platform()}")
    ui.settings.quiet = True
    work = Path(tempfile.mkdtemp(prefix="vseg-bench-shot-detectors-"))
    synth = stage_configs()["synth"]
    splits = split_ids([movie_id(i) for i in range(synth.movies)], synth)
    demo_movie, *others = splits["test"]
    videos = [(f"{demo_movie} (the demo's video)", demo_movie, VIDEO_SCENES)]
    videos += [(movie, movie, args.scenes) for movie in (others + splits["val"])[: args.movies]]
    rows: dict[str, dict[str, dict]] = {}
    for name, movie, scenes in videos:
        video = write_movie_video(synth, movie_index(movie), work / f"{movie}_{scenes}.mp4", scenes=scenes)
        for detector in args.detectors:
            out = work / "out" / f"{movie}_{scenes}_{detector}"
            rows.setdefault(name, {})[detector] = score(
                video.path, video.fps, video.shot_starts, video.scene_starts, detector, out
            )
            print(name, detector, rows[name][detector], flush=True)
    fps = 10.0
    segments = write_untrimmed_video(work / "motion.mp4", seconds=120, fps=fps, size=(426, 240), seed=0)
    for detector in args.detectors:
        starts = [segment.start for segment in segments]
        rows.setdefault("moving patterns", {})[detector] = score(
            work / "motion.mp4", fps, starts, None, detector, work / "out" / f"motion_{detector}"
        )
        print("moving patterns", detector, rows["moving patterns"][detector], flush=True)
    for detector in args.detectors:
        held_out = [rows[name][detector] for name, movie, _ in videos if movie != demo_movie]
        mean = {key: float(np.mean([row[key] for row in held_out])) for key in held_out[0]}
        print(f"mean of {len(held_out)} held-out movies, {detector}: "
              + ", ".join(f"{key} {value:.3f}" for key, value in mean.items()))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
