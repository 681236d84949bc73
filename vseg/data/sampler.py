"""The sampler every training method shares, and the pieces that go with it.

:class:`EpochSampler` shards a dataset over the ranks as ``DistributedSampler`` does and hands the dataset
``(epoch, index, progress)``; :func:`item_seed` turns ``(seed, epoch, index)`` into the seed of one item's
augmentation, so that an epoch's views are the same whatever the number of loader workers or ranks, and a resumed run
sees the views it would have seen; :func:`collate_or_error` lets an item that could not be read travel to the training
process as its DataError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from torch.utils.data import DistributedSampler, Sampler, default_collate

from vseg.errors import DataError


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one item of one epoch, well spread for neighbouring (epoch, index) pairs."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def collate_or_error(items: list, collate: Callable[[list], object] = default_collate):
    """``collate(items)`` (default collation unless given), except that a batch holding a failed item becomes that
    item's DataError."""
    for item in items:
        if isinstance(item, DataError):
            return item
    return collate(items)


class EpochSampler(Sampler[tuple[int, int, float]]):
    """A ``DistributedSampler`` (shuffled, seeded, one shard per rank, tail dropped) yielding
    ``(epoch, index, progress)``.

    Handing the epoch to the dataset with every index keeps augmentation seeds right in persistent workers; the
    training progress in [0, 1), ``(epoch + step / steps_per_epoch) / epochs`` at the item's step (set by
    :meth:`set_schedule`; 0 until then), drives schedules that live in the data, such as HiCo's gradual sampling.
    The sampler runs in the training process, so the progress is exact whatever the number of workers.
    """

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True):
        self.inner = DistributedSampler(
            range(size), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        self.epoch = 0
        self.epochs, self.steps_per_epoch, self.batch_size = 0, 0, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def set_schedule(self, epochs: int, steps_per_epoch: int, batch_size: int) -> None:
        """The run's length, for the progress: ``epochs`` of ``steps_per_epoch`` batches of ``batch_size`` items."""
        self.epochs, self.steps_per_epoch, self.batch_size = epochs, steps_per_epoch, batch_size

    def progress(self, position: int) -> float:
        """The progress at the ``position``-th item of this rank's epoch."""
        if not self.epochs:
            return 0.0
        step = position // self.batch_size
        return (self.epoch + step / max(self.steps_per_epoch, 1)) / self.epochs

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[tuple[int, int, float]]:
        return ((self.epoch, index, self.progress(k)) for k, index in enumerate(self.inner))
