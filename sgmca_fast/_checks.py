"""Checks of the solver's and the baselines' arguments, made before any work.

The generic checks come from :mod:`sgmca_fast._validation`; this module adds the
ones that know the separation problem: the data cube, the number of sources, the
starlet depth against the image, the noise levels, the models and the mapping.
Every error is an :class:`~sgmca_fast._validation.InputError` (a ``ValueError``)
or an :class:`~sgmca_fast._validation.InputTypeError` (also a ``TypeError``)
naming the argument.
"""

import numpy as np

from ._validation import InputError, InputTypeError, boolean, integer, real_array

__all__ = [
    "callback_or_none",
    "data",
    "detail_energy",
    "mapping_indices",
    "model_list",
    "n_sources",
    "noise_levels",
    "nscales",
    "random_state",
    "rng",
]

_SHAPE_TEXT = "a cube (J, H, W) or a matrix (J, P)"
# Detail coefficients this small next to the data are the rounding of a constant.
_ROUNDING_DETAIL = 1e3 * np.finfo(np.float64).eps


def data(X, name="X"):
    """Return the data as a finite float64 (J, H, W) or (J, P) array."""
    return real_array(X, name, ndim=(2, 3), shape_text=_SHAPE_TEXT)


def n_sources(value, n_channels):
    """Return the number of sources, an int in [1, J] (``"auto"`` passes)."""
    if isinstance(value, str) and value == "auto":
        return value
    value = integer(value, "n_sources", minimum=1)
    if n_channels < value:
        raise InputError(
            f"X has {n_channels} channels, fewer than n_sources = {value}"
        )
    return value


def nscales(value, pixel_shape):
    """Return the starlet depth, refusing scales wider than the image.

    The widest detail scale, j = nscales - 1, has holes of ``2**(nscales - 1)``
    samples, so its kernel spans ``2**(nscales + 1) + 1``; beyond
    ``2**nscales > min(H, W)`` (P for (J, P) data) the planes only repeat the
    mirror boundary and cost time.
    """
    value = integer(value, "nscales", minimum=1)
    side = int(min(pixel_shape))
    deepest = side.bit_length() - 1  # the largest n with 2**n <= side
    if value > deepest:
        raise InputError(
            f"nscales = {value} is too large for images of {side} samples on their "
            f"smallest side: 2**nscales must not exceed it (nscales at most "
            f"{deepest})"
        )
    return value


def noise_levels(noise_std, n_channels):
    """Return the noise std per channel (J,) from a scalar or a vector, or None."""
    if noise_std is None:
        return None
    sigma = real_array(noise_std, "noise_std", ndim=(0, 1), finite=False)
    if sigma.ndim == 0:
        sigma = np.full(n_channels, float(sigma))
    if sigma.shape != (n_channels,):
        raise InputError(
            f"noise_std must be a scalar or have one value per channel "
            f"({n_channels},), got shape {sigma.shape}"
        )
    if not (np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
        raise InputError("noise_std must be finite and positive")
    return sigma


_GENERATORS = (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)


def random_state(value, accepted=_GENERATORS):
    """Return a seed checked: None, an int >= 0 or an ``accepted`` numpy object."""
    if value is None or isinstance(value, accepted):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(
            "random_state must be None, a non-negative integer or a "
            f"numpy.random.Generator, got {value!r}"
        )
    return integer(value, "random_state", minimum=0)


def rng(value):
    """Return a numpy Generator from None, a non-negative int or a Generator."""
    return np.random.default_rng(random_state(value))


def callback_or_none(callback):
    """Return the callback after checking that it can be called (or is None)."""
    if callback is not None and not callable(callback):
        raise InputTypeError(
            f"callback must be callable or None, got {type(callback).__name__}"
        )
    return callback


def detail_energy(Xd, X):
    """Refuse data whose starlet detail coefficients are all zero.

    A constant (or all-zero) image per channel has no detail: GMCA has nothing
    to separate and would return an arbitrary A. Details at the level of the
    rounding of the data count as zero.

    Parameters
    ----------
    Xd : (J, nscales * P) ndarray
        Detail coefficients.
    X : ndarray
        The data they come from.
    """
    top = float(np.max(np.abs(X), initial=0.0))
    if not float(np.max(np.abs(Xd), initial=0.0)) > _ROUNDING_DETAIL * top:
        raise InputError(
            "X has no structure to separate: its starlet detail coefficients are "
            "all zero (every channel is constant)"
        )


def model_list(models, n_channels, n_src):
    """Return (list of models, list of counts) from the ``models`` argument."""
    if models is None:
        return [], []
    items = list(models.items()) if isinstance(models, dict) else list(models)
    out_models, counts = [], []
    for item in items:
        try:
            model, count = item
        except (TypeError, ValueError):
            raise InputTypeError(
                "models must be a dict {IAEModel: number of sources} or a list of "
                f"(IAEModel, count) pairs, got an item {item!r}"
            ) from None
        if not hasattr(model, "fast_project") or not hasattr(model, "project"):
            raise InputTypeError(
                f"models keys must be IAE models, got {type(model).__name__}"
            )
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise InputTypeError(f"model counts must be integers, got {count!r}")
        if count < 1:
            raise InputError(f"each model must take at least 1 source, got {count}")
        if model.n_channels != n_channels:
            raise InputError(
                f"model {model.name!r} has {model.n_channels} channels but X has "
                f"{n_channels}"
            )
        out_models.append(model)
        counts.append(int(count))
    if sum(counts) > n_src:
        raise InputError(
            f"the models take {sum(counts)} sources in all but n_sources is "
            f"{n_src}"
        )
    return out_models, counts


def _model_index(target, source, models):
    """Index in ``models`` of a mapping target given by object or by name."""
    names = [m.name for m in models]
    if any(target is m for m in models):
        return next(i for i, m in enumerate(models) if m is target)
    if isinstance(target, str) and target in names:
        return names.index(target)
    shown = target if isinstance(target, str) else type(target).__name__
    raise InputError(
        f"mapping names model {shown!r} for source {source}, which is not in "
        f"models (known: {sorted(names)})"
    )


def mapping_indices(mapping, models, counts, n_src):
    """Turn a user mapping {source index: model or name} into model indices.

    Returns None for no mapping, else a list (one per source) of model indices or
    None.
    """
    if mapping is None:
        return None
    if not models:
        raise InputError("mapping was given without models")
    try:
        pairs = dict(mapping).items()
    except (TypeError, ValueError):
        raise InputTypeError(
            "mapping must be a dict {source index: model or model name}, got "
            f"{type(mapping).__name__}"
        ) from None
    fixed = [None] * n_src
    for source, target in pairs:
        if (
            isinstance(source, bool)
            or not isinstance(source, (int, np.integer))
            or not 0 <= source < n_src
        ):
            raise InputError(
                f"mapping names source {source!r}, but sources are 0..{n_src - 1}"
            )
        fixed[int(source)] = _model_index(target, source, models)
    names = [m.name for m in models]
    used = [fixed.count(i) for i in range(len(models))]
    for i, (n_used, n_wanted) in enumerate(zip(used, counts, strict=True)):
        if n_used != n_wanted:
            raise InputError(
                f"mapping ties {n_used} source(s) to model {names[i]!r}, which the "
                f"models argument gives {n_wanted}"
            )
    return fixed


def blind_stage(value, A_init, starts):
    """Return ``blind_stage`` as a bool; skipping the stage needs ``A_init``, one start.

    Raises
    ------
    InputError
        False without ``A_init``, or with ``starts`` above 1.
    InputTypeError
        Not a bool.
    """
    value = boolean(value, "blind_stage")
    if not value and A_init is None:
        raise InputError("blind_stage=False starts from A_init: give A_init")
    if not value and starts > 1:
        raise InputError(f"blind_stage=False runs no blind start: starts={starts} "
                         "needs blind_stage=True")
    return value
