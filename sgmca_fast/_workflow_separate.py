"""The ``separate`` workflow: a cube file in, estimates with their coordinates out.

Public through :mod:`sgmca_fast.workflows` (:func:`separate_file`). The inputs are
read by ``_workflow_inputs``; here the outputs are planned and checked before any
work, the separation runs, and the estimate (``.npz``, or FITS keeping the cube's
celestial WCS, unit and provenance), the spectra CSV (with the spectral
coordinate), the figures (spectral axis in physical units, maps on the sky WCS)
and the JSON summary are written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import _io
from ._summaries import SeparationSummary
from ._validation import InputError, boolean, choice, float_dtype, integer
from ._workflow_common import Log, estimate_arrays, have_matplotlib, say, write_json
from ._workflow_inputs import fill_unknown_variance, read_fixed, read_input_cube
from ._workflow_models import load_models

__all__ = ["separate_file"]

_FIGURES = ("spectra", "sources", "convergence")
# stream="auto": cube files larger than this are memory-mapped and, when the
# solver can stream them (complete, one noise level per channel), streamed
STREAM_BYTES = 2**30


# ------------------------------------------------------------------ output names


def _is_estimate_file(out: Path) -> bool:
    return out.name.lower().endswith(".npz") or _io.is_fits(out)


def _separate_files(out: Path, fits: bool, figures: bool, json_file: bool) -> dict:
    if _is_estimate_file(out):
        name = out.name
        for suffix in (*_io.FITS_SUFFIXES, ".npz"):
            if name.lower().endswith(suffix):
                stem = name[: -len(suffix)]
                break
        base = out.parent
        files = {"estimate": out, "csv": base / f"{stem}_A.csv"}
        names = {k: base / f"{stem}_{k}.png" for k in _FIGURES}
        summary = base / f"{stem}.json"
    else:
        files = {"estimate": out / ("estimate.fits" if fits else "estimate.npz"),
                 "csv": out / "A.csv"}
        names = {k: out / f"{k}.png" for k in _FIGURES}
        summary = out / "summary.json"
    if figures:
        files.update(names)
    if json_file:
        files["summary"] = summary
    return files


def _plan_outputs(out, fits, figures, summary_file, force) -> dict:
    """Output names, checked (existing, writable, FITS support) before any work."""
    out = Path(out)
    files = _separate_files(out, fits or _io.is_fits(out), figures, summary_file)
    folder = not _is_estimate_file(out)
    if folder:
        _io.check_folder(out)
    _io.check_writable(files.values(), force, in_new_folder=folder)
    return files


# ------------------------------------------------------------------------ inputs


def _n_sources(value):
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    return integer(value, "-n", minimum=1)


def _read_truth(truth, shape, n) -> dict:
    arrays = _io.read_estimate(truth)
    A, S = arrays["A"], arrays["S"]
    if (A.shape[0] != shape[0] or S.shape[1:] != shape[1:]
            or (n != "auto" and A.shape[1] != n)):
        sources = "" if n == "auto" else f" with {n} sources"
        raise InputError(f"{truth}: truth A {A.shape} and S {S.shape} do not fit "
                         f"the cube {shape}{sources}")
    return arrays


def _check_counts(n, n_channels, n_modelled, n_fixed, path):
    if n == "auto":
        return
    if n_channels < n:
        raise InputError(f"{path}: the cube has {n_channels} channels, fewer than "
                         f"the {n} sources asked (-n)")
    if n_fixed and n_modelled + n_fixed > n:
        raise InputError(f"the --model counts ({n_modelled}) and the --fixed "
                         f"spectra ({n_fixed}) add up to {n_modelled + n_fixed} "
                         f"sources but -n is {n}")


def _streamable(data, noise, held, n, dtype, refit_spectra=False):
    """Whether the solver can stream this cube: complete, no option it refuses."""
    from ._stream import refusals

    return data.missing_info.n_missing == 0 and not refusals(
        n, {**noise, "fixed": held or None, "dtype": float_dtype(dtype),
            "refit_spectra": refit_spectra})


def _noise_options(cube, noise_std, noise="gaussian"):
    """Solver keywords for the noise and the mask, and where the noise came from."""
    if noise == "poisson":
        if cube.variance is not None:
            cube.notes.append(f"--noise poisson: the variance "
                              f"({cube.variance_source}) is not used")
        options = {"noise": "poisson"}
        text = "Poisson, from the counts (--noise poisson)"
        unknown = False
    elif noise_std is not None:
        if cube.variance is not None:
            cube.notes.append(f"--noise-std given: the variance "
                              f"({cube.variance_source}) is not used")
        options, text = {"noise_std": noise_std}, f"given: --noise-std {noise_std:g}"
        variance, unknown = None, False
    elif cube.variance is not None:
        variance, unknown = fill_unknown_variance(cube.variance)
        options, text = {"variance": variance}, f"variance: {cube.variance_source}"
    else:
        options = {"noise_std": None}
        text = "estimated per channel from the data"
        unknown = False
    if cube.mask is not None or unknown:
        options["mask"] = cube.missing()  # NaN data alone the solver finds itself
    return options, text


# ----------------------------------------------------------------------- outputs


def _labels(result, fixed) -> list[str]:
    """Per source: its model, the NAME of its fixed spectrum, or None."""
    names = {i: f.name for i, f in enumerate(fixed)}
    return [names.get(i, m) for i, m in enumerate(result.mapping)]


def _column_names(labels) -> list[str]:
    return [f"source_{i}" + (f" ({m})" if m else "") for i, m in enumerate(labels)]


def _figure_names(result, labels, truth) -> list[str]:
    """Column titles: with the truth, in its order, naming each estimate's model."""
    if truth is None:
        return _column_names(labels)
    from .metrics import match

    perm = match(truth["A"], result.A)[2]
    return [f"source {i}" + (f" ({labels[p]})" if labels[p] else "")
            for i, p in enumerate(perm)]


def _confidence_list(result):
    """``Separation.confidence`` as a list of float (None when not computed)."""
    conf = getattr(result, "confidence", None)
    return None if conf is None else [float(c) for c in conf]


def _separation_figures(files, result, labels, truth, cube, title_name, force):
    from . import plots

    names = _figure_names(result, labels, truth)
    A0 = None if truth is None else truth["A"]
    plots.plot_spectra(result.A, A0, names=names, path=files["spectra"],
                       spectral_axis=cube.spectral_axis, force=force,
                       confidence=getattr(result, "confidence", None),
                       title=f"Spectra of {title_name}")
    if result.S.ndim == 3:
        plots.plot_sources(result.S, None if truth is None else truth["S"],
                           A=result.A, A0=A0, names=names, path=files["sources"],
                           wcs=cube.celestial, force=force,
                           title=f"Sources of {title_name} (log scale)")
    else:
        files.pop("sources")
    plots.plot_history(result, path=files["convergence"], force=force,
                       title="Convergence")


def _write_estimate(path, result, cube, labels, parameters, force):
    from .cube import write_fits_sources

    if not _io.is_fits(path):
        arrays = estimate_arrays(result)
        if cube.spectral_axis is not None:
            arrays["spectral_axis"] = cube.spectral_axis.values
            arrays["spectral_unit"] = np.array(cube.spectral_axis.unit)
        _io.write_npz(path, arrays, force=force)
        return
    keywords = {f"SRCMOD{i + 1}": m for i, m in enumerate(labels) if m}
    if cube.celestial is not None and result.S.shape[1:] != cube.spatial_shape:
        cube.notes.append("the source maps do not cover the cube's image: "
                          "written without its WCS")
        cube = None
    write_fits_sources(path, result.S, cube, spectra=result.A,
                       names=_column_names(labels), parameters=parameters,
                       history=["sgmca-fast separate"], keywords=keywords,
                       force=force)


def _scores(truth, result):
    """Metrics against the truth, on the pixels the estimate covers."""
    from . import metrics

    S = result.S.reshape(result.S.shape[0], -1)
    if truth["A"].shape != result.A.shape:
        return None  # -n auto found another number of sources
    keep = np.all(np.isfinite(S), axis=0)
    S0 = truth["S"].reshape(truth["S"].shape[0], -1)[:, keep]
    noise = truth.get("N")
    if noise is not None:
        noise = noise.reshape(noise.shape[0], -1)[:, keep]
    return metrics.evaluate(truth["A"], S0, result.A, S[:, keep], noise=noise)


def _parameters(cube_path, method, n, described, fixed, noise_text, cube, options):
    return {
        "cube": cube_path.name, "method": method, "n_sources": n,
        "models": ", ".join(f"{m['name']}:{m['count']}" for m in described) or None,
        "fixed": ", ".join(f"{f.name}={f.path.name}" for f in fixed) or None,
        "noise": noise_text, "mask": cube.mask_source, **options,
    }


def separate_file(cube, out, *, n_sources, models: Sequence[str] = (),
                  key: str | None = None, channel_axis: int = 0,
                  noise_std: float | None = None, noise: str = "gaussian",
                  mask=None, variance=None, fixed: Sequence[str] = (), nscales: int = 2,
                  max_iter: int = 50, gmca_only: bool = False, truth=None,
                  fits: bool = False, figures: bool = True, seed: int = 0,
                  summary_file: bool = False, force: bool = False,
                  progress: bool = False, stream="auto",
                  log: Log = None,
                  dtype: str | None = None, subspace=None,
                  refit_spectra: bool = False) -> SeparationSummary:
    """Separate a cube file and write the estimate, the spectra CSV and figures.

    NaN voxels of the cube, ``mask`` and a NaN variance are missing data
    (docs/algorithm.md); a FITS cube brings its variance (or error) extension,
    DQ mask, spectral axis and celestial WCS, which the outputs keep.

    Parameters
    ----------
    cube : str or os.PathLike
        ``.npy``, ``.npz`` or FITS file holding X, (J, H, W) or (J, P).
    out : str or os.PathLike
        ``OUT.npz`` / ``OUT.fits``: the estimate, with ``OUT_A.csv``,
        ``OUT_spectra.png``, ... beside it; anything else: a folder (made if
        missing) receiving ``estimate.npz`` (or ``.fits``), ``A.csv``,
        ``spectra.png``, ``sources.png``, ``convergence.png``. A FITS estimate
        holds the maps (I, H, W) with the cube's celestial WCS and unit, HISTORY
        cards with the version and the parameters, and a SPECTRA table with the
        spectral coordinate; ``A.csv`` has the coordinate as first column.
    n_sources : int or "auto"
        Number of sources; "auto" estimates it from the noise-whitened data.
    models : sequence of str, optional
        Model specs ``NAME=PATH.onnx[:COUNT]``, ``PATH.onnx[:COUNT]`` or a
        built-in name ``gauss|sync|thermal[:COUNT]``; none is GMCA.
    key : str, optional
        Array of an .npz cube or HDU of a FITS cube.
    channel_axis : int, optional
        Axis of the channels in the file (and in the mask and variance files).
    noise_std : float, optional
        Noise standard deviation (default: the cube's variance, else estimated
        per channel from the data).
    noise : {"gaussian", "poisson"}, optional
        ``"poisson"``: the cube holds photon counts and the solver follows
        their Poisson variance (``separate(..., noise="poisson")``); then no
        ``noise_std``, and a variance extension is not used.
    mask : str or os.PathLike, optional
        File of a boolean or integer array of the cube's shape, nonzero where a
        voxel is missing.
    variance : str or os.PathLike, optional
        File of the noise variance ((J,) or the cube's shape), or an extension
        of a FITS cube, or "none" to ignore the cube's variance extension.
    fixed : sequence of str, optional
        ``NAME=SPECTRUM.csv``: spectra held fixed, sources 0, 1, ... in order,
        labelled NAME.
    nscales : int, optional
        Starlet detail scales.
    max_iter : int, optional
        Maximum semi-blind iterations (sGMCA).
    gmca_only : bool, optional
        Refuse ``models`` and run GMCA.
    truth : str or os.PathLike, optional
        ``.npz`` or FITS with the true A (J, I) and S (and optionally N): adds
        metrics, dashed truth curves and error maps.
    fits : bool, optional
        Write the estimate of a folder ``out`` as FITS.
    figures : bool, optional
        Draw figures (skipped anyway without matplotlib).
    seed : int, optional
        Seed of the separation.
    summary_file : bool, optional
        Also write the JSON summary (``OUT.json`` or ``summary.json``).
    force : bool, optional
        Overwrite existing outputs.
    progress : bool, optional
        Show progress bars.
    stream : "auto" or bool, optional
        Read the cube in blocks (``separate(..., stream=True)``, docs/solver.md
        "Cubes bigger than memory"): True forces it (a .npy is memory-mapped);
        ``"auto"`` (default) streams a file over ``STREAM_BYTES`` (1 GiB) when
        it is complete, with one noise level per channel, no fixed spectra,
        Gaussian noise and a number of sources; False reads it into memory.
    log : callable, optional
        Called with one line each on the missing voxels, the noise and what the
        reader noted, before the separation.
    dtype : {"float32", "float64"}, optional
        The solver's working precision (``separate(dtype=...)``); None: float64.
        When given it is also written with the parameters.
    subspace : None, "auto" or int, optional
        The solver's channel subspace (``separate(subspace=...)``, for cubes
        of many channels); None: the full space (a streamed cube: ``"auto"``).
        When given it is also written with the parameters.
    refit_spectra : bool, optional
        Refit the spectra to the debiased sources after the last iteration
        (``separate(refit_spectra=True)``); written with the parameters when True.

    Returns
    -------
    SeparationSummary
    """
    from . import gmca, separate

    n = _n_sources(n_sources)
    float_dtype(dtype, "dtype")  # checked before the cube is read
    if gmca_only and models:
        raise InputError("--gmca-only and --model cannot be used together")
    if choice(noise, "noise", ("gaussian", "poisson")) == "poisson" and \
            noise_std is not None:
        raise InputError("--noise poisson takes the noise from the counts: give no "
                         "--noise-std")
    figures = figures and have_matplotlib()
    files = _plan_outputs(out, fits, figures, summary_file, force)

    cube_path = Path(cube)
    stream = choice(stream, "stream", ("auto",)) if isinstance(
        stream, str) else boolean(stream, "stream")
    big = cube_path.is_file() and cube_path.stat().st_size > STREAM_BYTES
    data = read_input_cube(cube_path, key, channel_axis, mask, variance,
                           mmap=stream is True or (stream == "auto" and big))
    J = data.n_channels
    loaded, described = (load_models(models, J, None if n == "auto" else n)
                         if models else ({}, []))
    held = read_fixed(fixed, data)
    _check_counts(n, J, sum(loaded.values()), len(held), cube_path)
    arrays = None if truth is None else _read_truth(truth, data.data.shape, n)
    noise, noise_text = _noise_options(data, noise_std, noise)
    say(log, f"missing data: {data.missing_info}")
    say(log, f"noise: {noise_text}")
    for note in data.notes:
        say(log, f"note: {note}")

    if not _is_estimate_file(Path(out)):
        Path(out).mkdir(parents=True, exist_ok=True)
    if stream == "auto":
        stream = big and _streamable(data, noise, held, n, dtype, refit_spectra)
    if stream:
        say(log, "cube: streamed in blocks, not read into memory")
    kwargs = {**noise, "nscales": nscales, "random_state": seed,
              "progress": progress, "stream": stream, "dtype": dtype,
              "subspace": subspace, "refit_spectra": refit_spectra}
    if held:
        kwargs["fixed"] = {i: f.spectrum for i, f in enumerate(held)}
    if loaded:
        result = separate(data.data, n, loaded, max_iter_semiblind=max_iter,
                          **kwargs)
    else:
        result = gmca(data.data, n, **kwargs)

    labels = _labels(result, held)
    method = "sGMCA" if loaded else "GMCA"
    estimate = getattr(result, "n_sources_estimate", None)
    options = {"nscales": nscales, "max_iter": max_iter, "seed": seed}
    if dtype is not None:
        options["dtype"] = np.dtype(float_dtype(dtype)).name
    if subspace is not None:
        options["subspace"] = subspace
    if refit_spectra:
        options["refit_spectra"] = True
    _write_estimate(files["estimate"], result, data, labels,
                    _parameters(cube_path, method, n, described, held, noise_text,
                                data, options), force)
    from .cube import write_spectra_csv

    write_spectra_csv(files["csv"], result.A, data.spectral_axis,
                      _column_names(labels), force=force)
    scores = None if arrays is None else _scores(arrays, result)
    if figures:
        _separation_figures(files, result, labels, arrays, data, cube_path.name,
                            force)
    summary = SeparationSummary(
        cube=os.fspath(cube), shape=data.data.shape, n_sources=result.A.shape[1],
        method=method, models=described, mapping=labels,
        model_fit=result.model_fit, n_iter=result.n_iter, seconds=result.timings,
        reseeded=result.history["reseeded"], outputs=files, metrics=scores,
        result=result, missing=data.missing_info, noise=noise_text,
        noise_std=getattr(result, "noise_std", None), n_sources_estimate=estimate,
        fixed=[{"source": i, "name": f.name, "file": str(f.path)}
               for i, f in enumerate(held)],
        spectral_axis=data.spectral_axis, notes=list(data.notes),
        confidence=_confidence_list(result),
    )
    if summary_file:
        write_json(files["summary"], summary.to_json(), force)
    return summary
