"""The ``sgmca-fast`` command line: demo, train, separate, evaluate, info, bin.

Run ``sgmca-fast --help`` or ``sgmca-fast COMMAND --help``. Each command parses its
options, calls one function of :mod:`sgmca_fast.workflows` and prints its summary.
Bad input (a missing or unreadable file, NaN values, a cube with fewer channels
than sources, a model with another channel count, counts that do not add up, an
existing or unwritable output) is an :class:`~sgmca_fast._validation.InputError`:
exit status 2 and one line on stderr, ``sgmca-fast: error: ...``, naming the file
and the problem. Any other exception is a bug and shows its traceback (exit 1).
SIGINT exits with status 130 and SIGTERM (what batch schedulers send) with 143,
each with one line on stderr and no temporary file left behind.

This module imports only the standard library at first: the signal handlers are
installed before numpy, numba and the rest load, so an interrupt during those
imports also ends in one line.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading

__all__ = ["main"]

_PROG = "sgmca-fast"
_METRICS = ("SAD", "SDR", "SIR", "SNR", "SAR")
_SIGNAL_STATUS = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal number

_MODEL_HELP = """\
spectral model and how many sources follow it; repeatable. Forms:
NAME=PATH.onnx[:COUNT] (a trained model file, called NAME in the outputs),
PATH.onnx[:COUNT] (named after the model's family), or a built-in model
gauss|sync|thermal[:COUNT]. COUNT defaults to 1; the counts must add up to at most
-n (the other sources stay blind). Example: --model sync --model thermal
--model gauss:2"""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like SIGINT's KeyboardInterrupt so that cleanups run."""


# ----------------------------------------------------------------------- helpers


def _progress(args) -> bool:
    """Progress bars only on a terminal and without --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _say(args, *text) -> None:
    """Print a message for people (on stderr when stdout carries JSON)."""
    if not getattr(args, "quiet", False):
        stream = sys.stderr if getattr(args, "json", False) else sys.stdout
        print(*text, file=stream, flush=True)


def _logger(args):
    return lambda text: _say(args, text)


def _metrics_table(rows: dict[str, dict]) -> str:
    """Text table of the metrics, one line per method."""
    width = max(8, *(len(k) for k in rows))
    lines = [f"{'method':<{width}}" + "".join(f"{m + ' (dB)':>11}" for m in _METRICS)]
    for label, res in rows.items():
        cells = []
        for m in _METRICS:
            v = res[m]
            cells.append(f"{'inf' if v == math.inf else format(v, '.2f'):>11}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines)


def _print_json(summary: dict) -> None:
    from .workflows import jsonable

    print(json.dumps(jsonable(summary), indent=2))


# -------------------------------------------------------------------------- commands


def _cmd_demo(args) -> int:
    from . import workflows

    run = workflows.demo(args.out, size=args.size, snr_db=args.snr, seed=args.seed,
                         force=args.force, progress=_progress(args),
                         log=_logger(args))
    if args.quiet:
        return 0
    n_iter = run.n_iter
    print()
    print(_metrics_table(run.metrics))
    print()
    print(f"sGMCA {run.seconds['sGMCA']:.1f} s ({n_iter['blind']} blind + "
          f"{n_iter['semiblind']} semi-blind iterations), GMCA "
          f"{run.seconds['GMCA']:.1f} s; total {run.total_seconds:.1f} s")
    print(f"wrote {', '.join(p.name for p in run.files.values())} to {run.out}")
    if not run.figures:
        print("figures skipped: install matplotlib (pip install 'sgmca-fast[plots]')")
    print(f"next: {_PROG} evaluate {run.files['sgmca']} {run.files['truth']}")
    return 0


def _cmd_train(args) -> int:
    from . import workflows

    run = workflows.train_file(
        args.spectra, args.output, anchors=args.anchors, valid=args.valid,
        key=args.key, name=args.name, seed=args.seed, max_epochs=args.max_epochs,
        lbfgs_iter=args.lbfgs_iter, layers=args.layers, force=args.force,
        progress=_progress(args), log=_logger(args),
    )
    if args.json:
        _print_json(run.to_dict())
        return 0
    print(f"median {run.checked_on} SAD: {run.sad_db:.2f} dB" +
          ("" if run.n_valid is not None else " (no --valid given)"))
    _say(args, f"wrote {run.path}")
    return 0


def _cmd_separate(args) -> int:
    from . import workflows

    run = workflows.separate_file(
        args.cube, args.output, n_sources=args.n_sources, models=args.model,
        key=args.key, channel_axis=args.channel_axis, noise_std=args.noise_std,
        noise=args.noise, mask=args.mask, variance=args.variance, fixed=args.fixed,
        nscales=args.nscales, max_iter=args.max_iter, gmca_only=args.gmca_only,
        truth=args.truth, fits=args.fits, figures=not args.no_figures,
        seed=args.seed, summary_file=args.json, force=args.force,
        progress=_progress(args), stream=args.stream, log=_logger(args),
        dtype=args.dtype, subspace=args.subspace, refit_spectra=args.refit_spectra,
    )
    if run.n_sources_estimate is not None:
        _say(args, f"-n auto: {run.n_sources_estimate.n_sources} sources "
                   f"({run.n_sources_estimate.evidence})")
    if args.json:
        print(run.to_json())
        return 0
    if args.quiet:
        return 0
    print(f"{run.method}: {run.n_sources} sources from {run.cube} {run.shape}, "
          f"{run.n_iter['blind']} blind + {run.n_iter['semiblind']} "
          f"semi-blind iterations, {run.seconds['total']:.1f} s")
    fixed = {f["source"] for f in run.fixed}
    conf = run.confidence if run.confidence is not None else [None] * run.n_sources
    for i, (m, f, c) in enumerate(zip(run.mapping, run.model_fit, conf,
                                      strict=True)):
        fit = "" if f is None else f", model fit {f:.3f}"
        trust = "" if c is None else f", confidence {c:.2f}"
        what = f"{m} (fixed)" if i in fixed else m or "blind"
        print(f"  source {i}: {what}{fit}{trust}")
    if run.metrics is not None:
        print(_metrics_table({run.method: run.metrics}))
    print(f"wrote {', '.join(str(p) for p in run.outputs.values())}")
    return 0


def _parse_sources(text: str | None):
    from ._validation import InputError

    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError(
            f"--sources must be comma-separated integers, got {text!r}"
        ) from None


def _cmd_evaluate(args) -> int:
    from pathlib import Path

    from . import workflows

    run = workflows.evaluate_files(args.estimate, args.truth,
                                   sources=_parse_sources(args.sources))
    if args.json:
        _print_json(run.to_dict())
        return 0
    print(_metrics_table({Path(args.estimate).stem: run.metrics}))
    print("SAD per source (dB): " +
          ", ".join(f"{v:.2f}" for v in run.metrics["SAD_per_source"]))
    if not run.has_noise:
        print("(no noise N in the truth file: SNR is inf)")
    return 0


def _cmd_info(args) -> int:
    from . import workflows

    info = workflows.model_info(args.model)
    if args.json:
        _print_json(info.to_dict())
        return 0
    width = max(len(k) for k in info.to_dict())
    for key, value in info.fields.items():
        print(f"{key:<{width}}  {value}")
    if info.training:
        print("training:")
        for key, value in info.training.items():
            print(f"  {key}: {value}")
    return 0


def _numbers(text: str, count: int, option: str, form: str) -> list[float]:
    """Split ``a:b`` (or ``a:b,c:d``) into floats; InputError naming ``option``."""
    from ._validation import InputError

    parts = [p for chunk in text.split(",") for p in chunk.split(":")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(map(math.isfinite, values)):
        raise InputError(f"{option} must be {form}, got {text!r}")
    return values


def _cmd_bin(args) -> int:
    from . import workflows

    box = world = None
    if args.box is not None:
        box = _numbers(args.box, 4, "--box", "X0:X1,Y0:Y1 (sky pixels)")
    if args.world_box is not None:
        world = _numbers(args.world_box, 4, "--world-box",
                         "LON0:LON1,LAT0:LAT1 (degrees)")
    columns = None if args.columns is None else args.columns.split(",")
    run = workflows.bin_events(
        args.events, args.output,
        energy=_numbers(args.energy, 2, "--energy", "EMIN:EMAX (keV)"),
        channels=args.channels, log=args.log, binning=args.bin, box=box,
        world_box=world, columns=columns, gain=args.gain, ext=args.ext,
        force=args.force,
    )
    if args.json:
        _print_json(run.to_dict())
        return 0
    for note in run.notes:
        _say(args, f"note: {note}")
    _say(args, f"{run.n_rows:,} photons read, {run.n_band:,} in the band, "
               f"{run.n_kept:,} binned into a cube {run.shape} in "
               f"{run.seconds:.1f} s")
    _say(args, f"wrote {run.output}")
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


def _subspace(text: str):
    """``--subspace``: "auto" or a rank of at least 1."""
    return "auto" if text == "auto" else _positive_int(text)


def _n_sources(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    return _positive_int(text)


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
        "NaN voxels (and --mask) are missing data. A FITS CUBE brings its "
        "variance or error extension, DQ mask, spectral axis and sky WCS, which "
        "the outputs keep (FITS maps with the WCS, A.csv with the spectral "
        "coordinate, figures in physical units). "
        "OUT ending in .npz or .fits names the estimate file (side files "
        "OUT_A.csv, OUT_spectra.png, ... next to it); any other OUT is a folder "
        "receiving estimate.npz (A, S, mapping, model_fit), A.csv, spectra.png, "
        "sources.png, convergence.png and, with --json, summary.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cube", metavar="CUBE", help="data cube: .npy, .npz or FITS")
    p.add_argument("-n", "--n-sources", type=_n_sources, required=True,
                   metavar="N", help="number of sources, or 'auto' to estimate it "
                   "from the noise-whitened data (the evidence is reported)")
    p.add_argument("--model", action="append", default=[], metavar="SPEC",
                   help=_MODEL_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder, or an .npz / .fits estimate file")
    p.add_argument("--key", help="array of an .npz CUBE, or HDU of a FITS CUBE")
    p.add_argument("--channel-axis", type=int, default=0, metavar="AXIS",
                   help="axis of the channels in CUBE (default 0)")
    p.add_argument("--noise-std", type=_positive_float, default=None, metavar="X",
                   help="noise standard deviation (default: the cube's variance, "
                   "else estimated per channel from the data)")
    p.add_argument("--noise", choices=("gaussian", "poisson"), default="gaussian",
                   help="noise law: gaussian (default) or poisson for a cube of "
                   "photon counts (non-negative integers), whose variance then "
                   "follows the counts")
    p.add_argument("--mask", metavar="FILE",
                   help="missing voxels: a bool or integer array of the cube's "
                   "shape, nonzero = missing (.npy, .npz or FITS); NaN voxels are "
                   "missing anyway")
    p.add_argument("--variance", metavar="FILE_OR_EXT",
                   help="noise variance, one value per channel (J,) or per voxel: "
                   "a file, or an extension of a FITS CUBE; 'none' ignores the "
                   "cube's own (default: a FITS CUBE's VARIANCE, VAR, STAT, ERR or "
                   "ERROR extension)")
    p.add_argument("--fixed", action="append", default=[], metavar="NAME=FILE.csv",
                   help="a spectrum held fixed (a CSV like A.csv: an optional "
                   "coordinate column, then the spectrum, or a column named NAME); "
                   "NAME labels the source; repeatable")
    p.add_argument("--stream", action=argparse.BooleanOptionalAction,
                   default="auto",
                   help="read the cube in blocks, never whole (complete data, "
                   "one noise level per channel; a channel subspace is used); "
                   "default: for files over 1 GiB that allow it")
    p.add_argument("--nscales", type=_positive_int, default=2,
                   help="starlet detail scales (default 2)")
    p.add_argument("--max-iter", type=int, default=50, metavar="N",
                   help="maximum semi-blind iterations (default 50)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="working precision of the cube-sized arrays: float32 "
                   "halves their memory (A stays float64; default float64)")
    p.add_argument("--subspace", type=_subspace, default=None, metavar="auto|R",
                   help="iterate on the data's leading R principal channel "
                   "directions ('auto': R from the noise floor with a margin); "
                   "for cubes of many channels (default: all channels)")
    p.add_argument("--refit-spectra", action="store_true",
                   help="after the last iteration, refit the spectra by least "
                   "squares to the debiased sources, off the models' manifolds "
                   "(more accurate when every source is well above the noise)")
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

    p = sub.add_parser(
        "bin", help="bin a photon event list into a count cube",
        description="Bin an X-ray event list (FITS binary table: sky X, Y and "
        "ENERGY in eV, or PI channels with --gain) into a count cube (FITS, int32) "
        "carrying the table's sky WCS and the energy axis. The table is read in "
        "chunks, so its size does not matter. Example: sgmca-fast bin "
        "events.fits --energy 0.5:7 --channels 75 --bin 4 -o cube.fits",
    )
    p.add_argument("events", metavar="EVENTS", help="event list (FITS)")
    p.add_argument("-o", "--output", required=True, metavar="CUBE.fits",
                   help="output count cube")
    p.add_argument("--energy", default="0.5:7", metavar="EMIN:EMAX",
                   help="energy band in keV (default 0.5:7)")
    p.add_argument("--channels", type=_positive_int, default=75, metavar="J",
                   help="energy channels (default 75)")
    p.add_argument("--log", action="store_true",
                   help="channels uniform in log(E) (CTYPE3 ENER-LOG)")
    p.add_argument("--bin", type=_positive_int, default=1, metavar="B",
                   help="sky pixels per cube pixel, per axis (default 1)")
    p.add_argument("--box", metavar="X0:X1,Y0:Y1",
                   help="sky pixel box (edges; default: where the events are)")
    p.add_argument("--world-box", metavar="LON0:LON1,LAT0:LAT1",
                   help="box in world coordinates (degrees, e.g. RA and Dec)")
    p.add_argument("--columns", metavar="X,Y,E",
                   help="column names of x, y and energy (or PI with --gain); "
                   "default X,Y,ENERGY (X,Y,PI with --gain)")
    p.add_argument("--gain", type=_positive_float, default=None, metavar="EV",
                   help="eV per PI channel: bin a PI column (14.6 for Chandra ACIS)")
    p.add_argument("--ext", help="HDU of the table (default EVENTS, else the "
                   "first binary table)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    common(p)
    p.set_defaults(func=_cmd_bin)
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def _raise_terminated(signum, frame):
    raise _Terminated


def _install_handlers(previous: dict) -> None:
    """SIGINT raises KeyboardInterrupt and SIGTERM :class:`_Terminated`.

    Only in the main thread (Python delivers signals there). ``previous`` receives
    each replaced handler as soon as it is replaced, for :func:`_restore_handlers`.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, _raise_terminated)):
        previous[signum] = signal.signal(signum, handler)


def _restore_handlers(previous: dict) -> None:
    # main() may be called in-process (tests, notebooks): leave no handler behind
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _run(argv) -> int:
    # imported here, after the signal handlers: _validation brings numpy
    from ._validation import InputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"{_PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 2 for bad input (one line on stderr), 130 when interrupted
        (SIGINT), 143 when terminated (SIGTERM). Any other error is a bug: its
        traceback is shown and Python exits with status 1.
    """
    previous: dict = {}
    try:
        try:
            _install_handlers(previous)
            return _run(argv)
        except _Terminated:
            print(f"{_PROG}: terminated (SIGTERM)", file=sys.stderr)
            return _SIGNAL_STATUS["SIGTERM"]
        except KeyboardInterrupt:
            print(f"{_PROG}: interrupted", file=sys.stderr)
            return _SIGNAL_STATUS["SIGINT"]
    finally:
        _restore_handlers(previous)


if __name__ == "__main__":
    sys.exit(main())
