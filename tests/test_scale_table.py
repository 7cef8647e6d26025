"""The pure parts of bench/scale_table.py and bench/large_cube.py (no heavy case)."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def scale():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("scale_table")
    finally:
        sys.path.remove(str(BENCH))


def test_fit_exponent_recovers_an_exact_power_law(scale):
    n = np.array([128.0, 256, 512, 1024]) ** 2
    exponent, prefactor = scale.fit_exponent(n, 3e-6 * n ** 1.07)
    assert exponent == pytest.approx(1.07, abs=1e-12)
    assert prefactor == pytest.approx(3e-6, rel=1e-10)


def test_fit_exponent_is_the_least_squares_slope_on_log_log(scale):
    n = np.array([75.0, 300, 1000, 3000])
    t = np.array([0.6, 0.9, 3.1, 22.4])
    x, y = np.log(n), np.log(t)
    # the closed form of the least-squares slope: cov(x, y) / var(x)
    slope = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    exponent, prefactor = scale.fit_exponent(n, t)
    assert exponent == pytest.approx(slope, rel=1e-12)
    assert np.log(prefactor) == pytest.approx(y.mean() - slope * x.mean(), rel=1e-12)


def test_verdict_names_each_missed_bound_and_its_ratio(scale):
    T, R = scale.Target, scale.Row
    assert scale.verdict(R("c", "s", seconds=1.5, target=T(seconds=2))) == "met"
    assert scale.verdict(R("c", "s", seconds=3.0, rss=1e9,
                           target=T(seconds=2, rss=2e9))) == "not met (time 1.50x)"
    assert scale.verdict(R("c", "s", seconds=90.0, rss=3e9,
                           target=T(seconds=60, rss=2e9))) == \
        "not met (time 1.50x, RSS 1.50x)"
    assert scale.verdict(R("c", "s", exponent=1.25, target=T(exponent=1.1))) == \
        "not met (exponent 1.25 > 1.1)"
    assert scale.verdict(R("c", "s", exponent=1.0, target=T(exponent=1.1))) == "met"
    assert scale.verdict(R("c", "s", seconds=9.0)) == "reported"
    assert scale.verdict(R("c", "s", seconds=9.0, target=T(seconds=1),
                           quick=True)) == "n/a (quick)"


def test_markdown_table_has_one_cell_per_column_and_the_units(scale):
    T, R = scale.Target, scale.Row
    rows = [R("Cas A", "sGMCA", seconds=1.234, rss=1.5e9, anon=0.5e9, sad=24.0,
              sdr=44.25, target=T(seconds=2)),
            R("fit", "gmca", exponent=1.04, target=T(exponent=1.1)),
            R("big", "GMCA", seconds=600.0, rss=5e9, anon=2e9, target=T(rss=4e9))]
    lines = scale.markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert {line.count("|") for line in lines} == {9}
    assert lines[2] == ("| Cas A | sGMCA | 1.23 s | 1.50 GB | 0.50 GB | 24.00 / 44.25"
                        " | <= 2 s | met |")
    assert "| exponent 1.04 |  |  |  | exponent <= 1.1 | met |" in lines[3]
    assert lines[4].endswith("| 600.00 s | 5.00 GB | 2.00 GB |  | <= 4 GB | "
                             "not met (RSS 1.25x) |")


def test_rss_sampler_sees_an_allocation(scale):
    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc/self/status")
    before = scale.large_cube.RssSampler.read()
    assert before["total"] == before["anon"] + before["file"] > 0
    with scale.large_cube.RssSampler(period=0.01) as rss:
        block = np.ones(25_000_000)  # 200 MB, every page touched
        rss.sample()  # while it is alive: the thread's samples may all miss it
        del block
    # (not 1.0: pages the allocator had freed between the two readings)
    assert rss.peak["anon"] - before["anon"] >= 0.75 * 200e6


def test_write_cube_writes_float32_mixture_and_its_truth(scale, tmp_path):
    large_cube = scale.large_cube
    path = large_cube.cube_path(tmp_path, 75, 32, 0, bumps=True)
    assert path.name == "cube_75x32_s0_bumps.npy"
    large_cube.write_cube(path, 32, 75, 40.0, 0, bumps=True)
    X = np.load(path, mmap_mode="r")
    truth = np.load(path.with_suffix(".truth.npz"))
    assert X.dtype == np.float32 and X.shape == (75, 32, 32)
    A, S, sigma = truth["A"], truth["S"], float(truth["sigma"])
    assert A.shape == (75, 4) and S.shape == (4, 32, 32)
    residual = X.reshape(75, -1) - A @ S.reshape(4, -1)
    # the noise is white with the std written beside it (75 x 1024 draws)
    assert np.std(residual) == pytest.approx(sigma, rel=0.02)
    signal = A @ S.reshape(4, -1)
    snr = 10 * np.log10(np.mean(signal ** 2) / sigma ** 2)
    assert snr == pytest.approx(40.0, abs=0.01)
