"""The whole scale table of issue 14: each case's time, peak RSS, accuracy, target.

Run from the repository root, alone on the machine (``flock /work/bench.lock``):

    python bench/scale_table.py --dir /work/helpers/scaletable/big
    python bench/scale_table.py --cases casa channels40 fit-pixels fit-channels
    python bench/scale_table.py --quick --dir /tmp/scale      # a smoke run

Every run is a child process (:func:`large_cube.measure`, which runs
``bench/large_cube.py run``) on a cube written once to ``--dir`` as ``.npy`` with
its truth beside it (:func:`large_cube.write_cube`: the demo's four sources at any
size; at 75 channels the demo's spectra, else smooth random bumps; 40 dB, seed
0), so each row's peak RSS is its own process's. The child first runs one small
untimed separation (compiling the Numba kernels, loading the models), then
times ``separate`` (best of ``--repeat``). The cases (``--cases``):

``casa``
    Cas A (75 x 346 x 346, k = 1, 40 dB, seed 0, noise given, the authors'
    models), in memory: sGMCA and GMCA with the defaults (``subspace=None``)
    and with ``subspace="auto"``. Targets: sGMCA <= 2 s, GMCA <= 1 s.
``channels40``
    3,681 x 40 x 40 in memory, ``gmca`` default and ``subspace="auto"``;
    target <= 3 s.
``channels300``
    3,681 x 300 x 300 float32 on disk, ``separate`` on the memory map (streamed,
    GMCA); target <= 60 s and peak RSS <= 1.5 GB.
``pixels2048``
    75 x 2048 x 2048 float32 on disk, sGMCA (the built-in models) streamed;
    target <= 60 s and peak RSS <= 2 GB.
``bigger``
    A cube larger than the machine's memory (``--big-channels`` x
    ``--big-size``^2 float32, by default 3,681 x 1,400^2 = 26.9 GiB), GMCA
    streamed; target peak RSS <= 4 GB, time reported.
``fit-pixels``, ``fit-channels``
    ``gmca`` time against the pixel count (75 channels; 128^2, 256^2, 512^2,
    1024^2) and the channel count (128 x 128 images, smooth-bump spectra; 75,
    300, 1000, 3000), default and ``subspace="auto"`` side by side, each point
    a child; the exponent is the least-squares slope of log time on log size
    (``numpy.polyfit``). Target: exponent <= 1.1.

Peak RSS is the child's ``ru_maxrss``, which counts the pages of a memory-mapped
cube it has read; the "allocations" column is the largest ``RssAnon`` sampled
every 50 ms during the timed runs (what the solver holds). Sizes in GB = 1e9
bytes, as the targets. ``--quick`` shrinks every case (the targets then do not
apply). The files stay in ``--dir`` for a rerun; ``--delete`` removes each
case's files after it.
"""

import argparse
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import _common
import large_cube
import numpy as np

GB = 1e9
KEEP_FREE = 20 * 2**30  # disk left free after writing a cube
CASES = ("casa", "channels40", "channels300", "pixels2048", "bigger",
         "fit-pixels", "fit-channels")


@dataclass
class Target:
    """Upper bounds of a row: seconds, peak RSS bytes or fitted exponent."""

    seconds: float | None = None
    rss: float | None = None
    exponent: float | None = None

    def __str__(self):
        parts = []
        if self.seconds is not None:
            parts.append(f"<= {self.seconds:g} s")
        if self.rss is not None:
            parts.append(f"<= {self.rss / GB:g} GB")
        if self.exponent is not None:
            parts.append(f"exponent <= {self.exponent:g}")
        return ", ".join(parts) or "reported"


@dataclass
class Row:
    """One line of the table (times in s, sizes in bytes, accuracy in dB)."""

    case: str
    settings: str
    seconds: float | None = None
    rss: float | None = None
    anon: float | None = None
    sad: float | None = None
    sdr: float | None = None
    exponent: float | None = None
    target: Target = field(default_factory=Target)
    quick: bool = False
    timings: dict = field(default_factory=dict)
    note: str = ""


def fit_exponent(sizes, seconds):
    """Least-squares slope and prefactor of log(seconds) on log(sizes).

    Parameters
    ----------
    sizes : (n,) array_like
        Positive problem sizes (pixels or channels), n >= 2.
    seconds : (n,) array_like
        Positive times.

    Returns
    -------
    exponent, prefactor : float
        ``seconds ~ prefactor * sizes ** exponent``.
    """
    slope, intercept = np.polyfit(np.log(sizes), np.log(seconds), 1)
    return float(slope), float(np.exp(intercept))


def verdict(row):
    """"met", "not met (...)" with each missed bound's ratio, or "n/a"."""
    if row.quick:
        return "n/a (quick)"
    t = row.target
    missed = []
    for name, value, bound, unit in (
            ("time", row.seconds, t.seconds, "x"),
            ("RSS", row.rss, t.rss, "x"),
            ("exponent", row.exponent, t.exponent, "")):
        if bound is None or value is None:
            continue
        if value > bound:
            missed.append(f"{name} {value / bound:.2f}x" if unit else
                          f"{name} {value:.2f} > {bound:g}")
    if t.seconds is None and t.rss is None and t.exponent is None:
        return "reported"
    return "not met (" + ", ".join(missed) + ")" if missed else "met"


def _num(value, fmt):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, fmt)


def markdown_table(rows):
    """The rows as a markdown table (str, one line per row, a header first)."""
    head = ["case", "method / settings", "time", "peak RSS", "allocations",
            "SAD / SDR (dB)", "target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.exponent is not None:
            when = f"exponent {r.exponent:.2f}"
        else:
            when = _num(r.seconds, ".2f") + " s" if r.seconds is not None else ""
        acc = (f"{r.sad:.2f} / {r.sdr:.2f}" if r.sad is not None else "")
        cells = [r.case, r.settings, when,
                 _num(None if r.rss is None else r.rss / GB, ".2f")
                 + (" GB" if r.rss is not None else ""),
                 _num(None if r.anon is None else r.anon / GB, ".2f")
                 + (" GB" if r.anon is not None else ""),
                 acc, str(r.target), verdict(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stages_table(rows):
    """Where each timed row's seconds go: the Separation's timings, its iterations."""
    lines = ["| case | settings | stages (s) | iterations | rank |",
             "|---|---|---|---|---|"]
    for r in rows:
        if not r.timings:
            continue
        t = r.timings
        stages = ", ".join(f"{k} {v:.2f}" for k, v in t["timings"].items())
        it = ", ".join(f"{k} {v}" for k, v in (t.get("n_iter") or {}).items())
        rank = "" if t.get("rank") is None else f"{t['rank']} ({t['method']})"
        lines.append(f"| {r.case} | {r.settings} | {stages} | {it} | {rank} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------
# the cubes
# --------------------------------------------------------------------------------


def ensure_cube(folder, J, size, bumps=False):
    """The path of a written cube, writing it (float32, seed 0) if absent."""
    path = large_cube.cube_path(folder, J, size, 0, bumps)
    truth = path.with_suffix(".truth.npz")
    if path.exists() and truth.exists():
        return path
    need = 4 * J * size * size + 128 + 8 * 4 * size * size
    free = shutil.disk_usage(folder).free
    if free - need < KEEP_FREE:
        raise SystemExit(f"writing {path} ({need / 2**30:.1f} GiB) would leave "
                         f"{(free - need) / 2**30:.1f} GiB free on the disk, under "
                         f"the {KEEP_FREE / 2**30:.0f} GiB kept; choose a smaller "
                         "cube or free some space")
    t0 = time.perf_counter()
    large_cube.write_cube(path, size, J, 40.0, 0, bumps)
    print(f"wrote {path.name} ({path.stat().st_size / 2**30:.2f} GiB) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    return path


def casa_cube(folder):
    """Cas A seed 0 (k = 1, 40 dB) as a float64 .npy, its truth beside it."""
    from casa_separation import make_case

    path = Path(folder) / "casa_s0.npy"
    if not (path.exists() and path.with_suffix(".truth.npz").exists()):
        mix = make_case(_common.load_casa(), 0, 1.0, 40.0, 0)
        np.save(path, mix.X)
        np.savez(path.with_suffix(".truth.npz"), A=mix.A0, S=mix.S0,
                 sigma=mix.noise_std)
    return path


def remove_cube(path):
    for p in (path, path.with_suffix(".truth.npz"),
              *path.parent.glob(f"estimate_{path.stem}_*.npz")):
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------
# the runs
# --------------------------------------------------------------------------------


def run(path, in_memory, settings, slug):
    """Measure one child; (report, SAD, SDR) against the truth beside the cube."""
    from sgmca_fast import metrics

    out = path.parent / f"estimate_{path.stem}_{slug}.npz"
    report, _ = large_cube.measure(path, out, in_memory,
                                   {"warmup": True, **settings})
    truth = np.load(path.with_suffix(".truth.npz"))
    est = np.load(out)
    m = metrics.evaluate(truth["A"], truth["S"], est["A"], est["S"])
    return report, m["SAD"], m["SDR"]


def row_from(case, settings, report, sad, sdr, target, quick):
    return Row(case, settings, seconds=report["wall"], rss=report["peak"],
               anon=report["peak_anon"], sad=sad, sdr=sdr, target=target,
               quick=quick, timings=report)


def case_casa(args):
    path = casa_cube(args.dir)
    rows = []
    for method, models, bound in (("sGMCA", "casa", 2.0), ("GMCA", "none", 1.0)):
        for sub in (None, "auto"):
            settings = {"models": models, "subspace": sub, "noise_given": True,
                        "repeat": args.repeat}
            report, sad, sdr = run(path, True, settings, f"{method}_{sub}")
            label = f"{method}, subspace={sub!r}" + (" (default)" if sub is None
                                                     else "")
            rows.append(row_from("Cas A 75 x 346^2", label, report, sad, sdr,
                                 Target(seconds=bound), False))
            print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def case_channels40(args):
    J = 300 if args.quick else 3681
    path = ensure_cube(args.dir, J, 40)
    rows = []
    for sub in (None, "auto"):
        settings = {"models": "none", "subspace": sub, "repeat": args.repeat}
        report, sad, sdr = run(path, True, settings, f"gmca_{sub}")
        label = f"gmca, subspace={sub!r}" + (" (default)" if sub is None else "")
        rows.append(row_from(f"{J} x 40^2", label, report, sad, sdr,
                             Target(seconds=3.0), args.quick))
        print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def _streamed(args, case, J, size, models, target):
    path = ensure_cube(args.dir, J, size)
    settings = {"models": models, "subspace": None, "repeat": 1}
    report, sad, sdr = run(path, False, settings, "streamed")
    method = "GMCA" if models == "none" else "sGMCA (built-in models)"
    name = f"{J} x {size}^2 float32 ({path.stat().st_size / GB:.1f} GB)"
    row = row_from(f"{case} {name}" if case else name,
                   f"separate on the memmap (streamed), {method}", report, sad, sdr,
                   target, args.quick)
    print(markdown_table([row]).splitlines()[-1], flush=True)
    if args.delete:
        remove_cube(path)
    return [row]


def case_channels300(args):
    J, size = (300, 64) if args.quick else (3681, 300)
    return _streamed(args, "", J, size, "none", Target(seconds=60, rss=1.5 * GB))



def case_pixels2048(args):
    size = 128 if args.quick else 2048
    return _streamed(args, "", 75, size, "builtin", Target(seconds=60, rss=2 * GB))


def case_bigger(args):
    J, size = (300, 128) if args.quick else (args.big_channels, args.big_size)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    case = f"> memory ({memory / 2**30:.1f} GiB):"
    if not args.quick and 4 * J * size * size <= memory:
        raise SystemExit(f"{J} x {size}^2 float32 is not bigger than the memory "
                         f"({memory / 2**30:.1f} GiB)")
    return _streamed(args, case, J, size, "none", Target(rss=4 * GB))


def _fit(args, case, points, make_path, label):
    """Rows of one exponent fit and its table of points (printed)."""
    times = {None: [], "auto": []}
    print(f"\n{case}: gmca best of {args.repeat}, in memory (float64)", flush=True)
    print(f"| {label} | default s | iterations | auto s | iterations | rank |")
    print("|---|---|---|---|---|---|")
    for n in points:
        path = make_path(n)
        cells = []
        for sub in (None, "auto"):
            settings = {"models": "none", "subspace": sub, "repeat": args.repeat}
            report, _, _ = run(path, True, settings, f"gmca_{sub}")
            times[sub].append(report["wall"])
            it = report["n_iter"]["blind"]
            cells += [f"{report['wall']:.3f}", str(it)]
            rank = report["rank"]
        print(f"| {n} | " + " | ".join(cells) + f" | {rank} |", flush=True)
        if args.delete:
            remove_cube(path)
    sizes = [p ** 2 if "pixels" in case else p for p in points]
    rows = []
    for sub in (None, "auto"):
        exponent, _ = fit_exponent(sizes, times[sub])
        label_sub = f"gmca, subspace={sub!r}" + (" (default)" if sub is None else "")
        rows.append(Row(case, label_sub, exponent=exponent,
                        target=Target(exponent=1.1), quick=args.quick))
    print(markdown_table(rows))
    return rows


def case_fit_pixels(args):
    sides = (32, 64, 128) if args.quick else (128, 256, 512, 1024)
    return _fit(args, f"time vs pixels ({sides[0]}^2 to {sides[-1]}^2, 75 channels)",
                sides, lambda s: ensure_cube(args.dir, 75, s), "side")


def case_fit_channels(args):
    side = 32 if args.quick else 128
    counts = (20, 40, 80) if args.quick else (75, 300, 1000, 3000)
    return _fit(args, f"time vs channels ({counts[0]} to {counts[-1]}, {side}^2)",
                counts, lambda J: ensure_cube(args.dir, J, side, bumps=True), "J")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, a smoke run (targets do not apply)")
    parser.add_argument("--dir", type=Path,
                        default=Path("/work/helpers/scaletable/big"),
                        help="where the cubes are written (not the repository)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="best of so many runs (the cases in memory)")
    parser.add_argument("--big-channels", type=int, default=3681)
    parser.add_argument("--big-size", type=int, default=1400)
    parser.add_argument("--delete", action="store_true",
                        help="remove each case's files after it")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    args.dir.mkdir(parents=True, exist_ok=True)
    _common.print_header()
    import sgmca_fast

    print(f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + f", threads {sgmca_fast.get_num_threads()}, OPENBLAS_NUM_THREADS="
          + os.environ.get("OPENBLAS_NUM_THREADS", "unset"), flush=True)
    rows = []
    for case in args.cases:
        rows += globals()["case_" + case.replace("-", "_")](args)
    print(f"\nend {time.strftime('%H:%M:%S')}, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("\n" + markdown_table(rows))
    print("\n" + stages_table(rows))


if __name__ == "__main__":
    main()
