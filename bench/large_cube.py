"""A cube bigger than the solver should hold: streamed separate, wall time, peak RSS.

Writes a synthetic float32 cube as .npy (never held whole: channel by channel into
``np.lib.format.open_memmap``) with its truth, then runs ``separate`` on the
memory-mapped file in a child process (``python bench/large_cube.py run``) and
reports the child's wall time and peak RSS (its own ``resource.getrusage(
RUSAGE_SELF).ru_maxrss`` at the end, imports included) and the accuracy against
the truth, computed here after the child ended. With 75 channels the cube is
the built-in X-ray mixture (the demo's four sources at any size, the demo's
spectra) separated with sGMCA and the built-in
models; with another channel count the spectra are smooth random bumps and the
run is GMCA. ``--in-memory`` runs the same separation on the array read into memory
(``subspace="auto"``) in a second child, for comparison.

    python bench/large_cube.py --size 1024 --channels 75 --dir /work/measure/big
    python bench/large_cube.py --size 300 --channels 3681 --dir /work/measure/big

The files go to ``--dir`` (not the repository); they are kept for a rerun of the
same size and seed.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import print_header


def _spectra(J, n, rng):
    """(J, n) spectra: the demo's for 75 channels, else positive smooth bumps."""
    if J == 75:
        from sgmca_fast.datasets._families import builtin_sets

        rows = []
        for name in ("sync", "thermal", "gauss", "gauss"):
            valid = builtin_sets(name)["valid"]
            rows.append(valid[rng.integers(valid.shape[0])])
        A = np.array(rows).T
    else:
        grid = np.arange(J)[:, None]
        centres = rng.uniform(0.1, 0.9, n) * J
        A = np.exp(-0.5 * ((grid - centres) / (0.05 * J)) ** 2) + 0.05
    return A / np.linalg.norm(A, axis=0)


def write_cube(path, size, J, snr_db, seed):
    """Write X (J, size, size) float32 to path and the truth beside it."""
    from sgmca_fast import datasets

    rng = np.random.default_rng(seed)
    S = datasets.make_sources(size, rng).reshape(4, -1)
    A = _spectra(J, 4, rng)
    power = np.trace((A.T @ A) @ (S @ S.T)) / (J * S.shape[1])  # mean (A S)^2
    sigma = float(np.sqrt(power * 10 ** (-snr_db / 10)))
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(J, size, size))
    for j in range(J):
        X[j] = (A[j] @ S + sigma * rng.standard_normal(S.shape[1])).reshape(
            size, size)
    X.flush()
    del X
    np.savez(path.with_suffix(".truth.npz"), A=A, S=S.reshape(4, size, size),
             sigma=sigma)


def run_child(args):
    """The child: separate the memory-mapped cube, save the estimate."""
    import sgmca_fast
    from sgmca_fast.data import builtin_model

    X = np.load(args.file, mmap_mode="r")
    models = None
    if X.shape[0] == 75:
        models = {builtin_model("sync"): 1, builtin_model("thermal"): 1,
                  builtin_model("gauss"): 2}
    if args.in_memory:
        X = np.asarray(X, dtype=np.float64)
    t0 = time.perf_counter()
    result = sgmca_fast.separate(X, 4, models, subspace="auto", random_state=0)
    wall = time.perf_counter() - t0
    np.savez(args.out, A=result.A, S=result.S, noise_std=result.noise_std)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"wall": wall, "peak": peak, "timings": result.timings,
                      "rank": result.subspace["rank"],
                      "method": result.subspace["method"]}))


def measure(file, out, in_memory):
    """Run a child; return its report (with its own peak RSS) and wall time."""
    cmd = [sys.executable, __file__, "run", "--file", str(file), "--out", str(out)]
    if in_memory:
        cmd.append("--in-memory")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "run"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--channels", type=int, default=75)
    parser.add_argument("--snr-db", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=Path("/work/measure/big"))
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.mode == "run":
        return run_child(args)
    print_header()
    from sgmca_fast import metrics

    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"cube_{args.channels}x{args.size}_s{args.seed}.npy"
    if not path.exists():
        t0 = time.perf_counter()
        write_cube(path, args.size, args.channels, args.snr_db, args.seed)
        print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in "
              f"{time.perf_counter() - t0:.1f} s")
    truth = np.load(path.with_suffix(".truth.npz"))
    for label, in_memory in (("streamed", False), ("in memory", True)):
        if in_memory and not args.in_memory:
            continue
        out = args.dir / f"estimate_{path.stem}_{label.replace(' ', '_')}.npz"
        report, wall = measure(path, out, in_memory)
        est = np.load(out)
        m = metrics.evaluate(truth["A"], truth["S"], est["A"], est["S"])
        print(f"{label}: separate {report['wall']:.1f} s (child {wall:.1f} s), "
              f"peak RSS {report['peak'] / 2**30:.2f} GiB, "
              f"rank {report['rank']} ({report['method']}), SAD {m['SAD']:.2f} dB, "
              f"SDR {m['SDR']:.2f} dB, noise std / true: "
              f"{np.median(est['noise_std']) / truth['sigma']:.4f} (median), "
              f"{np.max(np.abs(est['noise_std'] / truth['sigma'] - 1)):.4f} "
              "(max |error|); stages "
              + ", ".join(f"{k} {v:.1f}" for k, v in report["timings"].items()))


if __name__ == "__main__":
    main()
