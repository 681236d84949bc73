"""``vseg scenes``: a raw video to its scenes, in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from vseg import ui
from vseg.cli.options import App, build_config, config_file_option, config_option, set_option
from vseg.config import ScenesConfig

app = App()


@app.command("scenes")
def scenes(
    video: Path = typer.Argument(..., help="A video file (anything ffmpeg reads: mp4, mkv, mov, avi, webm, ...)."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output folder: scenes.json/.csv/.otio/.edl/.xml, chapters.vtt/.ffmetadata/.txt, report.html, "
        "timeline.png, shots/.",
        show_default="<video name>-scenes in the current folder",
    ),
    encoder: Path | None = typer.Option(
        None,
        "--encoder",
        help="Shot encoder checkpoint (vseg pretrain scrl, the SCRL release, or a bare encoder state dict).",
        show_default="none: colour-histogram features",
    ),
    segmenter: Path | None = typer.Option(
        None,
        "--segmenter",
        help="Boundary model (model.pth of vseg segment, or a SceneSeg BiLSTM checkpoint), trained on features "
        "from the same --encoder.",
        show_default="none: the training-free --method",
    ),
    method: str | None = config_option(ScenesConfig, "method", "--method"),
    scenes_count: int | None = config_option(ScenesConfig, "osg.scenes", "--scenes", min=1),
    detector: str | None = config_option(ScenesConfig, "shots.detector", "--detector"),
    threshold: float | None = config_option(ScenesConfig, "threshold", "--threshold", min=0.0, max=1.0),
    window: int | None = config_option(ScenesConfig, "scorer.window", "--window", min=1),
    min_scene_shots: int | None = config_option(ScenesConfig, "min_scene_shots", "--min-scene-shots", min=1),
    split: bool | None = config_option(ScenesConfig, "split", "--split/--no-split"),
    embed_chapters: bool | None = config_option(ScenesConfig, "embed_chapters", "--embed-chapters/--no-embed-chapters"),
    image_size: int | None = config_option(ScenesConfig, "embed.image_size", "--image-size"),
    device: str | None = config_option(ScenesConfig, "embed.device", "--device"),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("scorer.offset=2 or --set shots.threshold=30"),
) -> None:
    """Find the scenes of a video: shots, keyframes, features, boundary scores, then scene lists, timelines for
    editors (OTIO, CMX 3600 EDL, FCP XML), chapters, an HTML report with a player and a timeline picture."""
    from vseg.scenes import run_scenes

    cfg = build_config(
        ScenesConfig,
        config,
        overrides,
        {"shots.detector": detector, "method": method, "osg.scenes": scenes_count, "threshold": threshold,
         "scorer.window": window, "min_scene_shots": min_scene_shots, "split": split,
         "embed_chapters": embed_chapters, "embed.image_size": image_size, "embed.device": device},
    )  # fmt: skip
    report = run_scenes(video, out or Path(f"{video.stem}-scenes"), cfg, encoder, segmenter)
    shown = report.scenes[:30]
    ui.table(
        f"vseg scenes {video.name}: {len(report.scenes)} scenes",
        ("scene", "start", "end", "frames", "shots"),
        [
            (row["scene"] + 1, row["start_timecode"], row["end_timecode"], f"{row['start_frame']}-{row['end_frame']}",
             f"{row['first_shot']}-{row['last_shot']}")
            for row in (scene.as_row() for scene in shown)
        ],
    )  # fmt: skip
    if len(report.scenes) > len(shown):
        ui.info(f"... and {len(report.scenes) - len(shown)} more scenes: see {report.out / 'scenes.csv'}")
    for warning in report.warnings:
        ui.warn(warning)
    if encoder is None:
        ui.warn("no --encoder given: scenes were found from colour histograms of the keyframes")
    ui.summary(
        f"vseg scenes -> {report.out}",
        [
            ("video", f"{report.frames:,} frames at {report.fps:g} fps, {report.shots:,} shots"),
            ("scenes", len(report.scenes)),
            ("features", report.features),
            ("boundaries", f"{report.scoring}, threshold {report.threshold:g}"),
            *((f"time: {stage}", f"{seconds:.1f} s") for stage, seconds in report.stage_seconds.items()),
            ("report", report.out / "report.html"),
        ],
    )
