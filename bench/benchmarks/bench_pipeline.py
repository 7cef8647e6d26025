"""asv benchmarks of the whole pipeline: ``separate`` on Cas A mixtures.

Sizes: 128 x 128 (the central crop of the remnant) and 346 x 346 (the paper's
full images); methods: GMCA (blind stage only) and sGMCA (the authors' three IAE
models, one sync, one thermal, two Gaussian lines). The mixture follows the
paper's protocol (shared/data/casa/README.md) at 40 dB with seed 0, noise std
known. Skipped (NotImplementedError in setup) when ../shared/data/casa is absent.

Run from bench/ (see README.md): ``asv run --python=same -b PipelineSuite``.
A full-size sGMCA call takes ~10 s, so each benchmark is timed on 1 call,
repeated 3 times.
"""

from functools import lru_cache
from pathlib import Path

_CASA = Path(__file__).resolve().parents[3] / "shared" / "data" / "casa"
_FAMILIES = (("sync", 1), ("thermal", 1), ("gauss", 2))


@lru_cache(maxsize=1)
def _casa():
    from sgmca_fast import datasets

    if not _CASA.is_dir():
        raise NotImplementedError(f"Cas A data not found at {_CASA}")
    return datasets.load_casa(_CASA)


@lru_cache(maxsize=1)
def _models():
    from sgmca_fast.iae import from_reference

    casa = _casa()
    return {from_reference(casa.reference_models[f]): n for f, n in _FAMILIES}


def _mixture(size, seed=0, binning=1):
    """Central size x size crop, or first binned by block sums (binning > 1)."""
    from sgmca_fast import datasets

    casa = _casa()
    src = casa.sources
    if binning > 1:
        n, h, w = src.shape
        h, w = h // binning, w // binning
        src = src[:, :h * binning, :w * binning]
        src = src.reshape(n, h, binning, w, binning).sum(axis=(2, 4))
    h, w = src.shape[1:]
    top, left = (h - size) // 2, (w - size) // 2
    src = src[:, top:top + size, left:left + size]
    fam = casa.families
    spectra = [fam["sync"]["valid"], fam["thermal"]["valid"], fam["gauss"]["valid"],
               fam["gauss"]["valid"]]
    return datasets.make_mixture(src, spectra, snr_db=40.0, random_state=seed)


class PipelineSuite:
    """separate() end to end: starlet, blind stage, semi-blind stage, final stage."""

    params = ([128, 346], ["GMCA", "sGMCA"])
    param_names = ["size", "method"]
    number = 1
    repeat = 3
    warmup_time = 0.0
    timeout = 600

    def setup(self, size, method):
        import sgmca_fast

        self.mix = _mixture(size)
        self.models = _models() if method == "sGMCA" else None
        # Warm-up: Numba kernels compiled (or loaded from the cache), models and
        # onnxruntime sessions ready; on the remnant binned to 32 x 32 so it stays
        # short (a central 32 x 32 crop misses three of the sources).
        small = _mixture(32, binning=10)
        sgmca_fast.separate(small.X, 4, self.models, noise_std=small.noise_std,
                            random_state=0, max_iter_semiblind=2)

    def _run(self):
        import sgmca_fast

        return sgmca_fast.separate(self.mix.X, 4, self.models,
                                   noise_std=self.mix.noise_std, random_state=0)

    def time_separate(self, size, method):
        self._run()

    def peakmem_separate(self, size, method):
        self._run()

    def track_sad(self, size, method):
        """SAD (dB) of the run: a timing is only worth its accuracy."""
        from sgmca_fast import metrics

        res = self._run()
        return metrics.evaluate(self.mix.A0, self.mix.S0, res.A, res.S)["SAD"]

    track_sad.unit = "dB"
