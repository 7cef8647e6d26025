"""The paper's experiments (Table 3, Figure 9) as independent tasks.

One task = one method on one mixture (an experiment point and a seed); it returns
one CSV row. ``run.py`` is the command line; ``report.py`` turns the CSVs into
tables and plots. The mixture protocol is shared/data/casa/README.md: the four
unit-norm Cas A sources, one synchrotron, one thermal and two distinct Gaussian
line spectra drawn from the validation splits, white Gaussian noise at the given
SNR, the thermal and line sources times k. A seed fixes the spectra and the noise,
so every method of a point sees the same data, and the sweeps reuse the same
spectra draws across their points (paired comparisons).
"""

from __future__ import annotations

import csv
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


def _bench_common():
    """``bench/_common.py``, the helpers of the bench scripts, loaded from its path.

    run.py and report.py run from bench/paper/, so Python's path holds this folder
    and not bench/; loading the file by its path spares a ``sys.path`` edit.
    """
    import importlib.util

    if "_common" not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "_common.py"
        spec = importlib.util.spec_from_file_location("_common", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["_common"] = module
        spec.loader.exec_module(module)
    return sys.modules["_common"]


_common = _bench_common()
REPO = _common.REPO
CASA = _common.CASA_DIR

METRICS = ("SAD", "SDR", "SIR", "SNR", "SAR")
METHODS = ("sGMCA", "GMCA", "HALS", "SNMF", "NN-sGMCA", "oracle")
EXPERIMENTS = ("table3", "snr", "delta", "k")
# Components with a model in each column of Table 3; "none" is GMCA.
MODEL_SETS = {
    "all": (("sync", 1), ("thermal", 1), ("gauss", 2)),
    "thermal+gauss": (("thermal", 1), ("gauss", 2)),
    "sync+gauss": (("sync", 1), ("gauss", 2)),
    "gauss": (("gauss", 2),),
    "none": (),
}
# Defaults of the parameters a sweep does not vary (delta None: the two lines are
# drawn at random, distinct, as in the README's protocol).
DEFAULTS = {"snr_db": 40.0, "k": 1.0, "delta": None}
SWEEPS = {
    "snr": ("snr_db", (10.0, 20.0, 30.0, 40.0, 50.0, 60.0)),
    "delta": ("delta", (1.0, 3.0, 5.0, 10.0, 20.0, 40.0)),
    "k": ("k", (0.01, 0.03, 0.1, 0.3, 1.0)),
}
TABLE3_K = (1.0, 0.01)
# NMF settings: a fixed iteration budget, and SNMF's L1 weight relative to mean|X|
# (the penalty must scale with the data). 0.01 is the largest of {0.01, 0.1, 1}
# that did not wipe out the hidden sources at k = 0.01 on two binned (86 x 86)
# realisations: a "globally good" value like the paper's, not a tuned one.
NMF_MAX_ITER = 200
SNMF_ALPHA_REL = 0.01

COLUMNS = (
    "experiment", "param", "value", "models", "method", "seed", "size",
    "snr_db", "k", "delta", *METRICS, "SAD_per_source", "time", "n_iter",
    "mapping", "version",
)
KEY = ("experiment", "param", "value", "models", "method", "seed", "size")


@dataclass(frozen=True)
class Task:
    """One run: a method on the mixture of one experiment point and seed."""

    experiment: str
    param: str  # the varied parameter: "snr_db", "delta", "k"
    value: float
    models: str  # a MODEL_SETS key for (NN-)sGMCA, "-" otherwise
    method: str
    seed: int
    size: int  # image side after binning (346: full size)
    snr_db: float
    k: float
    delta: float | None
    data: str = str(CASA)
    threads: int = 1

    def key(self) -> tuple:
        """Identify the task's row in a results file."""
        return (self.experiment, self.param, fmt_value(self.value), self.models,
                self.method, str(self.seed), str(self.size))


def fmt_value(value) -> str:
    """Write numbers in the CSV the same way each time (the resume key)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):g}"


def make_tasks(experiment, seeds, size, methods=None, data=CASA, threads=1):
    """All the tasks of an experiment, in a stable order.

    Parameters
    ----------
    experiment : str
        One of EXPERIMENTS.
    seeds : sequence of int
        Realisations.
    size : int
        Image side (see :func:`bin_sources`).
    methods : sequence of str, optional
        Keep only these methods (default all).
    data : path, optional
        The Cas A folder.
    threads : int, optional
        Threads per task.

    Returns
    -------
    list of Task
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(
            f"unknown experiment {experiment!r}; expected one of {sorted(EXPERIMENTS)}"
        )
    methods = METHODS if methods is None else tuple(methods)
    bad = sorted(set(methods) - set(METHODS))
    if bad:
        raise ValueError(f"unknown methods {bad}; expected some of {sorted(METHODS)}")
    points = []  # (param, value, setting, [(method, models)])
    baselines = [(m, "all" if m == "NN-sGMCA" else "-")
                 for m in METHODS if m != "sGMCA"]
    if experiment == "table3":
        for k in TABLE3_K:
            runs = [("sGMCA", s) for s in MODEL_SETS if s != "none"] + baselines
            points.append(("k", k, {**DEFAULTS, "k": k}, runs))
    else:
        param, values = SWEEPS[experiment]
        for value in values:
            runs = [("sGMCA", "all")] + baselines
            points.append((param, value, {**DEFAULTS, param: value}, runs))
    tasks = []
    for param, value, setting, runs in points:
        for seed in seeds:
            for method, models in runs:
                if method not in methods:
                    continue
                tasks.append(Task(
                    experiment=experiment, param=param, value=float(value),
                    models=models, method=method, seed=int(seed), size=int(size),
                    snr_db=float(setting["snr_db"]), k=float(setting["k"]),
                    delta=setting["delta"], data=str(data), threads=int(threads),
                ))
    return tasks


# --------------------------------------------------------------------------------
# one task
# --------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def load_data(path: str):
    """The Cas A folder, read once per process."""
    from sgmca_fast import datasets

    return datasets.load_casa(path)


@lru_cache(maxsize=2)
def load_models(path: str, kind: str) -> dict:
    """{family: model}: the authors' IAE models ("iae") or nearest neighbours ("nn")."""
    from sgmca_fast.baselines import NearestNeighbourModel
    from sgmca_fast.iae import from_reference

    casa = load_data(path)
    out = {}
    for family in ("sync", "thermal", "gauss"):
        if kind == "iae":
            out[family] = from_reference(casa.reference_models[family])
        else:
            out[family] = NearestNeighbourModel(casa.families[family]["train"], family)
    return out


def bin_sources(sources: np.ndarray, size: int) -> np.ndarray:
    """Bin (I, H, W) images to (I, size, size) by block sums.

    The factor is ``b = min(H, W) // size``; the central ``size * b`` square is
    cut into b x b blocks, each summed. ``size`` equal to the image side (346)
    returns the images unchanged.
    """
    n, h, w = sources.shape
    if size == h == w:
        return sources
    if not 1 <= size <= min(h, w):
        raise ValueError(f"size must be in [1, {min(h, w)}], got {size}")
    b = min(h, w) // size
    side = size * b
    top, left = (h - side) // 2, (w - side) // 2
    crop = sources[:, top:top + side, left:left + side]
    return crop.reshape(n, size, b, size, b).sum(axis=(2, 4))


def make_case(task: Task):
    """The mixture of a task (same for every method of a point and seed)."""
    from sgmca_fast import datasets

    casa = load_data(task.data)
    fam = casa.families
    spectra = [fam["sync"]["valid"], fam["thermal"]["valid"], fam["gauss"]["valid"],
               fam["gauss"]["valid"]]
    return datasets.make_mixture(
        bin_sources(casa.sources, task.size), spectra, snr_db=task.snr_db, k=task.k,
        delta=task.delta, names=("sync", "therm", "fe1", "fe2"),
        random_state=task.seed,
    )


def metric_sources(task: Task):
    """Source metrics over the hidden sources when the sources are unbalanced."""
    if task.experiment == "k" or task.k != 1.0:
        return [1, 2, 3]
    return None


def separate_task(task: Task, mix):
    """Run the task's method on its mixture; return a Separation."""
    import sgmca_fast
    from sgmca_fast import baselines

    n = mix.A0.shape[1]
    seed = task.seed
    if task.method in ("sGMCA", "NN-sGMCA"):
        models = load_models(task.data, "iae" if task.method == "sGMCA" else "nn")
        chosen = {models[f]: c for f, c in MODEL_SETS[task.models]}
        return sgmca_fast.separate(mix.X, n, chosen or None,
                                   noise_std=mix.noise_std, random_state=seed)
    if task.method == "GMCA":
        return sgmca_fast.gmca(mix.X, n, noise_std=mix.noise_std, random_state=seed)
    if task.method == "HALS":
        return baselines.hals_nmf(mix.X, n, max_iter=NMF_MAX_ITER, random_state=seed)
    if task.method == "SNMF":
        alpha = SNMF_ALPHA_REL * float(np.mean(np.abs(mix.X)))
        return baselines.sparse_nmf(mix.X, n, alpha=alpha, max_iter=NMF_MAX_ITER,
                                    random_state=seed)
    if task.method == "oracle":
        # A from the true S and S from the true A, each scored on its own part.
        t0 = time.perf_counter()
        A = baselines.oracle_mixing(mix.X, mix.S0).A
        res = baselines.oracle_sources(mix.X, mix.A0, mix.noise_std)
        res.A = A
        res.timings["total"] = time.perf_counter() - t0
        return res
    raise ValueError(f"unknown method {task.method!r}")


def run_task(task: Task) -> dict:
    """Run one task and return its CSV row (a dict of COLUMNS)."""
    import sgmca_fast
    from sgmca_fast import metrics

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        threadpool_limits = None
    sgmca_fast.set_num_threads(task.threads)
    mix = make_case(task)
    t0 = time.perf_counter()
    if threadpool_limits is not None:
        with threadpool_limits(task.threads):
            res = separate_task(task, mix)
    else:  # pragma: no cover
        res = separate_task(task, mix)
    elapsed = time.perf_counter() - t0
    m = metrics.evaluate(mix.A0, mix.S0, res.A, res.S, noise=mix.N,
                         sources=metric_sources(task))
    row = {key: value for key, value in asdict(task).items() if key in COLUMNS}
    row.update({
        "value": fmt_value(task.value),
        "snr_db": fmt_value(task.snr_db),
        "k": fmt_value(task.k),
        "delta": fmt_value(task.delta),
        **{key: f"{m[key]:.4f}" for key in METRICS},
        "SAD_per_source": " ".join(f"{v:.2f}" for v in m["SAD_per_source"]),
        "time": f"{elapsed:.3f}",
        "n_iter": "+".join(str(v) for v in res.n_iter.values()),
        "mapping": " ".join("-" if v is None else str(v) for v in res.mapping),
        "version": sgmca_fast.__version__,
    })
    return {key: str(row.get(key, "")) for key in COLUMNS}


# --------------------------------------------------------------------------------
# results file
# --------------------------------------------------------------------------------


def read_rows(path) -> list[dict]:
    """Rows of a results CSV ([] if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is not None and tuple(reader.fieldnames) != COLUMNS:
            raise ValueError(
                f"{path} has columns {reader.fieldnames}, expected {list(COLUMNS)}: "
                "write to another file"
            )
        return list(reader)


def done_keys(rows) -> set:
    """Resume keys of the rows already there."""
    return {tuple(row[key] for key in KEY) for row in rows}


class RowWriter:
    """Append rows to a CSV as they arrive (header written once, flushed each row)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.fh = open(self.path, "a", newline="")  # noqa: SIM115
        self.writer = csv.DictWriter(self.fh, fieldnames=COLUMNS)
        if new:
            self.writer.writeheader()
            self.fh.flush()

    def write(self, row: dict) -> None:
        """Append one row and flush it to disk."""
        self.writer.writerow(row)
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self.fh.close()


# --------------------------------------------------------------------------------
# schedulers
# --------------------------------------------------------------------------------


def run_local(tasks, jobs, on_row):
    """Run tasks in this process (jobs == 1) or in a pool of processes."""
    if jobs == 1:
        for task in tasks:
            try:
                row = run_task(task)
            except Exception as exc:  # noqa: BLE001 - reported, retried on rerun
                on_row(task, None, exc)
            else:
                on_row(task, row, None)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a fresh interpreter per worker, no forked OpenMP/Numba thread state
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(run_task, task): task for task in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            exc = fut.exception()
            on_row(task, None if exc else fut.result(), exc)


def run_dask(tasks, address, on_row):
    """Send the tasks to a dask.distributed scheduler at ``address``."""
    import cloudpickle
    from distributed import Client, as_completed

    # The workers need sgmca_fast and the Cas A folder (at the task's path), not
    # this file: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with Client(address) as client:
        futures = {client.submit(run_task, task, pure=False): task for task in tasks}
        for fut in as_completed(list(futures)):
            task = futures[fut]
            exc = fut.exception()
            on_row(task, None if exc else fut.result(), exc)


def parse_seeds(text: str) -> list[int]:
    """Turn '0-4,7' into [0, 1, 2, 3, 4, 7] (non-negative integers)."""
    seeds = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        seeds.update(range(int(lo), int(hi or lo) + 1))
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return sorted(seeds)


def environment() -> str:
    """One line naming the versions, for logs and reports."""
    import sgmca_fast

    return (f"sgmca-fast {sgmca_fast.__version__}, numpy {np.__version__}, "
            f"Python {platform.python_version()}, {platform.machine()}")


def main(argv=None) -> int:
    """Command line of run.py; returns the number of failed tasks."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Run the sGMCA paper's experiments on the Cas A data; one CSV "
                    "row per (point, method, realisation); reruns add what is "
                    "missing.",
    )
    parser.add_argument("experiment", choices=EXPERIMENTS)
    parser.add_argument("--realisations", type=int, default=3,
                        help="seeds 0..N-1 (default 3; the paper used 100)")
    parser.add_argument("--seeds", default=None,
                        help="explicit seeds instead, e.g. '0-9' or '3,5,8'")
    parser.add_argument("--size", type=int, default=346,
                        help="bin the 346x346 images to this side by block sums "
                             "(default 346: full size)")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--jobs", type=int, default=1,
                        help="local processes (1: run in this process)")
    parser.add_argument("--scheduler", default=None,
                        help="dask.distributed scheduler address (overrides --jobs)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per task (Numba and BLAS)")
    parser.add_argument("--data", default=str(CASA), help="the Cas A folder")
    parser.add_argument("--out", default=None,
                        help="CSV (default bench/paper/results/EXPERIMENT.csv)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1 or args.realisations < 0:
        parser.error("--jobs and --threads must be >= 1, --realisations >= 0")
    seeds = (parse_seeds(args.seeds) if args.seeds is not None
             else list(range(args.realisations)))
    methods = None if args.methods is None else [
        m.strip() for m in args.methods.split(",") if m.strip()]
    out = Path(args.out or REPO / "bench" / "paper" / "results"
               / f"{args.experiment}.csv")
    tasks = make_tasks(args.experiment, seeds, args.size, methods, args.data,
                       args.threads)
    done = done_keys(read_rows(out))
    todo = [t for t in tasks if t.key() not in done]
    shown = sys.argv[1:] if argv is None else argv
    _common.print_header(["bench/paper/run.py", *shown])
    print(f"{args.experiment}: {len(tasks)} tasks, {len(tasks) - len(todo)} already "
          f"in {out}, {len(todo)} to run", flush=True)
    writer = RowWriter(out)
    failed = []

    def on_row(task, row, exc):
        if exc is not None:
            failed.append(task)
            print(f"FAILED {task.key()}: {type(exc).__name__}: {exc}", flush=True)
            return
        writer.write(row)
        print(f"{row['method']:>9s} {row['models']:>13s} "
              f"{row['param']}={row['value']:<6s} seed {row['seed']:>3s} "
              f"SAD {float(row['SAD']):6.2f} SDR {float(row['SDR']):6.2f} "
              f"({float(row['time']):.1f} s)", flush=True)

    try:
        if args.scheduler:
            run_dask(todo, args.scheduler, on_row)
        else:
            run_local(todo, args.jobs, on_row)
    finally:
        writer.close()
    if failed:
        print(f"{len(failed)} task(s) failed; rerun the command to retry them")
    return len(failed)
