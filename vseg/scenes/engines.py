"""Where a collection's videos run: worker processes on this machine (``local``) or Ray tasks (``ray``).

An engine maps a module-level function over jobs and yields ``(job, result, error)`` as they finish (completion
order). ``local`` is :func:`vseg.parallel.run_jobs`: ``workers`` processes, each with its decoder, OpenCV and torch
threads set to its share of the cores, so that the workers together use every core once. ``ray`` submits each job
as a Ray task (one CPU each) to a local Ray runtime it starts (``num_cpus`` = the workers) or to the cluster at
``address`` (``auto``: the one ``ray start`` runs on this machine); Ray schedules them. With an encoder, the Ray
engine also starts one actor per worker (one GPU each where the cluster has GPUs) that loads the encoder once and
computes the shot features of every video (:func:`ray_scenes`); without GPUs, one actor on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vseg.errors import VsegError
from vseg.parallel import run_jobs

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Give this process ``threads`` threads for OpenCV and for torch (set before torch is imported)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import cv2

    cv2.setNumThreads(threads)


def local_map(fn: Callable, jobs: Iterable, workers: int, threads: int) -> Iterator[tuple[Any, Any, Any]]:
    """``fn`` over ``jobs`` in ``workers`` processes of ``threads`` threads each (in this process for one)."""
    return run_jobs(fn, jobs, workers, initializer=limit_threads, initargs=(threads,))


def import_ray():
    """The ``ray`` module; VsegError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise VsegError("--engine ray needs Ray: pip install 'vseg[ray]'") from None
    return ray


def start_ray(address: str | None, workers: int):
    """Join the Ray cluster at ``address``, or start a local runtime of ``workers`` CPUs; returns ``ray``."""
    ray = import_ray()
    if not ray.is_initialized():
        try:
            if address is None:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except ConnectionError as exc:
            raise VsegError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return ray


def _cause(error: BaseException) -> BaseException:
    """The exception a Ray task raised, out of Ray's wrapper."""
    return getattr(error, "cause", None) or error


def ray_map(fn: Callable, jobs: Iterable, address: str | None, workers: int) -> Iterator[tuple[Any, Any, Any]]:
    """``fn`` over ``jobs`` as Ray tasks of one CPU each."""
    ray = start_ray(address, workers)
    task = ray.remote(num_cpus=1)(fn)
    pending = {task.remote(job): job for job in jobs}
    yield from _as_completed(ray, pending)


def _as_completed(ray, pending: dict) -> Iterator[tuple[Any, Any, Any]]:
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            job = pending.pop(ref)
            try:
                yield job, ray.get(ref), None
            except Exception as exc:  # noqa: BLE001 - the task's error, handed to the caller
                yield job, None, _cause(exc)


class FeatureWorker:
    """A Ray actor's state: the encoder, loaded once; ``features(job, found)`` gives a video's shot features and the
    encoder's name."""

    def __init__(self, encoder: str, device: str, image_size: int):
        from vseg.scenes.detect import load_models

        self.models = load_models(encoder, None, device, image_size)

    def features(self, job, found):
        from vseg.scenes.detect import shot_features

        return shot_features(found, self.models, job.config), self.models.encoder_name


def ray_scenes(
    prepare: Callable,
    finish: Callable,
    jobs: list,
    address: str | None,
    workers: int,
    encoder: str,
    device: str,
    image_size: int,
) -> Iterator[tuple[Any, Any, Any]]:
    """With an encoder: each video's ``prepare(job)`` (its shots and keyframes) and ``finish(job, found,
    features)`` are Ray tasks, its features come from one of ``workers`` :class:`FeatureWorker` actors (one GPU each
    where the cluster has GPUs, else one CPU); Ray passes the results from one to the next."""
    ray = start_ray(address, workers)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    # an actor holds a GPU where there are some, and no CPU slot (the tasks that feed it need those)
    actor = ray.remote(FeatureWorker).options(num_gpus=1 if gpus else 0, num_cpus=0)
    actors = [actor.remote(encoder, device, image_size) for _ in range(max(1, min(workers, gpus)))]
    prepare_task, finish_task = ray.remote(num_cpus=1)(prepare), ray.remote(num_cpus=1)(finish)
    pending = {}
    for index, job in enumerate(jobs):
        found = prepare_task.remote(job)
        features = actors[index % len(actors)].features.remote(job, found)
        pending[finish_task.remote(job, found, features)] = job
    yield from _as_completed(ray, pending)
