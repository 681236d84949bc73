"""The worker pool shared by the prep stages."""

from __future__ import annotations

import pytest

from vseg.parallel import run_jobs


def square_or_fail(n: int) -> int:
    if n == 3:
        raise ValueError("three")
    return n * n


@pytest.mark.parametrize("workers", [1, 2])
def test_every_job_yields_its_result_or_its_error(workers):
    results = {job: (result, error) for job, result, error in run_jobs(square_or_fail, range(6), workers)}
    assert {job: r for job, (r, e) in results.items() if e is None} == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}
    assert isinstance(results[3][1], ValueError) and str(results[3][1]) == "three"


def test_jobs_are_consumed_lazily():
    produced = []

    def jobs():
        for n in range(100):
            produced.append(n)
            yield n

    results = run_jobs(square_or_fail, jobs(), workers=2)
    next(results)
    assert len(produced) <= 4 * 2 + 1
    results.close()
