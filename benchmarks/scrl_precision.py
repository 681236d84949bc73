"""How far do SCRL's logits move under bf16 autocast? One fixed CPU batch, three ways:

1. fp32: the whole step in float32 (the reference's precision);
2. bf16 encoders, fp32 similarities: what ``vseg pretrain scrl`` does under ``train.amp`` (the encoders run in bf16,
   ``q . k`` and ``q . queue`` in float32);
3. bf16 encoders, bf16 similarities: what vseg did before the similarities were kept in float32.

Reported: the largest and the mean absolute difference of the logits (already divided by the temperature, as the
loss sees them) from the fp32 ones, and the loss of each. The encoder is the paper's ResNet-50 with its 9-channel stem
and 2048-2048-2048 head at random init, the queue 65,536 random unit keys, the batch random images (seeded).
CPU autocast runs bf16 kernels where PyTorch has them, so the figures show the rounding, not a GPU's speed.

    python benchmarks/scrl_precision.py [--shots 32] [--size 224] [--arch resnet50] [--json PATH] [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
from functools import partial

import torch

from vseg.models.encoder import ShotEncoder
from vseg.models.scrl import SCRL


def logits_three_ways(model: SCRL, view_q: torch.Tensor, view_k: torch.Tensor) -> dict[str, dict[str, float]]:
    """The step's logits and loss in fp32, under bf16 autocast, and with bf16 similarities, from one model state."""
    fp32 = copy.deepcopy(model)(view_q, view_k)
    with torch.autocast(view_q.device.type, dtype=torch.bfloat16):
        amp = copy.deepcopy(model)(view_q, view_k)
        q = model._encode(copy.deepcopy(model).encoder_q, view_q)  # the same queries as the amp step
    queue = model.queue.to(torch.bfloat16)
    l_neg = (q.to(torch.bfloat16) @ queue).float() / model.temperature
    bf16_sims = torch.cat([amp.logits[:, :1], l_neg], dim=1)  # the positive column as the amp step: only l_neg differs
    loss_bf16 = torch.nn.functional.cross_entropy(bf16_sims, torch.zeros(len(q), dtype=torch.long, device=q.device))

    def versus_fp32(logits: torch.Tensor, loss: torch.Tensor) -> dict[str, float]:
        difference = (logits - fp32.logits).abs()
        return {"max_abs": float(difference.max()), "mean_abs": float(difference.mean()), "loss": float(loss)}

    return {
        "fp32": {"max_abs": 0.0, "mean_abs": 0.0, "loss": float(fp32.loss)},
        "bf16 encoders, fp32 similarities (vseg)": versus_fp32(amp.logits, amp.loss),
        "bf16 encoders, bf16 similarities": versus_fp32(bf16_sims, loss_bf16),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: the same comparison with CUDA's bf16 kernels")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    make_encoder = partial(ShotEncoder, args.arch, in_channels=9, dim=2048, mlp=True)
    model = SCRL(make_encoder, cluster_group=args.shots, bn_group=args.shots, seed=0).to(device)
    generator = torch.Generator().manual_seed(1)
    view_q, view_k = (torch.randn(args.shots, 9, args.size, args.size, generator=generator).to(device) for _ in "qk")
    results = logits_three_ways(model, view_q, view_k)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"{args.arch}, {args.shots} shots at {args.size} px, queue 65,536, T 0.07; {where}")
    print(f"{'precision':42s} {'max |dlogit|':>13s} {'mean |dlogit|':>14s} {'loss':>9s}")
    for name, row in results.items():
        print(f"{name:42s} {row['max_abs']:13.4f} {row['mean_abs']:14.5f} {row['loss']:9.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            row = {"arch": args.arch, "shots": args.shots, "size": args.size, "device": where, "results": results}
            json.dump(row, file, indent=1)


if __name__ == "__main__":
    main()
