"""The thread policy on an idle machine, beside a competing BLAS process, and pinned.

Run: python bench/threads.py [--rounds 2] [--crop 256]

Each case runs one full sGMCA separation of a Cas A mixture (the authors' models,
40 dB) in a fresh process, after a warm-up that compiles the kernels, and prints
its wall time. Cases:

- ``before``: the package's kernels follow the thread count but BLAS keeps its
  own pool (how the package ran before ``thread_limits``; threadpoolctl hidden);
- ``policy``: :func:`sgmca_fast.thread_limits` caps BLAS and OpenMP too;
- with 1 or 2 threads, on an idle machine, beside a process that runs 2-thread
  BLAS products without pause, and pinned to one CPU with ``taskset`` (a batch
  job given one core; ``before`` then uses ``os.cpu_count()`` threads, ``policy``
  the affinity mask).

The rounds interleave the cases, so that each ratio is measured side by side.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import _common

_RUN = r"""
import sys, time
if {hide}:
    sys.modules["threadpoolctl"] = None   # the package then leaves BLAS alone
import _common, sgmca_fast
from casa_separation import make_case
casa = _common.load_casa()
models = _common.casa_models("reference")
mix = make_case(casa, 0, 1.0, 40.0, {crop})
sgmca_fast.separate(mix.X[:, :48, :48], 4, models, noise_std=mix.noise_std)
t0 = time.perf_counter()
sgmca_fast.separate(mix.X, 4, models, noise_std=mix.noise_std, random_state=0)
print(time.perf_counter() - t0)
"""

# products without pause, until the bench that started it is gone
_COMPETITOR = r"""
import os
import numpy as np
parent = os.getppid()
a = np.random.default_rng(0).standard_normal((1500, 1500))
while os.getppid() == parent:
    a @ a
"""


def _run(hide, threads, crop, pin):
    env = dict(os.environ)
    if threads is None:
        env.pop("SGMCA_FAST_NUM_THREADS", None)
    else:
        env["SGMCA_FAST_NUM_THREADS"] = str(threads)
    code = _RUN.format(hide=hide, crop=crop)
    cmd = [sys.executable, "-c", code]
    if pin:
        cmd = ["taskset", "-c", "0", *cmd]
    # run in bench/: `_common` imports from there, sgmca_fast is the installed one
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    if out.returncode:
        sys.exit(out.stderr)
    return float(out.stdout.split()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--crop", type=int, default=0,
                        help="central crop of the image (0: the full 346 x 346)")
    args = parser.parse_args(argv)
    _common.print_header()
    # (condition, label, hide threadpoolctl, SGMCA_FAST_NUM_THREADS, pinned)
    cases = []
    for condition in ("idle", "competing"):
        for threads in (2, 1):
            cases += [(condition, f"before, {threads} threads", True, threads, False),
                      (condition, f"policy, {threads} threads", False, threads, False)]
    cases += [("pinned to 1 CPU", "before, default threads", True, None, True),
              ("pinned to 1 CPU", "policy, default threads", False, None, True)]
    times = {case[:2]: [] for case in cases}
    for _ in range(args.rounds):
        for condition in ("idle", "competing", "pinned to 1 CPU"):
            rival = None
            if condition == "competing":
                env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
                rival = subprocess.Popen([sys.executable, "-c", _COMPETITOR], env=env)
                time.sleep(2)
            try:
                for cond, label, hide, threads, pin in cases:
                    if cond == condition:
                        times[cond, label].append(_run(hide, threads, args.crop, pin))
            finally:
                if rival is not None:
                    rival.kill()
                    rival.wait()
    print("\n| condition | case | median s | runs |\n|---|---|---|---|")
    for (cond, label), ts in times.items():
        print(f"| {cond} | {label} | {statistics.median(ts):.2f} | "
              f"{', '.join(f'{t:.1f}' for t in ts)} |")


if __name__ == "__main__":
    main()
