"""How often ``estimate_n_sources`` finds the right number of sources.

Run (from the repository root; the Cas A part needs ../shared/data/casa):

    python bench/n_sources.py --first-seed 0 --seeds 10
    python bench/n_sources.py --first-seed 100 --seeds 10 --csv bench/results/n.csv

Synthetic mixtures: I = 2..8 independent sparse images (128 x 128, Gaussian blobs
and point-like knots at random places) mixed with spectra drawn from the built-in
families (sync, thermal, gauss in turn) on J = 75 channels, white noise at 20..60
dB SNR (``datasets.make_mixture``, all sources at unit norm). Then the Cas A
mixtures of bench/casa_separation.py (4 sources, k = 1 and 0.01, 40 dB). Each case
is counted with the noise std known and estimated, by the Marchenko-Pastur floor
and by HySime's. A case is *ill-posed* when the weakest source's whitened
noise-free eigenvalue is below sqrt(J P), the limit under which no eigenvalue
method can see it (the BBP transition); those are counted apart.
"""

import argparse
import math

import _common
import numpy as np

from sgmca_fast import datasets, noise

SIZES = range(2, 9)
SNRS = (20, 30, 40, 50, 60)
FAMILIES = ("sync", "thermal", "gauss")
METHODS = ("mp", "hysime")


def sparse_image(rng, size=128):
    """One non-negative image of Gaussian blobs and knots on an empty sky."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.zeros((size, size))
    for _ in range(int(rng.integers(10, 30))):
        cy, cx = rng.uniform(0, size, 2)
        width = rng.uniform(0.7, 6.0)
        img += rng.exponential() * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)
                                          / (2 * width**2))
    return img


def synthetic_case(n_src, snr, seed):
    """A synthetic mixture of ``n_src`` sources at ``snr`` dB, from one seed."""
    rng = np.random.default_rng([seed, n_src, snr])
    sources = np.stack([sparse_image(rng) for _ in range(n_src)])
    spectra = [datasets.make_family(FAMILIES[i % 3], 1, random_state=rng)[0]
               for i in range(n_src)]
    return datasets.make_mixture(sources, spectra, snr_db=snr, scaled=(),
                                 random_state=rng)


def casa_cases(casa, seed):
    """The Cas A mixtures of bench/casa_separation.py: (label, mixture) pairs."""
    if casa is None:
        return
    from casa_separation import make_case

    for k in (1.0, 0.01):
        yield f"casa k={k:g}", make_case(casa, seed, k, 40.0, 0)


def ill_posed(mix):
    """True when the weakest source is below the detectability limit sqrt(J P)."""
    n_src = mix.A0.shape[1]
    signal = (mix.A0 @ mix.S0.reshape(n_src, -1)) / mix.noise_std
    eig = np.linalg.eigvalsh(signal @ signal.T)[::-1]
    return eig[n_src - 1] < math.sqrt(signal.shape[0] * signal.shape[1])


def count(mix):
    """{(noise, method): estimated count} for one mixture."""
    out = {}
    for method in METHODS:
        out["known", method] = noise.estimate_n_sources(
            mix.X, noise_std=mix.noise_std, method=method).n_sources
        out["estimated", method] = noise.estimate_n_sources(
            mix.X, method=method).n_sources
    return out


def summarise(rows, key):
    """Print the fraction right per group of ``key`` for each noise and method."""
    groups = sorted({r[key] for r in rows}, key=str)
    cols = [(n, m) for n in ("known", "estimated") for m in METHODS]
    print(f"{key:>10s} " + " ".join(f"{n[:5]}-{m:6s}" for n, m in cols)
          + "   cases (ill-posed)")
    for g in groups + ["all"]:
        sel = [r for r in rows if g == "all" or r[key] == g]
        posed = [r for r in sel if not r["ill_posed"]]
        rates = [np.mean([r[f"{n}_{m}"] == r["true"] for r in posed]) if posed
                 else float("nan") for n, m in cols]
        print(f"{g!s:>10s} " + " ".join(f"{v:12.2f}" for v in rates)
              + f"   {len(sel)} ({len(sel) - len(posed)})")


def main(argv=None):
    """Run the cases of the chosen seeds and print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--no-casa", action="store_true")
    parser.add_argument("--csv", default=None, help="write one row per case here")
    args = parser.parse_args(argv)
    _common.print_header()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    casa = None if args.no_casa else _common.load_casa()
    rows = []
    for seed in seeds:  # seed outermost: a run cut short still covers every case
        for n_src in SIZES:
            for snr in SNRS:
                mix = synthetic_case(n_src, snr, seed)
                rows.append(_row(f"I={n_src} {snr}dB", mix, seed, n_src=n_src,
                                 snr=snr))
        for label, mix in casa_cases(casa, seed):
            rows.append(_row(label, mix, seed, n_src="casa", snr=label))
    print("\nfraction right (ill-posed cases excluded), per number of sources:")
    summarise([r for r in rows if r["n_src"] != "casa"], "n_src")
    print("\nper SNR (dB):")
    summarise([r for r in rows if r["n_src"] != "casa"], "snr")
    if not args.no_casa:
        print("\nCas A mixtures (40 dB):")
        summarise([r for r in rows if r["n_src"] == "casa"], "snr")
    if args.csv:
        _common.write_csv(args.csv, rows)


def _row(label, mix, seed, **fields):
    found = count(mix)
    row = {"case": label, "seed": seed, **fields, "true": mix.A0.shape[1],
           "ill_posed": bool(ill_posed(mix)),
           **{f"{n}_{m}": v for (n, m), v in found.items()}}
    print(f"{label:16s} seed {seed} true {row['true']} ill-posed "
          f"{row['ill_posed']!s:5s} " + " ".join(
              f"{n[:5]}-{m}={v}" for (n, m), v in found.items()), flush=True)
    return row


if __name__ == "__main__":
    main()
