"""Cas A mixtures as photon counts: sGMCA with noise="poisson" against Gaussian.

Run (from the repository root, with ../shared/data/casa beside it):

    python bench/photon_counts.py --seeds 10 --csv bench/results/photons
    python bench/photon_counts.py --table bench/results/photons_*.csv
    python bench/photon_counts.py --figure docs/figures/photon_counts.png \
        bench/results/photons_*.csv
    python bench/photon_counts.py --default-noise --seeds 3

Each seed draws one synchrotron, one thermal and two distinct Gaussian-line
spectra from the validation splits and mixes the four unit-norm Cas A sources
(bench/casa_separation.py, k = 1, no Gaussian noise); the mixture is scaled to
the given total number of photons and drawn as Poisson counts. Methods, each
with the same seed:

- ``poisson1``, ``poisson2``, ``poisson3``: sGMCA with ``noise="poisson"``
  after 1, 2 and 3 passes (``--passes``; the default of ``separate`` is
  ``sgmca_fast._poisson.PASSES``), with the sources of
  ``_poisson.channel_sources`` (per-channel thresholds, hard when
  ``_poisson.FINAL_HARD``) as ``separate`` returns them; ``poisson{n}alt`` the
  same with the other thresholding (soft if hard, hard if soft), ``poisson{n}m``
  the pass's own sources (per-pixel thresholds, what ``separate`` returned
  before session 9);
- ``poisson1c``, ``poisson2c``, ...: the same with every pass running the blind
  stage (``--cold``; before session 9 the default: since then, with models, the
  passes after the first start the semi-blind stage from the previous A);
- ``gaussian``: sGMCA with Gaussian noise, the per-channel std from the counts
  (the square root of each channel's mean count, the Poisson variance);
- ``GMCA``: GMCA with the same per-channel std;
- ``oracle``: the known-sources ceiling, the Poisson maximum-likelihood spectra
  given the true sources (multiplicative EM from the least-squares fit), the true
  sources as S; ``oracle_ls`` the least-squares spectra.

One CSV row per method and seed (SAD, SDR, time), one CSV per photon level
(``--csv DIR``: DIR/photons_1e+08.csv, ...), rewritten after every seed;
``time_ratio`` of a poisson row is its time over the gaussian row's on the same
cube. The seeds are the outer loop, so a cut run has every level.
"""

import argparse
import csv
import time
from dataclasses import replace

import _common
import numpy as np

from sgmca_fast import _poisson, datasets, metrics, separate

METHODS = ("poisson1", "poisson2", "poisson3", "poisson1alt", "poisson2alt",
           "poisson3alt", "poisson1m", "poisson2m", "poisson3m", "poisson1w",
           "poisson2w", "poisson3w", "poisson2c", "poisson3c", "gaussian", "GMCA",
           "oracle", "oracle_ls")
LABELS = {"poisson1": "poisson, 1 pass", "poisson2": "poisson, 2 passes",
          "poisson3": "poisson, 3 passes",
          "poisson1alt": "1 pass, other thresholds",
          "poisson2alt": "2 passes, other thresholds",
          "poisson3alt": "3 passes, other thresholds",
          "poisson1m": "1 pass, per-pixel sources",
          "poisson2m": "2 passes, per-pixel sources",
          "poisson3m": "3 passes, per-pixel sources",
          "poisson1w": "pixel-weighted, 1 pass",
          "poisson2w": "pixel-weighted, 2 passes",
          "poisson3w": "pixel-weighted, 3 passes",
          "poisson2c": "poisson, 2 passes, blind stage in each",
          "poisson3c": "poisson, 3 passes, blind stage in each",
          "gaussian": "sGMCA Gaussian",
          "GMCA": "GMCA", "oracle": "oracle (Poisson ML)",
          "oracle_ls": "oracle (least squares)"}
EM_ITERATIONS = 300


def make_counts(casa, seed, photons, crop=0):
    """(counts (J, H, W) int64, A0 (J, I), S0 (I, H, W)) of one seed.

    ``photons`` is the total of the full 346 x 346 cube; ``crop`` keeps its
    central crop x crop pixels (the same counts per voxel, fewer photons).
    """
    rng = np.random.default_rng(seed)
    fam = casa.families
    spectra = [fam["sync"]["valid"], fam["thermal"]["valid"], fam["gauss"]["valid"],
               fam["gauss"]["valid"]]
    mix = datasets.make_mixture(casa.sources, spectra, snr_db=np.inf,
                                random_state=rng)
    lam = mix.X * (photons / mix.X.sum())
    S0 = mix.S0
    if crop:
        h, w = lam.shape[1:]
        box = (slice(None), slice((h - crop) // 2, (h + crop) // 2),
               slice((w - crop) // 2, (w + crop) // 2))
        lam, S0 = lam[box], S0[box]
    return rng.poisson(np.maximum(lam, 0.0)), mix.A0, S0


def oracle_spectra(X, S0, iterations=EM_ITERATIONS):
    """Spectra given the true sources: (Poisson ML by EM, least squares).

    The EM step ``A <- A * ((X / (A S)) S^T) / (1 S^T)`` raises the Poisson
    likelihood of the counts X at every step (non-negative A and S).
    """
    J = X.shape[0]
    S = S0.reshape(S0.shape[0], -1)
    Xf = X.reshape(J, -1).astype(np.float64)
    ls = np.linalg.lstsq(S.T, Xf.T, rcond=None)[0].T
    A = np.maximum(ls, 1e-3 * np.abs(ls).max())
    norm = S.sum(axis=1)
    for _ in range(iterations):
        model = np.maximum(A @ S, 1e-300)
        A *= ((Xf / model) @ S.T) / norm
    return A, ls


def _poisson_passes(X, models, seed, passes, pixel_weights=False, cold=False):
    """sGMCA noise="poisson" with ``passes`` runs; the result after each one.

    ``cold``: every pass runs the blind stage (no pass skips it).
    """
    results = []

    def solve(*args, **kwargs):
        if cold:
            kwargs["blind_stage"] = True
        results.append(separate(*args, **kwargs))
        return results[-1]

    last = _poisson.separate_counts(solve, X, 4, models, passes=passes,
                                    pixel_weights=pixel_weights, random_state=seed,
                                    final_sources=False)
    if pixel_weights:  # the recorded S are those of X / w: keep A, S of the last
        results[-1] = replace(last, timings=results[-1].timings)
    return results


def run_seed(casa, models, seed, photons, passes, crop=0, pixel_weights=False,
             cold=False, oracle=True):
    """The rows of one seed: every method's SAD, SDR and time.

    The poisson rows ``poisson{n}`` are the result after n passes (the default,
    ``_poisson.PASSES``, is what ``separate(..., noise="poisson")`` returns);
    their ``time`` sums the passes. ``cold``: also the rows ``poisson{n}c``,
    every pass with its blind stage, on the same counts.
    """
    X, A0, S0 = make_counts(casa, seed, photons, crop)
    # the Poisson variance of each channel, floored like noise="poisson"'s (a
    # channel without photons must not get an infinite weight)
    level = X.reshape(X.shape[0], -1).mean(axis=1)
    sigma = np.sqrt(np.maximum(level, _poisson.FLOOR * X.mean()))
    rows = []

    def record(method, A, S, elapsed):
        m = metrics.evaluate(A0, S0, A, S)
        rows.append({"photons": f"{photons:g}", "seed": seed, "method": method,
                     "SAD": m["SAD"], "SDR": m["SDR"], "time": elapsed,
                     "time_ratio": ""})

    for method, mods in (("gaussian", models), ("GMCA", None)):
        t0 = time.perf_counter()
        res = separate(X, 4, mods, noise_std=sigma, random_state=seed)
        record(method, res.A, res.S, time.perf_counter() - t0)
    t_gauss = rows[0]["time"]
    observed = np.ones(X.shape, bool)
    floor = _poisson.variance_floor(X, observed)
    for variant in ("", "c") if cold else ("",):
        elapsed = 0.0
        for n, res in enumerate(_poisson_passes(X, models, seed, passes,
                                                pixel_weights, variant == "c"), 1):
            elapsed += res.timings["total"]
            name = f"poisson{n}{'w' if pixel_weights else ''}{variant}"
            if variant == "c":
                record(name, res.A, res.S, elapsed)
                rows[-1]["time_ratio"] = elapsed / t_gauss
                continue
            # the default's final sources, the other thresholding, the pass's own
            var = _poisson.model_variance(res.A, res.S, floor)
            for suffix, hard in (("", _poisson.FINAL_HARD),
                                 ("alt", not _poisson.FINAL_HARD)):
                S, seconds = _poisson.channel_sources(separate, X, res, var, observed,
                                                      hard=hard, random_state=seed)
                record(name + suffix, res.A, S, elapsed + seconds)
                rows[-1]["time_ratio"] = (elapsed + seconds) / t_gauss
            record(name + "m", res.A, res.S, elapsed)
    if not oracle:
        return rows
    t0 = time.perf_counter()
    A_ml, A_ls = oracle_spectra(X, S0)
    elapsed = time.perf_counter() - t0
    record("oracle", A_ml, S0, elapsed)
    record("oracle_ls", A_ls, S0, elapsed)
    return rows


def read_rows(paths):
    """The rows of the CSV files, a (photons, seed, method) repeated only once."""
    rows, seen = [], set()
    for path in paths:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                key = (float(row["photons"]), row["seed"], row["method"])
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
    return rows


def summary(rows):
    """{photons: {method: (median SAD, median SDR, runs)}}, {photons: ratios}.

    ratios: (median, max) time over the Gaussian run's of the default pass count
    and of the same with every blind stage (``--cold``), each None if absent.
    """
    table, ratios = {}, {}
    for level in sorted({float(r["photons"]) for r in rows}):
        sel = [r for r in rows if float(r["photons"]) == level]
        table[level] = {}
        for method in METHODS:
            mine = [r for r in sel if r["method"] == method]
            if mine:
                table[level][method] = (
                    float(np.median([float(r["SAD"]) for r in mine])),
                    float(np.median([float(r["SDR"]) for r in mine])), len(mine))
        # the default pass count, what separate(..., noise="poisson") costs
        ratios[level] = []
        for names in ((f"poisson{_poisson.PASSES}", f"poisson{_poisson.PASSES}w"),
                      (f"poisson{_poisson.PASSES}c",)):
            ratio = [float(r["time_ratio"]) for r in sel
                     if r["time_ratio"] and r["method"] in names]
            ratios[level].append((float(np.median(ratio)), float(np.max(ratio)))
                                 if ratio else None)
    return table, ratios


def print_table(rows):
    table, ratios = summary(rows)
    methods = [m for m in METHODS if any(m in t for t in table.values())]
    print("| photons | seeds | " + " | ".join(
        f"{LABELS[m]} SAD / SDR" for m in methods) + " | time poisson / gaussian "
        "(median, max) | the same, blind stage in each pass |")
    print("|---|---|" + "---|" * len(methods) + "---|---|")
    for level, cells in table.items():
        n = max(c[2] for c in cells.values())
        text = [f"{r[0]:.2f}, {r[1]:.2f}" if r else "-" for r in ratios[level]]
        print(f"| {level:.0e} | {n} | " + " | ".join(
            f"{cells[m][0]:.2f} / {cells[m][1]:.2f}" if m in cells else "-"
            for m in methods) + f" | {text[0]} | {text[1]} |")


def draw_figure(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, _ = summary(rows)
    levels = list(table)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    styles = {"oracle": "k--", "oracle_ls": "k:"}
    for method in METHODS:
        pts = [(lv, table[lv][method][0]) for lv in levels if method in table[lv]]
        if pts:
            x, y = zip(*pts, strict=True)
            ax.plot(x, y, styles.get(method, "o-"), label=LABELS[method])
    ax.set_xscale("log")
    ax.set_xlabel("photons in the cube")
    ax.set_ylabel("median SAD (dB)")
    ax.set_title("Cas A, 4 sources, Poisson counts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def default_noise_check(casa, seeds, levels):
    """Print how the MAD noise estimate compares with the Poisson r.m.s.

    For each count cube: the median and range over channels of the MAD estimate
    of the finest starlet scale (``_noisemap.estimated_std``, what the default
    used before count cubes were recognised) over ``sqrt(mean count)``
    (``_noisemap.count_std``, the default now), and the fraction of empty voxels.
    """
    from sgmca_fast import _noisemap

    for seed in seeds:
        for photons in levels:
            X = make_counts(casa, seed, photons)[0].astype(float)
            ratio = _noisemap.estimated_std(X, 4) / _noisemap.count_std(X)
            print(f"{photons:.0e} seed {seed:3d} empty voxels {np.mean(X == 0):6.1%} "
                  f"MAD / Poisson r.m.s.: median {np.median(ratio):.3g} "
                  f"min {ratio.min():.3g} max {ratio.max():.3g}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csvs", nargs="*", help="CSV files for --table/--figure")
    parser.add_argument("--photons", type=float, action="append", default=[],
                        help="total photons (repeatable; default 1e5 1e6 1e7 1e8)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=0,
                        help="central crop (pixels) of the full-size count cube")
    parser.add_argument("--pixel-weights", action="store_true",
                        help="poisson passes with pixel weights (X / w)")
    parser.add_argument("--no-oracle", action="store_true",
                        help="skip the oracles (300 EM steps: the slowest row)")
    parser.add_argument("--cold", action="store_true",
                        help="also every pass with its blind stage (poisson{n}c)")
    parser.add_argument("--passes", type=int, default=3,
                        help="poisson passes recorded (default 3)")
    parser.add_argument("--csv", default=None, metavar="DIR",
                        help="write DIR/photons_<level>.csv (after every seed)")
    parser.add_argument("--table", action="store_true",
                        help="print the markdown table of the CSV files")
    parser.add_argument("--figure", default=None, help="SAD against photons (PNG)")
    parser.add_argument("--default-noise", action="store_true",
                        help="compare the MAD noise estimate with sqrt(mean count)")
    args = parser.parse_args(argv)
    if args.table or args.figure:
        rows = read_rows(args.csvs)
        if args.table:
            print_table(rows)
        if args.figure:
            draw_figure(rows, args.figure)
        return

    _common.print_header()
    casa = _common.load_casa()
    models = _common.casa_models("reference")
    rows = []
    levels = args.photons or [1e8, 1e7, 1e6, 1e5]
    if args.default_noise:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        default_noise_check(casa, seeds, levels)
        return
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for photons in levels:
            new = run_seed(casa, models, seed, photons, args.passes, args.crop,
                           args.pixel_weights, args.cold, not args.no_oracle)
            rows.extend(new)
            print(f"{photons:.0e} seed {seed:3d} " + "  ".join(
                f"{r['method']} {r['SAD']:6.2f}/{r['SDR']:6.2f} {r['time']:5.1f}s"
                for r in new), flush=True)
            if args.csv:
                _common.write_csv(f"{args.csv}/photons_{photons:.0e}.csv",
                                  [r for r in rows if r["photons"] == f"{photons:g}"])
    print_table(rows)


if __name__ == "__main__":
    main()
