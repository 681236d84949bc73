"""Where a process runs: its device, its place in torchrun's process group, its RNG states.

Every stage that touches a device takes it from here (:func:`choose_device`); the trainer also joins the group.
Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` set, one or many
nodes) the group uses NCCL when the run is on CUDA and gloo on CPU; each rank takes the GPU of its local rank.
A plain ``vseg pretrain`` is one process with no group at all. The RNG states (torch CPU, the device's CUDA
generator, Python's ``random``) are what a checkpoint keeps per rank, so that a resumed run repeats the original.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist

from vseg.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank among ``world_size`` and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_pipeline(pipeline: str, device: torch.device) -> Literal["cpu", "device"]:
    """Where images are decoded and augmented (:data:`vseg.config.Pipeline`): ``auto`` is the device pipeline on
    CUDA and the CPU pipeline elsewhere (where the loader workers and the model share the cores, and the per-item
    path is the reference's)."""
    if pipeline == "auto":
        return "device" if device.type == "cuda" else "cpu"
    return pipeline


def out_of_memory(
    device: torch.device, setting: str, batch: int, hint: str, exc: BaseException, detail: str = ""
) -> ConfigError:
    """The one-line error for a device out of memory: the batch-size ``setting`` to lower (``hint``: how), and the
    first line of the device's own message."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError(f"out of memory on {device} with {setting} {batch}{detail}: lower {setting} ({hint}); {first}")


def choose_device(preference: str, local_rank: int) -> torch.device:
    """``auto``: this rank's GPU when CUDA is available, else the CPU. ``cuda`` without a GPU is an error."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(preference: str = "auto") -> DistEnv:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU), or stay a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size)
    return DistEnv(rank, world_size, local_rank, device)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def gather_objects(obj: object, env: DistEnv) -> list[object]:
    """``obj`` from every rank, in rank order (one process: ``[obj]``)."""
    if env.world_size == 1:
        return [obj]
    gathered: list[object] = [None] * env.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's RNG states: torch CPU, the device's CUDA generator, Python's ``random``."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"torch": torch.get_rng_state(), "cuda": cuda, "python": random.getstate()}


def restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Set the RNG states :func:`capture_rng` took (the Python state as a checkpoint stores it, its tuple a list)."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
