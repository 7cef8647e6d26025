"""sGMCA on Cas A mixtures whose noise varies 30x across channels and 3x across pixels.

Run (from the repository root, with ../shared/data/casa beside it):

    python bench/noise_maps.py --seeds 10

Each seed draws the Cas A mixture of bench/casa_separation.py (k = 1, 40 dB, the
authors' models) and replaces its white noise by noise of the same total energy
(the same SNR, 40 dB) whose std is ``c * a_j * b(p)``: ``a_j`` log-spaced over a
factor 30 across the channels (in random order) and ``b(p)`` a smooth map
(a Gaussian-smoothed random field) spanning a factor 3 across the image. sGMCA runs
on the white-noise case with the noise std known (the reference) and on the
varying case with:

``variance``   the variance cube ``(c a_j b(p))**2`` (the acceptance case);
``per-chan``   ``noise_std`` = the square root of each channel's median variance
               (what a user without per-pixel support would pass);
``estimated``  no noise information (the default per-channel estimate);
``mad``        ``noise_std="mad"`` (the former default).

It prints the median and quartiles of SAD and SDR, the differences from the white
case, and the times.
"""

import argparse
import time

import _common
import numpy as np
from casa_separation import make_case
from scipy import ndimage

import sgmca_fast
from sgmca_fast import metrics

CASES = ("white", "variance", "per-chan", "estimated", "mad")


def noise_std_cube(shape, rng, channel_range=30.0, pixel_range=3.0):
    """Std map ``a_j * b(p)`` with max/min ratios channel_range and pixel_range."""
    J, H, W = shape
    a = np.geomspace(1.0, channel_range, J)[rng.permutation(J)]
    field = ndimage.gaussian_filter(rng.standard_normal((H, W)), sigma=H / 6,
                                    mode="wrap")
    field = (field - field.min()) / (field.max() - field.min())
    b = pixel_range**field
    return a[:, None, None] * b[None]


def varying_case(mix, rng):
    """The mixture with its noise replaced by a varying one of the same energy."""
    clean = mix.X - mix.N
    std = noise_std_cube(clean.shape, rng)
    std *= np.sqrt(np.sum(mix.N**2) / np.sum(std**2))
    noise = std * rng.standard_normal(clean.shape)
    noise *= np.sqrt(np.sum(mix.N**2) / np.sum(noise**2))  # exactly the same SNR
    return clean + noise, noise, std**2


def run(mix, X, N, kwargs, models, seed):
    t0 = time.perf_counter()
    res = sgmca_fast.separate(X, 4, models, random_state=seed, **kwargs)
    elapsed = time.perf_counter() - t0
    m = metrics.evaluate(mix.A0, mix.S0, res.A, res.S, noise=N)
    return {"SAD": m["SAD"], "SDR": m["SDR"], "time": elapsed}


def main(argv=None):
    """Run the seeds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--csv", default=None, help="write one row per run here")
    args = parser.parse_args(argv)
    _common.print_header()
    casa = _common.load_casa()
    models = _common.casa_models()
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        mix = make_case(casa, seed, 1.0, 40.0, 0)
        X, N, var = varying_case(mix, np.random.default_rng([seed, 13]))
        level = np.sqrt(np.median(var.reshape(var.shape[0], -1), axis=1))
        settings = {
            "white": (mix.X, mix.N, {"noise_std": mix.noise_std}),
            "variance": (X, N, {"variance": var}),
            "per-chan": (X, N, {"noise_std": level}),
            "estimated": (X, N, {}),
            "mad": (X, N, {"noise_std": "mad"}),
        }
        line = []
        for case in CASES:
            Xc, Nc, kwargs = settings[case]
            row = {"seed": seed, "case": case, **run(mix, Xc, Nc, kwargs, models, seed)}
            rows.append(row)
            line.append(f"{case} {row['SAD']:5.2f}/{row['SDR']:5.2f} "
                        f"{row['time']:4.1f}s")
        print(f"seed {seed:3d} SAD/SDR: " + "  ".join(line), flush=True)
    if args.csv:
        _common.write_csv(args.csv, rows)
    print(f"\nCas A, k = 1, 40 dB, authors' models, {args.seeds} seeds; "
          "median [q1, q3]; diff = median of the per-seed difference from white")
    print(f"{'case':<11}{'SAD':>7}{'q1':>7}{'q3':>7}{'diff':>7}"
          f"{'SDR':>8}{'q1':>7}{'q3':>7}{'diff':>7}{'time':>7}")
    white = {r["seed"]: r for r in rows if r["case"] == "white"}
    for case in CASES:
        sel = [r for r in rows if r["case"] == case]
        out = f"{case:<11}"
        for key in ("SAD", "SDR"):
            vals = np.array([r[key] for r in sel])
            diff = np.median([r[key] - white[r["seed"]][key] for r in sel])
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            out += f"{med:7.2f}{q1:7.2f}{q3:7.2f}{diff:7.2f} "
        out += f"{np.median([r['time'] for r in sel]):6.1f}s"
        print(out)


if __name__ == "__main__":
    main()
