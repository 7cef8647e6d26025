"""asv benchmarks of the starlet transform on the paper's data size."""

import numpy as np

from sgmca_fast import get_num_threads, set_num_threads, starlet


class StarletSuite:
    """Forward and inverse on (75, 346, 346), 2 detail scales."""

    params = (["float64", "float32"], [1, 2])
    param_names = ["dtype", "threads"]

    def setup(self, dtype, threads):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((75, 346, 346)).astype(dtype)
        self.threads_before = get_num_threads()
        set_num_threads(threads)
        self.w = starlet.forward(self.x, 2)

    def teardown(self, dtype, threads):
        set_num_threads(self.threads_before)

    def time_forward(self, dtype, threads):
        starlet.forward(self.x, 2)

    def time_inverse(self, dtype, threads):
        starlet.inverse(self.w)

    def peakmem_forward(self, dtype, threads):
        starlet.forward(self.x, 2)


class Starlet1dSuite:
    """1-D transform of many short signals (spectra-like)."""

    def setup(self):
        self.x = np.random.default_rng(0).standard_normal((100_000, 75))

    def time_forward1d(self):
        starlet.forward1d(self.x, 2)


class ImportSuite:
    """Time to import the package."""

    def timeraw_import(self):
        return "import sgmca_fast"
