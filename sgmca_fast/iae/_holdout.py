"""Held-out spectra for early stopping when no validation set is given.

Like scikit-learn's ``validation_fraction``: :func:`sgmca_fast.iae.train`
without ``valid`` sets aside a random fraction of the training spectra, trains
on the rest and stops (and keeps the best parameters) on the loss of the
held-out ones, so that the model it returns is chosen on spectra it did not fit.
Rows equal to an anchor are never held out (the anchors are the model's own
points: a loss on them says nothing about generalisation).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import InputError

__all__ = ["split_rows"]


def split_rows(X, anchors, fraction, rng):
    """Choose the rows of ``X`` held out for early stopping.

    Parameters
    ----------
    X : (n, J) ndarray
        Training spectra.
    anchors : (N, J) ndarray
        Anchor spectra; rows of ``X`` equal to one of them are never held out.
    fraction : float
        In ``(0, 1)``: ``ceil(fraction * n)`` rows are held out (at least one,
        and at least one row is left to train on).
    rng : numpy.random.Generator
        Draws the held-out rows (uniformly among the eligible ones).

    Returns
    -------
    fit_rows, held_rows : (n - m,) and (m,) int64 ndarray
        Sorted row indices of ``X`` to train on and to stop on; disjoint, their
        union is ``range(n)``.

    Raises
    ------
    InputError
        When fewer than two rows, or too few rows that are not anchors, make a
        split possible.
    """
    n = X.shape[0]
    m = max(1, math.ceil(fraction * n))
    is_anchor = np.zeros(n, dtype=bool)
    for a in anchors:
        is_anchor |= np.all(X == a, axis=1)
    eligible = np.flatnonzero(~is_anchor)
    if m >= n or m > eligible.size:
        raise InputError(
            f"validation_fraction={fraction:g} would hold out {m} of the {n} "
            f"training spectra ({eligible.size} of them not anchors): at least "
            "one must be left to train on; give more spectra, a smaller "
            "validation_fraction, valid=, or validation_fraction=0."
        )
    held = np.sort(rng.choice(eligible, size=m, replace=False)).astype(np.int64)
    fit = np.setdiff1d(np.arange(n, dtype=np.int64), held)
    return fit, held
