"""Small pieces every workflow shares: log lines, JSON files, estimate arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import _io

__all__ = ["Log", "estimate_arrays", "have_matplotlib", "say", "write_json"]

Log = Callable[[str], None] | None


def say(log: Log, text: str) -> None:
    """Pass one line to ``log`` when there is one."""
    if log is not None:
        log(text)


def write_json(path: Path, text: str, force: bool) -> None:
    """Write a JSON summary atomically, with a final newline."""
    _io.atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"), force=force)


def have_matplotlib() -> bool:
    """Return whether matplotlib can be imported (figures are skipped without)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def estimate_arrays(result) -> dict:
    """Return the arrays of an estimate ``.npz``: A, S, mapping and model_fit."""
    mapping = np.array([m or "" for m in result.mapping], dtype=str)
    fit = np.array([np.nan if f is None else f for f in result.model_fit])
    return {"A": result.A, "S": result.S, "mapping": mapping, "model_fit": fit}
