"""asv benchmarks of the Numba kernels on the paper's size, each against numpy.

Size: 4 sources x 2 detail scales = 8 rows of 346 * 346 pixels (the Cas A cube);
the non-negativity step works on (4, 3, 346 * 346) (2 detail scales + coarse).
"""

import numpy as np

from sgmca_fast import _kernels, get_num_threads, set_num_threads

N_SOURCES = 4
N_SCALES = 2
N_PIX = 346 * 346


def _numpy_support_thresholds(x, thr, fraction, min_count=5):
    ax = np.abs(x)
    out = np.empty(x.shape[0])
    for r in range(x.shape[0]):
        npix = int(np.count_nonzero(ax[r] > thr[r]))
        kval = min(max(int(fraction * npix), min_count), ax.shape[1])
        k = ax.shape[1] - kval
        out[r] = np.partition(ax[r], k)[k]
    return out


class KernelSuite:
    """mad_std, support_thresholds, threshold and nonneg_sources, kernel vs numpy."""

    params = [1, 2]
    param_names = ["threads"]

    def setup(self, threads):
        rng = np.random.default_rng(0)
        self.x = rng.laplace(size=(N_SOURCES * N_SCALES, N_PIX))
        self.prev = rng.laplace(size=self.x.shape)
        self.out = np.empty_like(self.x)
        self.thr = np.full(self.x.shape[0], 3.0)
        self.kstd = np.full(self.x.shape[0], 3.0)
        self.w = rng.standard_normal((N_SOURCES, N_SCALES + 1, N_PIX))
        self.w_work = self.w.copy()
        self.threads_before = get_num_threads()
        set_num_threads(threads)
        # compile (or load from the cache) outside the timings
        _kernels.mad_std(self.x)
        _kernels.support_thresholds(self.x, self.thr, 0.3)
        _kernels.threshold(self.x, self.thr, out=self.out)
        _kernels.threshold(
            self.x, self.thr, prev=self.prev, kstd=self.kstd, out=self.out
        )
        _kernels.nonneg_sources(self.w_work)

    def teardown(self, threads):
        set_num_threads(self.threads_before)

    def time_mad_std(self, threads):
        _kernels.mad_std(self.x)

    def time_mad_std_numpy(self, threads):
        med = np.median(self.x, axis=1, keepdims=True)
        np.median(np.abs(self.x - med), axis=1) / 0.6745

    def time_support_thresholds(self, threads):
        _kernels.support_thresholds(self.x, self.thr, 0.3)

    def time_support_thresholds_numpy(self, threads):
        _numpy_support_thresholds(self.x, self.thr, 0.3)

    def time_threshold_soft(self, threads):
        _kernels.threshold(self.x, self.thr, out=self.out)

    def time_threshold_soft_numpy(self, threads):
        t = self.thr[:, None]
        np.sign(self.x) * np.maximum(np.abs(self.x) - t, 0.0)

    def time_threshold_reweighted(self, threads):
        _kernels.threshold(
            self.x, self.thr, prev=self.prev, kstd=self.kstd, out=self.out
        )

    def time_threshold_reweighted_numpy(self, threads):
        t = self.thr[:, None] / (np.abs(self.prev) / self.kstd[:, None] + 1.0)
        np.sign(self.x) * np.maximum(np.abs(self.x) - t, 0.0)

    def time_nonneg_sources(self, threads):
        # same data every call: copy first (the copy is timed in both methods)
        np.copyto(self.w_work, self.w)
        _kernels.nonneg_sources(self.w_work)

    def time_nonneg_sources_numpy(self, threads):
        np.copyto(self.w_work, self.w)
        negative = self.w_work.sum(axis=1) < 0
        self.w_work *= ~negative[:, None, :]

    def peakmem_mad_std(self, threads):
        _kernels.mad_std(self.x)
