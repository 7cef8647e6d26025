"""Run one of the sGMCA paper's experiments on the Cas A data.

    python bench/paper/run.py EXPERIMENT --realisations N --jobs N \
        [--scheduler ADDRESS] [--size S] [--seeds 0-9] [--methods sGMCA,GMCA] \
        [--out bench/paper/results/EXPERIMENT.csv]

EXPERIMENT is table3, snr, delta or k (see README.md beside this file). Each
(point, method, realisation) is an independent task and one CSV row; a rerun
skips the rows already in --out. --jobs N runs tasks in N local processes,
--scheduler sends them to a dask.distributed cluster.
"""

import sys

# Python puts this script's folder first on the path: sgmca_paper is importable.
from sgmca_paper import main

if __name__ == "__main__":
    sys.exit(1 if main() else 0)
