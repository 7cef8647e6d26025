"""Spectral models named on the command line: ``NAME=PATH.onnx[:COUNT]`` and kin.

Used by :mod:`sgmca_fast.workflows` (``separate``, ``info``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import _io
from ._validation import InputError

__all__ = ["load_models", "model_file", "parse_model_spec"]


def parse_model_spec(spec: str):
    """Split ``NAME=PATH[:COUNT]`` / ``PATH[:COUNT]`` / ``BUILTIN[:COUNT]``."""
    from .data import BUILTIN_MODELS

    text = spec.strip()
    count = 1
    head, sep, tail = text.rpartition(":")
    if sep and tail.strip().lstrip("+-").isdigit():
        text, count = head, int(tail)
    elif sep and not tail.strip():
        raise InputError(f"--model {spec!r}: empty COUNT after ':'")
    elif sep and not ("/" in tail or "\\" in tail or "." in tail):
        raise InputError(f"--model {spec!r}: COUNT {tail!r} is not an integer")
    if count < 1:
        raise InputError(f"--model {spec!r}: COUNT must be at least 1, got {count}")
    name = None
    if "=" in text:
        name, text = (part.strip() for part in text.split("=", 1))
        if not name:
            raise InputError(f"--model {spec!r}: empty NAME before '='")
    if not text:
        raise InputError(f"--model {spec!r}: no model file or built-in name")
    builtin = text in BUILTIN_MODELS and not Path(text).exists()
    return name, text, builtin, count


def model_file(where: str, builtin: bool) -> Path:
    """Return the file of a built-in model name or of a path; InputError if missing."""
    from .data import BUILTIN_MODELS, model_path

    if builtin:
        return model_path(where)
    path = Path(where)
    if not path.is_file():
        hint = "" if path.suffix else f" (built-in models: {', '.join(BUILTIN_MODELS)})"
        raise _io.MissingFileError(f"{path}: model file not found{hint}")
    return path


def load_models(specs: Sequence[str], n_channels: int, n_sources: int | None):
    """Load model specs into ({model: count}, descriptions), checking what can be.

    ``n_sources`` None (``-n auto``) leaves the count check to the solver.
    """
    from . import iae

    parsed = [(spec, *parse_model_spec(spec)) for spec in specs]
    total = sum(p[-1] for p in parsed)
    if n_sources is not None and total > n_sources:
        raise InputError(
            f"the --model counts add up to {total} sources but -n is {n_sources}"
        )
    models, described, names = {}, [], set()
    for spec, name, where, builtin, count in parsed:
        path = model_file(where, builtin)
        model = iae.load(path)
        model.name = name or model.name or path.stem
        if model.name in names:
            raise InputError(
                f"--model {spec!r}: two models are named {model.name!r}; give one "
                "another NAME (NAME=PATH.onnx)"
            )
        names.add(model.name)
        if model.n_channels != n_channels:
            raise InputError(
                f"{path}: model {model.name!r} has {model.n_channels} channels but "
                f"the cube has {n_channels}"
            )
        models[model] = count
        described.append(
            {"name": model.name, "path": str(path), "count": count, "builtin": builtin}
        )
    return models, described
