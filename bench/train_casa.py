"""Train the three Cas A spectral models and compare them with the authors' models.

For each family (sync, thermal, gauss) this trains an IAE with
``sgmca_fast.iae.train`` on ``train`` and validates on ``valid`` (gauss: the
first 80% of ``train`` for training, the last 20%, rows ``int(0.8 * 600):``, for
validation), then reports the median SAD (dB, ``-10 log10`` of the angle in
radians between the projected and the true spectrum) over the validation
spectra, for the fast (encoder) projection and for the full manifold projection
(``model.project``), for our model and for the authors' imported model
(``sgmca_fast.iae.from_reference``). Trained models are saved as ONNX files.

Usage (from the repository root)::

    python bench/train_casa.py [--data ../shared/data/casa] [--out DIR]
        [--families sync thermal gauss] [--seed 0] [--threads 1]
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path


def _parse():
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        default=str(here.parent.parent / "shared" / "data" / "casa"),
        help="folder holding spectra_*.npz and reference_models/",
    )
    p.add_argument("--out", default=str(here / "results" / "models"))
    p.add_argument("--families", nargs="+", default=["sync", "thermal", "gauss"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads (the matrices are small; 1 is fastest on a shared machine)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args()


ARGS = _parse()
# BLAS threads must be set before numpy loads its BLAS
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import scipy  # noqa: E402

import sgmca_fast  # noqa: E402
from sgmca_fast.iae import from_reference, train  # noqa: E402

# Training settings per family (everything else: train() defaults).
SETTINGS = {
    "sync": {},
    "thermal": {},
    # the Gaussian lines are the hardest family (the authors ran 10x more epochs)
    "gauss": {"max_epochs": 9000, "lbfgs_iter": 500},
}


def sad_db(truth, estimate):
    """Per-spectrum SAD in dB: -10 log10(angle in radians)."""
    num = np.sum(truth * estimate, axis=1)
    den = np.linalg.norm(truth, axis=1) * np.linalg.norm(estimate, axis=1)
    ang = np.arccos(np.clip(num / den, -1.0, 1.0))
    return -10.0 * np.log10(np.maximum(ang, 1e-12))


def load_family(data, family):
    d = np.load(Path(data) / f"spectra_{family}.npz")
    anchors, train_set = d["anchors"], d["train"]
    if family == "gauss":
        n = int(0.8 * train_set.shape[0])
        return anchors, train_set[:n], train_set[n:]
    return anchors, train_set, d["valid"]


def scores(model, valid):
    fast = model.fast_project(valid)[0]
    t0 = time.perf_counter()
    full = model.project(valid)
    t_full = time.perf_counter() - t0
    return (
        float(np.median(sad_db(valid, fast))),
        float(np.median(sad_db(valid, full.spectra))),
        t_full / valid.shape[0],
    )


def main():
    print("command:", " ".join([sys.executable, *sys.argv]))
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, sgmca_fast {sgmca_fast.__version__}, "
        f"{platform.machine()} {os.cpu_count()} cpus, BLAS threads {ARGS.threads}"
    )
    out = Path(ARGS.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for family in ARGS.families:
        anchors, train_set, valid = load_family(ARGS.data, family)
        settings = SETTINGS.get(family, {})
        print(
            f"\n{family}: train {train_set.shape}, valid {valid.shape}, "
            f"anchors {anchors.shape}, settings {settings or 'defaults'}",
            flush=True,
        )
        t0 = time.perf_counter()
        model = train(
            train_set,
            anchors,
            valid,
            random_state=ARGS.seed,
            progress=not ARGS.quiet,
            name=family,
            **settings,
        )
        seconds = time.perf_counter() - t0
        h = model.history
        print(
            f"  trained in {seconds:.1f} s: {len(h['epoch']) - 1} epochs "
            f"({h['phase'].count('adam') - 1} Adam, {h['phase'].count('lbfgs')} "
            f"L-BFGS), best epoch {h['best_epoch']}, best valid loss "
            f"{h['best_loss']:.3g}, stopped early: {h['stopped_early']}"
        )
        path = out / f"model_{family}.onnx"
        model.save(path)
        print(f"  saved {path}")
        ours = scores(model, valid)
        ref_path = Path(ARGS.data) / "reference_models" / f"model_{family}.pkl"
        theirs = scores(from_reference(ref_path), valid)
        rows.append((family, valid.shape[0], *ours, *theirs, seconds))

    print()
    print("Median validation SAD (dB); fast = encoder projection, full = project()")
    head = (
        f"{'family':8} {'n':>4} | {'ours fast':>9} {'ours full':>9} | "
        f"{'ref fast':>9} {'ref full':>9} | {'paper':>6} | {'train s':>7}"
    )
    print(head)
    print("-" * len(head))
    paper = {"sync": 25.26, "thermal": 25.92, "gauss": 24.81}
    for fam, n, of, ofull, _, rf, rfull, _, sec in rows:
        print(
            f"{fam:8} {n:4d} | {of:9.2f} {ofull:9.2f} | {rf:9.2f} {rfull:9.2f} | "
            f"{paper.get(fam, float('nan')):6.2f} | {sec:7.1f}"
        )


if __name__ == "__main__":
    main()
