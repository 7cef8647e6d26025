"""The paper's Cas A folder: source templates and spectral families, when a user has it.

The folder is not shipped with the package. Its arrays are read through
:mod:`sgmca_fast._io` (``allow_pickle=False``, real finite float64), then checked
for the layout described in :func:`load_casa`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _io
from .._validation import InputError
from ._families import _FAMILY

_CASA_SOURCES = ("sync", "therm", "fe1", "fe2")
_CASA_FAMILIES = tuple(_FAMILY)  # the paper's order: sync, thermal, gauss
_VALID_FRACTION = 0.8


@dataclass(frozen=True, eq=False)
class CasaData:
    """Contents of a Cas A folder (see :func:`load_casa`).

    Attributes
    ----------
    sources : (4, H, W) ndarray
        Spatial templates sync, therm, fe1, fe2, each of unit L2 norm (346 x 346 in
        the paper's folder).
    names : tuple of str
        ``("sync", "therm", "fe1", "fe2")``.
    families : dict of str to dict of str to ndarray
        ``"sync"``, ``"thermal"``, ``"gauss"`` -> ``{"anchors": (N, J),
        "train": (n, J), "valid": (m, J)}``.
    reference_models : dict of str to pathlib.Path
        Family name -> the authors' model pickle, for those present.
    path : pathlib.Path
        The folder read.
    """

    sources: np.ndarray
    names: tuple[str, ...]
    families: dict[str, dict[str, np.ndarray]]
    reference_models: dict[str, Path]
    path: Path


def _read_key(path: Path, key: str) -> np.ndarray:
    """One array of an .npz through ``_io``, its errors as InputError naming the key."""
    try:
        return _io.read_array(path, key)
    except ValueError as exc:
        # _io's messages start with the file name; say which key failed
        reason = str(exc).removeprefix(f"{path}: ")
        if repr(key) not in reason:
            reason = f"key {key!r}: {reason}"
        raise InputError(f"{path}: {reason}") from None


def _read_npz(path: Path, keys: Sequence[str], optional: Sequence[str] = ()):
    """Read the arrays ``keys`` (required) and ``optional`` (if present) of an .npz."""
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    try:
        found = _io.member_names(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    missing = [key for key in keys if key not in found]
    if missing:
        raise InputError(
            f"{path}: missing key(s) {missing}; found {sorted(found)}"
        )
    wanted = list(keys) + [key for key in optional if key in found]
    return {key: _read_key(path, key) for key in wanted}


def _read_sources(file: Path) -> np.ndarray:
    """Read the four templates (4, H, W), each scaled to unit L2 norm."""
    src = _read_npz(file, _CASA_SOURCES)
    shape = src[_CASA_SOURCES[0]].shape
    for key in _CASA_SOURCES:
        img = src[key]
        if img.ndim != 2 or img.shape != shape:
            raise InputError(
                f"{file}: key {key!r} must be a 2-D image of shape {shape} like "
                f"{_CASA_SOURCES[0]!r}, got shape {img.shape}"
            )
        if np.linalg.norm(img) == 0:
            raise InputError(f"{file}: key {key!r} is all zero")
    sources = np.stack([src[key] for key in _CASA_SOURCES])
    sources /= np.linalg.norm(sources.reshape(len(_CASA_SOURCES), -1), axis=1)[
        :, None, None
    ]
    return sources


def _read_family(file: Path, n_channels: int | None) -> dict[str, np.ndarray]:
    """Read anchors, train, valid of a family: (n, J) sets, J = ``n_channels``."""
    sets = _read_npz(file, ("anchors", "train"), optional=("valid",))
    for key, value in sets.items():
        if value.ndim != 2 or value.shape[0] == 0:
            raise InputError(
                f"{file}: key {key!r} must be a non-empty 2-D (n, J) array, got "
                f"shape {value.shape}"
            )
        if n_channels is None:
            n_channels = value.shape[1]
        if value.shape[1] != n_channels:
            raise InputError(
                f"{file}: key {key!r} has {value.shape[1]} channels, expected "
                f"{n_channels} like the other spectra"
            )
    if "valid" not in sets:
        train = sets["train"]
        cut = int(_VALID_FRACTION * train.shape[0])
        if cut == 0 or cut == train.shape[0]:
            raise InputError(
                f"{file}: key 'train' has {train.shape[0]} spectra, too few to "
                "split into train and valid"
            )
        sets["train"], sets["valid"] = train[:cut], train[cut:]
    return {key: sets[key] for key in ("anchors", "train", "valid")}


def load_casa(path) -> CasaData:
    """Read a folder laid out like the paper's Cas A data.

    Expected files: ``sources.npz`` (keys ``sync``, ``therm``, ``fe1``, ``fe2``,
    2-D images of one shape) and ``spectra_{sync,thermal,gauss}.npz`` (keys
    ``anchors``, ``train`` and optionally ``valid``, 2-D with one channel count);
    optionally ``reference_models/model_{name}.pkl``, which are listed, not read.
    Arrays are read with ``allow_pickle=False``.

    A family without ``valid`` (the Gaussian lines in the paper's folder) is split
    as ``train[:int(0.8 * n)]`` for training and ``train[int(0.8 * n):]`` for
    validation (480 / 120 for the 600 Gaussian spectra); the rest of the project
    uses this split.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.

    Returns
    -------
    CasaData
        Sources normalised to unit L2 rows, the spectral families and the reference
        model paths.

    Raises
    ------
    FileNotFoundError
        The folder or one of the files is missing (the message names it).
    sgmca_fast._validation.InputError
        A file is unreadable, lacks a key, or holds arrays of the wrong shape, type
        or values (the message names the file and the key). A ``ValueError``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Cas A folder not found: {folder}")
    sources = _read_sources(folder / "sources.npz")
    families = {}
    n_channels = None
    for name in _CASA_FAMILIES:
        families[name] = _read_family(folder / f"spectra_{name}.npz", n_channels)
        n_channels = families[name]["anchors"].shape[1]
    models = {}
    for name in _CASA_FAMILIES:
        model = folder / "reference_models" / f"model_{name}.pkl"
        if model.is_file():
            models[name] = model
    return CasaData(
        sources=sources,
        names=_CASA_SOURCES,
        families=families,
        reference_models=models,
        path=folder,
    )
