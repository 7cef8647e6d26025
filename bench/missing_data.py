"""Missing data and fixed spectra on the Cas A mixtures: the acceptance run of issue 13.

Run (from the repository root, with ../shared/data/casa beside it):

    python bench/missing_data.py --seeds 10
    python bench/missing_data.py --seeds 3 --crop 160 --fill-every 5

Each seed draws the Cas A mixture of bench/casa_separation.py (k = 1, 40 dB, the
authors' models, noise std known) and runs sGMCA on

- the complete data;
- the same data with voxels missing: a NaN border ``--border`` pixels wide on every
  side, 2% scattered NaN voxels, 3 dead channels (NaN);
- the complete data with the first source's (synchrotron) true spectrum given as
  ``fixed`` and the two other models only.

SDR is computed on the observed pixels (inside the border), SAD on all channels.
It prints the medians, the differences and the times.
"""

import argparse
import time

import _common
import numpy as np
from casa_separation import make_case

import sgmca_fast
from sgmca_fast import _missing, metrics

DEAD_CHANNELS = (12, 37, 61)
CASES = ("complete", "missing", "fixed")
SCATTERED = 0.02


def with_missing(X, border, seed, sides="all"):
    """X with a NaN border, scattered NaN voxels and dead channels.

    ``sides="all"``: the border on the four sides; ``"two"``: on the top and left
    sides only (a pointing offset, as where two exposures of a mosaic do not
    overlap).
    """
    X = X.copy()
    rng = np.random.default_rng(10_000 + seed)
    if border:
        X[:, :border] = np.nan
        X[:, :, :border] = np.nan
        if sides == "all":
            X[:, -border:] = np.nan
            X[:, :, -border:] = np.nan
    X[rng.random(X.shape) < SCATTERED] = np.nan
    X[list(DEAD_CHANNELS)] = np.nan
    return X


def run(X, models, mix, seed, **kwargs):
    t0 = time.perf_counter()
    res = sgmca_fast.separate(X, 4, models, noise_std=mix.noise_std,
                              random_state=seed, **kwargs)
    return res, time.perf_counter() - t0


def _line(row):
    """One run, as printed."""
    return (f"seed {row['seed']:3d} {row['case']:9s} SAD {row['SAD']:6.2f} SDR(obs) "
            f"{row['SDR_observed']:6.2f} time {row['time']:6.1f}s per-source SAD "
            f"[{row['SAD_per_source']}] {row['missing']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=0, help="central crop size")
    parser.add_argument("--border", type=int, default=20)
    parser.add_argument("--sides", choices=("all", "two"), default="all",
                        help="border on all four sides (346 x 346: 26.4%% of the "
                             "voxels missing in all) or on two (16.5%%, the "
                             "issue's 15%%)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--fill-every", type=int, default=_missing.FILL_EVERY,
                        help="refresh the fill of scattered voxels every N "
                             "iterations (0: never, the first fill only)")
    parser.add_argument("--refit-spectra", action="store_true",
                        help="every case with separate(refit_spectra=True)")
    parser.add_argument("--csv", default=None, help="write one row per run here")
    args = parser.parse_args(argv)
    _missing.FILL_EVERY = args.fill_every if args.fill_every > 0 else 10**9

    _common.print_header()
    print(f"threads {sgmca_fast.get_num_threads()}")
    casa = _common.load_casa()
    models = _common.casa_models()
    # Source 0 is the synchrotron: when its spectrum is given, no model takes it.
    others = {m: c for m, c in models.items() if "sync" not in m.name}
    b = args.border
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        mix = make_case(casa, seed, 1.0, 40.0, args.crop)
        stop = -b or None if args.sides == "all" else None
        inner = (slice(None), slice(b, stop), slice(b, stop))
        Xm = with_missing(mix.X, b, seed, args.sides)
        cases = {
            "complete": (mix.X, {}),
            "missing": (Xm, {}),
            "fixed": (mix.X, {"fixed": {0: mix.A0[:, 0]}}),
        }
        for name in args.cases:
            X, extra = cases[name]
            res, elapsed = run(X, others if name == "fixed" else models, mix, seed,
                               refit_spectra=args.refit_spectra, **extra)
            full = metrics.evaluate(mix.A0, mix.S0, res.A, np.nan_to_num(res.S))
            obs = metrics.evaluate(mix.A0, mix.S0[inner], res.A, res.S[inner])
            row = {"seed": seed, "case": name, "time": elapsed,
                   "SAD": full["SAD"], "SDR_observed": obs["SDR"],
                   "SAD_others": float(np.median(full["SAD_per_source"][1:])),
                   "SAD_per_source": " ".join(f"{v:.2f}"
                                              for v in full["SAD_per_source"]),
                   "fixed_identical": bool(np.array_equal(res.A[:, 0], mix.A0[:, 0]))
                   if name == "fixed" else "",
                   "missing": "" if res.missing is None
                   else f"{100 * res.missing.fraction:.1f}%"}
            rows.append(row)
            print(_line(row), flush=True)
    if args.csv:
        _common.write_csv(args.csv, rows)

    frac = next((r["missing"] for r in rows if r["case"] == "missing"), "")
    print(f"\nk = 1, 40 dB, noise std known, authors' models, crop {args.crop or 346}, "
          f"{args.seeds} seeds, fill every {args.fill_every}; missing: {b}-pixel "
          f"border on {args.sides} sides, {100 * SCATTERED:.0f}% scattered, dead "
          f"channels {DEAD_CHANNELS} = {frac} of the voxels")
    print(f"{'case':<10}{'SAD':>8}{'SDR obs':>9}{'SAD 1-3':>9}{'time s':>8}")
    med = {}
    for name in args.cases:
        sel = [r for r in rows if r["case"] == name]
        med[name] = {key: float(np.median([r[key] for r in sel]))
                     for key in ("SAD", "SDR_observed", "SAD_others", "time")}
        m = med[name]
        print(f"{name:<10}{m['SAD']:8.2f}{m['SDR_observed']:9.2f}"
              f"{m['SAD_others']:9.2f}{m['time']:8.1f}")
    if set(args.cases) != set(CASES):
        return
    d_sad = med["missing"]["SAD"] - med["complete"]["SAD"]
    d_sdr = med["missing"]["SDR_observed"] - med["complete"]["SDR_observed"]
    d_fix = med["fixed"]["SAD_others"] - med["complete"]["SAD_others"]
    same = all(r["fixed_identical"] for r in rows if r["case"] == "fixed")
    print(f"(a) missing - complete: SAD {d_sad:+.2f} dB, SDR {d_sdr:+.2f} dB "
          f"({'within' if min(d_sad, d_sdr) >= -1 else 'NOT within'} 1 dB)")
    print(f"(b) fixed spectrum bit-identical in every run: {same}; other sources' "
          f"SAD fixed - free: {d_fix:+.2f} dB "
          f"({'at least as good' if d_fix >= 0 else 'WORSE'})")


if __name__ == "__main__":
    main()
