"""Run independent jobs in worker processes, a bounded number in flight, results as they finish.

Shared by every ``vseg prep`` stage. With one worker the jobs run in this process (no pool), which is
what a debugger and the benchmarks' baselines want.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_jobs(
    fn: Callable[[JobT], ResultT],
    jobs: Iterable[JobT],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[tuple[JobT, ResultT | None, BaseException | None]]:
    """Yield ``(job, result, None)`` or ``(job, None, error)`` for each job, in completion order.

    ``jobs`` is consumed lazily, at most ``4 * workers`` ahead of the results, so a caller may decide
    between results which jobs still to produce. Closing the iterator early cancels what has not started.
    ``fn`` must be a module-level function: workers are started with ``spawn`` (safe with threads, and
    the same on every OS). ``initializer(*initargs)`` runs once in each worker process as it starts.
    """
    if workers <= 1:
        for job in jobs:
            try:
                result = fn(job)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, who decides
                yield job, None, exc
            else:
                yield job, result, None
        return
    pending: dict[Future, JobT] = {}
    job_iter = iter(jobs)
    exhausted = False
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        try:
            while True:
                while not exhausted and len(pending) < 4 * workers:
                    job = next(job_iter, _END)
                    if job is _END:
                        exhausted = True
                    else:
                        pending[pool.submit(fn, job)] = job
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    error = future.exception()
                    yield job, (None if error else future.result()), error
        finally:
            for future in pending:
                future.cancel()


_END = object()
