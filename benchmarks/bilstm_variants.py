"""Why the BiLSTM boundary model trails the training-free methods on the demo's movies: the same model trained with
one setting changed at a time, on the embeddings of a `vseg demo` run folder.

Each variant is the demo's boundary config (``segment/cpu_tiny`` changed by ``vseg/configs/demo/default.yaml``) with
the given ``--set`` items (the first variant is the demo's own models, DIR/segment/), trained with seeds 100-102 on
the 8 train movies, selected on val and scored on the test movies like benchmarks/scene_methods.py (AP of the probabilities; F1, mIoU and cut recall / precision within 3 s of
the scenes at p > 0.5, at least 3 shots each), averaged over the seeds. Models go to DIR/bilstm_variants/.

    python benchmarks/bilstm_variants.py DIR [--features pretrained] [--only NAME ...] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vseg.config import parse_override
from vseg.demo import SEGMENT_SEEDS, stage_configs
from vseg.eval.segment import run_segment
from vseg.io.embeddings import read_embeddings
from vseg.io.movienet import MovieNetLayout, read_shot_table
from vseg.io.predictions import read_predictions

sys.path.insert(0, str(Path(__file__).parent))
from scene_methods import _scores  # noqa: E402

VARIANTS = {
    "demo (seq_len 40, standardised, lr 0.03)": [],
    "raw features": ["data.standardize=false"],
    "class weights 1:1": ["optim.class_weights=[1.0,1.0]"],
    "no scene shuffle": ["data.shuffle_rate=0.0"],
    "seq_len 20 (3x the training windows)": ["data.seq_len=20"],
    "seq_len 12": ["data.seq_len=12"],
}


def _changed(config, items: list[str]):
    """``config`` with the ``key.sub=value`` items applied (validated like --set)."""
    data = config.model_dump()
    for item in items:
        key, value = parse_override(item)
        *sections, name = key.split(".")
        target = data
        for section in sections:
            target = target[section]
        target[name] = value
    return type(config).model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a vseg demo output folder")
    parser.add_argument("--features", default="pretrained", help="embeddings/<name>/ of the run")
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--seeds", type=int, default=SEGMENT_SEEDS, help="boundary models per variant (seeds 100...)")
    args = parser.parse_args()
    files = [args.run / "embeddings" / args.features / f"{split}.npz" for split in ("train", "val", "test")]
    test = read_embeddings(files[2])
    layout = MovieNetLayout(args.run / "movienet")
    labels = test.per_movie(test.labels)
    tables = {m: read_shot_table(layout.shot_table_file(m))[: len(f)] for m, f in dict(test).items()}
    base = stage_configs()["segment"]
    print(f"features: {args.features}")
    print("| variant | AP | F1 | mIoU | recall 3 s | precision 3 s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for number, (name, items) in enumerate(VARIANTS.items()):
        if args.only and name not in args.only:
            continue
        scores = []
        for seed in range(base.train.seed, base.train.seed + args.seeds):
            config = _changed(base, [*items, f"train.seed={seed}"])
            own = args.run / "segment" / args.features / f"seed{seed}"  # the demo's own models: variant 0
            out = own if not items else args.run / "bilstm_variants" / args.features / f"v{number}" / f"seed{seed}"
            run_segment(*files, out, config, "auto")
            prob = {m: p.prob for m, p in read_predictions(out / "predictions.json").items()}
            scores.append(_scores(prob, labels, tables, config.train.threshold, True))
        mean = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in mean.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
