"""The "adapted" features of the scene-methods table: `vseg adapt` on a `vseg demo` run's train movies, rendered as
videos, then its encoder's embeddings of every split of the run's keyframes.

1. The run's train movies (its ``movienet/meta/split318.json``) are rendered as H.264 videos
   (``vseg.prep.synth.write_movie_video``, the keyframes' 426x240 at 24 fps) under ``DIR/adapt/videos/``; the val
   and test movies are never shown to adaptation.
2. ``vseg adapt`` (``--config``, default ``adapt/cpu``) on those videos: shots, puzzles and SCRL from scratch, into
   ``DIR/adapt/run/``.
3. ``vseg embed`` of the run's keyframes (train, val, test) with the adapted encoder, at the demo's embedding size,
   into ``DIR/embeddings/adapted/``, where ``benchmarks/scene_methods.py DIR --train`` finds them.

    python benchmarks/adapt_features.py DIR [--config adapt/cpu] [--set KEY=VALUE ...]

Every step resumes: a second run skips the videos, shots, puzzles and epochs already done.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vseg.adapt import AdaptConfig, run_adapt
from vseg.config import load_config
from vseg.demo import stage_configs
from vseg.eval.embed import run_embed
from vseg.io.movienet import MovieNetLayout, read_split
from vseg.prep.synth import movie_index, write_movie_video
from vseg.presets import preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a vseg demo output folder")
    parser.add_argument("--config", default="adapt/cpu", help="the adapt preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="adapt config KEY=VALUE")
    args = parser.parse_args()
    configs = stage_configs()
    layout = MovieNetLayout(args.run / "movienet")
    videos = args.run / "adapt" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for movie in read_split(layout.split_file)["train"]:
        if not (videos / f"{movie}.mp4").is_file():
            write_movie_video(configs["synth"], movie_index(movie), videos / f"{movie}.mp4")
    print(f"render: {time.perf_counter() - started:.0f} s")
    config = load_config(AdaptConfig, preset(args.config), args.overrides)
    started = time.perf_counter()
    report = run_adapt([videos], args.run / "adapt" / "run", config)
    print(f"adapt: {report.videos} videos, {report.shots} shots, {report.clips} clips, {report.epochs} epochs, "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    embedded = run_embed(report.checkpoint, layout.root, args.run / "embeddings" / "adapted", configs["embed"])
    print(f"embed: {embedded.seconds:.0f} s into {args.run / 'embeddings' / 'adapted'}")


if __name__ == "__main__":
    main()
