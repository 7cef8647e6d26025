"""Time of noise="poisson" over the Gaussian solver on the same count cube.

Run (from the repository root, with ../shared/data/casa beside it; on a shared
machine under a lock, e.g. ``flock /work/bench.lock``):

    python bench/poisson_time.py 3

The Cas A count cube of bench/photon_counts.py (seed 0) at 1e8 and 1e7 photons;
per repeat, interleaved: sGMCA Gaussian (per-channel std from the counts),
``noise="poisson"`` (the default), and the same with the blind stage in every
pass (the default before session 9). Prints each one's median time and its ratio
to the Gaussian run's.
"""

import sys
import time

import _common
import numpy as np
from photon_counts import make_counts

from sgmca_fast import _poisson, separate


def cold_poisson(X, models):
    """noise="poisson" with the blind stage in every pass."""
    def solve(*args, **kwargs):
        kwargs["blind_stage"] = True
        return separate(*args, **kwargs)
    return _poisson.separate_counts(solve, X, 4, models, random_state=0)


def time_level(casa, models, photons, repeats):
    """Median seconds of each run on one count cube, interleaved repeats."""
    X = make_counts(casa, 0, photons)[0]
    level = X.reshape(X.shape[0], -1).mean(axis=1)
    sigma = np.sqrt(np.maximum(level, _poisson.FLOOR * X.mean()))
    separate(X[:, :64, :64], 4, models, noise="poisson")  # compile
    runs = {
        "gaussian": lambda: separate(X, 4, models, noise_std=sigma, random_state=0),
        "poisson (default)": lambda: separate(X, 4, models, noise="poisson",
                                              random_state=0),
        "poisson (blind stage each pass)": lambda: cold_poisson(X, models),
    }
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return times


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    _common.print_header()
    casa = _common.load_casa()
    models = _common.casa_models("reference")
    for photons in (1e8, 1e7):
        times = time_level(casa, models, photons, repeats)
        g = np.median(times["gaussian"])
        print(f"{photons:.0e}: " + "; ".join(
            f"{name} median {np.median(v):.2f} s (x{np.median(v) / g:.2f}) runs "
            + ",".join(f"{t:.1f}" for t in v) for name, v in times.items()),
            flush=True)


if __name__ == "__main__":
    main()
