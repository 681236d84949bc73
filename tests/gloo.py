"""Two gloo ranks for the whole test session: the 2-rank checks of several test files run on one pair of processes.

Starting a pair (two interpreters importing torch and vseg) was most of each such check's cost. The ranks join one
process group once; :meth:`GlooRanks.run` sends a function of the rank (a module-level function of a test file, so
that the ranks can import it) to both and returns what each returned, rank 0 first. An exception on a rank comes back
as a failure with that rank's traceback.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist

WORLD = 2


def _serve(rank: int, init_file: str, jobs: list, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        for fn, args in iter(jobs[rank].get, None):
            try:
                results.put((rank, True, fn(rank, *args)))
            except Exception:
                results.put((rank, False, traceback.format_exc()))
    finally:
        dist.destroy_process_group()


class GlooRanks:
    """A pair of spawned processes in one gloo process group, waiting for functions to run."""

    def __init__(self, folder: Path):
        context = mp.get_context("spawn")
        self.jobs = [context.Queue() for _ in range(WORLD)]
        self.results = context.Queue()
        self.processes = [
            context.Process(target=_serve, args=(rank, str(folder / "init"), self.jobs, self.results), daemon=True)
            for rank in range(WORLD)
        ]
        for process in self.processes:
            process.start()

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float = 300) -> list[Any]:
        """``fn(rank, *args)`` on both ranks at once; the results in rank order."""
        for jobs in self.jobs:
            jobs.put((fn, args))
        answers: dict[int, Any] = {}
        for _ in range(WORLD):
            try:
                rank, ok, value = self.results.get(timeout=timeout)
            except queue.Empty:
                self.close()
                raise AssertionError(f"{fn.__name__}: no answer from the ranks within {timeout} s") from None
            if not ok:
                raise AssertionError(f"{fn.__name__} failed on rank {rank}:\n{value}")
            answers[rank] = value
        return [answers[rank] for rank in range(WORLD)]

    def close(self) -> None:
        for jobs in self.jobs:
            jobs.put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
