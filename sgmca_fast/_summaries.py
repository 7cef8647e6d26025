"""The summaries the workflows return: what was computed, written and how long.

Plain frozen dataclasses, each with ``to_dict()`` giving the JSON summary the
command line prints with ``--json``; :func:`jsonable` makes such a dict JSON-safe.
Public through :mod:`sgmca_fast.workflows`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "BinSummary",
    "DemoSummary",
    "Evaluation",
    "ModelInfo",
    "SeparationSummary",
    "TrainingSummary",
    "jsonable",
]


def jsonable(value):
    """Return a JSON-safe copy: non-finite floats become None, arrays lists.

    Parameters
    ----------
    value : object
        Nested dicts, lists, tuples, numpy arrays and scalars, paths.

    Returns
    -------
    object
        Built from dict, list, str, int, float (finite) and None.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def json_text(summary: dict) -> str:
    """Return ``summary`` as indented JSON, non-finite numbers as null."""
    return json.dumps(jsonable(summary), indent=2)


def _missing_dict(info) -> dict | None:
    if info is None:
        return None
    return {"n_missing": info.n_missing,
            "n_voxels": info.n_channels * info.n_pixels,
            "dead_channels": list(info.dead_channels),
            "n_empty_pixels": info.n_empty_pixels,
            "n_scattered": info.n_scattered, "text": str(info)}


def _estimate_dict(estimate) -> dict | None:
    if estimate is None:
        return None
    return {"n_sources": estimate.n_sources, "method": estimate.method,
            "threshold": estimate.threshold, "evidence": estimate.evidence,
            "eigenvalues": np.asarray(estimate.eigenvalues)[:20]}


def _axis_dict(axis) -> dict | None:
    if axis is None:
        return None
    return {"quantity": axis.quantity, "unit": axis.unit, "ctype": axis.ctype,
            "first": axis.values[0], "last": axis.values[-1]}


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`demo` computed and wrote.

    Attributes
    ----------
    out : pathlib.Path
        The output folder.
    size, snr_db, seed : int, float, int
        The mixture's settings.
    shape : tuple of int
        Shape of the mixed cube, (J, H, W).
    source_names : tuple of str
        Names of the true sources.
    metrics : dict
        ``{"sGMCA": scores, "GMCA": scores}``, each :func:`sgmca_fast.metrics.evaluate`.
    mapping : list
        Model of each sGMCA source.
    n_iter : dict
        sGMCA's ``{"blind": int, "semiblind": int}`` iterations.
    seconds : dict
        ``{"sGMCA": s, "GMCA": s}``: each separation's total time.
    total_seconds : float
        Wall time of the whole demo, writing included.
    files : dict of str to pathlib.Path
        Every file written, in writing order of the listing.
    figures : bool
        False when matplotlib is missing and the figures were skipped.
    """

    out: Path
    size: int
    snr_db: float
    seed: int
    shape: tuple
    source_names: tuple
    metrics: dict
    mapping: list
    n_iter: dict
    seconds: dict
    total_seconds: float
    files: dict
    figures: bool

    def to_dict(self) -> dict:
        """Return the summary saved as ``metrics.json``."""
        return {
            "command": "demo",
            "size": self.size, "snr_db": self.snr_db, "seed": self.seed,
            "metrics": self.metrics,
            "mapping": self.mapping,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class SeparationSummary:
    """What :func:`separate_file` computed and wrote.

    Attributes
    ----------
    cube : str
        The cube file, as given.
    shape : tuple of int
        Shape of the cube, channels first.
    n_sources : int
    method : {"sGMCA", "GMCA"}
    models : list of dict
        Per model: ``name``, ``path``, ``count``, ``builtin``.
    mapping, model_fit, n_iter, seconds, reseeded
        From the :class:`sgmca_fast.Separation` (``seconds`` is its ``timings``,
        ``reseeded`` its ``history["reseeded"]``).
    confidence : list of float or None
        ``Separation.confidence``: per source, in [0, 1].
    outputs : dict of str to pathlib.Path
        Every file written.
    metrics : dict or None
        :func:`sgmca_fast.metrics.evaluate` against ``truth``, when given (on
        the pixels the estimate covers).
    result : sgmca_fast.Separation
        The separation itself (A, S, history).
    missing : sgmca_fast.cube.MissingSummary or None
        The voxels treated as missing (NaN, mask, unknown variance).
    noise : str
        Where the noise level came from (given, a variance, or estimated).
    noise_std : (J,) ndarray or None
        The per-channel noise std the solver used, when it reports it.
    n_sources_estimate : sgmca_fast.noise.NSourcesEstimate or None
        With ``-n auto``: the estimate and its evidence.
    fixed : list of dict
        Per fixed spectrum: ``source`` (index), ``name``, ``file``.
    spectral_axis : sgmca_fast.cube.SpectralAxis or None
        The cube's spectral coordinate.
    notes : list of str
        What the reader assumed or left out.
    """

    cube: str
    shape: tuple
    n_sources: int
    method: str
    models: list
    mapping: list
    model_fit: list
    n_iter: dict
    seconds: dict
    reseeded: list
    outputs: dict
    metrics: dict | None
    result: object = field(repr=False)
    missing: object = None
    noise: str = ""
    noise_std: object = field(default=None, repr=False)
    n_sources_estimate: object = None
    fixed: list = field(default_factory=list)
    spectral_axis: object = None
    notes: list = field(default_factory=list)
    confidence: list | None = None

    def to_dict(self) -> dict:
        """Return the JSON summary (``--json``): everything but ``result``."""
        summary = {
            "command": "separate",
            "cube": self.cube, "shape": list(self.shape), "n_sources": self.n_sources,
            "method": self.method, "models": self.models,
            "mapping": self.mapping, "model_fit": self.model_fit,
            "confidence": self.confidence,
            "n_iter": self.n_iter, "seconds": self.seconds,
            "reseeded": self.reseeded,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "missing": _missing_dict(self.missing),
            "noise": self.noise,
            "n_sources_estimate": _estimate_dict(self.n_sources_estimate),
            "fixed": self.fixed,
            "spectral_axis": _axis_dict(self.spectral_axis),
            "notes": self.notes,
        }
        if self.noise_std is not None:
            std = np.asarray(self.noise_std, dtype=np.float64)
            summary["noise_std_range"] = [float(np.nanmin(std)),
                                          float(np.nanmax(std))]
        if self.metrics is not None:
            summary["metrics"] = self.metrics
        return summary

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON (non-finite numbers as null)."""
        return json_text(self.to_dict())


@dataclass(frozen=True)
class TrainingSummary:
    """What :func:`train_file` trained and wrote.

    Attributes
    ----------
    path : pathlib.Path
        The model file written.
    name : str
        Family name stored in the model.
    n_channels, n_anchors : int
    n_spectra : int
        Training spectra.
    n_valid : int or None
        Validation spectra, None without.
    checked_on : {"validation", "training"}
        The set the median SAD is measured on.
    sad_db : float
        Median SAD (dB) of the fast projection of that set on the model.
    epochs : int
        Adam epochs run (at most ``max_epochs``).
    lbfgs_iterations : int
        L-BFGS iterations run after Adam (at most ``lbfgs_iter``).
    training : dict
        The training settings stored in the model (``metadata["training"]``),
        without its ``epochs_run``, which counts both phases together.
    model : sgmca_fast.iae.IAEModel
    """

    path: Path
    name: str
    n_channels: int
    n_anchors: int
    n_spectra: int
    n_valid: int | None
    checked_on: str
    sad_db: float
    epochs: int
    lbfgs_iterations: int
    training: dict
    model: object = field(repr=False)

    def to_dict(self) -> dict:
        """Return the JSON summary (``--json``)."""
        return {
            "model": str(self.path), "name": self.name,
            "n_channels": self.n_channels, "n_anchors": self.n_anchors,
            f"{self.checked_on}_sad": self.sad_db,
            "epochs": self.epochs, "lbfgs_iterations": self.lbfgs_iterations,
            "training": self.training,
        }


@dataclass(frozen=True)
class Evaluation:
    """Metrics of an estimate file against a truth file (:func:`evaluate_files`).

    Attributes
    ----------
    estimate, truth : str
        The files, as given.
    metrics : dict
        :func:`sgmca_fast.metrics.evaluate`.
    has_noise : bool
        Whether the truth held a usable noise N (else the SNR is inf).
    """

    estimate: str
    truth: str
    metrics: dict
    has_noise: bool

    def to_dict(self) -> dict:
        """Return the JSON summary (``--json``)."""
        return {"estimate": self.estimate, "truth": self.truth, **self.metrics}


@dataclass(frozen=True)
class ModelInfo:
    """Description of a model file (:func:`model_info`).

    Attributes
    ----------
    fields : dict
        ``file``, ``size_kB``, ``family``, the network settings
        (``IAEModel.settings()``), ``package_version``, ``training_spectra``.
    training : dict
        The training settings stored in the file.
    """

    fields: dict
    training: dict

    def to_dict(self) -> dict:
        """Return the JSON summary (``--json``)."""
        return {**self.fields, "training": self.training}


@dataclass(frozen=True)
class BinSummary:
    """What :func:`bin_events` read, kept and wrote.

    Attributes
    ----------
    events : str
        The event list, as given.
    output : pathlib.Path
        The FITS count cube written.
    shape : tuple of int
        ``(J, H, W)``.
    n_rows, n_band, n_kept : int
        Rows (photons) read, in the energy band, and binned (in the band and
        the box).
    seconds : float
        Wall time, writing included.
    notes : list of str
        What the reader assumed (e.g. an energy column without unit).
    cube : sgmca_fast.cube.Cube
        The count cube itself.
    """

    events: str
    output: Path
    shape: tuple
    n_rows: int
    n_band: int
    n_kept: int
    seconds: float
    notes: list
    cube: object = field(repr=False)

    def to_dict(self) -> dict:
        """Return the JSON summary (``--json``): everything but ``cube``."""
        return {"command": "bin", "events": self.events, "output": str(self.output),
                "shape": list(self.shape), "n_rows": self.n_rows,
                "n_band": self.n_band, "n_kept": self.n_kept,
                "seconds": self.seconds, "notes": self.notes}
