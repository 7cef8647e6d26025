"""Known spectra held fixed in the solver (``fixed={source: spectrum}``).

A held column is the user's spectrum, bit for bit, in every iterate and in the
output (not normalised: the source absorbs the scale); it takes no part in the
identification, the projection or the recovery rules, the mixing update solves
for the other columns given it, and the initial A is the PCA of the data's part
orthogonal to the held spectra (``docs/solver.md``, "Missing data and fixed
spectra"). This is pyMCR's ``st_fix``.
"""

import numpy as np

from ._sources import floored_inverse, unit_columns
from ._validation import InputError, InputTypeError, real_array

__all__ = ["Held", "check"]


def check(fixed, n_channels, n_src, n_modelled, mapping_index):
    """Check ``fixed`` and return a :class:`Held` (or None).

    Parameters
    ----------
    fixed : dict {int: (J,) array_like} or None
    n_channels : int
        J.
    n_src : int
        n_sources.
    n_modelled : int
        Sources taken by the models.
    mapping_index : list or None
        The user mapping as model indices per source (or None).

    Raises
    ------
    InputError, InputTypeError
        Naming ``fixed``.
    """
    if fixed is None:
        return None
    if not isinstance(fixed, dict):
        raise InputTypeError(
            f"fixed must be a dict {{source index: spectrum}}, got "
            f"{type(fixed).__name__}"
        )
    if not fixed:
        return None
    cols = {}
    for source, spectrum in fixed.items():
        if (isinstance(source, bool) or not isinstance(source, (int, np.integer))
                or not 0 <= source < n_src):
            raise InputError(
                f"fixed names source {source!r}, but sources are 0..{n_src - 1}"
            )
        a = real_array(spectrum, f"fixed[{source}]", ndim=1, finite=False)
        if a.shape != (n_channels,):
            raise InputError(
                f"fixed[{source}] must have one value per channel ({n_channels},), "
                f"got shape {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise InputError(f"fixed[{source}] contains NaN or inf values")
        if not np.any(a != 0):
            raise InputError(f"fixed[{source}] is all zero")
        if mapping_index is not None and mapping_index[int(source)] is not None:
            raise InputError(
                f"source {source} is both in fixed and in mapping; a fixed spectrum "
                "follows no model"
            )
        cols[int(source)] = a
    if len(cols) + n_modelled > n_src:
        raise InputError(
            f"fixed holds {len(cols)} source(s) and the models take {n_modelled}, "
            f"more than n_sources = {n_src}"
        )
    return Held(cols)


class Held:
    """The held columns: their indices and spectra.

    Parameters
    ----------
    cols : dict {int: (J,) ndarray}
    """

    def __init__(self, cols):
        self.index = sorted(cols)
        self.spectra = np.column_stack([cols[i] for i in self.index])  # (J, f)
        self.arrays = {i: np.asarray(cols[i]) for i in self.index}

    def free(self, n_src):
        """Return the indices of the columns that are not held."""
        return [i for i in range(n_src) if i not in self.arrays]

    def insert(self, A):
        """Put the held spectra in their columns of A (in place, bit-identical)."""
        for i in self.index:
            A[:, i] = self.arrays[i]
        return A

    def debiased(self, Sd, M, Xd):
        """Return Sd with the held sources' rows debiased on their support.

        Soft thresholding shrinks every kept coefficient of a source; a free
        column is refitted to its shrunk source, but a held one cannot be, and
        the part of the data the shrinkage leaves out would go to the free
        columns of overlapping sources (measured in docs/results.md, "Fixed
        spectra on ten seeds"). So the mixing update sees, for each held
        source, its least-squares coefficients ``M Xd`` where its thresholded
        ones are non-zero (zero elsewhere).

        Parameters
        ----------
        Sd : (I, n) ndarray
            Thresholded detail coefficients of the sources (not modified).
        M : (I, J) ndarray
            The source update's pseudo-inverse of the current A.
        Xd : (J, n) ndarray
            Detail coefficients of the data (the fitted channels).
        """
        out = Sd.copy()
        h = self.index
        ls = M[h].astype(Xd.dtype, copy=False) @ Xd
        out[h] = np.where(Sd[h] != 0, ls, 0)
        return out

    def mixing(self, Xd, Sd, rows=None):
        """Least squares for the free columns given the held ones (floored).

        ``A_free = (Xd - A_fix Sd_fix) Sd_free^T (Sd_free Sd_free^T)^-1`` on the
        rows ``rows`` of the spectra (the kept channels; all if None); the held
        columns of the result are their (restricted) spectra.
        """
        n_src = Sd.shape[0]
        free = self.free(n_src)
        A_fix = self.spectra if rows is None else self.spectra[rows]
        Sf = Sd[free]
        # (Xd - A_fix Sd_fix) Sd_free^T without forming the residual.
        # float32 coefficients: the products in sgemm, the small ones in float64
        f64 = np.float64
        rhs = ((Sf @ Xd.T).T.astype(f64, copy=False)
               - A_fix @ (Sd[self.index] @ Sf.T).astype(f64, copy=False))
        A = np.empty((Xd.shape[0], n_src))
        A[:, free] = rhs @ floored_inverse((Sf @ Sf.T).astype(f64, copy=False))
        A[:, self.index] = A_fix
        return A

    def initial_A(self, A_init, xx, n_src, rng):
        """Return the starting A: the user's, or the PCA of xx off the held spectra.

        Free columns have unit norm; held columns are the spectra.
        """
        free = self.free(n_src)
        if A_init is not None:
            A = unit_columns(A_init.copy(), rng)
        else:
            q = np.linalg.qr(self.spectra)[0]
            proj = np.eye(xx.shape[0]) - q @ q.T
            rest = proj @ xx @ proj
            A = np.empty((xx.shape[0], n_src))
            A[:, free] = np.linalg.eigh(rest)[1][:, ::-1][:, : len(free)]
            A[:, free] = unit_columns(A[:, free].copy(), rng)
        return self.insert(A)

    def label(self, mapping):
        """Return the mapping with "fixed" for the held sources."""
        out = list(mapping)
        for i in self.index:
            out[i] = "fixed"
        return out
