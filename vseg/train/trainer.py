"""The trainer every method shares (pre-training, and fine-tuning): one plain loop in the style of MoCo's
``main_moco.py``.

A method (SCRL, HiCo, ...) is a small object that builds its dataset and its model from its config and computes a
step's loss (:class:`Method`); everything else is here: the process group (torchrun or one process, set up by
:mod:`vseg.runtime`), per-rank seeds, the data loader (:mod:`vseg.data.sampler`), SGD with the configured lr
schedule, bf16 autocast and channels_last on CUDA, checkpoints with resume, the progress bar, ``metrics.jsonl`` and
TensorBoard (the files: :mod:`vseg.io.checkpoints`, :mod:`vseg.io.runs`). Rank 0 alone prints and writes.

Output folder::

    OUT/config.yaml                 the effective config
    OUT/metrics.jsonl               {"event": "step", ...} every log_every steps, {"event": "epoch", ...} per epoch
    OUT/checkpoints/last.pth        after every epoch
    OUT/checkpoints/epoch_XXXX.pth  every checkpoint_every epochs and after the last (XXXX = epochs completed)
    OUT/tensorboard/                with train.tensorboard
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from vseg import __version__, ui
from vseg.config import OptimConfig, StageConfig, TrainConfig, config_to_yaml
from vseg.data.sampler import EpochSampler, collate_or_error
from vseg.errors import ConfigError, DataError
from vseg.io import atomic
from vseg.io import checkpoints as ckpt
from vseg.io.runs import CONFIG_FILE, MetricsLog, check_resumable, find_resume_checkpoint
from vseg.runtime import (
    DistEnv,
    barrier,
    capture_rng,
    gather_objects,
    init_distributed,
    out_of_memory,
    restore_rng,
    shutdown,
)
from vseg.train.lars import LARS, lars_param_groups
from vseg.train.schedule import base_lr, lr_at

class Method(Protocol):
    """What a pre-training method gives the trainer (one class per module of :mod:`vseg.train.methods`); its
    docstring's first line is the help of ``vseg pretrain <name>``."""

    name: str  # "scrl"
    config_model: type[StageConfig]  # its config: sections data, model, optim (OptimConfig), train (TrainConfig)
    unit: str  # what the batch counts: "shots"
    items_per_sample: int  # items per dataset sample (16 shots per SCRL clip)
    volumetric: bool  # the model's convolutions are 3-d (channels_last_3d rather than channels_last on CUDA)
    presets_help: str  # its presets, for --config's help
    resumable: tuple[str, ...]  # config keys beyond io.runs.RESUMABLE_CHANGES that may change when a run resumes
    config: Any  # an instance of config_model

    def __init__(self, config: Any) -> None: ...

    def builtin_data(self, out: Path) -> Callable[[], object] | None:
        """When the config asks for built-in data: point it at OUT and return the function that makes the data
        (run on rank 0 alone, before the dataset is built); else None. Called on every rank."""

    def build_dataset(self, env: DistEnv) -> Dataset: ...

    def build_model(self, env: DistEnv, global_batch: int) -> nn.Module: ...

    def step(self, model: nn.Module, batch: Any, env: DistEnv) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def describe(self) -> dict[str, Any]: ...

    # Optional: ``command`` (str), the command named in config.yaml's header (default "pretrain <name>"), and
    # ``finish(model, env, out) -> dict``, run on every rank after the last epoch with the trained model (a
    # fine-tuning run's test); its result is the report's ``results``.


@dataclass
class TrainReport:
    """What a run did (as seen by rank 0)."""

    out: Path
    start_epoch: int
    epochs: int
    steps: int = 0
    last: dict[str, float] = field(default_factory=dict)  # the last epoch's mean metrics
    items_per_second: float = 0.0
    seconds: float = 0.0
    checkpoint: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)  # what the method's ``finish`` returned


def build_optimizer(model: nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """``optim.optimizer``: SGD with momentum and weight decay on every parameter, BN and biases included (SCRL);
    or LARS with Nesterov momentum (plain momentum when not ``optim.nesterov``, as BaSSL), BN without weight decay
    (and without LARS scaling when ``optim.bn_lars_exclude``), as HiCo; ``optim.lars_groups`` says where the other
    biases go and ``optim.lars_zero_norm`` what a zero norm gives; or Adam with the
    same groups (BN without weight decay, as the reference's fine-tuning: TAdaConv's ``construct_optimizer``).
    Parameters that do not require gradients are left out."""
    if optim.optimizer == "lars":
        groups = lars_param_groups(model, optim.weight_decay, optim.bn_lars_exclude, optim.lars_groups)
        return LARS(
            groups, lr=optim.lr, momentum=optim.momentum, eta=optim.trust_coefficient, nesterov=optim.nesterov,
            zero_norm=optim.lars_zero_norm,
        )
    if optim.optimizer == "adam":
        groups = lars_param_groups(model, optim.weight_decay, False, optim.lars_groups)
        return torch.optim.Adam(groups, lr=optim.lr, betas=tuple(optim.betas))
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)


def loader_workers(train: TrainConfig, env: DistEnv) -> int:
    """Data-loading processes per rank: ``train.workers``, else the cores shared by the GPUs, else 1 on CPU."""
    if train.workers is not None:
        return train.workers
    if env.device.type == "cuda":
        return max(1, (os.cpu_count() or 1) // max(torch.cuda.device_count(), 1))
    return 1  # on CPU the training step needs the cores; one process overlaps loading with it


def _status(means: dict[str, float], lr: float) -> str:
    shown = " ".join(f"{k} {v:.3f}" if k == "loss" else f"{k} {v:.1f}" for k, v in means.items())
    return f"{shown} lr {lr:.4g}"


def build_loader(
    dataset: Dataset, train: TrainConfig, env: DistEnv, samples_per_rank: int, items_per_sample: int = 1
) -> tuple[DataLoader, EpochSampler]:
    """This rank's loader: its shard of the shuffled samples, ``samples_per_rank`` per batch, the tail dropped,
    collated by the dataset's ``collate_fn`` when it has one. ConfigError naming a batch size that fits the data
    (``items_per_sample``: what ``train.batch_size`` counts per sample) when not one batch does."""
    sampler = EpochSampler(len(dataset), env.world_size, env.rank, seed=train.seed)
    workers = loader_workers(train, env)
    loader = DataLoader(
        dataset,
        batch_size=samples_per_rank,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        collate_fn=getattr(dataset, "collate_fn", collate_or_error),
        pin_memory=env.device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
    if len(loader) == 0:
        fits = len(dataset) // env.world_size * env.world_size * items_per_sample
        advice = f"set train.batch_size to {fits} or less, a multiple of {env.world_size * items_per_sample}"
        raise ConfigError(
            f"the data has {len(dataset)} samples, fewer than one batch of {samples_per_rank} per rank x "
            f"{env.world_size} ranks; " + (f"{advice}, or add data" if fits else "add data")
        )
    return loader, sampler


def data_root(root: Path | None, what: str) -> Path:
    """A method's ``data.root``: ConfigError when none is set (``what`` says what to pass), DataError when it is no
    folder."""
    if root is None:
        raise ConfigError(f"no training data: pass --data DIR ({what}) or set data.root")
    if not Path(root).is_dir():
        raise DataError(root, "data folder not found")
    return Path(root)


def memory_format(train: TrainConfig, env: DistEnv, volumetric: bool = False) -> torch.memory_format:
    """channels_last (channels_last_3d for 3-d models) on CUDA when ``train.channels_last``, else the default
    layout; for the model and its inputs."""
    if env.device.type != "cuda" or not train.channels_last:
        return torch.contiguous_format
    return torch.channels_last_3d if volumetric else torch.channels_last


def train_step(
    method: Method, model: nn.Module, optimizer: torch.optim.Optimizer, batch: Any, env: DistEnv, amp: bool
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimiser step on one batch (bf16 autocast on CUDA when ``amp``); returns the loss and the metrics."""
    if isinstance(batch, DataError):
        raise batch
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if env.device.type == "cuda" and amp else nullcontext()
    with autocast:
        loss, metrics = method.step(model, batch, env)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), metrics


def samples_per_rank(train: TrainConfig, env: DistEnv, method: Method) -> int:
    """Dataset samples per rank per step: the global batch split over ranks, in whole samples."""
    per_rank, rest = divmod(train.batch_size, env.world_size * method.items_per_sample)
    if rest or per_rank == 0:
        raise ConfigError(
            f"train.batch_size {train.batch_size} must be a multiple of ranks x {method.unit} per sample "
            f"= {env.world_size} x {method.items_per_sample}"
        )
    return per_rank


def pretrain(method: Method, out: Path, resume: str | None = None) -> TrainReport:
    """Train ``method`` into ``out`` (see the module docstring); ``resume`` is None, "auto" or a checkpoint path.

    Under torchrun every rank calls this; the process group is set up here and torn down at the end. The method's
    built-in data, if its config asks for it, is made by rank 0 alone before the data is read (the others wait).
    A method with a ``finish`` hook gets the trained model after the last epoch (also when a resumed run had
    nothing left to train).
    """
    config = method.config
    env = init_distributed(config.train.device)
    try:
        prepare = method.builtin_data(Path(out))
        run = _Run(method, Path(out), resume, env)
        if prepare is not None:
            if env.is_main:
                prepare()
            barrier()
        report = run.fit()
        finish = getattr(method, "finish", None)
        if finish is not None:
            report.results = finish(run.model, env, Path(out))
        return report
    finally:
        shutdown()


class _Run:
    def __init__(self, method: Method, out: Path, resume: str | None, env: DistEnv):
        self.method, self.out, self.env = method, out, env
        self.config = method.config
        self.train, self.optim = self.config.train, self.config.optim
        if not env.is_main:
            ui.settings.quiet = True
        self.samples_per_rank = samples_per_rank(self.train, env, method)
        self.resume_from = find_resume_checkpoint(out, resume)
        self.saved = self._resumable(self.resume_from) if self.resume_from is not None else None
        self._command = getattr(method, "command", f"pretrain {method.name}")
        self.model: nn.Module | None = None  # the trained model, once fit has built it

    def _resumable(self, path: Path) -> dict[str, Any]:
        """The checkpoint a resume continues from, checked before any data is read or made: this method's, saved
        with a config that differs from this run's only in what :data:`vseg.io.runs.RESUMABLE_CHANGES` and the
        method's ``resumable`` keys allow."""
        saved = ckpt.load_checkpoint(path)
        method = saved.get("method")
        if method != self.method.name:
            what = f"a {method!r} checkpoint" if method else "a checkpoint of no vseg pre-training method"
            raise ConfigError(f"{path}: {what} cannot resume a {self.method.name} run")
        check_resumable(saved.get("config", {}), self.config, path, self.method.resumable)
        return saved

    def _seed(self) -> None:
        seed = self.train.seed + self.env.rank
        torch.manual_seed(seed)
        random.seed(seed)
        if self.train.deterministic:
            torch.use_deterministic_algorithms(True)
        if self.env.device.type == "cuda":
            torch.backends.cudnn.benchmark = not self.train.deterministic

    def fit(self) -> TrainReport:
        started = time.perf_counter()
        self._seed()
        dataset = self.method.build_dataset(self.env)
        loader, sampler = build_loader(
            dataset, self.train, self.env, self.samples_per_rank, self.method.items_per_sample
        )  # fmt: skip
        model = self.method.build_model(self.env, self.train.batch_size)
        model = model.to(self.env.device, memory_format=memory_format(self.train, self.env, self.method.volumetric))
        self.model = model
        optimizer = build_optimizer(model, self.optim)
        start_epoch, step = 0, 0
        if self.resume_from is not None:
            start_epoch, step = self._restore(model, optimizer)
        ddp = (
            DistributedDataParallel(
                model, device_ids=[self.env.device.index] if self.env.device.type == "cuda" else None
            )
            if self.env.world_size > 1
            else model
        )
        report = TrainReport(self.out, start_epoch, self.train.epochs, step)
        if start_epoch >= self.train.epochs:
            ui.info(
                f"{self.resume_from} has already trained {start_epoch} epochs of {self.train.epochs}; nothing to do"
            )
            report.checkpoint = self.resume_from
            return report
        log = None
        if self.env.is_main:
            atomic.write_text(self.out / CONFIG_FILE, config_to_yaml(self.config, self._command))
            log = MetricsLog(self.out, start_epoch, self.train.tensorboard)
        steps_per_epoch = min(len(loader), self.train.steps_per_epoch or len(loader))
        sampler.set_schedule(self.train.epochs, steps_per_epoch, self.samples_per_rank)
        try:
            lr0 = base_lr(self.optim, self.train.batch_size)
            for epoch in range(start_epoch, self.train.epochs):
                sampler.set_epoch(epoch)
                means, rate, step = self._epoch(ddp, loader, optimizer, epoch, steps_per_epoch, step, lr0, log)
                report.last, report.items_per_second, report.steps = means, rate, step
                report.checkpoint = self._save(model, optimizer, epoch + 1, step, lr0)
        finally:
            if log is not None:
                log.close()
        report.seconds = time.perf_counter() - started
        return report

    def _epoch(
        self,
        model: nn.Module,
        loader: DataLoader,
        optimizer: torch.optim.Optimizer,
        epoch: int,
        steps: int,
        step: int,
        lr0: float,
        log: MetricsLog | None,
    ) -> tuple[dict[str, float], float, int]:
        """One epoch; returns its mean metrics (over ranks), its throughput in items/s, and the global step."""
        model.train()
        items_per_step = self.train.batch_size
        sums: dict[str, torch.Tensor] = {}
        window: dict[str, torch.Tensor] = {}  # sums since the last log row
        window_steps = 0
        window_start = epoch_start = time.perf_counter()
        description = f"epoch {epoch + 1}/{self.train.epochs}"
        lr = lr0
        with ui.progress(description, total=steps * items_per_step, unit=self.method.unit) as advance:
            for index, batch in enumerate(loader):
                if index >= steps:
                    break
                lr = lr_at(self.optim, lr0, epoch, index, steps, self.train.epochs)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                try:
                    loss, metrics = train_step(self.method, model, optimizer, batch, self.env, self.train.amp)
                except torch.cuda.OutOfMemoryError as exc:
                    raise self._out_of_memory(exc) from None
                step += 1
                window_steps += 1
                for key, value in {"loss": loss, **metrics}.items():
                    sums[key] = sums.get(key, 0) + value.detach().float()
                    window[key] = window.get(key, 0) + value.detach().float()
                if window_steps == self.train.log_every or index + 1 == steps:
                    means = {k: float(v) / window_steps for k, v in window.items()}  # waits for the device
                    now = time.perf_counter()
                    rate = window_steps * items_per_step / max(now - window_start, 1e-9)
                    if log is not None:
                        row = {"event": "step", "epoch": epoch + 1, "step": step, "lr": lr, **means}
                        log.write({**row, f"{self.method.unit}_per_s": rate}, step)
                    advance(items_per_step, status=_status(means, lr))
                    window, window_steps, window_start = {}, 0, time.perf_counter()
                else:
                    advance(items_per_step)
        seconds = time.perf_counter() - epoch_start
        means = self._mean_over_ranks({k: v / steps for k, v in sums.items()})
        rate = steps * items_per_step / max(seconds, 1e-9)
        if log is not None:
            row = {"event": "epoch", "epoch": epoch + 1, "step": step, "lr": lr, **means}
            log.write({**row, f"{self.method.unit}_per_s": rate, "seconds": seconds}, step)
        return means, rate, step

    def _out_of_memory(self, exc: BaseException) -> ConfigError:
        per_rank = f" ({self.train.batch_size // self.env.world_size} per rank)"
        batch = self.train.batch_size
        return out_of_memory(self.env.device, "train.batch_size", batch, "--set train.batch_size=N", exc, per_rank)

    def _mean_over_ranks(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        keys = sorted(values)
        stacked = torch.stack([values[k].to(self.env.device) for k in keys])
        if self.env.world_size > 1:
            dist.all_reduce(stacked)
            stacked /= self.env.world_size
        return {k: float(v) for k, v in zip(keys, stacked.tolist(), strict=True)}

    def _save(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, step: int, lr0: float) -> Path:
        rng = gather_objects(capture_rng(self.env.device), self.env)
        folder = self.out / "checkpoints"
        last = folder / ckpt.LAST
        if self.env.is_main:
            payload = {
                "format": ckpt.FORMAT,
                "method": self.method.name,
                **self.method.describe(),
                "epoch": epoch,
                "step": step,
                "state_dict": ckpt.with_prefix(model.state_dict()),
                "optimizer": optimizer.state_dict(),
                "scheduler": {
                    "schedule": self.optim.schedule,
                    "base_lr": lr0,
                    "lr": optimizer.param_groups[0]["lr"],
                },
                "rng": rng,
                "world_size": self.env.world_size,
                "config": self.config.model_dump(mode="json"),
                "vseg_version": __version__,
            }
            if epoch % self.train.checkpoint_every == 0 or epoch == self.train.epochs:
                ckpt.save_checkpoint(folder / ckpt.epoch_name(epoch), payload)
            ckpt.save_checkpoint(last, payload)
        barrier()
        return last

    def _restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
        path, saved = self.resume_from, self.saved
        self.saved = None  # not held through training
        fit = model.load_state_dict(ckpt.strip_prefix(saved["state_dict"]), strict=False)
        if fit.missing_keys or fit.unexpected_keys:
            raise DataError(
                path,
                f"state_dict does not fit the model "
                f"(missing {fit.missing_keys[:3]}, unexpected {fit.unexpected_keys[:3]})",
            )
        optimizer.load_state_dict(saved["optimizer"])
        rng = saved.get("rng") or []
        if saved.get("world_size") == self.env.world_size and len(rng) == self.env.world_size:
            restore_rng(rng[self.env.rank], self.env.device)
        else:
            ui.warn(
                f"{path} was written by {saved.get('world_size')} ranks, this run has {self.env.world_size}; "
                "RNG states are re-seeded, so the run will not repeat the original exactly"
            )
            torch.manual_seed(self.train.seed + self.env.rank + 1000 * int(saved["epoch"]))
        ui.info(f"resuming from {path}: {saved['epoch']} epochs done")
        return int(saved["epoch"]), int(saved.get("step", 0))
