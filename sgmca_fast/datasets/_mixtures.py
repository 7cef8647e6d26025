"""Mixtures X = A0 S0 + N of source images and drawn spectra, with their truth.

The protocol of the sGMCA paper's Cas A experiments: unit-L2 sources, one spectrum
per source drawn from its family, some sources scaled by k, white Gaussian noise at
a given signal-to-noise ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._validation import InputError, InputTypeError, integer, real, real_array
from ._families import builtin_sets
from ._images import make_sources


@dataclass(frozen=True, eq=False)
class Mixture:
    """A simulated mixture X = A0 S0 + N and its ground truth.

    Attributes
    ----------
    X : (J, H, W) ndarray
        Observed data, A0 S0 + N (or (J, P) when the sources were given as (I, P)).
    A0 : (J, I) ndarray
        True mixing matrix: the drawn spectra as columns, each of unit sum.
    S0 : (I, H, W) ndarray
        True sources: unit-L2 rows, times k for the scaled ones.
    N : (J, H, W) ndarray
        The Gaussian noise that was added.
    noise_std : float
        ``std(N)``: the noise level to give the solver.
    names : tuple of str
        Source names.
    indices : tuple of int
        Row of each spectrum in its family array.
    """

    X: np.ndarray
    A0: np.ndarray
    S0: np.ndarray
    N: np.ndarray
    noise_std: float
    names: tuple[str, ...]
    indices: tuple[int, ...] = field(default=())


def _unique_rows(family: np.ndarray) -> np.ndarray:
    """Return the index of the first occurrence of each distinct row, sorted."""
    _, first = np.unique(family, axis=0, return_index=True)
    return np.sort(first)


def _pick_pair(rng, family, candidates, delta) -> tuple[int, int]:
    """Two distinct rows whose peak channels differ by the value closest to delta."""
    peaks = np.argmax(family[candidates], axis=1)
    gap = np.abs(peaks[:, None] - peaks[None, :]).astype(np.float64)
    np.fill_diagonal(gap, np.inf)
    err = np.abs(gap - delta)
    i, j = np.nonzero(err == err.min())
    k = rng.integers(i.size)
    pair = [int(candidates[i[k]]), int(candidates[j[k]])]
    return pair[0], pair[1]



def _unit_sources(sources) -> np.ndarray:
    """Check (I, H, W) or (I, P) source images; return them with unit-L2 rows."""
    s = real_array(sources, "sources", ndim=(2, 3),
                   shape_text="of shape (I, H, W) or (I, P)")
    norms = np.linalg.norm(s.reshape(s.shape[0], -1), axis=1)
    if np.any(norms == 0):
        raise InputError(
            f"source(s) {np.flatnonzero(norms == 0).tolist()} are all zero"
        )
    return s / norms.reshape((-1,) + (1,) * (s.ndim - 1))


def _check_spectra(spectra, n_src: int) -> list[np.ndarray]:
    """Check one non-empty (n_i, J) family per source, all with the same J."""
    if isinstance(spectra, np.ndarray) and spectra.ndim == 2:
        raise InputTypeError(
            "spectra must be a sequence of I 2-D arrays (one family per source), "
            "got a single 2-D array"
        )
    families = [real_array(f, f"spectra[{i}]") for i, f in enumerate(spectra)]
    if len(families) != n_src:
        raise InputError(
            f"got {len(families)} spectral families for {n_src} sources; "
            "give one (n, J) array per source"
        )
    for i, f in enumerate(families):
        if f.ndim != 2 or f.shape[0] == 0:
            raise InputError(
                f"spectra[{i}] must be a non-empty (n, J) array, got shape {f.shape}"
            )
        if f.shape[1] != families[0].shape[1]:
            raise InputError(
                f"all families must have the same number of channels: spectra[0] "
                f"has {families[0].shape[1]}, spectra[{i}] has {f.shape[1]}"
            )
    return families


def _check_scaled(scaled, n_src: int) -> tuple[int, ...]:
    scaled = tuple(integer(i, "scaled index") for i in scaled)
    bad = [i for i in scaled if not -n_src <= i < n_src]
    if bad:
        raise InputError(f"scaled indices {bad} out of range for {n_src} sources")
    return scaled


def _check_names(names, n_src: int) -> tuple[str, ...]:
    if names is None:
        return tuple(f"source_{i}" for i in range(n_src))
    names = tuple(str(n) for n in names)
    if len(names) != n_src:
        raise InputError(f"got {len(names)} names for {n_src} sources")
    return names


def _group(families: list[np.ndarray]) -> list[list[int]]:
    """Group the sources' indices by family (same array or same content)."""
    groups: list[list[int]] = []
    for i, f in enumerate(families):
        for g in groups:
            if families[g[0]] is f or np.array_equal(families[g[0]], f):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def _check_delta(delta, groups: list[list[int]]) -> float | None:
    if delta is None:
        return None
    delta = real(delta, "delta", low=0.0)
    shared = [g for g in groups if len(g) > 1]
    if len(shared) != 1 or len(shared[0]) != 2:
        raise InputError(
            "delta needs exactly one family shared by exactly two sources "
            f"(the two lines); got sources grouped as {groups}"
        )
    return delta


def _draw_rows(rng, families, groups, delta) -> tuple[int, ...]:
    """Draw a row of each source's family; distinct rows within a group."""
    indices = [0] * len(families)
    for g in groups:
        fam = families[g[0]]
        if len(g) == 1:
            indices[g[0]] = int(rng.integers(fam.shape[0]))
            continue
        candidates = _unique_rows(fam)
        if candidates.size < len(g):
            raise InputError(
                f"spectra[{g[0]}] has {candidates.size} distinct spectra but serves "
                f"{len(g)} sources {g}, which need distinct draws"
            )
        if delta is not None:
            picks = _pick_pair(rng, fam, candidates, delta)
        else:
            picks = rng.choice(candidates, size=len(g), replace=False)
        for i, p in zip(g, picks, strict=True):
            indices[i] = int(p)
    return tuple(indices)


def make_mixture(
    sources,
    spectra: Sequence,
    *,
    snr_db: float = 40.0,
    k: float = 1.0,
    delta: float | None = None,
    scaled: Sequence[int] = (1, 2, 3),
    names: Sequence[str] | None = None,
    random_state=None,
) -> Mixture:
    """Mix sources with spectra drawn from families, following the paper's protocol.

    The protocol of the sGMCA paper's Cas A experiments: sources scaled to unit L2
    rows; one spectrum drawn at random from each family; the sources listed in
    ``scaled`` multiplied by ``k``; X = A0 S0;
    N = randn * sqrt(mean(X**2) * 10**(-snr_db / 10)), so that
    10 log10(||A0 S0||^2 / ||N||^2) is ``snr_db`` up to the noise's own fluctuation.

    Families are matched by content: when the same family (e.g. the Gaussian lines)
    serves several sources, its draws are distinct spectra. With ``delta``, exactly
    one family must serve exactly two sources; its two spectra are the pair whose
    peak channels (argmax) differ by the available value closest to ``delta``,
    drawn at random among the ties, in random order.

    Parameters
    ----------
    sources : (I, H, W) or (I, P) array_like
        Source images; each row is rescaled to unit L2 norm.
    spectra : sequence of I (n_i, J) array_like
        For each source, the family to draw its spectrum from (rows are spectra,
        used as given: the built-in ones have unit sum).
    snr_db : float, optional
        Signal-to-noise ratio in dB (``inf`` for no noise).
    k : float, optional
        Amplitude ratio (> 0) applied to the sources listed in ``scaled``.
    delta : float, optional
        Wanted distance in channels between the peaks of the two spectra drawn from
        the same family.
    scaled : sequence of int, optional
        Indices of the sources multiplied by ``k`` (default thermal and both lines).
    names : sequence of I str, optional
        Source names (default ``"source_0"``, ...).
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator of the spectrum draws and of the noise.

    Returns
    -------
    Mixture
        X, A0, S0, N, noise_std, names and the drawn rows ``indices``.
    """
    s = _unit_sources(sources)
    n_src = s.shape[0]
    families = _check_spectra(spectra, n_src)
    scaled = _check_scaled(scaled, n_src)
    k = real(k, "k", low=0.0, low_open=True)
    snr_db = real(snr_db, "snr_db", low=-np.inf, low_open=True, finite=False)
    names = _check_names(names, n_src)
    groups = _group(families)
    delta = _check_delta(delta, groups)

    rng = np.random.default_rng(random_state)
    indices = _draw_rows(rng, families, groups, delta)
    a0 = np.stack([families[i][indices[i]] for i in range(n_src)], axis=1)
    factor = np.ones(n_src)
    factor[list(scaled)] = k
    s0 = s * factor.reshape((-1,) + (1,) * (s.ndim - 1))
    x = (a0 @ s0.reshape(n_src, -1)).reshape((a0.shape[0],) + s0.shape[1:])
    noise_scale = np.sqrt(np.mean(x**2) * 10 ** (-snr_db / 10))
    noise = rng.standard_normal(x.shape) * noise_scale
    return Mixture(
        X=x + noise,
        A0=a0,
        S0=s0,
        N=noise,
        noise_std=float(np.std(noise)),
        names=names,
        indices=indices,
    )


def make_demo_mixture(
    size: int = 128,
    snr_db: float = 40.0,
    random_state=0,
    *,
    k: float = 1.0,
    delta: float | None = None,
) -> Mixture:
    """Make the built-in demo: Cas A-like sources mixed with built-in spectra.

    Sources from :func:`make_sources`; spectra drawn from the validation splits of
    ``make_spectra_sets(name)`` (default seed 0) for sync, thermal, gauss, gauss;
    then :func:`make_mixture`. Source names: ``("sync", "thermal", "fe1", "fe2")``.

    Parameters
    ----------
    size : int, optional
        Image height and width in pixels (>= 16).
    snr_db : float, optional
        Signal-to-noise ratio in dB.
    random_state : None, int or numpy.random.Generator, optional
        Seed of the images, the spectrum draws and the noise.
    k : float, optional
        Amplitude ratio of the thermal and both line sources.
    delta : float, optional
        Distance in channels between the two line peaks (closest available).

    Returns
    -------
    Mixture
        With X (75, size, size), A0 (75, 4), S0 (4, size, size).
    """
    rng = np.random.default_rng(random_state)
    sources = make_sources(size, rng)
    families = ("sync", "thermal", "gauss", "gauss")
    return make_mixture(
        sources,
        [builtin_sets(name)["valid"] for name in families],
        snr_db=snr_db,
        k=k,
        delta=delta,
        names=("sync", "thermal", "fe1", "fe2"),
        random_state=rng,
    )
