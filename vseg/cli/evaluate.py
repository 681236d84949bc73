"""Evaluation commands: ``vseg embed`` (frozen encoders to embeddings), ``vseg probe`` (clip classifiers) and
``vseg segment`` (the BiLSTM scene-boundary model: train, eval, predict; and ``vseg segment bassl``, BaSSL's
fine-tuning protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vseg import ui
from vseg.cli.options import App, build_config, config_file_option, config_option, set_option
from vseg.config import (
    BasslSegmentConfig,
    EmbedConfig,
    ProbeConfig,
    SegmentConfig,
    SegmentEvalConfig,
    SegmentPredictConfig,
)
from vseg.errors import VsegError

app = App()
segment_app = App(
    no_args_is_help=False,
    help="Train and evaluate the BiLSTM scene-boundary model on shot embeddings; vseg segment bassl: BaSSL's protocol.",
)


@app.command("embed")
def embed(
    checkpoint: Path = typer.Argument(
        ...,
        help="Encoder checkpoint: a vseg run's, the SCRL release's (state_dict, module.encoder_q.*), a bare "
        "encoder state dict, or a BaSSL one (a vseg bassl run's or a released Lightning .ckpt: BaSSL's features).",
    ),
    data: Path | None = typer.Option(
        None, "--data", "-d", help="MovieNet-layout root (240P/, label318/, meta/split318.json) or a keyframe folder."
    ),
    clips: Path | None = typer.Option(
        None,
        "--clips",
        help="Instead of --data: a video list ('relative/path [label]' lines, the UCF101/HMDB51 format) for a clip "
        "encoder (a HiCo checkpoint); writes OUT/<list name>.npz, one row per video.",
    ),
    video_root: Path | None = typer.Option(
        None,
        "--video-root",
        help="With --clips: the folder the listed paths are relative to.",
        show_default="the list's folder",
    ),
    views: int | None = config_option(EmbedConfig, "clips.views", "--views", min=1),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: <split>.npz and, for labelled sets, <split>.pkl."
    ),
    split: str | None = config_option(EmbedConfig, "split", "--split"),
    split_file: Path | None = config_option(EmbedConfig, "split_file", "--split-file"),
    image_size: int | None = config_option(EmbedConfig, "image_size", "--image-size"),
    batch_size: int | None = config_option(EmbedConfig, "batch_size", "--batch-size", "-b"),
    workers: int | None = config_option(EmbedConfig, "workers", "--workers", "-j"),
    device: str | None = config_option(EmbedConfig, "device", "--device"),
    bf16: bool | None = config_option(EmbedConfig, "bf16", "--bf16/--no-bf16"),
    pipeline: str | None = config_option(EmbedConfig, "pipeline", "--pipeline"),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("batch_size=128"),
) -> None:
    """Turn every shot into an embedding with a frozen encoder (SCRL's preprocessing; .npz and the SCRL pickle),
    or with --clips every video of a list with a HiCo clip encoder (10 views x 1 centre crop).

    Resumable: finished movies (or chunks of videos) are cached under OUT/.partial until the run completes.
    """
    from vseg.eval.embed import run_embed

    if (data is None) == (clips is None):
        raise VsegError("vseg embed needs one of --data ROOT (shots) or --clips LIST (videos); see vseg embed --help")
    cfg = build_config(
        EmbedConfig,
        config,
        overrides,
        {"clips.views": views, "split": split, "split_file": split_file, "image_size": image_size,
         "batch_size": batch_size, "workers": workers, "device": device, "bf16": bf16, "pipeline": pipeline},
    )  # fmt: skip
    if clips is not None:
        _embed_clips(checkpoint, clips, video_root, out, cfg)
        return
    report = run_embed(checkpoint, data, out, cfg)
    loaded = report.checkpoint
    ui.table(
        f"vseg embed -> {report.out}",
        ("set", "movies", "shots", "labels", "files"),
        [
            (s.name, s.movies, f"{s.shots:,}", "yes" if s.labelled else "no", ", ".join(f.name for f in s.files))
            for s in report.splits
        ],
    )
    ui.summary(
        "embedding",
        [
            ("checkpoint", f"{checkpoint} ({loaded.layout}, {loaded.arch}, {3 * loaded.keyframes_per_shot} channels)"),
            ("image size", f"{report.image_size} px"),
            ("device", report.device),
            ("throughput", f"{report.shots_per_second:,.1f} shots/s"),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


def _embed_clips(checkpoint: Path, listing: Path, video_root: Path | None, out: Path, cfg: EmbedConfig) -> None:
    from vseg.eval.clip_embed import run_clip_embed

    report = run_clip_embed(checkpoint, listing, video_root, out, cfg)
    ui.summary(
        f"vseg embed --clips -> {report.file}",
        [
            (
                "checkpoint",
                f"{checkpoint} ({report.checkpoint.layout}, S3D-{'G' if report.checkpoint.gating else ' (no gating)'})",
            ),
            (
                "videos",
                f"{report.videos:,} ({report.resumed:,} from the cache)" if report.resumed else f"{report.videos:,}",
            ),
            ("labels", "yes" if report.labelled else "no"),
            ("views per video", f"{cfg.clips.views} x {cfg.clips.frames} frames at {report.image_size} px"),
            ("device", report.device),
            ("throughput", f"{report.videos_per_second:,.2f} videos/s"),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


@app.command("probe")
def probe(
    train: Path = typer.Option(..., "--train", help="Labelled clip embeddings to fit on (vseg embed --clips)."),
    test: Path = typer.Option(..., "--test", help="Labelled clip embeddings to score."),
    k: int | None = config_option(ProbeConfig, "k", "--k"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the results to this JSON file."),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("linear_c=0.1"),
) -> None:
    """Top-1 of a k-NN and a linear classifier on frozen, labelled clip embeddings (e.g. UCF101 split 1)."""
    from vseg.eval.clip_probe import run_probe

    cfg = build_config(ProbeConfig, config, overrides, {"k": k})
    report = run_probe(train, test, cfg, out)
    ui.summary(
        f"vseg probe {test.name} (fit on {train.name})",
        [
            (f"k-NN top-1 (k={report.k})", f"{100 * report.knn_top1:.2f}"),
            ("nearest-neighbour top-1", f"{100 * report.nn_top1:.2f}"),
            ("linear top-1", f"{100 * report.linear_top1:.2f}"),
            ("majority class", f"{100 * report.chance:.2f}"),
            ("videos (train / test)", f"{report.train_videos:,} / {report.test_videos:,}"),
            ("classes", report.classes),
        ],
    )


SPLIT_FILE_HELP = "Embeddings of the {} split: a vseg .npz or an SCRL .pkl (told apart by content)."


@segment_app.callback(invoke_without_command=True)
def segment(
    ctx: typer.Context,
    train: Path | None = typer.Option(None, "--train", help=SPLIT_FILE_HELP.format("training") + " Required."),
    val: Path | None = typer.Option(
        None,
        "--val",
        help=SPLIT_FILE_HELP.format("validation") + " Selects the model.",
        show_default="the last epoch",
    ),
    test: Path | None = typer.Option(None, "--test", help=SPLIT_FILE_HELP.format("test") + " Scored at the selection."),
    seq_len: int | None = config_option(SegmentConfig, "data.seq_len", "--seq-len"),
    epochs: int | None = config_option(SegmentConfig, "train.epochs", "--epochs", min=1),
    shot_tables: Path | None = config_option(SegmentConfig, "data.shot_tables", "--shot-tables"),
    device: str | None = config_option(SegmentConfig, "train.device", "--device"),
    out: Path = typer.Option(
        Path("runs/segment"), "--out", "-o", help="Run folder: metrics.json, predictions.json, model.pth."
    ),
    resume: str | None = typer.Option(
        None, "--resume", help="'auto': continue from OUT/checkpoints/last.pth.", show_default="start fresh"
    ),
    config: Path | None = config_file_option(" The paper's protocol: segment/scrl (the defaults)."),
    overrides: list[str] | None = set_option("optim.lr=0.05"),
) -> None:
    """Train and test the BiLSTM scene-boundary model on shot embeddings: AP, F1, mIoU, Recall@3s.

    SCRL's protocol: windows of --seq-len shots, scene shuffle, CE weights [1, 4], SGD 0.1 for 200 epochs; the model
    with the best val F1 (from epoch 100) is tested. Subcommands: eval (re-score saved probabilities), predict.
    """
    if ctx.invoked_subcommand is not None:
        return
    from vseg.eval.segment import run_segment

    if train is None:
        raise VsegError("vseg segment needs --train EMBEDDINGS (and usually --val and --test); see vseg segment --help")
    cfg = build_config(
        SegmentConfig,
        config,
        overrides,
        {"data.seq_len": seq_len, "train.epochs": epochs, "data.shot_tables": shot_tables, "train.device": device},
    )
    report = run_segment(train, val, test, out, cfg, resume)
    _metrics_table(f"vseg segment -> {report.out}", report.test or report.val, "test" if report.test else "val")
    ui.summary(
        "training",
        [
            ("epochs", f"{report.start_epoch} -> {report.epochs}" if report.start_epoch else report.epochs),
            ("selected epoch", report.best_epoch if report.val else f"{report.best_epoch} (no --val: last)"),
            ("val F1 (per movie) at selection", f"{report.val.f1_movie:.4f}" if report.val else "-"),
            ("windows per epoch", report.windows_per_epoch),
            ("seconds per epoch", f"{report.epoch_seconds:.2f}"),
            ("time", f"{report.seconds:.1f} s"),
        ],
    )


METRIC_ROWS = (
    ("AP, per movie (SCRL)", "ap_movie"),
    ("AP, pooled (LGSS, BaSSL)", "ap_pooled"),
    ("mAP, LGSS (per-movie AP rounded)", "map_lgss"),
    ("F1, per movie (SCRL)", "f1_movie"),
    ("F1, pooled", "f1_pooled"),
    ("precision / recall, per movie", ("precision_movie", "recall_movie")),
    ("precision / recall, pooled", ("precision_pooled", "recall_pooled")),
    ("Recall (LGSS)", "recall_exact"),
    ("Recall@3s at 24 fps (LGSS, BaSSL)", "recall_at_3s"),
    ("Recall@3s at each movie's fps", "recall_at_3s_true_fps"),
    ("mIoU (LGSS)", "miou"),
    ("accuracy", "accuracy"),
)


def _metrics_table(title: str, metrics: Any, split: str) -> None:
    if metrics is None:
        ui.info("no val or test set given: nothing was scored")
        return
    values = metrics.as_dict()

    def shown(key: str) -> str:
        return "n/a (needs shot tables)" if values[key] is None else f"{100 * values[key]:.2f}"

    rows = [
        (name, " / ".join(shown(k) for k in key) if isinstance(key, tuple) else shown(key)) for name, key in METRIC_ROWS
    ]
    rows.append(("mIoU measured in", values["miou_basis"]))
    rows.append(("movies / shots / threshold", f"{metrics.movies} / {metrics.shots:,} / {metrics.threshold}"))
    ui.table(f"{title} ({split}, %)", ("metric", "value"), rows)


@segment_app.command("eval")
def segment_eval(
    pred: Path | None = typer.Option(
        None, "--pred", help="predictions.json written by vseg segment (probabilities, labels)."
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Instead of --pred: a boundary model (model.pth of vseg segment, or a SceneSeg BiLSTM checkpoint as SCRL "
        "released them) to score on --embeddings.",
    ),
    embeddings: Path | None = typer.Option(
        None, "--embeddings", "-e", help="With --model: labelled embeddings (.npz or SCRL .pkl) to score it on."
    ),
    shot_tables: Path | None = typer.Option(
        None, "--shot-tables", help="With --model: folder of <imdb>.txt shot frame tables, for mIoU and Recall@3s."
    ),
    threshold: float | None = config_option(SegmentEvalConfig, "threshold", "--threshold", min=0.0, max=1.0),
    fps: float | None = config_option(SegmentEvalConfig, "fps", "--fps", min=0.0),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the metrics to this JSON file."),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("threshold=0.4"),
) -> None:
    """Re-score saved boundary probabilities at any threshold (--pred), or score a model on embeddings (--model)."""
    from vseg.eval.segment import run_segment_eval

    cfg = build_config(SegmentEvalConfig, config, overrides, {"threshold": threshold, "fps": fps})
    metrics = run_segment_eval(cfg, pred, model, embeddings, shot_tables, out)
    _metrics_table(f"vseg segment eval {pred or model}", metrics, f"threshold {cfg.threshold}")


@segment_app.command("predict")
def segment_predict(
    model: Path = typer.Option(
        ..., "--model", "-m", help="model.pth written by vseg segment, or a SceneSeg BiLSTM checkpoint."
    ),
    embeddings: Path = typer.Option(..., "--embeddings", "-e", help="Embeddings (.npz or SCRL .pkl), labels optional."),
    out: Path = typer.Option(
        Path("runs/predict"), "--out", "-o", help="Output folder: predictions.json, scenes.json, scenes.csv."
    ),
    threshold: float | None = config_option(SegmentPredictConfig, "threshold", "--threshold", min=0.0, max=1.0),
    shot_tables: Path | None = typer.Option(
        None, "--shot-tables", help="Folder of <imdb>.txt shot frame tables, to give scenes frame ranges."
    ),
    device: str | None = config_option(SegmentPredictConfig, "device", "--device"),
    config: Path | None = config_file_option(),
    overrides: list[str] | None = set_option("threshold=0.4"),
) -> None:
    """Boundary probabilities and scene lists (scene, first/last shot) for movies, labelled or not."""
    from vseg.eval.segment import run_segment_predict

    cfg = build_config(SegmentPredictConfig, config, overrides, {"threshold": threshold, "device": device})
    report = run_segment_predict(model, embeddings, out, cfg.threshold, shot_tables, cfg.device)
    ui.summary(
        f"vseg segment predict -> {report.out}",
        [
            ("movies", report.movies),
            ("shots", report.shots),
            ("scenes", report.scenes),
            ("threshold", report.threshold),
            ("files", ", ".join(f.name for f in report.files)),
        ],
    )


@segment_app.command("bassl")
def segment_bassl(
    train: Path | None = typer.Option(None, "--train", help=SPLIT_FILE_HELP.format("training")),
    test: Path | None = typer.Option(
        None, "--test", help=SPLIT_FILE_HELP.format("test") + " Scored after the last epoch."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Instead of --train/--val/--test: a MovieNet root (240P/, label318/, meta/split318.json), embedded "
        "first by the --init checkpoint's shot encoder into OUT/embeddings (vseg embed).",
    ),
    val: Path | None = typer.Option(
        None, "--val", help=SPLIT_FILE_HELP.format("validation") + " Also scored.", show_default="none"
    ),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="BaSSL checkpoint whose CRN is fine-tuned: a vseg bassl run's or a released Lightning one (bassl.ckpt).",
        show_default="a fresh CRN (BaSSL's shot-level baselines; set lr=2.5e-5)",
    ),
    shot_tables: Path | None = typer.Option(
        None, "--shot-tables", help="Folder of <imdb>.txt shot frame tables, for mIoU in frames and Recall@3s."
    ),
    epochs: int | None = config_option(BasslSegmentConfig, "epochs", "--epochs", min=1),
    device: str | None = config_option(BasslSegmentConfig, "device", "--device"),
    out: Path = typer.Option(
        Path("runs/segment_bassl"), "--out", "-o", help="Run folder: metrics.json, model.pth, config.yaml."
    ),
    config: Path | None = config_file_option(
        " BaSSL's protocol: segment_bassl/paper (the defaults); segment_bassl/cpu_tiny for a CPU."
    ),
    overrides: list[str] | None = set_option("lr=2.5e-5"),
) -> None:
    """BaSSL's fine-tuning protocol: its pre-trained CRN and a boundary head on windows of 2 x 8 + 1 frozen shot
    features (vseg embed with a BaSSL checkpoint), Adam, 20 epochs, batch 1024; AP, F1, mIoU, Recall, Recall@3s as
    BaSSL computes them.
    """
    from vseg.eval.bassl_segment import embed_splits, run_bassl_segment

    cfg = build_config(BasslSegmentConfig, config, overrides, {"epochs": epochs, "device": device})
    if data is not None:
        if init is None or train is not None or test is not None:
            raise VsegError("vseg segment bassl --data ROOT needs --init CKPT (its encoder embeds the keyframes) and "
                            "no --train or --test")  # fmt: skip
        files = embed_splits(init, data, out, cfg)
        train, val, test = files["train"], files.get("val"), files["test"]
    elif train is None or test is None:
        raise VsegError("vseg segment bassl needs --train and --test embeddings, or --data ROOT with --init CKPT")
    report = run_bassl_segment(train, test, out, cfg, init, val, shot_tables)
    for split, scores in report.scores.items():
        rows = [(name, "n/a (needs shot tables)" if v is None else f"{v:.2f}") for name, v in scores.items()]
        ui.table(f"vseg segment bassl -> {report.out} ({split}, %)", ("metric", "value"), rows)
    ui.summary(
        "fine-tuning",
        [("init", report.init), ("epochs", report.epochs), ("steps", report.steps),
         ("time", f"{report.seconds:.1f} s")],  # fmt: skip
    )
