"""Figures of a separation: spectra, sources and convergence history.

Needs matplotlib (the ``plots`` extra). The figures are built as
:class:`matplotlib.figure.Figure` objects without pyplot, so they need no display,
leave no open pyplot figure behind and work under any backend; pass ``path`` to save
a PNG (written atomically), or show the returned figure in a notebook.

When the truth is known, the estimates are first matched to it (permutation and
signs, :func:`sgmca_fast.metrics.match`) and each estimated spectrum is scaled by
the least-squares factor that best fits its true spectrum, the source taking the
inverse factor (so ``A S`` is unchanged); without truth each spectrum is scaled to
unit sum. The figures follow the sGMCA paper: spectra in log scale with a ratio
panel (its Figures 3 and 5), sources in log scale with a shared colour scale and
absolute error maps (Figures 6 and 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import _io
from ._validation import InputError
from .metrics import match

__all__ = ["align", "plot_history", "plot_sources", "plot_spectra"]

# estimate colours (colour-blind safe, Okabe-Ito); the truth is drawn in black
_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_RATIO_FLOOR = 1e-4  # ratio plotted where truth > this * max(truth), as the paper
_LOG_RANGE = 1e-3  # images: colour scale spans 3 decades below the maximum


def _figure(width, height):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "figures need matplotlib: pip install 'sgmca-fast[plots]'"
        ) from None
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path, force, dpi=110):
    if path is not None:
        _io.atomic_write(
            path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi), force=force
        )
    return fig


def align(A, S=None, A0=None, S0=None):
    """Order, sign and scale an estimate like the truth, for display.

    Parameters
    ----------
    A : (J, I) array_like
        Estimated mixing matrix.
    S : (I, ...) array_like, optional
        Estimated sources.
    A0 : (J, I) array_like, optional
        True mixing matrix. Without it each column of A is scaled to unit sum
        (sign chosen to make the sum positive).
    S0 : ignored
        Accepted for symmetry; sources are scaled through A only.

    Returns
    -------
    A, S : ndarray
        Aligned copies (S None if not given). With truth, column i of A is matched
        to column i of A0 and scaled by ``<a, a0> / <a, a>``; row i of S takes the
        inverse factor, so that ``A @ S`` is unchanged.
    """
    A = np.array(A, dtype=np.float64)
    S = None if S is None else np.array(S, dtype=np.float64)
    if A0 is not None:
        A0 = np.asarray(A0, dtype=np.float64)
        A, S, _ = match(A0, A, S)
        num = np.sum(A * A0, axis=0)
        den = np.sum(A * A, axis=0)
        scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    else:
        total = A.sum(axis=0)
        scale = np.where(total != 0, 1.0 / np.where(total != 0, total, 1.0), 1.0)
    scale = np.where(scale != 0, scale, 1.0)
    A = A * scale
    if S is not None:
        S = S / scale.reshape((-1,) + (1,) * (S.ndim - 1))
    return A, S


def _as_estimates(A) -> dict[str, np.ndarray]:
    if isinstance(A, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in A.items()}
    return {"estimate": np.asarray(A, dtype=np.float64)}


def _names(names, n):
    if names is None:
        return [f"source {i}" for i in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise InputError(f"got {len(names)} names for {n} sources")
    return names


def _with_confidence(names, confidence, A, A0):
    """Panel titles with the confidence of the estimate shown in each panel."""
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.shape != (len(names),):
        raise InputError(f"confidence must have shape ({len(names)},), got "
                         f"{conf.shape}")
    if A0 is not None:  # panel i shows the estimate matched to true column i
        conf = conf[match(np.asarray(A0, dtype=np.float64), A)[2]]
    return [f"{n}\nconfidence {c:.2f}" for n, c in zip(names, conf, strict=True)]


def _abscissa(n_ch, energy, spectral_axis):
    """Return the spectra's x values (J,) and axis label."""
    if energy is not None and spectral_axis is not None:
        raise InputError("give energy or spectral_axis, not both")
    if spectral_axis is not None:
        x, label = np.asarray(spectral_axis.values), spectral_axis.label
        if x.shape != (n_ch,):
            raise InputError(f"the spectral axis has {x.size} values for {n_ch} "
                             "channels")
        return x, label
    if energy is None:
        return np.arange(n_ch), "Channel"
    x = np.asarray(energy, dtype=np.float64)
    if x.shape != (n_ch,):
        raise InputError(f"energy must have shape ({n_ch},), got {x.shape}")
    return x, "Energy (keV)"


def plot_spectra(
    A,
    A0=None,
    *,
    names: Sequence[str] | None = None,
    energy=None,
    spectral_axis=None,
    path=None,
    force: bool = False,
    title: str | None = None,
    confidence=None,
):
    """Estimated spectra (solid) against the truth (dashed), with a ratio panel.

    Parameters
    ----------
    A : (J, I) array_like or mapping of str to (J, I) array_like
        Estimated mixing matrix, or several (e.g. ``{"sGMCA": A1, "GMCA": A2}``),
        drawn in different colours.
    A0 : (J, I) array_like, optional
        True mixing matrix (dashed black); adds a row with estimate / truth
        where the truth exceeds 1e-4 of its maximum.
    names : sequence of I str, optional
        Source names (column titles).
    energy : (J,) array_like, optional
        Channel energies in keV for the abscissa.
    spectral_axis : sgmca_fast.cube.SpectralAxis, optional
        The channels' physical coordinate (e.g. a FITS cube's
        ``cube.spectral_axis``): the abscissa in its unit, labelled e.g.
        "Wavelength (Angstrom)". Without it nor ``energy``: channel numbers.
    path : str or os.PathLike, optional
        Save the figure there as PNG.
    force : bool, optional
        Overwrite an existing ``path``.
    title : str, optional
        Figure title.
    confidence : (I,) array_like, optional
        ``Separation.confidence`` of the (first) estimate, in the order of its
        columns: shown in each panel's title.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    estimates = _as_estimates(A)
    first = next(iter(estimates.values()))
    n_ch, n_src = first.shape
    names = _names(names, n_src)
    if confidence is not None:
        names = _with_confidence(names, confidence, first, A0)
    aligned = {k: align(v, None, A0)[0] for k, v in estimates.items()}
    x, xlabel = _abscissa(n_ch, energy, spectral_axis)
    truth = None if A0 is None else np.asarray(A0, dtype=np.float64)
    rows = 2 if truth is not None else 1
    fig = _figure(3.0 * n_src + 0.6, 2.6 * rows + 0.6)
    axes = np.asarray(
        fig.subplots(
            rows, n_src, sharex=True, sharey="row", squeeze=False,
            gridspec_kw={"height_ratios": [2, 1][:rows]},
        )
    )
    # shared log range: 4 decades under the highest curve
    top = max(
        [np.max(np.abs(a)) for a in aligned.values()]
        + ([np.max(truth)] if truth is not None else [])
    )
    floor = top * 1e-4
    for i in range(n_src):
        ax = axes[0, i]
        if truth is not None:
            ax.plot(x, np.where(truth[:, i] > floor, truth[:, i], np.nan), "k--",
                    lw=1.3, label="truth", zorder=3)
        for c, (label, a) in enumerate(aligned.items()):
            ax.plot(x, np.where(a[:, i] > floor, a[:, i], np.nan),
                    color=_COLORS[c % len(_COLORS)], lw=1.4, label=label)
        ax.set_yscale("log")
        ax.set_ylim(floor, top * 2)
        ax.set_title(names[i])
        ax.grid(True, which="major", alpha=0.3)
        if truth is not None:
            rax = axes[1, i]
            keep = truth[:, i] > _RATIO_FLOOR * truth[:, i].max()
            rax.axhline(1.0, color="k", ls="--", lw=1)
            for c, (label, a) in enumerate(aligned.items()):
                ratio = np.where(keep, a[:, i] / np.where(keep, truth[:, i], 1), np.nan)
                rax.plot(x, ratio, color=_COLORS[c % len(_COLORS)], lw=1.2,
                         marker=".", ms=3, label=label)
            rax.grid(True, alpha=0.3)
            rax.set_xlabel(xlabel)
        else:
            ax.set_xlabel(xlabel)
    axes[0, 0].set_ylabel("spectrum" + (" (unit sum)" if truth is None else ""))
    if truth is not None:
        axes[1, 0].set_ylabel("estimate / truth")
        vals = []
        for a in aligned.values():
            for i in range(n_src):
                keep = truth[:, i] > _RATIO_FLOOR * truth[:, i].max()
                vals.append(a[keep, i] / truth[keep, i])
        vals = np.concatenate(vals)
        # the bulk of the ratios sets the range, at most [0, 2]; points beyond
        # it are drawn on the edge as triangles
        lo, hi = np.percentile(vals, [5, 95]) if vals.size else (0.5, 1.5)
        span = min(max(1.0 - lo, hi - 1.0, 0.05) * 1.3, 1.0)
        ylo, yhi = 1.0 - span, 1.0 + span
        axes[1, 0].set_ylim(ylo - 0.03 * span, yhi + 0.03 * span)
        for i in range(n_src):
            for c, a in enumerate(aligned.values()):
                keep = truth[:, i] > _RATIO_FLOOR * truth[:, i].max()
                r = np.where(keep, a[:, i] / np.where(keep, truth[:, i], 1), np.nan)
                color = _COLORS[c % len(_COLORS)]
                for mask, edge, mark in ((r > yhi, yhi, "^"), (r < ylo, ylo, "v")):
                    if np.any(mask):
                        axes[1, i].plot(x[mask], np.full(mask.sum(), edge), mark,
                                        color=color, ms=4, clip_on=False)
    axes[0, -1].legend(loc="best", fontsize="small", framealpha=0.8)
    if title:
        fig.suptitle(title)
    return _save(fig, path, force)


def _log_image_range(images):
    # NaN pixels (left out of a separation) are drawn blank, not counted
    top = max(float(np.nanmax(im, initial=-np.inf)) for im in images)
    top = top if top > 0 else 1.0
    return top * _LOG_RANGE, top


def plot_sources(
    S,
    S0=None,
    *,
    A=None,
    A0=None,
    names: Sequence[str] | None = None,
    wcs=None,
    path=None,
    force: bool = False,
    title: str | None = None,
):
    """Estimated source images in log scale, with the truth and error maps if known.

    Rows: the truth (when given), the estimate, and the absolute error
    ``|S - S0|`` (when the truth is given); columns: the sources. Truth and
    estimates share one logarithmic colour scale spanning three decades under
    their maximum; the error maps share another, so that errors compare across
    sources. Negative pixels are drawn at the bottom of the scale.

    Parameters
    ----------
    S : (I, H, W) array_like
        Estimated sources.
    S0 : (I, H, W) array_like, optional
        True sources.
    A, A0 : (J, I) array_like, optional
        Estimated and true mixing matrices: with both, the sources are matched
        and scaled like the spectra (:func:`align`). Without them S must already
        be in the order and scale of S0.
    names : sequence of I str, optional
        Source names.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of the images (e.g. a FITS cube's ``cube.celestial``):
        the maps are drawn on sky axes (astropy's WCSAxes), labelled in the
        left column and the bottom row. Without it, or without astropy, plain
        images without ticks.
    path, force, title : optional
        As in :func:`plot_spectra`.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm

    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 3:
        raise InputError(f"S must be (I, H, W) images, got shape {S.shape}")
    if A is not None:
        _, S = align(A, S, A0)
    n_src = S.shape[0]
    names = _names(names, n_src)
    truth = None if S0 is None else np.asarray(S0, dtype=np.float64)
    if truth is not None and truth.shape != S.shape:
        raise InputError(f"S0 has shape {truth.shape}, S has {S.shape}")
    rows = [("estimate", S)]
    if truth is not None:
        rows = [("truth", truth), ("estimate", S), ("|error|", np.abs(S - truth))]
    fig = _figure(2.6 * n_src + 1.0, 2.5 * len(rows) + 0.4)
    axes, sky = _image_axes(fig, len(rows), n_src, wcs, S.shape[1:])
    vmin, vmax = _log_image_range([r for label, r in rows if label != "|error|"])
    norms = {"truth": LogNorm(vmin, vmax), "estimate": LogNorm(vmin, vmax)}
    if truth is not None:
        err = rows[2][1]
        top = max(float(np.nanmax(err, initial=-np.inf)), vmin)
        # errors on the same decades as the signal when they are comparable
        norms["|error|"] = LogNorm(min(vmin, top * _LOG_RANGE), top)
    for r, (label, images) in enumerate(rows):
        norm = norms[label]
        for i in range(n_src):
            ax = axes[r, i]
            im = ax.imshow(
                np.clip(images[i], norm.vmin, None), norm=norm, cmap="inferno",
                origin="lower", interpolation="nearest",
            )
            if sky:
                _sky_labels(ax, r == len(rows) - 1, i == 0)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            if r == 0:
                ax.set_title(names[i])
            if i == 0 and not sky:
                ax.set_ylabel(label)
            elif i == 0:
                ax.text(-0.55, 0.5, label, transform=ax.transAxes, rotation=90,
                        ha="center", va="center")
        fig.colorbar(im, ax=list(axes[r]), shrink=0.9, pad=0.01)
    if title:
        fig.suptitle(title)
    return _save(fig, path, force)


def _image_axes(fig, n_rows, n_cols, wcs, shape):
    """Axes for the maps: on the sky WCS when given and astropy has WCSAxes."""
    if wcs is not None:
        if getattr(wcs, "naxis", None) != 2:
            raise InputError("wcs must be a celestial (2-axis) astropy WCS, got "
                             f"{type(wcs).__name__}")
        try:
            from astropy.visualization.wcsaxes import WCSAxes  # noqa: F401
        except ImportError:
            wcs = None
    if wcs is None:
        return np.asarray(fig.subplots(n_rows, n_cols, squeeze=False)), False
    axes = np.empty((n_rows, n_cols), dtype=object)
    for r in range(n_rows):
        for i in range(n_cols):
            axes[r, i] = fig.add_subplot(n_rows, n_cols, r * n_cols + i + 1,
                                         projection=wcs)
    return axes, True


_SKY_NAMES = {"RA": "RA", "DEC": "Dec", "GLON": "Galactic longitude",
              "GLAT": "Galactic latitude", "ELON": "Ecliptic longitude",
              "ELAT": "Ecliptic latitude"}


def _sky_labels(ax, bottom: bool, left: bool) -> None:
    """Tick labels and names of the sky coordinates on the outer panels only."""
    ctypes = ax.wcs.wcs.ctype
    for k, shown in ((0, bottom), (1, left)):
        coord = ax.coords[k]
        stem = ctypes[k][:4].rstrip("-").upper()
        coord.set_ticklabel_visible(shown)
        coord.set_ticklabel(size="x-small")
        coord.set_axislabel(_SKY_NAMES.get(stem, stem) if shown else "",
                            size="small")


def plot_history(history, *, path=None, force: bool = False, title: str | None = None):
    """Convergence of a separation: delta_S, delta_A and cond(A) per iteration.

    Parameters
    ----------
    history : dict or Separation
        ``Separation.history`` (or the result itself): lists ``"stage"``,
        ``"delta_S"``, ``"delta_A"``, ``"cond_A"`` and optionally
        ``"reseeded"`` (semi-blind iteration, column) pairs.
    path, force, title : optional
        As in :func:`plot_spectra`.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    if hasattr(history, "history"):
        history = history.history
    stage = list(history["stage"])
    n = len(stage)
    it = np.arange(1, n + 1)
    series = [
        ("delta_S", r"$\|S - S_{prev}\| / \|S\|$"),
        ("delta_A", r"$\|A - A_{prev}\| / \|A\|$"),
        ("cond_A", "cond(A)"),
    ]
    fig = _figure(7.0, 6.4)
    axes = fig.subplots(3, 1, sharex=True)
    starts = [i for i in range(n) if i == 0 or stage[i] != stage[i - 1]]
    spans = [(s, (starts + [n])[k + 1]) for k, s in enumerate(starts)]
    shades = {"blind": "#f0f0f0", "semiblind": "#dcebf7"}
    for ax, (key, label) in zip(axes, series, strict=True):
        y = np.asarray(history[key], dtype=np.float64)
        y = np.where(y > 0, y, np.nan)
        for a, b in spans:
            ax.axvspan(a + 0.5, b + 0.5, color=shades.get(stage[a], "#eeeeee"), lw=0)
        ax.plot(it, y, color=_COLORS[0], lw=1.3, marker="." if n < 60 else None)
        finite = y[np.isfinite(y)]
        # log scale for quantities spanning decades (cond(A) often does not)
        if finite.size and finite.max() > 20 * finite.min():
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
    top = axes[0]
    for a, b in spans:
        label = {"semiblind": "semi-blind"}.get(stage[a], stage[a])
        top.text((a + b + 1) / 2, 1.02, f"{label} ({b - a} it.)",
                 transform=top.get_xaxis_transform(), ha="center", va="bottom",
                 fontsize="small")
    first_semi = next((s for s in starts if stage[s] == "semiblind"), None)
    for ax in axes:
        for it_semi, _col in history.get("reseeded", []):
            if first_semi is not None:
                ax.axvline(first_semi + it_semi + 1, color=_COLORS[1], ls=":", lw=1)
    if history.get("reseeded") and first_semi is not None:
        it_semi = history["reseeded"][0][0]
        axes[2].text(first_semi + it_semi + 1, 0.95, " column reseeded",
                     transform=axes[2].get_xaxis_transform(), color=_COLORS[1],
                     va="top", fontsize="small")
    axes[-1].set_xlabel("iteration")
    axes[-1].set_xlim(0.5, max(n, 1) + 0.5)
    if title:
        fig.suptitle(title)
    return _save(fig, path, force)
