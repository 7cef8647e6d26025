"""The ``sgmca-fast`` command line: demo, train, separate, evaluate, info.

Run ``sgmca-fast --help`` or ``sgmca-fast COMMAND --help``. User errors (a missing
or unreadable file, NaN values, a cube with fewer channels than sources, a model
with another channel count, counts that do not add up, an existing output without
``--force``) end with exit status 2 and one line on stderr, ``sgmca-fast: error:
...``, naming the file and the problem.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import _io

__all__ = ["main"]

_PROG = "sgmca-fast"
_METRICS = ("SAD", "SDR", "SIR", "SNR", "SAR")

_MODEL_HELP = """\
spectral model and how many sources follow it; repeatable. Forms:
NAME=PATH.onnx[:COUNT] (a trained model file, called NAME in the outputs),
PATH.onnx[:COUNT] (named after the model's family), or a built-in model
gauss|sync|thermal[:COUNT]. COUNT defaults to 1; the counts must add up to at most
-n (the other sources stay blind). Example: --model sync --model thermal
--model gauss:2"""


class UserError(ValueError):
    """A problem with the command line or the input files (exit status 2)."""


# ----------------------------------------------------------------------- helpers


def _progress(args) -> bool:
    """Progress bars only on a terminal and without --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _say(args, *text) -> None:
    """Print a message for people (on stderr when stdout carries JSON)."""
    if not getattr(args, "quiet", False):
        stream = sys.stderr if getattr(args, "json", False) else sys.stdout
        print(*text, file=stream, flush=True)


def _finite(value):
    """JSON-safe copy: non-finite floats become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _metrics_table(rows: dict[str, dict]) -> str:
    """Text table of the metrics, one line per method."""
    width = max(8, *(len(k) for k in rows))
    lines = [f"{'method':<{width}}" + "".join(f"{m + ' (dB)':>11}" for m in _METRICS)]
    for label, res in rows.items():
        cells = []
        for m in _METRICS:
            v = res[m]
            cells.append(f"{'inf' if v == np.inf else format(v, '.2f'):>11}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines)


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _estimate_arrays(result) -> dict:
    mapping = np.array([m or "" for m in result.mapping], dtype=str)
    fit = np.array([np.nan if f is None else f for f in result.model_fit])
    return {"A": result.A, "S": result.S, "mapping": mapping, "model_fit": fit}


def _column_names(result) -> list[str]:
    return [
        f"source_{i}" + (f" ({m})" if m else "") for i, m in enumerate(result.mapping)
    ]


# -------------------------------------------------------------------------- models


def _parse_model_spec(spec: str):
    """Split ``NAME=PATH[:COUNT]`` / ``PATH[:COUNT]`` / ``BUILTIN[:COUNT]``."""
    from .data import BUILTIN_MODELS

    text = spec.strip()
    count = 1
    head, sep, tail = text.rpartition(":")
    if sep and tail.strip().lstrip("+-").isdigit():
        text, count = head, int(tail)
    elif sep and not tail.strip():
        raise UserError(f"--model {spec!r}: empty COUNT after ':'")
    elif sep and not ("/" in tail or "\\" in tail or "." in tail):
        raise UserError(f"--model {spec!r}: COUNT {tail!r} is not an integer")
    if count < 1:
        raise UserError(f"--model {spec!r}: COUNT must be at least 1, got {count}")
    name = None
    if "=" in text:
        name, text = (part.strip() for part in text.split("=", 1))
        if not name:
            raise UserError(f"--model {spec!r}: empty NAME before '='")
    if not text:
        raise UserError(f"--model {spec!r}: no model file or built-in name")
    builtin = text in BUILTIN_MODELS and not Path(text).exists()
    return name, text, builtin, count


def _load_models(specs, n_channels: int, n_sources: int):
    """Load the --model options into {model: count}, checking what can be checked."""
    from . import iae
    from .data import BUILTIN_MODELS, model_path

    models, described, names = {}, [], set()
    for spec in specs:
        name, where, builtin, count = _parse_model_spec(spec)
        if builtin:
            path = model_path(where)
        else:
            path = Path(where)
            if not path.is_file():
                hint = (
                    "" if path.suffix else
                    f" (built-in models: {', '.join(BUILTIN_MODELS)})"
                )
                raise FileNotFoundError(f"{path}: model file not found{hint}")
        model = iae.load(path)
        model.name = name or model.name or path.stem
        if model.name in names:
            raise UserError(
                f"--model {spec!r}: two models are named {model.name!r}; give one "
                "another NAME (NAME=PATH.onnx)"
            )
        names.add(model.name)
        if model.n_channels != n_channels:
            raise UserError(
                f"{path}: model {model.name!r} has {model.n_channels} channels but the "
                f"cube has {n_channels}"
            )
        models[model] = count
        described.append(
            {"name": model.name, "path": str(path), "count": count, "builtin": builtin}
        )
    total = sum(models.values())
    if total > n_sources:
        raise UserError(
            f"the --model counts add up to {total} sources but -n is {n_sources}"
        )
    return models, described


# ---------------------------------------------------------------------------- demo


def _cmd_demo(args) -> int:
    from . import datasets, gmca, metrics, separate
    from .data import builtin_models

    out = Path(args.out)
    plots_ok = _have_matplotlib()
    files = {
        "truth": out / "truth.npz",
        "sgmca": out / "sgmca.npz",
        "gmca": out / "gmca.npz",
        "metrics": out / "metrics.json",
    }
    figures = {
        "spectra": out / "spectra.png",
        "sources_sgmca": out / "sources_sgmca.png",
        "sources_gmca": out / "sources_gmca.png",
        "convergence": out / "convergence_sgmca.png",
    }
    if plots_ok:
        files.update(figures)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    _io.check_writable(files.values(), args.force)

    t0 = time.perf_counter()
    mix = datasets.make_demo_mixture(size=args.size, snr_db=args.snr,
                                     random_state=args.seed)
    built = builtin_models()
    models = {built["sync"]: 1, built["thermal"]: 1, built["gauss"]: 2}
    _say(args, f"demo mixture: {mix.X.shape[0]} channels, {args.size}x{args.size} "
               f"pixels, 4 sources {mix.names}, SNR {args.snr:g} dB, seed {args.seed}")
    progress = _progress(args)
    res_s = separate(mix.X, 4, models, noise_std=mix.noise_std,
                     random_state=args.seed, progress=progress)
    res_g = gmca(mix.X, 4, noise_std=mix.noise_std, random_state=args.seed,
                 progress=progress)
    scores = {
        "sGMCA": metrics.evaluate(mix.A0, mix.S0, res_s.A, res_s.S, noise=mix.N),
        "GMCA": metrics.evaluate(mix.A0, mix.S0, res_g.A, res_g.S, noise=mix.N),
    }
    names = np.array(mix.names, dtype=str)
    _io.write_npz(files["truth"], {"A": mix.A0, "S": mix.S0, "N": mix.N,
                                   "names": names}, force=args.force)
    _io.write_npz(files["sgmca"], _estimate_arrays(res_s), force=args.force)
    _io.write_npz(files["gmca"], _estimate_arrays(res_g), force=args.force)
    if plots_ok:
        from . import plots

        energy = datasets.energy_grid(mix.X.shape[0])
        plots.plot_spectra({"sGMCA": res_s.A, "GMCA": res_g.A}, mix.A0,
                           names=mix.names, energy=energy, path=files["spectra"],
                           force=args.force,
                           title="Spectra: estimates (solid) and truth (dashed)")
        for key, label, res in (("sources_sgmca", "sGMCA", res_s),
                                ("sources_gmca", "GMCA", res_g)):
            plots.plot_sources(res.S, mix.S0, A=res.A, A0=mix.A0, names=mix.names,
                               path=files[key], force=args.force,
                               title=f"{label} sources (log scale)")
        plots.plot_history(res_s, path=files["convergence"], force=args.force,
                           title="sGMCA convergence")
    summary = {
        "command": "demo",
        "size": args.size, "snr_db": args.snr, "seed": args.seed,
        "metrics": scores,
        "mapping": res_s.mapping,
        "seconds": {"sGMCA": res_s.timings["total"], "GMCA": res_g.timings["total"]},
    }
    text = json.dumps(_finite(summary), indent=2)
    _io.atomic_write(files["metrics"], lambda tmp: Path(tmp).write_text(text + "\n"),
                     force=args.force)
    if args.quiet:
        return 0
    print()
    print(_metrics_table(scores))
    print()
    print(f"sGMCA {res_s.timings['total']:.1f} s ({res_s.n_iter['blind']} blind + "
          f"{res_s.n_iter['semiblind']} semi-blind iterations), GMCA "
          f"{res_g.timings['total']:.1f} s; total {time.perf_counter() - t0:.1f} s")
    print(f"wrote {', '.join(p.name for p in files.values())} to {out}")
    if not plots_ok:
        print("figures skipped: install matplotlib (pip install 'sgmca-fast[plots]')")
    print(f"next: {_PROG} evaluate {files['sgmca']} {files['truth']}")
    return 0


# --------------------------------------------------------------------------- train


def _parse_anchors(value: str, spectra: np.ndarray, spectra_path: str) -> np.ndarray:
    """--anchors: a spectra file, or comma-separated rows of SPECTRA."""
    text = value.strip()
    if text and all(part.strip().lstrip("-").isdigit() for part in text.split(",")):
        rows = [int(part) for part in text.split(",")]
        n = spectra.shape[0]
        bad = [r for r in rows if not -n <= r < n]
        if bad:
            raise UserError(
                f"--anchors: row(s) {bad} out of range for {spectra_path}, which holds "
                f"{n} spectra"
            )
        return spectra[rows]
    return _io.read_spectra(text)


def _npz_keys(path: Path) -> set[str]:
    if not path.name.lower().endswith(".npz") or not path.is_file():
        return set()
    try:
        with np.load(path, allow_pickle=False) as data:
            return set(data.files) if hasattr(data, "files") else set()
    except Exception:  # noqa: BLE001 - read_array reports the problem properly
        return set()


def _cmd_train(args) -> int:
    from .data._make_models import median_sad
    from .iae import train

    spectra_path = Path(args.spectra)
    keys = _npz_keys(spectra_path)
    key = args.key or ("train" if "train" in keys else None)
    spectra = _io.read_spectra(spectra_path, key)
    if args.anchors is not None:
        anchors = _parse_anchors(args.anchors, spectra, str(spectra_path))
    elif "anchors" in keys:
        anchors = _io.read_spectra(spectra_path, "anchors")
    else:
        raise UserError(
            f"{spectra_path}: no anchors; give --anchors FILE or --anchors 0,5,9 "
            "(rows of SPECTRA)"
        )
    if args.valid is not None:
        valid = _io.read_spectra(args.valid)
    elif "valid" in keys:
        valid = _io.read_spectra(spectra_path, "valid")
    else:
        valid = None
    for label, arr in (("--anchors", anchors), ("--valid", valid)):
        if arr is not None and arr.shape[1] != spectra.shape[1]:
            raise UserError(
                f"{label} spectra have {arr.shape[1]} channels but {spectra_path} has "
                f"{spectra.shape[1]}"
            )
    if anchors.shape[0] < 2:
        raise UserError(f"--anchors: need at least 2 anchor spectra, got "
                        f"{anchors.shape[0]}")
    out = Path(args.output)
    _io.check_writable([out], args.force)
    name = args.name if args.name is not None else spectra_path.stem
    _say(args, f"training {name!r}: {spectra.shape[0]} spectra, {spectra.shape[1]} "
               f"channels, {anchors.shape[0]} anchors, "
               f"{'no' if valid is None else valid.shape[0]} validation spectra")
    options = {k: v for k, v in (("max_epochs", args.max_epochs),
                                 ("lbfgs_iter", args.lbfgs_iter)) if v is not None}
    model = train(spectra, anchors, valid, n_layers=args.layers,
                  random_state=args.seed, progress=_progress(args), name=name,
                  **options)
    _io.atomic_write(out, model.save, force=args.force)
    which, check = ("validation", valid) if valid is not None else ("training", spectra)
    sad = median_sad(model, check)
    if args.json:
        print(json.dumps(_finite({
            "model": str(out), "name": name, "n_channels": model.n_channels,
            "n_anchors": model.n_anchors, f"{which}_sad": sad,
            "training": model.metadata.get("training", {}),
        }), indent=2))
    else:
        print(f"median {which} SAD: {sad:.2f} dB" +
              ("" if valid is not None else " (no --valid given)"))
        _say(args, f"wrote {out}")
    return 0


# ------------------------------------------------------------------------ separate


def _outputs(out: Path, fits: bool, figures: bool, json_file: bool) -> dict:
    if out.name.lower().endswith(".npz") or _io.is_fits(out):
        name = out.name
        for suffix in (*_io.FITS_SUFFIXES, ".npz"):
            if name.lower().endswith(suffix):
                stem = name[: -len(suffix)]
                break
        base = out.parent
        files = {"estimate": out, "csv": base / f"{stem}_A.csv"}
        names = {k: base / f"{stem}_{k}.png" for k in ("spectra", "sources",
                                                       "convergence")}
        summary = base / f"{stem}.json"
    else:
        files = {"estimate": out / ("estimate.fits" if fits else "estimate.npz"),
                 "csv": out / "A.csv"}
        names = {k: out / f"{k}.png" for k in ("spectra", "sources", "convergence")}
        summary = out / "summary.json"
    if figures:
        files.update(names)
    if json_file:
        files["summary"] = summary
    return files


def _cmd_separate(args) -> int:
    from . import gmca, metrics, separate

    cube_path = Path(args.cube)
    X = _io.read_cube(cube_path, args.key, args.channel_axis)
    n = args.n_sources
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if X.shape[0] < n:
        raise UserError(
            f"{cube_path}: the cube has {X.shape[0]} channels, fewer than the {n} "
            "sources asked (-n)"
        )
    if args.gmca_only and args.model:
        raise UserError("--gmca-only and --model cannot be used together")
    models, described = ({}, [])
    if args.model:
        models, described = _load_models(args.model, X.shape[0], n)
    truth = None
    if args.truth is not None:
        truth = _io.read_estimate(args.truth)
        if truth["A"].shape != (X.shape[0], n) or truth["S"].shape[1:] != X.shape[1:]:
            raise UserError(
                f"{args.truth}: truth A {truth['A'].shape} and S {truth['S'].shape} "
                f"do not fit the cube {X.shape} with {n} sources"
            )
    out = Path(args.output)
    want_fits = args.fits or _io.is_fits(out)
    figures = not args.no_figures and _have_matplotlib()
    files = _outputs(out, want_fits, figures, args.json)
    if out.suffix == "" or not (out.name.lower().endswith(".npz") or _io.is_fits(out)):
        if out.exists() and not out.is_dir():
            raise UserError(f"{out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
    _io.check_writable(files.values(), args.force)

    kwargs = {"noise_std": args.noise_std, "nscales": args.nscales,
              "random_state": args.seed, "progress": _progress(args)}
    if models:
        result = separate(X, n, models, max_iter_semiblind=args.max_iter, **kwargs)
    else:
        result = gmca(X, n, **kwargs)

    est = _estimate_arrays(result)
    if _io.is_fits(files["estimate"]):
        _io.write_fits(files["estimate"], {"A": result.A, "S": result.S},
                       force=args.force)
    else:
        _io.write_npz(files["estimate"], est, force=args.force)
    _io.write_csv(files["csv"], result.A, _column_names(result), force=args.force)
    scores = None
    if truth is not None:
        scores = metrics.evaluate(truth["A"], truth["S"], result.A, result.S,
                                  noise=truth.get("N"))
    if figures:
        from . import plots

        labels = _column_names(result)
        A0 = None if truth is None else truth["A"]
        names = labels if truth is None else [f"source {i}" for i in range(n)]
        plots.plot_spectra(result.A, A0, names=names, path=files["spectra"],
                           force=args.force, title=f"Spectra of {cube_path.name}")
        if result.S.ndim == 3:
            plots.plot_sources(result.S, None if truth is None else truth["S"],
                               A=result.A, A0=A0, names=names,
                               path=files["sources"], force=args.force,
                               title=f"Sources of {cube_path.name} (log scale)")
        else:
            files.pop("sources")
        plots.plot_history(result, path=files["convergence"], force=args.force,
                           title="Convergence")
    summary = {
        "command": "separate",
        "cube": str(cube_path), "shape": list(X.shape), "n_sources": n,
        "method": "sGMCA" if models else "GMCA",
        "models": described,
        "mapping": result.mapping, "model_fit": result.model_fit,
        "n_iter": result.n_iter, "seconds": result.timings,
        "reseeded": result.history["reseeded"],
        "outputs": {k: str(v) for k, v in files.items()},
    }
    if scores is not None:
        summary["metrics"] = scores
    if args.json:
        text = json.dumps(_finite(summary), indent=2)
        _io.atomic_write(files["summary"],
                         lambda tmp: Path(tmp).write_text(text + "\n"),
                         force=args.force)
        print(text)
        return 0
    if not args.quiet:
        print(f"{summary['method']}: {n} sources from {cube_path} {X.shape}, "
              f"{result.n_iter['blind']} blind + {result.n_iter['semiblind']} "
              f"semi-blind iterations, {result.timings['total']:.1f} s")
        for i, (m, f) in enumerate(zip(result.mapping, result.model_fit,
                                       strict=True)):
            fit = "" if f is None else f", model fit {f:.3f}"
            print(f"  source {i}: {m or 'blind'}{fit}")
        if scores is not None:
            print(_metrics_table({summary["method"]: scores}))
        print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0


# ------------------------------------------------------------------------ evaluate


def _cmd_evaluate(args) -> int:
    from . import metrics

    est = _io.read_estimate(args.estimate)
    truth = _io.read_estimate(args.truth)
    A, S, A0, S0 = est["A"], est["S"], truth["A"], truth["S"]
    if A.shape != A0.shape:
        raise UserError(
            f"{args.estimate}: A has shape {A.shape} but the truth {args.truth} has "
            f"{A0.shape}"
        )
    if S.reshape(S.shape[0], -1).shape != S0.reshape(S0.shape[0], -1).shape:
        raise UserError(
            f"{args.estimate}: S has shape {S.shape} but the truth {args.truth} has "
            f"{S0.shape}"
        )
    sources = None
    if args.sources is not None:
        try:
            sources = [int(v) for v in args.sources.split(",")]
        except ValueError:
            raise UserError(
                f"--sources must be comma-separated integers, got {args.sources!r}"
            ) from None
    noise = truth.get("N")
    if noise is not None and noise.shape[1:] != S0.shape[1:]:
        noise = None
    scores = metrics.evaluate(A0, S0, A, S.reshape(S0.shape), noise=noise,
                              sources=sources)
    if args.json:
        print(json.dumps(_finite({"estimate": args.estimate, "truth": args.truth,
                                  **scores}), indent=2))
        return 0
    print(_metrics_table({Path(args.estimate).stem: scores}))
    print("SAD per source (dB): " +
          ", ".join(f"{v:.2f}" for v in scores["SAD_per_source"]))
    if noise is None:
        print("(no noise N in the truth file: SNR is inf)")
    return 0


# ---------------------------------------------------------------------------- info


def _cmd_info(args) -> int:
    from . import iae
    from .data import BUILTIN_MODELS, model_path

    where = args.model
    path = model_path(where) if (where in BUILTIN_MODELS and
                                 not Path(where).exists()) else Path(where)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    model = iae.load(path)
    info = {
        "file": str(path),
        "size_kB": round(path.stat().st_size / 1024, 1),
        "family": model.name,
        **model.settings(),
        "package_version": getattr(model, "package_version", None),
        "training_spectra": (None if model.training_spectra is None
                             else int(model.training_spectra.shape[0])),
        "training": model.metadata.get("training", model.metadata),
    }
    if args.json:
        print(json.dumps(_finite(info), indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "training":
            continue
        print(f"{key:<{width}}  {value}")
    training = info["training"] or {}
    if training:
        print("training:")
        for key, value in training.items():
            print(f"  {key}: {value}")
    return 0


# -------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``sgmca-fast``."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Semi-blind separation of spectral cubes X = A S + N with sGMCA "
        "(GMCA + spectra constrained by learned IAE models).",
        epilog="Example: sgmca-fast demo --out sgmca-demo",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, force=True):
        p.add_argument("--quiet", action="store_true",
                       help="no progress bars and no messages")
        if force:
            p.add_argument("--force", action="store_true",
                           help="overwrite existing outputs")

    p = sub.add_parser(
        "demo", help="separate a built-in synthetic cube with sGMCA and GMCA",
        description="Build a Cas A-like mixture from the built-in data (4 sources, 75 "
        "channels), separate it with sGMCA (built-in models sync, thermal, gauss x2) "
        "and GMCA, print their metrics and write the estimates, the truth and the "
        "figures to --out.",
    )
    p.add_argument("--out", default="sgmca-demo", metavar="DIR",
                   help="output folder (default: ./sgmca-demo)")
    p.add_argument("--size", type=_positive_int, default=128, metavar="N",
                   help="image size in pixels, N x N (default 128, at least 16)")
    p.add_argument("--snr", type=float, default=40.0, metavar="DB",
                   help="signal-to-noise ratio in dB (default 40)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seed of the sources, spectra and noise (default 0)")
    common(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "train", help="train an IAE spectral model and save it as ONNX",
        description="Train an interpolatory autoencoder on spectra (one per row, in "
        ".npy, .npz, .csv or FITS). An .npz with keys train/anchors/valid (like "
        "datasets.make_spectra_sets) provides all three. Prints the median "
        "validation SAD.",
    )
    p.add_argument("spectra", metavar="SPECTRA", help="training spectra (n, J)")
    p.add_argument("--anchors", metavar="FILE_OR_ROWS",
                   help="anchor spectra: a file, or comma-separated rows of SPECTRA "
                   "(e.g. 0,17,42); at least 2")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx",
                   help="output model file")
    p.add_argument("--valid", metavar="FILE",
                   help="validation spectra (early stopping, reported SAD)")
    p.add_argument("--key", help="array to read from an .npz SPECTRA "
                   "(default: 'train' when present, else its only array)")
    p.add_argument("--name", help="family name stored in the model "
                   "(default: the SPECTRA file name)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--max-epochs", type=_positive_int, default=None, metavar="N",
                   help="Adam epochs (default: those of sgmca_fast.iae.train)")
    p.add_argument("--lbfgs-iter", type=_positive_int, default=None, metavar="N",
                   help="L-BFGS iterations after Adam (default: train's)")
    p.add_argument("--layers", type=_positive_int, default=4, metavar="L",
                   help="layers of the encoder and of the decoder (default 4)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    common(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "separate", help="separate a cube into sources and spectra",
        description="Separate a cube X (J, H, W) = A S + N. Without --model this is "
        "GMCA; each --model constrains COUNT spectra to a learned model (sGMCA). "
        "OUT ending in .npz or .fits names the estimate file (side files "
        "OUT_A.csv, OUT_spectra.png, ... next to it); any other OUT is a folder "
        "receiving estimate.npz (A, S, mapping, model_fit), A.csv, spectra.png, "
        "sources.png, convergence.png and, with --json, summary.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cube", metavar="CUBE", help="data cube: .npy, .npz or FITS")
    p.add_argument("-n", "--n-sources", type=int, required=True, metavar="N",
                   help="number of sources")
    p.add_argument("--model", action="append", default=[], metavar="SPEC",
                   help=_MODEL_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder, or an .npz / .fits estimate file")
    p.add_argument("--key", help="array of an .npz CUBE, or HDU of a FITS CUBE")
    p.add_argument("--channel-axis", type=int, default=0, metavar="AXIS",
                   help="axis of the channels in CUBE (default 0)")
    p.add_argument("--noise-std", type=_positive_float, default=None, metavar="X",
                   help="noise standard deviation (default: estimated by the MAD)")
    p.add_argument("--nscales", type=_positive_int, default=2,
                   help="starlet detail scales (default 2)")
    p.add_argument("--max-iter", type=int, default=50, metavar="N",
                   help="maximum semi-blind iterations (default 50)")
    p.add_argument("--gmca-only", action="store_true",
                   help="blind GMCA, no spectral model")
    p.add_argument("--truth", metavar="TRUTH.npz",
                   help="true A and S (like the demo's truth.npz): adds metrics, "
                   "dashed truth curves and error maps")
    p.add_argument("--fits", action="store_true",
                   help="write the estimate as FITS in a folder OUT")
    p.add_argument("--no-figures", action="store_true", help="write no figures")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary (also written next to the outputs)")
    common(p)
    p.set_defaults(func=_cmd_separate)

    p = sub.add_parser(
        "evaluate", help="metrics of an estimate against the truth",
        description="SAD, SDR, SIR, SNR, SAR (dB) of an estimate (npz or FITS with A "
        "and S) against the truth (same layout; its noise N, when present, gives "
        "the SNR), after matching permutation and signs.",
    )
    p.add_argument("estimate", metavar="ESTIMATE")
    p.add_argument("truth", metavar="TRUTH")
    p.add_argument("--sources", metavar="I,J,...",
                   help="true sources the source metrics are summed over")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "info", help="describe a model file",
        description="Family, channels, anchors, architecture and training settings "
        "of an IAE model (.onnx, or a built-in name: gauss, sync, thermal).",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def main(argv=None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 2 for a user error (one line on stderr), 130 when
        interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:  # FileNotFoundError is an OSError
        print(f"{_PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
