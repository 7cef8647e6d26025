"""asv benchmarks of the IAE projections (fast and least squares)."""

import os
import tempfile
from pathlib import Path

import numpy as np

# (asv imports this folder as a package: bench/_common.py is not importable here.)
_CASA = Path(__file__).resolve().parents[3] / "shared" / "data" / "casa"


def _model():
    """The authors' sync model if the Cas A data is there, else a seeded one."""
    from sgmca_fast.iae import IAEModel, from_reference

    pkl = _CASA / "reference_models" / "model_sync.pkl"
    if pkl.is_file():
        return from_reference(pkl)
    rng = np.random.default_rng(0)
    J, N, L = 75, 3, 4
    anchors = rng.random((N, J)) + 0.1
    anchors /= anchors.sum(axis=1, keepdims=True)
    ws = [np.eye(J) + rng.standard_normal((J, J)) / (3 * J) for _ in range(2 * L)]
    bs = [np.zeros(J) for _ in range(2 * L)]
    return IAEModel(anchors, ws[:L], bs[:L], ws[L:], bs[L:])


def _spectra(model, k):
    rng = np.random.default_rng(1)
    lam = rng.dirichlet(2 * np.ones(model.n_anchors), size=k)
    a = model.generate(lam) * rng.uniform(0.5, 2.0, size=(k, 1))
    return a + 0.01 * np.abs(a).mean() * rng.standard_normal(a.shape)


class IAEProjectionSuite:
    """fast_project and project on 4 (one solver iteration) and 200 spectra."""

    params = ([4, 200], ["onnxruntime", "numpy"])
    param_names = ["n_spectra", "backend"]

    def setup(self, n_spectra, backend):
        from sgmca_fast.iae import load

        model = _model()
        self._tmp = tempfile.TemporaryDirectory()
        path = os.path.join(self._tmp.name, "model.onnx")
        model.save(path)
        model = load(path, num_threads=1, backend=backend)
        self.model = model
        self.a = _spectra(model, n_spectra)
        # Warm-up: sessions and first calls are not timed.
        self.model.fast_project(self.a)
        self.model.project(self.a)

    def teardown(self, n_spectra, backend):
        self._tmp.cleanup()

    def time_fast_project(self, n_spectra, backend):
        self.model.fast_project(self.a)

    def time_project(self, n_spectra, backend):
        self.model.project(self.a)

    def peakmem_project(self, n_spectra, backend):
        self.model.project(self.a)


class IAELoadSuite:
    """Reading an ONNX model file and building its sessions."""

    def setup(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self._tmp.name, "model.onnx")
        _model().save(self.path)

    def teardown(self):
        self._tmp.cleanup()

    def time_save(self):
        _model().save(self.path)

    def time_load_uncached(self):
        from sgmca_fast.iae import load

        load(self.path, cache=False)
