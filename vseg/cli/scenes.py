"""``vseg scenes``: raw videos to their scenes, one video or a whole collection."""

from __future__ import annotations

from pathlib import Path

import typer

from vseg import ui
from vseg.cli.options import App, build_config, config_file_option, config_option, set_option
from vseg.config import ScenesConfig
from vseg.errors import ConfigError

app = App()

OUT_HELP = (
    "Output folder. One video: scenes.json/.csv/.otio/.edl/.xml, chapters.vtt/.ffmetadata/.txt, report.html, "
    "timeline.png, shots/. Several: a folder of those per video, and index.json/.csv/.html."
)


@app.command("scenes")
def scenes(
    inputs: list[str] = typer.Argument(
        ...,
        help="Video files (anything ffmpeg reads: mp4, mkv, mov, avi, webm, ...), folders (searched recursively) "
        "or @LIST (a text file with a path per line).",
        metavar="INPUT",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help=OUT_HELP, show_default="<video name>-scenes for one video; needed for several"
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
    jobs: int | None = config_option(ScenesConfig, "jobs", "--jobs", "-j", min=1),
    shard: str | None = config_option(ScenesConfig, "shard", "--shard"),
    engine: str | None = config_option(ScenesConfig, "engine", "--engine"),
    ray_address: str | None = config_option(ScenesConfig, "ray_address", "--ray-address"),
    force: bool = typer.Option(False, "--force", help="Redo the videos an earlier run into --out finished."),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("scorer.offset=2 or --set shots.threshold=30"),
) -> None:
    """Find the scenes of videos: shots, keyframes, features, boundary scores, then scene lists, timelines for editors
    (OTIO, CMX 3600 EDL, FCP XML), chapters, an HTML report with a player and a timeline picture. Several videos (or a
    folder) run in parallel, each into its own folder under --out, with an index; a second run skips the finished
    ones."""
    cfg = build_config(
        ScenesConfig,
        config,
        overrides,
        {"shots.detector": detector, "method": method, "osg.scenes": scenes_count, "threshold": threshold,
         "scorer.window": window, "min_scene_shots": min_scene_shots, "split": split,
         "embed_chapters": embed_chapters, "embed.image_size": image_size, "embed.device": device, "jobs": jobs,
         "shard": shard, "engine": engine, "ray_address": ray_address},
    )  # fmt: skip
    single = len(inputs) == 1 and not inputs[0].startswith("@") and not Path(inputs[0]).is_dir()
    if single:
        _one_video(Path(inputs[0]), out or Path(f"{Path(inputs[0]).stem}-scenes"), cfg, encoder, segmenter)
    else:
        if out is None:
            raise ConfigError("--out is needed for several videos or a folder: the folder to write their scenes into")
        _collection(inputs, out, cfg, encoder, segmenter, force)


def _one_video(video: Path, out: Path, cfg: ScenesConfig, encoder: Path | None, segmenter: Path | None) -> None:
    from vseg.scenes import run_scenes

    with ui.stage_progress({"shots": "frames", "features": "shots", "split": "scenes"}) as progress:
        report = run_scenes(video, out, cfg, encoder, segmenter, progress=progress)
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
        ui.info(f"... and {len(report.scenes) - len(shown)} more scenes: see {out / 'scenes.csv'}")
    for warning in report.warnings:
        ui.warn(warning)
    if encoder is None:
        ui.warn("no --encoder given: scenes were found from colour histograms of the keyframes")
    ui.summary(
        f"vseg scenes -> {out}",
        [
            ("video", f"{report.frames:,} frames at {report.fps:g} fps, {report.shots:,} shots"),
            ("scenes", len(report.scenes)),
            ("features", report.features_name),
            ("boundaries", f"{report.scoring}, threshold {report.threshold:g}"),
            *((f"time: {stage}", f"{seconds:.1f} s") for stage, seconds in report.seconds.items()),
            ("report", out / "report.html"),
        ],
    )


def _collection(
    inputs: list[str], out: Path, cfg: ScenesConfig, encoder: Path | None, segmenter: Path | None, force: bool
) -> None:
    from vseg.io.scene_index import DONE, FAILED, SKIPPED
    from vseg.scenes import run_collection

    with ui.progress("videos", total=0, unit="videos") as advance:

        def on_row(row, total: int) -> None:
            advance(1, status=f"{row.status}: {Path(row.path).name}", total=total)

        report = run_collection(inputs, out, cfg, encoder, segmenter, force, on_row)
    frames = sum(row.frames or 0 for row in report.rows if row.status == DONE)
    ui.summary(
        f"vseg scenes -> {out}",
        [
            ("videos", f"{len(report.rows)}: {report.count(DONE)} done, {report.count(SKIPPED)} skipped, "
                       f"{report.count(FAILED)} failed"),
            ("scenes", sum(row.scenes or 0 for row in report.rows)),
            ("decoded", f"{frames:,} frames, {frames / report.seconds:,.0f} frames/s" if report.seconds else "-"),
            ("time", f"{report.seconds:.1f} s"),
            ("index", out / report.files[0].name if report.files else "-"),
        ],
    )  # fmt: skip
    for row in report.failed:
        ui.error(row.reason, label="failed")
    if report.failed:
        ui.error(f"{len(report.failed)} of {len(report.rows)} videos failed (their rows in the index say why)")
        raise typer.Exit(1)
