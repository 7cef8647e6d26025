"""How well a model represents spectra: the SAD of their projections, in dB."""

from __future__ import annotations

import numpy as np

from .. import metrics

__all__ = ["median_sad", "sad_rows"]


def sad_rows(truth, estimate) -> np.ndarray:
    """SAD (dB, ``-10 log10`` of the angle in radians) of each row pair.

    :func:`sgmca_fast.metrics.sad` with ``per_source=True`` on the spectra as
    columns; it takes a mixing matrix (at most as many columns as channels), so
    the rows go in groups of that size.

    Parameters
    ----------
    truth, estimate : (k, J) ndarray
        Spectra, one a row.

    Returns
    -------
    sad : (k,) ndarray
    """
    truth = np.asarray(truth, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    n = truth.shape[1]
    return np.concatenate([
        metrics.sad(truth[i:i + n].T, estimate[i:i + n].T, per_source=True)
        for i in range(0, truth.shape[0], n)
    ])


def median_sad(model, spectra, full: bool = False) -> float:
    """Median SAD (dB) of the projection of spectra on a model.

    Parameters
    ----------
    model : IAEModel
    spectra : (k, J) ndarray
    full : bool, optional
        The least-squares projection (:meth:`IAEModel.project`, the paper's
        Eq. 10 and its Table 2) instead of the fast (encoder) one.

    Returns
    -------
    sad : float
    """
    if full:
        estimate = model.project(spectra).spectra
    else:
        estimate = model.fast_project(spectra)[0]
    return float(np.median(sad_rows(spectra, estimate)))
