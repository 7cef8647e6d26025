"""The channel subspace pass against the channel count: time and rank.

Run (from the repository root; time it alone on the machine):

    python bench/subspace_channels.py
    python bench/subspace_channels.py --channels 75 300 1000 3000 --solver
    python bench/subspace_channels.py --casa --repeat 3

For each channel count J, a 64 x 64 mixture of 4 sparse sources with smooth
positive spectra and per-channel white noise (30 dB) is transformed once (2
detail scales); then, side by side on the same coefficients:

- ``full``: what the full-space solver does before its iterations, ``Xd Xd^T``
  (order J^2 P) and its ``eigh`` (order J^3, the PCA start);
- ``gram``: :func:`sgmca_fast._subspace.reduce` with the Gram matrix and ``eigh``
  of the whitened coefficients, rank ``"auto"``;
- ``randomized``: the same with the randomized range finder (3 power iterations);

and the rank found, the count above the noise floor and the largest principal
angle (sine) between the two paths' signal directions. ``--solver`` also times
``gmca`` with ``subspace=None`` and ``subspace="auto"`` (best of ``--repeat``)
and prints each one's worst spectral angle to the truth (rad).
``--casa`` instead times sGMCA and GMCA on the Cas A mixture of seed 0 (k = 1,
40 dB, noise given) with ``subspace=None`` and ``"auto"``, interleaved, best of
``--repeat`` after a warm-up.
"""

import argparse
import time

import _common
import numpy as np

import sgmca_fast
from sgmca_fast import _subspace, starlet


def mixture(J, side, n_src, snr_db, seed):
    """(J, side, side) mixture, its per-channel noise std, the true A (J, n_src)."""
    rng = np.random.default_rng(seed)
    S = np.zeros((n_src, side, side))
    for i in range(n_src):
        on = rng.random((side, side)) < 0.05
        S[i][on] = rng.laplace(size=int(on.sum()))
    ch = np.linspace(0, 1, J)
    A = np.column_stack([np.exp(-0.5 * ((ch - c) / 0.1) ** 2) + 0.1
                         for c in rng.uniform(0, 1, n_src)])
    A /= np.linalg.norm(A, axis=0)
    X = (A @ S.reshape(n_src, -1)).reshape(J, side, side)
    sigma = X.std() * 10 ** (-snr_db / 20) * rng.uniform(1.0, 2.0, J)
    return X + sigma[:, None, None] * rng.standard_normal(X.shape), sigma, A


def worst_angle(A0, A):
    """Largest angle (rad) between a true spectrum and its closest estimate."""
    cos = np.abs(A0.T @ A) / np.linalg.norm(A, axis=0)
    return float(np.arccos(np.minimum(cos.max(axis=1), 1.0)).max())


def best(fn, repeat):
    """Best time of ``repeat`` calls, and the last result."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def sine_angle(U, V):
    """Sine of the largest principal angle between two orthonormal bases."""
    return float(np.linalg.norm(V - U @ (U.T @ V), 2))


def casa(repeat):
    """Time sGMCA and GMCA on Cas A, full space against subspace='auto'."""
    from casa_separation import make_case

    data = _common.load_casa()
    models = _common.casa_models("reference")
    mix = make_case(data, 0, 1.0, 40.0, 0)
    sgmca_fast.separate(mix.X[:, :48, :48], 4, models, noise_std=mix.noise_std)
    print(f"{'method':<8}{'none s':>9}{'auto s':>9}{'ratio':>7}{'rank':>6}"
          f"{'setup none':>12}{'setup auto':>12}")
    for name, chosen in (("sGMCA", models), ("GMCA", None)):
        times = {None: [], "auto": []}
        res = {}
        for _ in range(repeat):
            for sub in (None, "auto"):
                t0 = time.perf_counter()
                res[sub] = sgmca_fast.separate(mix.X, 4, chosen,
                                               noise_std=mix.noise_std,
                                               random_state=0, subspace=sub)
                times[sub].append(time.perf_counter() - t0)
        t_none, t_auto = min(times[None]), min(times["auto"])
        print(f"{name:<8}{t_none:9.2f}{t_auto:9.2f}{t_none / t_auto:7.2f}"
              f"{res['auto'].subspace['rank']:6d}"
              f"{res[None].timings['setup']:12.3f}"
              f"{res['auto'].timings['setup']:12.3f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs="+",
                        default=[75, 300, 1000, 3000])
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--solver", action="store_true",
                        help="also time gmca with subspace=None and 'auto'")
    parser.add_argument("--casa", action="store_true",
                        help="time Cas A sGMCA and GMCA instead (none vs auto)")
    args = parser.parse_args(argv)
    _common.print_header()
    if args.casa:
        print(f"threads {sgmca_fast.get_num_threads()}, Cas A seed 0, best of "
              f"{args.repeat}")
        casa(args.repeat)
        return
    print(f"threads {sgmca_fast.get_num_threads()}, image {args.side}^2, "
          f"{args.sources} sources, {args.snr} dB, best of {args.repeat}")
    head = (f"{'J':>6}{'full s':>9}{'gram s':>9}{'rand s':>9}{'rank':>6}"
            f"{'signal':>7}{'sin':>9}")
    if args.solver:
        head += f"{'gmca s':>9}{'auto s':>9}{'ratio':>7}{'angle':>8}{'auto':>8}"
    print(head)
    for J in args.channels:
        X, sigma, A0 = mixture(J, args.side, args.sources, args.snr, seed=J)
        Xd = starlet.forward(X, 2)[:, :2].reshape(J, 2, -1)
        flat = Xd.reshape(J, -1)

        def full(flat=flat):
            return np.linalg.eigh(flat @ flat.T)

        def reduce(method, Xd=Xd, sigma=sigma):
            return _subspace.reduce(Xd, "auto", noise_std=sigma, n_min=args.sources,
                                    image_shape=(args.side, args.side),
                                    method=method, random_state=0)

        t_full, _ = best(full, args.repeat)
        t_gram, gram = best(lambda: reduce("gram"), args.repeat)
        t_rand, rand = best(lambda: reduce("randomized"), args.repeat)
        n = rand.n_signal
        sin = sine_angle(gram.basis[:, :n], rand.basis[:, :n]) if n else float("nan")
        line = (f"{J:6d}{t_full:9.3f}{t_gram:9.3f}{t_rand:9.3f}{rand.rank:6d}"
                f"{n:7d}{sin:9.1e}")
        if gram.rank != rand.rank:
            line += f" (gram rank {gram.rank})"
        if args.solver:
            t_none, r_none = best(lambda X=X, s=sigma: sgmca_fast.gmca(
                X, args.sources, noise_std=s, random_state=0), args.repeat)
            t_auto, r_auto = best(lambda X=X, s=sigma: sgmca_fast.gmca(
                X, args.sources, noise_std=s, random_state=0, subspace="auto"),
                args.repeat)
            line += (f"{t_none:9.3f}{t_auto:9.3f}{t_none / t_auto:7.2f}"
                     f"{worst_angle(A0, r_none.A):8.4f}"
                     f"{worst_angle(A0, r_auto.A):8.4f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
