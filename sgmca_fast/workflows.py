"""Workflows on files: the demo, separating a cube, training a model, evaluating.

Each function does what one ``sgmca-fast`` command does and returns a small
summary object (what was computed, the files written, the timings) instead of
printing; the command line only parses its options, calls one of these and prints
the summary. They are usable from Python as they are::

    from sgmca_fast import workflows

    demo = workflows.demo("sgmca-demo", size=64)
    run = workflows.separate_file("sgmca-demo/cube.npy", "out", n_sources=4,
                                  models=["sync", "thermal", "gauss:2"])
    print(run.metrics, run.outputs)

Every function checks its outputs before any work: an existing file (without
``force``), a folder where nothing can be written, or a FITS output without
astropy fails at once, not after the computation. Bad input (a missing or
unreadable file, an inconsistent shape, an unknown option value) raises
:class:`sgmca_fast._validation.InputError`, a ``ValueError`` whose message names
the file or option; any other exception is a bug.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import _io
from ._summaries import (
    BinSummary,
    DemoSummary,
    Evaluation,
    ModelInfo,
    SeparationSummary,
    TrainingSummary,
    json_text,
    jsonable,
)
from ._validation import InputError, integer, real
from ._workflow_common import Log, estimate_arrays, have_matplotlib, say, write_json
from ._workflow_models import model_file
from ._workflow_separate import separate_file

# The summary classes and ``jsonable`` are public here, beside the workflows.
__all__ = [
    "BinSummary", "DemoSummary", "Evaluation", "ModelInfo", "SeparationSummary",
    "TrainingSummary", "jsonable",
    "bin_events", "demo", "evaluate_files", "model_info", "separate_file",
    "train_file",
]

DEMO_MIN_SIZE = 16
"""Smallest demo image side in pixels (what the source images need)."""

# ---------------------------------------------------------------------------- demo


def _demo_files(out: Path, figures: bool) -> dict[str, Path]:
    names = ["truth.npz", "cube.npy", "sgmca.npz", "gmca.npz", "metrics.json"]
    if figures:
        names += ["spectra.png", "sources_sgmca.png", "sources_gmca.png",
                  "convergence_sgmca.png"]
    return {name.split(".")[0]: out / name for name in names}


def _demo_figures(files, mix, res_s, res_g, force):
    from . import datasets, plots

    energy = datasets.energy_grid(mix.X.shape[0])
    plots.plot_spectra({"sGMCA": res_s.A, "GMCA": res_g.A}, mix.A0,
                       names=mix.names, energy=energy, path=files["spectra"],
                       force=force,
                       title="Spectra: estimates (solid) and truth (dashed)")
    for key, label, res in (("sources_sgmca", "sGMCA", res_s),
                            ("sources_gmca", "GMCA", res_g)):
        plots.plot_sources(res.S, mix.S0, A=res.A, A0=mix.A0, names=mix.names,
                           path=files[key], force=force,
                           title=f"{label} sources (log scale)")
    plots.plot_history(res_s, path=files["convergence_sgmca"], force=force,
                       title="sGMCA convergence")


def demo(out="sgmca-demo", *, size: int = 128, snr_db: float = 40.0, seed: int = 0,
         force: bool = False, figures: bool = True, progress: bool = False,
         log: Log = None) -> DemoSummary:
    """Separate the built-in synthetic cube with sGMCA and GMCA and save everything.

    The mixture is :func:`sgmca_fast.datasets.make_demo_mixture` (4 sources, 75
    channels); sGMCA uses the built-in models sync, thermal and gauss (x2). Writes
    to ``out``: ``cube.npy`` (the mixed cube X, (J, H, W)), ``truth.npz`` (A, S,
    N, names), ``sgmca.npz`` and ``gmca.npz`` (A, S, mapping, model_fit),
    ``metrics.json`` and, with matplotlib, four PNG figures.

    Parameters
    ----------
    out : str or os.PathLike, optional
        Output folder, made if missing.
    size : int, optional
        Image side in pixels (at least 16).
    snr_db : float, optional
        Signal-to-noise ratio in dB.
    seed : int, optional
        Seed of the sources, spectra, noise and both separations.
    force : bool, optional
        Overwrite existing outputs.
    figures : bool, optional
        Draw the figures (skipped anyway without matplotlib).
    progress : bool, optional
        Show progress bars.
    log : callable, optional
        Called with a one-line description of the mixture before the work.

    Returns
    -------
    DemoSummary
    """
    from . import gmca, metrics, separate
    from .data import builtin_models
    from .datasets import make_demo_mixture

    size = integer(size, "size")
    if size < DEMO_MIN_SIZE:
        raise InputError(f"size must be at least {DEMO_MIN_SIZE} pixels, got {size}")
    snr_db = real(snr_db, "snr_db")
    seed = integer(seed, "seed")
    out = Path(out)
    figures = figures and have_matplotlib()
    files = _demo_files(out, figures)
    _io.check_folder(out)
    _io.check_writable(files.values(), force, in_new_folder=True)

    t0 = time.perf_counter()
    mix = make_demo_mixture(size=size, snr_db=snr_db, random_state=seed)
    built = builtin_models()
    models = {built["sync"]: 1, built["thermal"]: 1, built["gauss"]: 2}
    say(log, f"demo mixture: {mix.X.shape[0]} channels, {size}x{size} pixels, 4 "
              f"sources {mix.names}, SNR {snr_db:g} dB, seed {seed}")
    res_s = separate(mix.X, 4, models, noise_std=mix.noise_std, random_state=seed,
                     progress=progress)
    res_g = gmca(mix.X, 4, noise_std=mix.noise_std, random_state=seed,
                 progress=progress)
    scores = {
        "sGMCA": metrics.evaluate(mix.A0, mix.S0, res_s.A, res_s.S, noise=mix.N),
        "GMCA": metrics.evaluate(mix.A0, mix.S0, res_g.A, res_g.S, noise=mix.N),
    }
    out.mkdir(parents=True, exist_ok=True)
    _io.write_npy(files["cube"], mix.X, force=force)
    _io.write_npz(files["truth"], {"A": mix.A0, "S": mix.S0, "N": mix.N,
                                   "names": np.array(mix.names, dtype=str)},
                  force=force)
    _io.write_npz(files["sgmca"], estimate_arrays(res_s), force=force)
    _io.write_npz(files["gmca"], estimate_arrays(res_g), force=force)
    if figures:
        _demo_figures(files, mix, res_s, res_g, force)
    summary = DemoSummary(
        out=out, size=size, snr_db=snr_db, seed=seed, shape=mix.X.shape,
        source_names=tuple(mix.names), metrics=scores, mapping=list(res_s.mapping),
        n_iter=dict(res_s.n_iter),
        seconds={"sGMCA": res_s.timings["total"], "GMCA": res_g.timings["total"]},
        total_seconds=math.nan, files=files, figures=figures,
    )
    write_json(files["metrics"], json_text(summary.to_dict()), force)
    return replace(summary, total_seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- train


def _npz_keys(path: Path) -> set[str]:
    if not path.name.lower().endswith(".npz") or not path.is_file():
        return set()
    try:
        with np.load(path, allow_pickle=False) as data:
            return set(data.files) if hasattr(data, "files") else set()
    except Exception:  # noqa: BLE001 - read_spectra reports the problem properly
        return set()


def _anchors(anchors, spectra: np.ndarray, spectra_path: Path, keys) -> np.ndarray:
    """Anchors: a spectra file, comma-separated rows of SPECTRA, or its 'anchors'."""
    if anchors is None:
        if "anchors" in keys:
            return _io.read_spectra(spectra_path, "anchors")
        raise InputError(
            f"{spectra_path}: no anchors; give --anchors FILE or --anchors 0,5,9 "
            "(rows of SPECTRA)"
        )
    if isinstance(anchors, (list, tuple)):
        anchors = ",".join(map(str, anchors))
    text = os.fspath(anchors).strip()
    if text and all(part.strip().lstrip("-").isdigit() for part in text.split(",")):
        rows = [int(part) for part in text.split(",")]
        n = spectra.shape[0]
        bad = [r for r in rows if not -n <= r < n]
        if bad:
            raise InputError(
                f"--anchors: row(s) {bad} out of range for {spectra_path}, which "
                f"holds {n} spectra"
            )
        return spectra[rows]
    return _io.read_spectra(text)


def _phase_counts(history: dict) -> tuple[int, int]:
    """Adam epochs and L-BFGS iterations run; entry 0 of the history is the start."""
    phases = list(history["phase"])[1:]
    return phases.count("adam"), phases.count("lbfgs")


def _median_sad(model, spectra: np.ndarray) -> float:
    """Median SAD (dB) of the fast projection of spectra (n, J) on the model."""
    from .metrics import sad

    estimate = model.fast_project(spectra)[0]
    # one spectrum at a time: sad() wants at least as many channels as columns
    return float(np.median([sad(x[:, None], y[:, None])
                            for x, y in zip(spectra, estimate, strict=True)]))


def train_file(spectra, out, *, anchors=None, valid=None, key: str | None = None,
               name: str | None = None, seed: int = 0, max_epochs: int | None = None,
               lbfgs_iter: int | None = None, layers: int = 4, force: bool = False,
               progress: bool = False, log: Log = None) -> TrainingSummary:
    """Train an IAE model on spectra from a file and save it as ONNX.

    Parameters
    ----------
    spectra : str or os.PathLike
        Training spectra, one a row (n, J): ``.npy``, ``.npz``, ``.csv`` or FITS.
        An ``.npz`` with arrays ``train``, ``anchors``, ``valid`` (like
        :func:`sgmca_fast.datasets.make_spectra_sets`) gives all three.
    out : str or os.PathLike
        The model file (``.onnx``).
    anchors : str, os.PathLike or sequence of int, optional
        A spectra file, or rows of ``spectra`` (``"0,5,9"`` or ``[0, 5, 9]``);
        at least 2. Default: the ``anchors`` array of an ``.npz``.
    valid : str or os.PathLike, optional
        Validation spectra (early stopping, the reported SAD). Default: the
        ``valid`` array of an ``.npz``, if any.
    key : str, optional
        Array of an ``.npz`` to train on (default ``train`` when present).
    name : str, optional
        Family name stored in the model (default: the file name's stem).
    seed : int, optional
        Training seed.
    max_epochs, lbfgs_iter : int, optional
        Adam epochs and L-BFGS iterations (default: :func:`sgmca_fast.iae.train`'s).
    layers : int, optional
        Layers of the encoder and of the decoder.
    force : bool, optional
        Overwrite an existing ``out``.
    progress : bool, optional
        Show a progress bar.
    log : callable, optional
        Called with a one-line description of the training set before the work.

    Returns
    -------
    TrainingSummary
    """
    from .iae import train

    out = Path(out)
    _io.check_writable([out], force)
    spectra_path = Path(spectra)
    keys = _npz_keys(spectra_path)
    X = _io.read_spectra(spectra_path, key or ("train" if "train" in keys else None))
    A = _anchors(anchors, X, spectra_path, keys)
    if valid is not None:
        V = _io.read_spectra(valid)
    else:
        V = _io.read_spectra(spectra_path, "valid") if "valid" in keys else None
    for label, arr in (("--anchors", A), ("--valid", V)):
        if arr is not None and arr.shape[1] != X.shape[1]:
            raise InputError(
                f"{label} spectra have {arr.shape[1]} channels but {spectra_path} "
                f"has {X.shape[1]}"
            )
    if A.shape[0] < 2:
        raise InputError(f"--anchors: need at least 2 anchor spectra, got "
                         f"{A.shape[0]}")
    name = name if name is not None else spectra_path.stem
    say(log, f"training {name!r}: {X.shape[0]} spectra, {X.shape[1]} channels, "
              f"{A.shape[0]} anchors, "
              f"{'no' if V is None else V.shape[0]} validation spectra")
    options = {k: v for k, v in (("max_epochs", max_epochs),
                                 ("lbfgs_iter", lbfgs_iter)) if v is not None}
    model = train(X, A, V, n_layers=layers, random_state=seed, progress=progress,
                  name=name, **options)
    _io.atomic_write(out, model.save, force=force)
    which, check = ("validation", V) if V is not None else ("training", X)
    epochs, iterations = _phase_counts(model.history)
    training = dict(model.metadata.get("training", {}))
    training.pop("epochs_run", None)
    return TrainingSummary(
        path=out, name=name, n_channels=model.n_channels, n_anchors=model.n_anchors,
        n_spectra=X.shape[0], n_valid=None if V is None else V.shape[0],
        checked_on=which, sad_db=_median_sad(model, check), epochs=epochs,
        lbfgs_iterations=iterations, training=training, model=model,
    )


# ------------------------------------------------------------------ evaluate, info


def evaluate_files(estimate, truth, *, sources: Sequence[int] | None = None
                   ) -> Evaluation:
    """SAD, SDR, SIR, SNR and SAR of an estimate file against a truth file.

    Parameters
    ----------
    estimate, truth : str or os.PathLike
        ``.npz`` or FITS files with A (J, I) and S (I, H, W) or (I, P); the
        truth's noise N, when present, gives the SNR.
    sources : sequence of int, optional
        True sources the source metrics are summed over.

    Returns
    -------
    Evaluation
    """
    from . import metrics

    est = _io.read_estimate(estimate)
    true = _io.read_estimate(truth)
    A, S, A0, S0 = est["A"], est["S"], true["A"], true["S"]
    if A.shape != A0.shape:
        raise InputError(
            f"{estimate}: A has shape {A.shape} but the truth {truth} has {A0.shape}"
        )
    if S.reshape(S.shape[0], -1).shape != S0.reshape(S0.shape[0], -1).shape:
        raise InputError(
            f"{estimate}: S has shape {S.shape} but the truth {truth} has {S0.shape}"
        )
    noise = true.get("N")
    if noise is not None and noise.shape[1:] != S0.shape[1:]:
        noise = None
    scores = metrics.evaluate(A0, S0, A, S.reshape(S0.shape), noise=noise,
                              sources=sources)
    return Evaluation(os.fspath(estimate), os.fspath(truth), scores,
                      noise is not None)


def model_info(model) -> ModelInfo:
    """Describe a model file: family, channels, anchors, network, training.

    Parameters
    ----------
    model : str or os.PathLike
        An ``.onnx`` file, or a built-in model name (gauss, sync, thermal).

    Returns
    -------
    ModelInfo
    """
    from . import iae
    from .data import BUILTIN_MODELS

    where = os.fspath(model)
    builtin = where in BUILTIN_MODELS and not Path(where).exists()
    path = model_file(where, builtin)
    loaded = iae.load(path)
    fields = {
        "file": str(path),
        "size_kB": round(path.stat().st_size / 1024, 1),
        "family": loaded.name,
        **loaded.settings(),
        "package_version": getattr(loaded, "package_version", None),
        "training_spectra": (None if loaded.training_spectra is None
                             else int(loaded.training_spectra.shape[0])),
    }
    return ModelInfo(fields, loaded.metadata.get("training", loaded.metadata))


# ----------------------------------------------------------------------------- bin


def bin_events(events, out, *, force: bool = False, **options) -> BinSummary:
    """Bin a photon event list into a FITS count cube ``out`` (``sgmca-fast bin``).

    ``options`` are those of :func:`sgmca_fast.events.bin_events` (``energy``,
    ``channels``, ``log``, ``binning``, ``box``, ``world_box``, ``columns``,
    ``gain``, ``ext``); the cube is written by
    :func:`sgmca_fast.events.write_counts_cube`, ``force`` replacing a file.
    """
    from . import events as ev

    if not _io.is_fits(out):
        raise InputError(f"{out}: the count cube is written as FITS (.fits)")
    _io.check_writable([out], force)
    t0 = time.perf_counter()
    cube = ev.bin_events(events, **options)
    out, h = ev.write_counts_cube(out, cube, force=force), cube.header
    return BinSummary(os.fspath(events), out, cube.data.shape, int(h["EV_ROWS"]),
                      int(h["EV_BAND"]), int(h["EV_KEPT"]),
                      time.perf_counter() - t0, list(cube.notes), cube)
