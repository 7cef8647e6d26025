"""asv benchmarks of a cube that is not in memory: ``separate`` on a ``np.memmap``.

A float32 .npy of the built-in mixture (the demo's four sources and spectra,
75 channels, 40 dB, seed 0) is memory-mapped and separated with GMCA on the
streamed path (docs/solver.md, "Cubes bigger than memory"), beside the same
separation of the array in memory (``subspace="auto"``): ``peakmem_`` is the
process's peak, so the streamed path shows its bound only on cubes much larger
than its blocks (``bench/large_cube.py`` measures those in a child process).

Run from bench/ (see README.md): ``asv run --python=same -b StreamSuite``.
"""

import tempfile
from pathlib import Path


class StreamSuite:
    """separate() on a memory-mapped cube: streamed vs read into memory."""

    params = ([256, 512], ["streamed", "in memory"])
    param_names = ["size", "input"]
    number = 1
    repeat = 3
    warmup_time = 0.0
    timeout = 600

    def setup(self, size, mode):
        import numpy as np

        import sgmca_fast
        from sgmca_fast import datasets

        self.tmp = tempfile.TemporaryDirectory()
        mix = datasets.make_demo_mixture(size, snr_db=40.0, random_state=0)
        path = Path(self.tmp.name) / "cube.npy"
        np.save(path, mix.X.astype(np.float32))
        self.X = np.load(path, mmap_mode="r")
        if mode == "in memory":
            self.X = np.asarray(self.X, dtype=np.float64)
        small = np.ascontiguousarray(mix.X[:, :32, :32])  # warm-up: Numba kernels
        sgmca_fast.separate(small, 4, subspace="auto", stream=True, random_state=0)

    def teardown(self, size, mode):
        self.tmp.cleanup()

    def _run(self):
        import sgmca_fast

        sgmca_fast.separate(self.X, 4, subspace="auto", random_state=0)

    def time_separate(self, size, mode):
        self._run()

    def peakmem_separate(self, size, mode):
        self._run()
