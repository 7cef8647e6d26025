"""asv benchmarks of issue 14's scale cases, at sizes asv can repeat.

The full sizes (Cas A's 2 s, 3,681 x 300^2, 75 x 2048^2, a cube bigger than
memory, the exponent fits over 128^2-1024^2 pixels and 75-3,000 channels) are
``bench/scale_table.py``'s, each in a child process; here the same kinds of
run on smaller cubes, so a change in how time grows with pixels or channels
shows in asv's history:

- ``ChannelsSuite``: ``gmca`` on J x 40 x 40 in memory, J from 75 to 3,681
  (the issue's "3,681 x 40 x 40 in 3 s" at the top), the default full-space
  solver beside ``subspace="auto"``;
- ``PixelsSuite``: ``gmca`` on 75 channels of 128^2 to 512^2 pixels, both
  solvers;
- ``StreamChannelsSuite``: ``separate`` on a float32 memory map with 3,681
  channels (the randomized range finder of the streamed path) and on 75
  channels with the built-in models (sGMCA streamed).

The Cas A cases are ``PipelineSuite`` and ``Float32Suite``; 75-channel GMCA
streamed against in memory is ``StreamSuite``.

Run from bench/: ``asv run --python=same -b "ChannelsSuite|PixelsSuite"``.
"""

import tempfile
from pathlib import Path


def _cube(J, size, seed=0):
    """(J, size, size) mixture of the demo's sources with smooth-bump spectra."""
    import numpy as np

    from sgmca_fast import datasets

    rng = np.random.default_rng(seed)
    channel = np.linspace(0.0, 1.0, J)
    # one family of one spectrum per source: a Gaussian bump on a floor
    families = [(np.exp(-0.5 * ((channel - c) / 0.05) ** 2) + 0.05)[None]
                for c in rng.uniform(0.1, 0.9, 4)]
    return datasets.make_mixture(datasets.make_sources(size, rng), families,
                                 snr_db=40.0, random_state=rng).X


class _GmcaSuite:
    """``gmca(X, 4)`` in memory; subclasses set ``params`` and ``_shape``."""

    number = 1
    repeat = 3
    warmup_time = 0.0
    timeout = 600

    def setup(self, n, subspace):
        import sgmca_fast

        J, size = self._shape(n)
        self.X = _cube(J, size)
        # warm-up (Numba kernels compiled or loaded) on a small cube
        sgmca_fast.gmca(_cube(J, 64, seed=1), 4, subspace=subspace, random_state=0)

    def _run(self, subspace):
        import sgmca_fast

        sgmca_fast.gmca(self.X, 4, subspace=subspace, random_state=0)

    def time_gmca(self, n, subspace):
        self._run(subspace)

    def peakmem_gmca(self, n, subspace):
        self._run(subspace)


class ChannelsSuite(_GmcaSuite):
    """gmca on J x 40 x 40: time against the channel count."""

    params = ([75, 300, 1000, 3681], [None, "auto"])
    param_names = ["channels", "subspace"]

    @staticmethod
    def _shape(n):
        return n, 40


class PixelsSuite(_GmcaSuite):
    """gmca on 75 x n x n: time against the pixel count."""

    params = ([128, 256, 512], [None, "auto"])
    param_names = ["side", "subspace"]

    @staticmethod
    def _shape(n):
        return 75, n


class StreamChannelsSuite:
    """separate() streamed from a float32 memory map: many channels, or sGMCA."""

    params = (["3681x64x64 GMCA", "75x256x256 sGMCA"],)
    param_names = ["cube"]
    number = 1
    repeat = 3
    warmup_time = 0.0
    timeout = 600

    def setup(self, cube):
        import numpy as np

        import sgmca_fast
        from sgmca_fast.data import builtin_model

        J, size = (3681, 64) if cube.startswith("3681") else (75, 256)
        self.models = None
        if "sGMCA" in cube:
            self.models = {builtin_model("sync"): 1, builtin_model("thermal"): 1,
                           builtin_model("gauss"): 2}
        self.tmp = tempfile.TemporaryDirectory()
        path = Path(self.tmp.name) / "cube.npy"
        np.save(path, _cube(J, size).astype(np.float32))
        self.X = np.load(path, mmap_mode="r")
        sgmca_fast.separate(_cube(J, 64, seed=1), 4, self.models, subspace="auto",
                            stream=True, random_state=0, max_iter_semiblind=2)

    def teardown(self, cube):
        self.tmp.cleanup()

    def _run(self):
        import sgmca_fast

        sgmca_fast.separate(self.X, 4, self.models, random_state=0)

    def time_separate(self, cube):
        self._run()

    def peakmem_separate(self, cube):
        self._run()
