"""Time our starlet against scipy.ndimage, an FFT version and a copy, side by side.

Run: python bench/compare_starlet.py [--threads 1] [--repeat 5]

The FFT version follows the paper authors' code: per channel a 2-D FFT, a product
with the dilated B3-spline low-pass filter, an inverse FFT, one pair per scale.
A fresh copy of an array of the output's size (allocation included, as forward
allocates its result) is the memory-bandwidth floor.
"""

import argparse
import time

import _common  # bench/_common.py: this script's folder is first on the path
import numpy as np
import scipy
from scipy.ndimage import convolve1d

from sgmca_fast import set_num_threads, starlet


def _kernel(j):
    k = np.zeros(4 * 2**j + 1)
    k[:: 2**j] = np.array([1, 4, 6, 4, 1]) / 16.0
    return k


def starlet_scipy(x, nscales):
    c = x
    out = np.empty(x.shape[:-2] + (nscales + 1,) + x.shape[-2:], x.dtype)
    for j in range(nscales):
        s = convolve1d(convolve1d(c, _kernel(j), axis=-1, mode="mirror"),
                       _kernel(j), axis=-2, mode="mirror")
        out[..., j, :, :] = c - s
        c = s
    out[..., nscales, :, :] = c
    return out


def starlet_fft(x, nscales):
    """Per-channel FFT starlet (periodic boundaries), as in the authors' code."""
    h, w = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (nscales + 1,) + (h, w), x.dtype)
    for ch in range(x.shape[0]):
        c = x[ch]
        for j in range(nscales):
            k = _kernel(j)
            kh = np.zeros(h)
            kw = np.zeros(w)
            half = len(k) // 2
            for t, v in enumerate(k):
                kh[(t - half) % h] += v
                kw[(t - half) % w] += v
            filt = np.outer(np.fft.fft(kh), np.fft.fft(kw))
            s = np.real(np.fft.ifft2(np.fft.fft2(c) * filt))
            out[ch, j] = c - s
            c = s
        out[ch, nscales] = c
    return out


def best_time(func, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--nscales", type=int, default=2)
    parser.add_argument("--shape", type=int, nargs=3, default=[75, 346, 346])
    args = parser.parse_args(argv)
    set_num_threads(args.threads)
    _common.print_header()
    print(f"scipy {scipy.__version__}")
    x = np.random.default_rng(0).standard_normal(tuple(args.shape))
    n = args.nscales
    # The floor allocates its result, as forward does: a fresh copy of that size.
    src = np.repeat(x[:, None], n + 1, axis=1)

    ours = starlet.forward(x, n)
    err = np.abs(ours - starlet_scipy(x, n)).max()
    starlet.forward(x, n)  # warm caches
    results = {
        "sgmca-fast forward": best_time(lambda: starlet.forward(x, n), args.repeat),
        "sgmca-fast inverse": best_time(lambda: starlet.inverse(ours), args.repeat),
        "scipy.ndimage": best_time(lambda: starlet_scipy(x, n), args.repeat),
        "FFT (authors style)": best_time(lambda: starlet_fft(x, n),
                                          max(1, args.repeat // 2)),
        "copy of output size": best_time(src.copy, args.repeat),
    }
    ref = results["sgmca-fast forward"]
    print(f"shape {tuple(args.shape)} float64, {n} detail scales, "
          f"{args.threads} thread(s), best of {args.repeat}; max |ours - scipy| = "
          f"{err:.1e}")
    print(f"{'method':<24}{'time (ms)':>12}{'/ ours':>10}")
    for name, t in results.items():
        print(f"{name:<24}{1e3 * t:>12.1f}{t / ref:>10.2f}")
    print(f"speed-up vs scipy.ndimage: {results['scipy.ndimage'] / ref:.1f}x "
          f"(target >= 3); vs FFT: {results['FFT (authors style)'] / ref:.1f}x "
          f"(target >= 10); forward / copy floor: "
          f"{ref / results['copy of output size']:.2f} (target <= 4)")


if __name__ == "__main__":
    main()
