"""The confidence per source (Separation.confidence) against the true SAD.

Run (from the repository root, with ../shared/data/casa beside it):

    python bench/confidence.py run --seeds 30 --k 1 0.01 --out /work/measure/confidence
    python bench/confidence.py features --out /work/measure/confidence
    python bench/confidence.py calibrate --out /work/measure/confidence

``run`` follows bench/casa_separation.py's protocol (Cas A mixtures from the
validation spectra, the authors' models, 40 dB, noise std known) and keeps each
sGMCA result (A, S, model fit, recovery events) in ``OUT/runs/`` with the true SAD
of every estimated source, so the features and the calibration can be redone
without rerunning the solver. ``features`` rebuilds each mixture from its seed and
writes one CSV row per estimated source (the features of
``sgmca_fast._confidence`` and the true SAD). ``calibrate`` fits the logistic
combination on seeds 0-14 (``--split parity``: the even seeds) and reports the
ROC AUC of the confidence for "source SAD < 15 dB" on the held-out seeds (15-29,
or the odd ones) and on all. ``run --snr 30`` adds draws with more failures.
"""

import argparse
import glob
import json
import os

import _common
import casa_separation
import numpy as np

import sgmca_fast
from sgmca_fast import _confidence, metrics, starlet

FAIL_DB = 15.0  # a source below this SAD has failed
# Seeds the combination is fitted on; the others are held out. "half": seeds 0-14
# (of 30); "parity": the even seeds (when too few seeds have run for a half).
SPLITS = {"half": lambda seed: seed < 15, "parity": lambda seed: seed % 2 == 0}
NSCALES = 2  # separate()'s default


def _run_name(k, seed, delta, crop=0, snr=40.0):
    tag = "rand" if delta is None else f"d{delta:g}"
    size = f"_crop{crop}" if crop else ""
    level = "" if snr == 40.0 else f"_snr{snr:g}"
    return f"k{k:g}_{tag}{size}{level}_seed{seed:03d}"


def run(args):
    """Run sGMCA on each (k, seed) not yet kept and keep its result."""
    _common.print_header()
    casa = _common.load_casa()
    models = _common.casa_models(args.models)
    folder = os.path.join(args.out, "runs")
    os.makedirs(folder, exist_ok=True)
    for k in args.k:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            path = os.path.join(folder, _run_name(k, seed, args.delta, args.crop,
                                          args.snr)
                                + ".npz")
            if os.path.exists(path):
                continue
            mix = casa_separation.make_case(casa, seed, k, args.snr, args.crop,
                                           args.delta)
            res = sgmca_fast.separate(mix.X, 4, models, noise_std=mix.noise_std,
                                      random_state=seed)
            m = metrics.evaluate(mix.A0, mix.S0, res.A, res.S)
            _, _, perm = metrics.match(mix.A0, res.A)
            sad = np.full(4, np.nan)  # per estimated source
            sad[perm] = m["SAD_per_source"]
            meta = {"k": k, "seed": seed, "delta": args.delta, "snr": args.snr,
                    "crop": args.crop,
                    "mapping": [str(v) for v in res.mapping],
                    "model_fit": res.model_fit,
                    "reseeded": [list(map(int, r)) for r in res.history["reseeded"]],
                    "restarted": bool(res.history["restarted"]),
                    "SAD": m["SAD"], "time": res.timings["total"]}
            tmp = path + ".tmp.npz"
            np.savez(tmp, A=res.A, S=res.S.astype(np.float32), sad=sad,
                     noise_std=np.asarray(res.noise_std), meta=json.dumps(meta))
            os.replace(tmp, path)
            fit = res.model_fit
            print(f"k {k:g} seed {seed:3d} SAD {m['SAD']:6.2f} per source "
                  f"[{' '.join(f'{v:.1f}' for v in sad)}] fit "
                  f"[{' '.join('-' if f is None else f'{f:.3f}' for f in fit)}]"
                  f" reseeded {meta['reseeded']} restarted {meta['restarted']} "
                  f"{res.timings['total']:.1f}s", flush=True)


def features(args):
    """Rebuild each kept run's mixture and write one CSV row per source."""
    casa = _common.load_casa()
    rows = []
    for path in sorted(glob.glob(os.path.join(args.out, "runs", "*.npz"))):
        with np.load(path) as f:
            A, S, sad = f["A"], f["S"].astype(np.float64), f["sad"]
            noise_std = f["noise_std"]
            meta = json.loads(str(f["meta"]))
        mix = casa_separation.make_case(casa, meta["seed"], meta["k"], meta["snr"],
                                        meta.get("crop", 0), meta["delta"])
        J = mix.X.shape[0]
        Xd = starlet.forward(mix.X, NSCALES)[:, :NSCALES].reshape(J, -1)
        fit = [None if v is None else float(v) for v in meta["model_fit"]]
        feats = _confidence.features(A, S, Xd, NSCALES, noise_std=noise_std,
                                     model_fit=fit,
                                     reseeded=[tuple(r) for r in meta["reseeded"]],
                                     restarted=meta["restarted"])
        conf = _confidence.score(feats)
        for i in range(A.shape[1]):
            rows.append({"k": meta["k"], "seed": meta["seed"],
                         "delta": "rand" if meta["delta"] is None else meta["delta"],
                         "crop": meta.get("crop", 0), "snr": meta["snr"],
                         "source": i, "model": meta["mapping"][i],
                         "SAD": f"{sad[i]:.3f}",
                         **{name: f"{feats[name][i]:.6g}" for name in feats},
                         "confidence": f"{conf[i]:.4f}"})
    csv_path = os.path.join(args.out, "features.csv")
    _common.write_csv(csv_path, rows)
    print(f"{len(rows)} sources from {len(rows) // 4} runs -> {csv_path}")


def auc(score, failed):
    """ROC AUC of ``score`` for telling the successes from the failures.

    The Mann-Whitney statistic: the fraction of (failure, success) pairs whose
    failure scores lower, ties counting one half.
    """
    score = np.asarray(score, dtype=np.float64)
    failed = np.asarray(failed, dtype=bool)
    bad, good = score[failed], score[~failed]
    if bad.size == 0 or good.size == 0:
        return float("nan")
    less = np.sum(bad[:, None] < good[None, :])
    ties = np.sum(bad[:, None] == good[None, :])
    return float((less + 0.5 * ties) / (bad.size * good.size))


def fit_logistic(F, y, ridge=1.0, n_iter=50):
    """Ridge logistic regression by Newton's method: (bias, weights).

    ``F`` (n, d) standardised features, ``y`` (n,) 1 for a success; the penalty
    ``ridge * ||w||^2 / 2`` keeps the weights finite when the classes separate.
    """
    n, d = F.shape
    Z = np.column_stack([np.ones(n), F])
    theta = np.zeros(d + 1)
    pen = np.full(d + 1, ridge)
    pen[0] = 0.0
    for _ in range(n_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ theta, -50, 50)))
        grad = Z.T @ (p - y) + pen * theta
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(pen) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta[0], theta[1:]


def fit_signed(F, y, ridge):
    """:func:`fit_logistic` keeping only features whose weight has the expected sign.

    The expected signs are those of the shipped weights (``_confidence._WEIGHTS``:
    more confident with a higher noise-limited SAD, less with a larger fit, cos,
    unexplained energy, density, or a recovery rule acting). A feature that comes
    out the other way is dropped and the rest refitted: with few failures this
    keeps the combination monotone instead of fitting the calibration draws' noise.
    """
    expected = np.sign(_confidence._WEIGHTS)
    keep = expected != 0
    while True:
        bias, w = fit_logistic(F[:, keep], y, ridge=ridge)
        weights = np.zeros(F.shape[1])
        weights[keep] = w
        wrong = keep & (np.sign(weights) != expected)
        if not wrong.any():
            return bias, weights
        keep &= ~wrong


def _read_features(path):
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows


def calibrate(args):
    """Fit the combination on the calibration seeds; AUC on the held-out ones."""
    rows = _read_features(os.path.join(args.out, "features.csv"))
    names = _confidence.FEATURES
    F = np.array([[float(r[n]) for n in names] for r in rows])
    sad = np.array([float(r["SAD"]) for r in rows])
    seed = np.array([int(r["seed"]) for r in rows])
    k = np.array([float(r["k"]) for r in rows])
    failed = sad < args.fail_db
    calib = np.array([SPLITS[args.split](int(v)) for v in seed], dtype=bool)
    centre = np.median(F[calib], axis=0)
    scale = np.std(F[calib], axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    bias, weights = fit_signed((F[calib] - centre) / scale,
                               (~failed[calib]).astype(float), args.ridge)
    conf = _confidence.score(dict(zip(names, F.T, strict=True)), weights, bias,
                             centre, scale)
    shipped = np.array([float(r["confidence"]) for r in rows])
    print(f"features from {os.path.join(args.out, 'features.csv')}; failure = "
          f"source SAD < {args.fail_db:g} dB; split {args.split!r}: fitted on seeds "
          f"{sorted(set(seed[calib].tolist()))}, held out "
          f"{sorted(set(seed[~calib].tolist()))} (ridge {args.ridge:g})")
    print(f"{'set':<28}{'sources':>8}{'failed':>8}{'AUC fit':>9}{'AUC ship':>9}")
    snr = np.array([float(r["snr"]) for r in rows])
    sets = {"calibration": calib, "held out": ~calib, "all": np.ones_like(calib)}
    for kv, sv in sorted(set(zip(k.tolist(), snr.tolist(), strict=True))):
        part = (k == kv) & (snr == sv)
        sets[f"all, k={kv:g} {sv:g}dB"] = part
        sets[f"held out, k={kv:g} {sv:g}dB"] = part & ~calib
    at40 = snr == 40.0
    sets["all, 40 dB"] = at40
    sets["held out, 40 dB"] = at40 & ~calib
    for label, sel in sets.items():
        print(f"{label:<28}{sel.sum():8d}{failed[sel].sum():8d}"
              f"{auc(conf[sel], failed[sel]):9.3f}"
              f"{auc(shipped[sel], failed[sel]):9.3f}")
    print("\nsingle features, AUC on all (higher value = more confident):")
    for j, name in enumerate(names):
        sign = 1.0 if _confidence._WEIGHTS[j] >= 0 else -1.0
        print(f"  {name:<16} {auc(sign * F[:, j], failed):.3f} (sign {sign:+.0f})")
    np.set_printoptions(precision=4, suppress=True)
    print(f"\n_CENTRE = {np.array2string(centre, separator=', ')}")
    print(f"_SCALE = {np.array2string(scale, separator=', ')}")
    print(f"_WEIGHTS = {np.array2string(weights, separator=', ')}")
    print(f"_BIAS = {bias:.4f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run sGMCA and keep the results")
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--k", type=float, nargs="+", default=[1.0, 0.01])
    p.add_argument("--snr", type=float, default=40.0)
    p.add_argument("--delta", type=float, default=None)
    p.add_argument("--crop", type=int, default=0,
                   help="central crop size (0: the full images)")
    p.add_argument("--models", default="reference")
    p.add_argument("--out", default="bench/results/confidence")
    p = sub.add_parser("features", help="write the per-source features CSV")
    p.add_argument("--out", default="bench/results/confidence")
    p = sub.add_parser("calibrate", help="fit the combination, report the AUC")
    p.add_argument("--out", default="bench/results/confidence")
    p.add_argument("--ridge", type=float, default=1.0)
    p.add_argument("--split", choices=sorted(SPLITS), default="half")
    p.add_argument("--fail-db", type=float, default=FAIL_DB,
                   help="a source below this SAD (dB) counts as failed")
    args = parser.parse_args(argv)
    {"run": run, "features": features, "calibrate": calibrate}[args.command](args)


if __name__ == "__main__":
    main()
