"""asv benchmarks of ``separate(dtype=...)``: sGMCA on Cas A in float64 and float32.

The mixtures and models of :mod:`bench_pipeline` (the paper's protocol at 40 dB,
seed 0, noise std known; skipped when ../shared/data/casa is absent). The warm-up
in ``setup`` compiles the Numba kernels for the dtype (float32 is a separate
specialisation) and loads the models, so neither is timed.

Run from bench/: ``asv run --python=same -b Float32Suite``.
"""

from .bench_pipeline import _mixture, _models


class Float32Suite:
    """separate() end to end with the data-sized arrays in float64 or float32."""

    params = ([128, 346], ["float64", "float32"])
    param_names = ["size", "dtype"]
    number = 1
    repeat = 3
    warmup_time = 0.0
    timeout = 600

    def setup(self, size, dtype):
        import sgmca_fast

        self.mix = _mixture(size)
        self.models = _models()
        small = _mixture(32, binning=10)
        sgmca_fast.separate(small.X, 4, self.models, noise_std=small.noise_std,
                            random_state=0, max_iter_semiblind=2, dtype=dtype)

    def _run(self, dtype):
        import sgmca_fast

        return sgmca_fast.separate(self.mix.X, 4, self.models,
                                   noise_std=self.mix.noise_std, random_state=0,
                                   dtype=dtype)

    def time_separate(self, size, dtype):
        self._run(dtype)

    def peakmem_separate(self, size, dtype):
        self._run(dtype)

    def track_sad(self, size, dtype):
        """SAD (dB) of the run: float32 must keep float64's accuracy."""
        from sgmca_fast import metrics

        res = self._run(dtype)
        return metrics.evaluate(self.mix.A0, self.mix.S0, res.A, res.S)["SAD"]

    track_sad.unit = "dB"
