"""Binning a large event list: time and peak memory of ``events.bin_events``.

Simulates once an event list of ``--photons`` rows (default 3e7) from the
built-in Cas A-like mixture (4 sources, 75 channels, 256 x 256 image pixels of
2 x 2 sky pixels) into a FITS file in /tmp (not committed), then bins it in a
fresh process, so that its peak resident memory (VmHWM) is the binning's alone:
the default box (two passes), a given box, and a given box with logarithmic
channels. Prints a table and the command that made it.

Run: ``python bench/bin_events.py [--photons 3e7] [--keep]``
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

EVENTS = Path(tempfile.gettempdir()) / "sgmca_bench_events_{n:.0e}.fits"
CASES = {
    "default box, bin 2": {"binning": 2},
    "box, bin 2": {"binning": 2, "box": None},  # box filled in from the file
    "box, bin 4, log": {"binning": 4, "box": None, "log": True},
}

_CHILD = """
import json, resource, sys, time
from sgmca_fast import events
kwargs = json.loads(sys.argv[2])
t0 = time.perf_counter()
cube = events.bin_events(sys.argv[1], energy=(0.5, 8.0), channels=75, **kwargs)
seconds = time.perf_counter() - t0
with open("/proc/self/status") as fh:
    hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "vmhwm_mb": hwm / 1024,
                  "shape": cube.data.shape, "rows": cube.header["EV_ROWS"],
                  "kept": cube.header["EV_KEPT"]}))
"""


def simulate(n_photons, path):
    from sgmca_fast import datasets

    mix = datasets.make_demo_mixture(size=256, snr_db=float("inf"), random_state=0)
    sources = mix.S0 - mix.S0.min(axis=(1, 2), keepdims=True)  # non-negative
    t0 = time.perf_counter()
    sim = datasets.simulate_events(sources, mix.A0.clip(min=0), n_photons,
                                   binning=2, random_state=0, path=path,
                                   force=True)
    return sim, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", type=float, default=3e7)
    parser.add_argument("--keep", action="store_true",
                        help="keep (and reuse) the simulated file")
    args = parser.parse_args()
    _common.print_header()
    path = Path(str(EVENTS).format(n=args.photons))
    if path.exists() and args.keep:
        from astropy.io import fits

        with fits.open(path) as hdul:
            header = hdul["EVENTS"].header
            box = [header["IMGX0"], header["IMGX0"] + 512,
                   header["IMGY0"], header["IMGY0"] + 512]
        print(f"reusing {path}")
    else:
        sim, seconds = simulate(args.photons, path)
        box = list(sim.box)
        print(f"simulated {sim.n_events:,} events to {path} "
              f"({path.stat().st_size / 2**20:.0f} MB) in {seconds:.1f} s")
        del sim
    rows = []
    for label, kwargs in CASES.items():
        if "box" in kwargs:
            kwargs = {**kwargs, "box": box}
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path),
                              json.dumps(kwargs)], capture_output=True, text=True,
                             check=True, cwd=tempfile.gettempdir())
        result = json.loads(out.stdout)
        rows.append({"case": label, **result})
    print(f"{'case':<20}{'rows':>12}{'kept':>12}{'cube':>18}{'time (s)':>10}"
          f"{'peak RSS (MB)':>15}")
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        print(f"{r['case']:<20}{r['rows']:>12,}{r['kept']:>12,}{shape:>18}"
              f"{r['seconds']:>10.1f}{r['vmhwm_mb']:>15.0f}")
    if not args.keep:
        os.remove(path)


if __name__ == "__main__":
    main()
