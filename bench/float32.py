"""sGMCA on Cas A in float64 and float32 side by side: time, memory, accuracy.

Run (from the repository root, with ../shared/data/casa beside it):

    python bench/float32.py [--rounds 3] [--seeds 3] [--k 1]
        [--parts time memory accuracy] [--crop 128]

Three parts, on the paper's full Cas A mixture (346 x 346 x 75, 40 dB, noise std
known, the authors' models; bench/casa_separation.py's ``make_case``):

1. time: ``--rounds`` rounds on seed 0, float64 and float32 alternating (the
   first of each round alternates too), each run's total and stage times;
2. memory: one run of each dtype under tracemalloc (numpy's allocations; the
   Numba kernels' per-thread scratch rows are not seen), the peak above what
   was held before the call (set by the confidence features after the final
   stage) and the most held between two iterations, against the float64 data's
   size; the data are given in the run's dtype (converted before the call, as
   held by a user of float32 data; the time runs give float64 X to both, so
   float32's includes its conversion);
3. accuracy: seeds 0 .. ``--seeds`` - 1, SAD and SDR of both against the truth,
   their medians and the median of the per-seed differences (the target of
   issue 14: the medians within 0.2 dB of float64 over 10 seeds).
"""

import argparse
import time
import tracemalloc

import _common
import numpy as np
from casa_separation import make_case

import sgmca_fast
from sgmca_fast import metrics

DTYPES = ("float64", "float32")


def _run(mix, models, dtype, seed):
    t0 = time.perf_counter()
    res = sgmca_fast.separate(mix.X, 4, models, noise_std=mix.noise_std,
                              random_state=seed, dtype=dtype)
    return res, time.perf_counter() - t0


def _peak(mix, models, dtype):
    """Peak traced memory (bytes) of one separate() call above what was held,
    and the most held between two iterations (the data, their transform and
    the solver's buffers)."""
    held = []
    X = mix.X.astype(dtype)  # the data as a float32 user holds them: not counted
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    sgmca_fast.separate(X, 4, models, noise_std=mix.noise_std, random_state=0,
                        dtype=dtype, callback=lambda info: held.append(
                            tracemalloc.get_traced_memory()[0] - base))
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, max(held)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=float, default=1.0)
    parser.add_argument("--snr", type=float, default=40.0)
    parser.add_argument("--crop", type=int, default=0,
                        help="central crop size (0: the full images)")
    parser.add_argument("--parts", nargs="+", default=["time", "memory", "accuracy"],
                        choices=["time", "memory", "accuracy"])
    args = parser.parse_args(argv)
    _common.print_header()
    print(f"threads {sgmca_fast.get_num_threads()}")
    casa = _common.load_casa()
    models = _common.casa_models("reference")
    mix = make_case(casa, 0, args.k, args.snr, args.crop)
    small = make_case(casa, 0, args.k, args.snr, 128)
    for dtype in DTYPES:  # compile both kernels' specialisations, load models
        sgmca_fast.separate(small.X, 4, models, noise_std=small.noise_std,
                            dtype=dtype, max_iter_semiblind=2)

    if "time" in args.parts:
        _time(mix, models, args.rounds)
    if "memory" in args.parts:
        _memory(mix, models)
    if "accuracy" in args.parts:
        _accuracy(casa, mix, models, args)


def _time(mix, models, rounds):
    print(f"\n1. time, seed 0, shape {mix.X.shape}, {rounds} rounds")
    times = {dt: [] for dt in DTYPES}
    for r in range(rounds):
        for dtype in DTYPES if r % 2 == 0 else DTYPES[::-1]:
            res, wall = _run(mix, models, dtype, 0)
            times[dtype].append(wall)
            t = res.timings
            print(f"round {r} {dtype}: total {wall:6.2f} s (transform "
                  f"{t['transform']:.2f}, setup {t['setup']:.2f}, blind "
                  f"{t['blind']:.2f}, semiblind {t['semiblind']:.2f}, final "
                  f"{t['final']:.2f}), it {res.n_iter['blind']}+"
                  f"{res.n_iter['semiblind']}", flush=True)
    med = {dt: float(np.median(v)) for dt, v in times.items()}
    print(f"median total: float64 {med['float64']:.2f} s, float32 "
          f"{med['float32']:.2f} s, float64 / float32 = "
          f"{med['float64'] / med['float32']:.2f}")


def _memory(mix, models):
    print("\n2. memory (tracemalloc peak of one separate call)")
    peaks = {dt: _peak(mix, models, dt) for dt in DTYPES}
    data = mix.X.nbytes
    for dtype, (peak, held) in peaks.items():
        print(f"{dtype}: peak {peak / 2**20:7.1f} MiB = {peak / data:.2f} x the "
              f"float64 data ({data / 2**20:.0f} MiB); held in the iterations "
              f"{held / 2**20:7.1f} MiB = {held / data:.2f} x")
    print(f"float32 / float64: peak {peaks['float32'][0] / peaks['float64'][0]:.2f}"
          f", held in the iterations "
          f"{peaks['float32'][1] / peaks['float64'][1]:.2f}")


def _accuracy(casa, mix, models, args):
    print(f"\n3. accuracy, seeds 0..{args.seeds - 1}, k = {args.k}")
    scores = {dt: {"SAD": [], "SDR": []} for dt in DTYPES}
    for seed in range(args.seeds):
        case = mix if seed == 0 else make_case(casa, seed, args.k, args.snr,
                                               args.crop)
        for dtype in DTYPES if seed % 2 == 0 else DTYPES[::-1]:
            res, wall = _run(case, models, dtype, seed)
            m = metrics.evaluate(case.A0, case.S0, res.A, res.S, noise=case.N)
            scores[dtype]["SAD"].append(m["SAD"])
            scores[dtype]["SDR"].append(m["SDR"])
            print(f"seed {seed} {dtype}: SAD {m['SAD']:6.2f} SDR {m['SDR']:6.2f} "
                  f"time {wall:6.2f} s mapping {res.mapping}", flush=True)
    for key in ("SAD", "SDR"):
        a64 = np.array(scores["float64"][key])
        a32 = np.array(scores["float32"][key])
        print(f"median {key}: float64 {np.median(a64):.3f} dB, float32 "
              f"{np.median(a32):.3f} dB, difference of medians "
              f"{np.median(a32) - np.median(a64):+.3f} dB, largest per-seed "
              f"|difference| {np.max(np.abs(a32 - a64)):.3f} dB")


if __name__ == "__main__":
    main()
