"""A scikit-learn-style estimator for sGMCA: :class:`SGMCA`.

``SGMCA(n_sources, models).fit(X)`` runs :func:`sgmca_fast.separate` (the same
code path: ``fit`` validates the layout, calls it and keeps its result) and
stores the spectra in ``mixing_``; ``transform`` computes the sources of new
data with those spectra held, by the solver's final stage from a fixed A
(:func:`sgmca_fast.baselines.oracle_sources`, ``docs/algorithm.md``, section 3).

The layout is scikit-learn's: X is (n_samples, n_features) = (pixels, channels),
the transpose of :func:`~sgmca_fast.separate`'s (J, P). ``image_shape=(H, W)``
says that the P = H * W rows are the pixels of an image in row-major order (the
2-D starlet is used); None treats the rows as samples of a 1-D signal, in their
order (the 1-D starlet along the samples). A cube (J, H, W) goes in through
:meth:`SGMCA.cube_to_samples`. Because the sources are sparse in the starlet
domain, the rows are not independent samples: a source at one pixel depends on
its neighbours, so ``transform`` of a subset of rows differs from the same rows
of ``transform`` of the whole image, and cross-validation must keep images whole.

scikit-learn is optional: with it, :class:`SGMCA` is a ``BaseEstimator`` and a
``TransformerMixin`` (``clone``, pipelines, parameter searches, ``set_output``,
``get_feature_names_out``); without it, a minimal ``get_params`` /
``set_params`` / ``fit_transform`` of the same behaviour stand in.
"""

from __future__ import annotations

import inspect

import numpy as np

from ._noisemap import count_std
from ._solver import separate
from ._validation import InputError, InputTypeError, real_array
from .baselines import oracle_sources
from .noise import estimate_noise_std

try:  # scikit-learn is an optional extra
    from sklearn.base import (
        BaseEstimator,
        ClassNamePrefixFeaturesOutMixin,
        TransformerMixin,
    )
    from sklearn.exceptions import NotFittedError as _SklearnNotFitted
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    BaseEstimator = None
    _SklearnNotFitted = AttributeError

__all__ = ["SGMCA"]

# parameters handed to separate unchanged (n_sources and models go by position)
_SOLVER_PARAMETERS = (
    "noise_std", "nscales", "k", "K_max", "nonneg_A", "nonneg_S", "l1", "A_init",
    "mapping", "max_iter_semiblind", "tol_semiblind", "random_state", "progress",
    "dtype", "noise", "subspace", "refit_spectra",
)

_LAYOUT = (
    "a 2-D array (n_samples, n_features) = (pixels, channels); for a cube "
    "(J, H, W) use SGMCA.cube_to_samples"
)


class _NotFittedError(InputError, _SklearnNotFitted):
    """transform or inverse_transform before fit (scikit-learn's NotFittedError)."""


class _Parameters:
    """``get_params`` / ``set_params`` / ``fit_transform`` without scikit-learn."""

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self")

    def get_params(self, deep=True):
        """Parameters of the estimator, as given to ``__init__``.

        Parameters
        ----------
        deep : bool, optional
            Ignored (no parameter is an estimator); kept for scikit-learn.

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set parameters by name; returns the estimator."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise InputError(
                    f"invalid parameter {name!r} for SGMCA; valid parameters are "
                    f"{valid}"
                )
            setattr(self, name, value)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, **fit_params)`` then ``transform(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name, p in sig.parameters.items()
            if name != "self" and getattr(self, name) is not p.default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


_BASES = (
    (_Parameters,)
    if BaseEstimator is None
    else (ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator)
)


def _as_samples(X) -> np.ndarray:
    """X as a float64 (n_samples, n_features) array; inf refused, NaN kept."""
    if hasattr(X, "toarray"):  # a scipy sparse matrix or array
        raise InputTypeError(
            "X: sparse input is not supported (the starlet needs dense images); "
            "give a dense array, e.g. X.toarray()"
        )
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise InputTypeError("X: Complex data not supported; give real values")
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"X must be numeric: {exc}") from None
    if arr.ndim != 2:
        raise InputError(
            f"X must be {_LAYOUT}, got shape {arr.shape}. Reshape your data: "
            "X.reshape(-1, 1) for a single channel"
        )
    x = real_array(arr, "X", finite=False)
    if np.isinf(x).any():
        raise InputError("X contains inf values (NaN marks missing values)")
    return x


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


class SGMCA(*_BASES):
    """sGMCA (GMCA when no model is given) as a scikit-learn transformer.

    The model is X = S^T A^T + N in scikit-learn's layout (rows are pixels,
    columns channels), i.e. the (J, P) data of :func:`sgmca_fast.separate`
    transposed; ``fit`` calls :func:`~sgmca_fast.separate` on the transposed data
    with these parameters (``docs/algorithm.md``, sections 2 and 3).

    Parameters
    ----------
    n_sources : int or "auto", optional
        Number of sources I (1 <= I <= n_features), or ``"auto"`` (default):
        estimated by :func:`sgmca_fast.separate` from the noise-whitened data.
    models : dict {IAEModel: int}, optional
        Spectral models and how many sources follow each (None: GMCA). Give a
        dict: ``clone`` keeps its keys (the models, which hold onnxruntime
        sessions and cannot be copied) and copies the counts.
    noise_std : float, (J,) array_like or "mad", optional
        Noise std, one value or one per channel, used by ``fit`` and
        ``transform``. None: ``fit`` lets :func:`~sgmca_fast.separate` estimate
        it and ``transform`` estimates each channel's noise in the new data with
        :func:`sgmca_fast.noise.estimate_noise_std`; ``"mad"``: the noise of each
        source by the MAD (the solver's older default).
    fixed : dict {int: (J,) array_like}, optional
        Spectra held fixed (passed to :func:`~sgmca_fast.separate`).
    nscales, k, K_max, nonneg_A, nonneg_S, l1, A_init, mapping, \
max_iter_semiblind, tol_semiblind, refit_spectra, progress
        As in :func:`~sgmca_fast.separate`; ``nscales``, ``k``, ``l1`` and
        ``nonneg_S`` also set ``transform``'s final stage.
    image_shape : (int, int), optional
        (H, W) when the n_samples = H * W rows are the pixels of an image in
        row-major order (``cube.reshape(J, -1).T``, see :meth:`cube_to_samples`);
        the 2-D starlet is then used. None: the 1-D starlet along the rows.
    random_state : int or numpy.random.Generator, optional
        Seeds the solver's random choices.
    dtype : None, numpy.float32, numpy.float64, "float32" or "float64", optional
        The working precision of ``fit`` (:func:`~sgmca_fast.separate`'s
        ``dtype``): float32 halves the memory of the data-sized arrays and
        gives float32 ``sources_``; ``mixing_`` is float64 either way.
        ``transform`` computes in float64.
    noise : {"gaussian", "poisson"}, optional
        The noise law of ``fit`` (:func:`~sgmca_fast.separate`'s ``noise``):
        ``"poisson"`` for photon counts (then ``noise_std`` must be None).
        ``transform`` uses each channel's Gaussian std, for counts
        ``sqrt(mean count)``.
    subspace : None, "auto" or int, optional
        :func:`~sgmca_fast.separate`'s channel subspace for ``fit``: iterate on
        the leading principal directions of the whitened data (many channels).

    Attributes
    ----------
    mixing_ : (n_features, I) ndarray
        The spectra, one per column (unit L2 norm): A.
    components_ : (I, n_features) ndarray
        ``mixing_.T``, the spectra as rows (the dictionary of NMF's
        ``components_``; note that FastICA's ``components_`` is the unmixing
        matrix instead).
    sources_ : (I, H, W) or (I, n_samples) ndarray
        The sources found by ``fit`` (the solver's S, in the data's units).
    mapping_ : list of str or None
        For each source, the model its spectrum follows (``"fixed"`` for a held
        spectrum), or None.
    model_fit_ : list of float or None
        For each modelled source, its spectrum's distance to the model's manifold.
    n_iter_ : int
        Iterations of the blind and semi-blind stages together.
    n_components_ : int
        Number of sources I found (useful with ``n_sources="auto"``).
    n_features_in_ : int
        Number of channels seen by ``fit``.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame given to ``fit`` (scikit-learn only).
    separation_ : Separation
        The full result of :func:`~sgmca_fast.separate` (history, timings, ...).

    Notes
    -----
    ``fit_transform(X)`` is ``fit(X).transform(X)``, so that it agrees with
    ``transform``. ``transform`` reweights its thresholding by a first estimate
    from the final A, where the solver's final stage reweights by its last
    iteration: on the training data ``transform(X).T`` is therefore close to but
    not identical with ``sources_``.

    Examples
    --------
    >>> import numpy as np
    >>> from sgmca_fast import SGMCA, datasets
    >>> mix = datasets.make_demo_mixture(size=32, snr_db=40, random_state=0)
    >>> X, shape = SGMCA.cube_to_samples(mix.X)          # (1024, 75), (32, 32)
    >>> est = SGMCA(4, noise_std=mix.noise_std, image_shape=shape).fit(X)
    >>> est.mixing_.shape, est.transform(X).shape
    ((75, 4), (1024, 4))
    """

    def __init__(
        self, n_sources="auto", models=None, *, noise_std=None, fixed=None,
        nscales=2, k=3.0, K_max=0.5, nonneg_A=True, nonneg_S=False, l1=True,
        A_init=None, mapping=None, max_iter_semiblind=50, tol_semiblind=1e-6,
        image_shape=None, random_state=None, progress=False, dtype=None,
        noise="gaussian", subspace=None, refit_spectra=False,
    ):
        self.n_sources = n_sources
        self.models = models
        self.noise_std = noise_std
        self.fixed = fixed
        self.nscales = nscales
        self.k = k
        self.K_max = K_max
        self.nonneg_A = nonneg_A
        self.nonneg_S = nonneg_S
        self.l1 = l1
        self.A_init = A_init
        self.mapping = mapping
        self.max_iter_semiblind = max_iter_semiblind
        self.tol_semiblind = tol_semiblind
        self.image_shape = image_shape
        self.random_state = random_state
        self.progress = progress
        self.dtype = dtype
        self.noise = noise
        self.subspace = subspace
        self.refit_spectra = refit_spectra

    # ------------------------------------------------------------------ layout

    @staticmethod
    def cube_to_samples(cube):
        """Turn a cube (J, H, W) into scikit-learn samples (H * W, J) and its shape.

        Parameters
        ----------
        cube : (J, H, W) array_like
            J channels of H x W images.

        Returns
        -------
        X : (H * W, J) ndarray
            ``cube.reshape(J, -1).T``: a view (no copy) of a C-contiguous cube.
        image_shape : (int, int)
            (H, W), for the ``image_shape`` parameter.
        """
        arr = np.asarray(cube)
        if arr.ndim != 3:
            raise InputError(f"cube must be (J, H, W), got shape {arr.shape}")
        J, H, W = arr.shape
        return arr.reshape(J, H * W).T, (H, W)

    @staticmethod
    def samples_to_cube(X, image_shape):
        """Turn samples (H * W, J) back into a cube (J, H, W) (undo cube_to_samples).

        Parameters
        ----------
        X : (H * W, J) array_like
            Rows are the pixels in row-major order (e.g. ``inverse_transform``'s
            output, or ``transform``'s with J the number of sources).
        image_shape : (int, int)
            (H, W).

        Returns
        -------
        (J, H, W) ndarray
        """
        arr = np.asarray(X)
        shape = _image_shape(image_shape)
        if arr.ndim != 2 or shape is None or arr.shape[0] != shape[0] * shape[1]:
            raise InputError(
                f"X must be (H * W, J) with (H, W) = image_shape = {image_shape!r}, "
                f"got shape {arr.shape}"
            )
        return arr.T.reshape((arr.shape[1],) + shape)

    def _pixels(self, n_samples):
        """Return the pixel shape of the channels-first data: (H, W) or (n_samples,)."""
        shape = _image_shape(self.image_shape)
        if shape is not None and n_samples != shape[0] * shape[1]:
            raise InputError(
                f"X has {n_samples} sample(s) (pixels), but image_shape = "
                f"{self.image_shape!r} has {shape[0] * shape[1]}"
            )
        if shape is None and _is_int(self.nscales) and n_samples < 2**self.nscales:
            raise InputError(
                f"X has {n_samples} sample(s) (pixels), while nscales = "
                f"{self.nscales} needs at least 2**nscales = {2**self.nscales}"
            )
        return (n_samples,) if shape is None else shape

    def _validate(self, X, reset):
        """X checked, channels first: (J, H, W) or (J, P), C-contiguous float64."""
        x = _as_samples(X)
        n_samples, n_features = x.shape
        if reset:
            need = self.n_sources if _is_int(self.n_sources) else 1
            if n_features < need:
                raise InputError(
                    f"X has {n_features} feature(s) (shape={x.shape}) while a "
                    f"minimum of {need} is required: sGMCA needs at least "
                    "n_sources channels (features)"
                )
        elif n_features != self.n_features_in_:
            raise InputError(
                f"X has {n_features} features, but SGMCA is expecting "
                f"{self.n_features_in_} features as input (the channels of fit)"
            )
        pixels = self._pixels(n_samples)
        if BaseEstimator is not None:
            _check_feature_names(self, X, reset)
        if reset:
            self.n_features_in_ = n_features
        # one copy, the layout the starlet kernels read
        return np.ascontiguousarray(x.T).reshape((n_features,) + pixels)

    def _channels_first(self, value, data):
        """Turn a per-voxel argument in X's layout (n_samples, J) like the data."""
        if value is None:
            return None
        arr = np.asarray(value)
        J = data.shape[0]
        if arr.ndim == 2 and arr.shape == (int(np.prod(data.shape[1:])), J):
            return np.ascontiguousarray(arr.T).reshape(data.shape)
        return arr  # a scalar or one value per channel; separate checks the rest

    # ---------------------------------------------------------------- fitting

    def fit(self, X, y=None, *, variance=None, mask=None):
        """Separate X with sGMCA and keep the spectra.

        Parameters
        ----------
        X : (n_samples, n_features) array_like
            The data, rows = pixels, columns = channels (see ``image_shape``).
            NaN marks missing values where :func:`~sgmca_fast.separate` takes
            them; inf is an error.
        y : None
            Ignored (unsupervised).
        variance : float, (n_features,) or (n_samples, n_features) array_like
            Noise variance, passed to :func:`~sgmca_fast.separate` (turned to its
            channels-first layout); exclusive with ``noise_std``.
        mask : (n_samples, n_features) bool array_like, optional
            True where a value is missing, passed to
            :func:`~sgmca_fast.separate`.

        Returns
        -------
        self : SGMCA

        Raises
        ------
        InputError
            Bad data or parameters (from the layout checks here or from
            :func:`~sgmca_fast.separate`); ``InputTypeError`` for wrong types.
        """
        data = self._validate(X, reset=True)
        extra = {
            name: value
            for name, value in (
                ("variance", self._channels_first(variance, data)),
                ("mask", self._channels_first(mask, data)),
                ("fixed", self.fixed),
            )
            if value is not None
        }
        solver = {name: getattr(self, name) for name in _SOLVER_PARAMETERS}
        sep = separate(data, self.n_sources, self.models, **solver, **extra)
        self.separation_ = sep
        self.mixing_ = sep.A
        self.components_ = sep.A.T
        self.sources_ = sep.S
        self.mapping_ = sep.mapping
        self.model_fit_ = sep.model_fit
        self.n_iter_ = int(sum(sep.n_iter.values()))
        self.n_components_ = int(sep.A.shape[1])
        return self

    def transform(self, X):
        """Compute the sources of X with the fitted spectra held: (n_samples, I).

        The solver's final stage from the fixed A = ``mixing_``
        (:func:`sgmca_fast.baselines.oracle_sources`): noise-weighted least
        squares on the starlet coefficients, soft (or hard) thresholding at k
        times each source's noise std, once and then reweighted, the coarse
        scale kept, the starlet inverted.

        Parameters
        ----------
        X : (n_samples, n_features) array_like
            Complete data (no NaN) with the channels of ``fit``; n_samples =
            H * W when ``image_shape`` is set.

        Returns
        -------
        (n_samples, I) ndarray
            The sources, one per column, in the units of X.
        """
        self._check_fitted()
        data = self._validate(X, reset=False)
        sep = oracle_sources(
            data,
            self.mixing_,
            self._noise_for(data),
            nscales=self.nscales,
            k=self.k,
            l1=self.l1,
            nonneg_S=self.nonneg_S,
        )
        return sep.S.reshape(self.n_components_, -1).T

    def inverse_transform(self, X):
        """Compute data from sources: ``X = S A^T``, (n_samples, n_features).

        Parameters
        ----------
        X : (n_samples, I) array_like
            Sources, one per column (``transform``'s output).

        Returns
        -------
        (n_samples, n_features) ndarray
        """
        self._check_fitted()
        s = real_array(X, "X", ndim=2, shape_text="(n_samples, n_sources)")
        if s.shape[1] != self.n_components_:
            raise InputError(
                f"X has {s.shape[1]} columns, but SGMCA has {self.n_components_} "
                "sources: give (n_samples, n_sources) sources"
            )
        return s @ self.mixing_.T

    # ----------------------------------------------------------------- helpers

    def _noise_for(self, data):
        """Noise std per channel for ``transform`` (None: the MAD of each source)."""
        if isinstance(self.noise_std, str):
            if self.noise_std != "mad":
                raise InputError(
                    f"noise_std must be a number, one per channel, 'mad' or None, "
                    f"got {self.noise_std!r}"
                )
            return None
        if self.noise_std is not None:
            return self.noise_std
        counts = count_std(data)  # photon counts: the Poisson r.m.s.
        if counts is not None:
            return counts
        sigma = estimate_noise_std(data)
        bad = np.flatnonzero(~(sigma > 0))
        if bad.size:
            raise InputError(
                f"the noise of channels {bad.tolist()} could not be estimated "
                "from X (no usable or only constant detail); give noise_std"
            )
        return sigma

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise _NotFittedError(
                "This SGMCA instance is not fitted yet: call fit(X) first"
            )

    def __sklearn_is_fitted__(self):
        return hasattr(self, "mixing_")

    @property
    def _n_features_out(self):
        return self.n_components_


def _image_shape(value):
    """None, or (H, W) as two positive ints."""
    if value is None:
        return None
    try:
        H, W = value
    except (TypeError, ValueError):
        raise InputTypeError(
            f"image_shape must be None or (H, W), got {value!r}"
        ) from None
    if not (_is_int(H) and _is_int(W) and H > 0 and W > 0):
        raise InputError(f"image_shape must be two positive integers, got {value!r}")
    return int(H), int(W)


def _check_feature_names(estimator, X, reset):
    """Record or check a DataFrame's column names, as scikit-learn's estimators do."""
    try:  # scikit-learn >= 1.6
        from sklearn.utils.validation import validate_data
    except ImportError:  # pragma: no cover
        estimator._check_feature_names(X, reset=reset)
        return
    validate_data(estimator, X, reset=reset, skip_check_array=True)
