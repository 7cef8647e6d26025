"""Regenerate the built-in IAE models: ``python -m sgmca_fast.data._make_models``.

Each family of :mod:`sgmca_fast.datasets` is trained with :func:`sgmca_fast.iae.train`
on ``make_spectra_sets(name)`` (its default seed 0: anchors, 600 training and 200
validation spectra) with the fixed settings below, then saved as ``{name}.onnx``
next to this file (or in ``--out``). The result is deterministic for a given numpy,
scipy and BLAS. Prints the median validation SAD (dB) of each model, computed with
the saved file through onnxruntime, and on an independent test set (seed 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .. import datasets, iae
from ..datasets import FAMILIES
from ..iae import median_sad

__all__ = ["make_model", "median_sad", "main"]

SEED = 0  # training seed (weights, mini-batch order)
TEST_SEED = 1  # seed of the independent test spectra
# Kept in the file for the solver's lost-source reseeding; a subset keeps it small.
N_KEPT_TRAINING_SPECTRA = 200
SETTINGS = {
    "n_layers": 4,
    "activation": "leaky_relu",
    "optimizer": "adam+lbfgs",
    "max_epochs": 2500,
    "lbfgs_iter": 300,
}


def make_model(name: str, out_dir: Path, progress: bool = True) -> dict:
    """Train, save and check the built-in model of one family.

    Parameters
    ----------
    name : {"gauss", "sync", "thermal"}
    out_dir : pathlib.Path
        Folder of the ``{name}.onnx`` file.
    progress : bool
        Show the training progress bar.

    Returns
    -------
    report : dict
        ``path``, ``valid_sad``, ``test_sad`` (dB), ``seconds``, ``epochs``.
    """
    sets = datasets.make_spectra_sets(name)
    t0 = time.perf_counter()
    model = iae.train(
        sets["train"],
        sets["anchors"],
        sets["valid"],
        random_state=SEED,
        progress=progress,
        name=name,
        **SETTINGS,
    )
    seconds = time.perf_counter() - t0
    # an even subset of the training spectra, for the solver's reseeding
    keep = np.linspace(0, len(sets["train"]) - 1, N_KEPT_TRAINING_SPECTRA).round()
    model.training_spectra = sets["train"][keep.astype(int)]  # saved with it
    model.metadata["training"]["made_by"] = "python -m sgmca_fast.data._make_models"
    model.metadata["training"]["data"] = (
        f"sgmca_fast.datasets.make_spectra_sets({name!r}) (seed 0)"
    )
    path = out_dir / f"{name}.onnx"
    model.save(path)
    path.chmod(0o644)  # package data, readable by all (save writes a 0600 temp file)
    loaded = iae.load(path)
    test = datasets.make_spectra_sets(name, random_state=TEST_SEED, n_train=1)["valid"]
    return {
        "path": path,
        "valid_sad": median_sad(loaded, sets["valid"]),
        "valid_sad_full": median_sad(loaded, sets["valid"], full=True),
        "test_sad": median_sad(loaded, test),
        "test_sad_full": median_sad(loaded, test, full=True),
        "seconds": seconds,
        "epochs": model.metadata["training"].get("epochs_run"),
        "size_kb": path.stat().st_size / 1024,
    }


def main(argv=None) -> int:
    """Command line: regenerate the built-in models; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m sgmca_fast.data._make_models",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent,
        help="output folder (default: the package's data folder)",
    )
    parser.add_argument(
        "--families", nargs="+", choices=FAMILIES, default=list(FAMILIES),
        help="families to train (default: all)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    import numpy
    import scipy

    from .._version import __version__

    print(
        f"sgmca-fast {__version__}, numpy {numpy.__version__}, scipy "
        f"{scipy.__version__}; settings {SETTINGS}, seed {SEED}"
    )
    for name in args.families:
        r = make_model(name, args.out, progress=not args.quiet)
        print(
            f"{name:8s} median SAD (fast / full projection): valid "
            f"{r['valid_sad']:.2f} / {r['valid_sad_full']:.2f} dB, test "
            f"{r['test_sad']:.2f} / {r['test_sad_full']:.2f} dB; {r['epochs']} epochs, "
            f"{r['seconds']:.0f} s, {r['size_kb']:.0f} kB -> {r['path']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
