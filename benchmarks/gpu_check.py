"""Everything issues 17 and 24 ask a GPU to show, in one command (under 8 minutes on one H100/H200), into one JSON file:

- ``scrl``: SCRL's ResNet-50 at 224 px (``scrl/without_imagenet``, batch 256, bf16, channels_last): model-only and
  end-to-end shots/s for both pipelines (``data.pipeline`` cpu and device) and each pipeline's worker CPU time per
  shot (:func:`pretrain_throughput.measure`); targets >= 1,800 shots/s end to end and >= 0.9 of model-only;
- ``hico``: HiCo's S3D-G at 16 x 112^2 (``hico/hacs_s``, 8 videos x 3 clips, bf16, channels_last_3d): model-only
  clips/s, and end-to-end clips/s for both pipelines, on synthetic untrimmed videos;
- ``bassl``: BaSSL's ResNet-50 and CRN at 224 px (``bassl/paper``, 32 windows x 19 images, bf16, channels_last):
  model-only and end-to-end windows/s (:func:`bassl_throughput.measure`), on synthetic movies;
- ``embed``: ``vseg embed``'s shots/s against the forward alone for both pipelines (``embed_throughput.py``, bf16);
- ``torchrun_scrl`` / ``torchrun_hico`` / ``torchrun_bassl``: a 1-rank ``torchrun`` of ``vseg pretrain`` (NCCL on CUDA),
  two steps, exit code and checkpoint;
- ``precision``: the bf16-vs-fp32 logit difference of one SCRL step (``benchmarks/scrl_precision.py``);
- ``gpu_tests``: the test suite's CUDA-only tests (``pytest -m gpu``: K-means on CUDA, nvJPEG views, embedding on the
  GPU), which ``make test`` skips without a GPU; their pass/fail counts and the tail of their output.

Each section is timed and recorded on its own (an error is written in its place and the others still run); the JSON
is rewritten after every section, so a run cut short keeps what it measured. ``--device cpu --tiny`` runs every
section with tiny settings on the CPU (gloo instead of NCCL): a smoke test of this script, not a measurement.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--device cuda|cpu] [--tiny] [--sections ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bassl_throughput  # noqa: E402  (sibling scripts)
import pretrain_throughput  # noqa: E402

from vseg import ui  # noqa: E402
from vseg.config import ClipsConfig, load_config  # noqa: E402
from vseg.io import atomic  # noqa: E402
from vseg.presets import preset  # noqa: E402

REPO_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
SECTIONS = ("scrl", "hico", "bassl", "embed", "torchrun_scrl", "torchrun_hico", "torchrun_bassl", "precision", "gpu_tests")


def scrl(args: argparse.Namespace, work: Path) -> dict:
    from vseg.config import PuzzlesConfig, SynthConfig
    from vseg.prep.puzzles import make_puzzles
    from vseg.prep.synth import make_synth
    from vseg.train.methods.scrl import ScrlConfig

    movies, batch, steps, warmup = (2, 32, 2, 1) if args.tiny else (24, 256, 10, 4)
    root = work / "scrl"
    make_synth(root / "movienet", SynthConfig(movies=movies, shots_per_movie=160, seed=0))
    make_puzzles(root / "movienet" / "240P", root / "puzzles", PuzzlesConfig())
    name = "scrl/cpu_tiny" if args.tiny else "scrl/without_imagenet"
    overrides = [f"train.batch_size={batch}", f"train.device={args.device}", f"data.root={root / 'puzzles'}"]
    if not args.tiny:
        overrides += ["model.bn_group=128", "model.cluster_group=128", f"train.workers={os.cpu_count()}"]
    config = load_config(ScrlConfig, preset(name), overrides)
    result = pretrain_throughput.measure(config, steps, warmup, ["cpu", "device"], worker_clips=2 if args.tiny else 8)
    result["targets"] = {
        "end_to_end_shots_per_s >= 1800": max(p["end_to_end_shots_per_s"] for p in result["pipelines"].values())
        >= 1800,
        "ratio_end_to_end_over_step >= 0.9": result["pipelines"]["device"]["ratio_end_to_end_over_step"] >= 0.9,
    }
    return {"config": name, "overrides": overrides, **result}


def hico_clips(work: Path, tiny: bool) -> Path:
    """Synthetic untrimmed videos (a textured pan, 340x256 at 30 fps, HACS's typical size) cut by prep clips."""
    from hico_throughput import make_sources

    from vseg.prep.clips import make_clips

    folder = work / "hico"
    if not (folder / "clips" / "training.txt").is_file():
        size = (96, 72) if tiny else (340, 256)
        sources = make_sources(folder, 4 if tiny else 16, 12.0 if tiny else 30.0, *size, 30.0)
        make_clips(sources, folder / "clips", ClipsConfig())
    return folder / "clips"


def hico(args: argparse.Namespace, work: Path) -> dict:
    from vseg.runtime import init_distributed
    from vseg.train.methods.hico import HicoConfig, HicoMethod
    from vseg.train.trainer import build_loader, build_optimizer, memory_format, samples_per_rank, train_step

    name = "hico/cpu_tiny" if args.tiny else "hico/hacs_s"
    videos, steps, warmup = (4, 2, 1) if args.tiny else (8, 8, 3)
    overrides = [f"train.device={args.device}", f"train.batch_size={videos * 3}", "model.tcl_group=4"]
    if not args.tiny:
        overrides.append(f"train.workers={os.cpu_count()}")
    config = load_config(HicoConfig, preset(name), overrides, {"data.root": hico_clips(work, args.tiny)})
    method = HicoMethod(config)
    env = init_distributed(config.train.device)
    model = method.build_model(env, config.train.batch_size)
    model = model.to(env.device, memory_format=memory_format(config.train, env, volumetric=True)).train()
    optimizer = build_optimizer(model, config.optim)
    clips = config.train.batch_size

    def step(batch) -> None:
        train_step(method, model, optimizer, batch, env, config.train.amp)

    def stream(pipeline: str):
        """Batches of ``pipeline``, epoch after epoch."""
        config.data.pipeline = pipeline
        loader, sampler = build_loader(
            method.build_dataset(env), config.train, env, samples_per_rank(config.train, env, method)
        )
        for epoch in range(10**6):
            sampler.set_epoch(epoch)
            yield from loader

    warm = stream("cpu")
    fixed = next(warm)  # views already made: the step alone is the model alone
    warm.close()
    model_only = steps * clips / pretrain_throughput.timed(lambda i: step(fixed), steps, warmup, env.device)
    result = {
        "config": name,
        "overrides": overrides,
        "clip": f"{config.data.frames}x{config.data.crop_size}^2",
        "loader_workers": config.train.workers,
        "amp_bf16": env.device.type == "cuda" and config.train.amp,
        "model_only_clips_per_s": round(model_only, 1),
    }
    for pipeline in ("cpu", "device"):
        batches = stream(pipeline)
        end_to_end = steps * clips / pretrain_throughput.timed(lambda i: step(next(batches)), steps, warmup, env.device)
        result[pipeline] = {
            "end_to_end_clips_per_s": round(end_to_end, 1),
            "ratio_end_to_end_over_model": round(end_to_end / model_only, 3),
        }
        batches.close()
    return result


def bassl(args: argparse.Namespace, work: Path) -> dict:
    from vseg.config import SynthConfig
    from vseg.prep.synth import make_synth
    from vseg.train.methods.bassl import BasslConfig

    movies, batch, steps, warmup = (2, 4, 2, 1) if args.tiny else (8, 32, 10, 3)
    root = work / "bassl" / "movienet"
    make_synth(root, SynthConfig(movies=movies, shots_per_movie=160, seed=0))
    name = "bassl/cpu_tiny" if args.tiny else "bassl/paper"
    overrides = [f"train.batch_size={batch}", f"train.device={args.device}", "data.split=null"]
    if not args.tiny:
        overrides.append(f"train.workers={os.cpu_count()}")
    config = load_config(BasslConfig, preset(name), overrides, {"data.root": str(root)})
    return {"config": name, "overrides": overrides, **bassl_throughput.measure(config, steps, warmup)}


def run_json(command: list[str], timeout: float) -> dict:
    """Run a benchmark script and parse the JSON object its stdout ends with."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=REPO_ENV)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-1500:]}")
    text = done.stdout
    return json.loads(text[text.index("{") :] if text.lstrip().startswith("{") else text[text.rindex("\n{") :])


def embed(args: argparse.Namespace, work: Path) -> dict:
    sizes = ["--arch", "resnet18", "--image-size", "64", "--batch-size", "16", "--batches", "2"] if args.tiny else [
        "--arch", "resnet50", "--image-size", "224", "--batch-size", "256", "--batches", "8", "--bf16"
    ]  # fmt: skip
    command = [sys.executable, str(HERE / "embed_throughput.py"), "--device", args.device, "--skip-segment", *sizes]
    return {"command": " ".join(command[1:]), **run_json(command, timeout=300)}


def torchrun(method: str, args: argparse.Namespace, work: Path) -> dict:
    out = work / f"torchrun_{method}"
    data = ["--data", str(hico_clips(work, args.tiny))] if method == "hico" else []
    batch = {"hico": "train.batch_size=12", "bassl": "train.batch_size=8"}.get(method, "train.batch_size=64")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
        "-m", "vseg", "pretrain", method, "--config", f"{method}/cpu_tiny", "--out", str(out), *data,
        "--epochs", "1", "--set", f"train.device={args.device}", "--set", "train.steps_per_epoch=2",
        "--set", batch, "--set", "train.workers=2",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=work, env=REPO_ENV)
    checkpoint = out / "checkpoints" / "last.pth"
    return {
        "command": " ".join(command[3:]),
        "exit_code": done.returncode,
        "backend": "nccl" if args.device == "cuda" else "gloo",
        "checkpoint": checkpoint.is_file(),
        "seconds": round(time.perf_counter() - started, 1),
        **({"stderr_tail": done.stderr.strip()[-1500:]} if done.returncode else {}),
    }


def precision(args: argparse.Namespace, work: Path) -> dict:
    sizes = ["--arch", "resnet18", "--size", "64", "--shots", "32"] if args.tiny else ["--size", "224", "--shots", "64"]
    path = work / "precision.json"
    command = [sys.executable, str(HERE / "scrl_precision.py"), "--device", args.device, "--json", str(path), *sizes]
    subprocess.run(command, check=True, capture_output=True, timeout=300, env=REPO_ENV)
    return json.loads(path.read_text())


def gpu_tests(args: argparse.Namespace, work: Path) -> dict:
    """``pytest -m gpu`` of this checkout's tests (skipped, all of them, on ``--device cpu``)."""
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", str(HERE.parent / "tests")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=work, env=REPO_ENV, timeout=600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}
    return {"returncode": done.returncode, **counts, "summary": summary, "output_tail": done.stdout[-3000:]}


RUNNERS = {
    "scrl": scrl,
    "hico": hico,
    "embed": embed,
    "torchrun_scrl": lambda args, work: torchrun("scrl", args, work),
    "torchrun_hico": lambda args, work: torchrun("hico", args, work),
    "bassl": bassl,
    "torchrun_bassl": lambda args, work: torchrun("bassl", args, work),
    "precision": precision,
    "gpu_tests": gpu_tests,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON file written")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny settings: a smoke test of the script")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here; run it on a GPU machine (--device cpu --tiny: a smoke test)")
    ui.settings.quiet = True
    report: dict = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "tiny": args.tiny,
        "sections": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vseg-gpu-check-") as folder:
        for name in args.sections:
            tick = time.perf_counter()
            try:
                row = RUNNERS[name](args, Path(folder))
            except Exception as exc:  # noqa: BLE001  (record it and go on to the next section)
                row = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
            row["section_seconds"] = round(time.perf_counter() - tick, 1)
            report["sections"][name] = row
            report["seconds"] = round(time.perf_counter() - started, 1)
            atomic.write_text(args.out, json.dumps(report, indent=1) + "\n")
            print(f"{name}: {'error' if 'error' in row else 'done'} in {row['section_seconds']} s", flush=True)
    print(f"wrote {args.out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
