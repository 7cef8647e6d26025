"""What the benchmark scripts of bench/ share: the Cas A data, the models, reports.

The scripts run as ``python bench/NAME.py`` from the repository root, so this
module is importable as ``_common`` (Python puts the script's folder first on the
path); nothing edits ``sys.path``.
"""

import csv
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASA_DIR = REPO.parent / "shared" / "data" / "casa"
REFERENCE_MODELS = CASA_DIR / "reference_models"
# The paper's Cas A mixture: one synchrotron, one thermal, two Gaussian-line sources.
CASA_MODEL_COUNTS = (("sync", 1), ("thermal", 1), ("gauss", 2))


def casa_dir() -> Path:
    """The Cas A folder, or exit with a message saying where it was looked for."""
    if not (CASA_DIR / "sources.npz").is_file():
        sys.exit(f"the Cas A data are not at {CASA_DIR} (../shared/data/casa)")
    return CASA_DIR


def load_casa():
    """The Cas A data (:func:`sgmca_fast.datasets.load_casa`)."""
    from sgmca_fast import datasets

    return datasets.load_casa(casa_dir())


def casa_models(where="reference"):
    """{model: count} from the authors' pickles or from a folder of our .onnx files."""
    from sgmca_fast.iae import from_reference, load

    models = {}
    for family, count in CASA_MODEL_COUNTS:
        if where == "reference":
            model = from_reference(casa_dir() / "reference_models"
                                   / f"model_{family}.pkl")
        else:
            model = load(Path(where) / f"model_{family}.onnx")
        models[model] = count
    return models


def print_header(argv=None):
    """Print the command, the machine and the versions that made a report."""
    import numpy as np

    import sgmca_fast

    argv = sys.argv if argv is None else argv
    print(f"command: python {' '.join(argv)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}, "
          f"sgmca-fast {sgmca_fast.__version__}")


def write_csv(path, rows):
    """Write a list of dicts as CSV under a temporary name, then rename it."""
    if not rows:
        return
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
