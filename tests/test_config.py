"""The thread policy: one count for the package's kernels, BLAS and OpenMP."""

import os
import subprocess
import sys

import numpy as np
import pytest

import sgmca_fast
from sgmca_fast import _config
from sgmca_fast._validation import InputError


def _blas_threads():
    """Threads of every BLAS pool loaded, as threadpoolctl itself reports them."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure numpy's BLAS is loaded
    pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    if not pools:
        pytest.skip("threadpoolctl finds no BLAS library in this numpy")
    return {p["num_threads"] for p in pools}


def test_available_cpus_follows_the_affinity_mask(tmp_path):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert _config.available_cpus() == len(os.sched_getaffinity(0))
    code = "from sgmca_fast import _config; print(_config.available_cpus())"
    try:
        out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code],
                             capture_output=True, text=True, check=True,
                             cwd=tmp_path)  # the installed package, not ./sgmca_fast
    except (FileNotFoundError, subprocess.CalledProcessError):
        pytest.skip("taskset cannot pin a process here")
    assert out.stdout.strip() == "1"


def test_thread_limits_sets_and_restores_every_pool():
    before_pkg = sgmca_fast.get_num_threads()
    before_blas = _blas_threads()
    with sgmca_fast.thread_limits(1):
        assert sgmca_fast.get_num_threads() == 1
        assert _blas_threads() == {1}
        with sgmca_fast.thread_limits(2):  # nested blocks stack
            assert sgmca_fast.get_num_threads() == 2
        assert sgmca_fast.get_num_threads() == 1
        assert _blas_threads() == {1}
    assert sgmca_fast.get_num_threads() == before_pkg
    assert _blas_threads() == before_blas


def test_thread_limits_restores_on_error():
    before = sgmca_fast.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        with sgmca_fast.thread_limits(1):
            raise RuntimeError("boom")
    assert sgmca_fast.get_num_threads() == before


@pytest.mark.parametrize("n", [0, -2, 1.5, "2"])
def test_thread_limits_refuses_bad_counts(n):
    with pytest.raises((InputError, TypeError), match="n"):
        sgmca_fast.thread_limits(n)


def test_separate_runs_under_the_package_thread_count():
    seen = []

    def record(*_):
        seen.append((sgmca_fast.get_num_threads(), _blas_threads()))

    rng = np.random.default_rng(0)
    X = rng.random((3, 2)) @ rng.standard_normal((2, 32, 32)).reshape(2, -1)
    before = sgmca_fast.get_num_threads()
    sgmca_fast.set_num_threads(1)
    try:
        sgmca_fast.separate(X.reshape(3, 32, 32), 2, callback=record, random_state=0)
    finally:
        sgmca_fast.set_num_threads(before)
    assert seen and all(n == 1 and b == {1} for n, b in seen)
