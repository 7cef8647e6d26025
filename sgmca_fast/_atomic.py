"""Outputs checked before the work and written atomically.

:func:`check_writable` and :func:`check_folder` find outputs that exist (without
``force``) or cannot be written before any long computation;
:func:`atomic_write` writes a file to a temporary name in the target folder,
``.NAME.tmp-PID-XXXXXXXX`` (plus NAME's suffix), and renames it with
:func:`os.replace`, so an interrupted run leaves no half-written file: the
temporary file is removed on any exception, an interrupt included, and one left by
a killed process (whose PID is no longer running) is removed at the next write of
the same output. Public through :mod:`sgmca_fast._io`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from ._validation import InputError

__all__ = [
    "FITS_SUFFIXES",
    "MissingFileError",
    "astropy_fits",
    "atomic_write",
    "check_folder",
    "check_writable",
    "is_fits",
    "remove_stale_temporaries",
]

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")
"""File name endings read and written as FITS."""

class MissingFileError(InputError, FileNotFoundError):
    """An input file does not exist (an :class:`InputError` and a FileNotFoundError)."""


def is_fits(path) -> bool:
    """Return True when the file name ends like a FITS file (case-insensitive)."""
    name = os.fspath(path).lower()
    return name.endswith(FITS_SUFFIXES)


def astropy_fits(path: Path):
    try:
        from astropy.io import fits
    except ImportError:
        raise InputError(
            f"{path}: reading or writing FITS needs astropy: "
            "pip install 'sgmca-fast[fits]'"
        ) from None
    return fits


def check_writable(paths: Sequence, force: bool = False, *,
                   in_new_folder: bool = False) -> None:
    """Refuse outputs that exist (unless ``force``) or that could not be written.

    Called before any long computation so that a run fails at once: each output
    must not exist (unless ``force``) nor be a folder, its folder must exist and
    accept a new file (tried by creating and removing one), and a FITS output
    needs astropy.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
    force : bool, optional
        Allow overwriting existing files.
    in_new_folder : bool, optional
        Folders that do not exist yet are accepted (the caller makes them, after
        checking them with :func:`check_folder`).

    Raises
    ------
    InputError
        The message names the output and the problem.
    """
    folders = []
    for p in paths:
        p = Path(p)
        if p.exists() and not force:
            raise InputError(f"{p}: already exists; use --force to overwrite it")
        if p.is_dir():
            raise InputError(f"{p}: is a folder, not a file")
        if is_fits(p):
            astropy_fits(p)
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            if in_new_folder and not parent.exists():
                continue
            raise MissingFileError(f"{parent}: output folder does not exist")
        if parent not in folders:
            folders.append(parent)
    for folder in folders:
        _try_writing(folder)


def check_folder(folder) -> None:
    """Check that an output folder exists and takes files, or can be made.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder; when missing, its nearest existing ancestor must be a
        folder that takes new entries. Nothing is left behind.

    Raises
    ------
    InputError
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path())
    if not existing.is_dir():
        raise InputError(f"{existing}: is not a folder, so {folder} cannot be made")
    _try_writing(existing)


def _try_writing(folder: Path) -> None:
    """Create and remove a temporary file in ``folder``, or raise InputError.

    Permission bits, read-only file systems and special folders all show this
    way, for any user (root included, whom ``os.access`` answers yes).
    """
    probe = _temp_name(folder / ".sgmca-fast-write-check")
    try:
        try:
            os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        finally:  # also when interrupted just after the creation
            _remove(probe)
    except OSError as exc:
        raise InputError(
            f"{folder}: cannot write files in this folder ({exc.strerror or exc})"
        ) from None


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:  # never made, or already gone
        pass


def _temp_suffix(path: Path) -> str:
    # writers such as astropy pick compression from the name: keep its ending
    return "".join(path.suffixes[-2:]) if is_fits(path) else path.suffix


def _temp_name(path: Path) -> Path:
    """``.NAME.tmp-PID-XXXXXXXX`` + NAME's suffix, in the folder of ``path``."""
    token = secrets.token_hex(4)
    return path.with_name(
        f".{path.name}.tmp-{os.getpid()}-{token}{_temp_suffix(path)}"
    )


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporary files of ``path`` left by processes no longer running.

    Parameters
    ----------
    path : str or os.PathLike
        An output file.

    Returns
    -------
    removed : list of pathlib.Path
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if os.name != "posix" or not folder.is_dir():
        return []  # os.kill(pid, 0) tests a PID only on POSIX
    pattern = re.compile(
        re.escape(f".{path.name}.tmp-") + r"(\d+)-[0-9a-f]{8}"
        + re.escape(_temp_suffix(path)) + r"\Z"
    )
    removed = []
    for entry in os.scandir(folder):
        match = pattern.match(entry.name)
        if match and int(match[1]) != os.getpid() and not _pid_running(int(match[1])):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(Path(entry.path))
    return removed


def atomic_write(path, write: Callable[[str], None], force: bool = False) -> Path:
    """Write a file through a temporary name in the same folder, then rename it.

    The temporary file is created inside the ``try`` whose handler removes it, so
    that an interrupt (SIGINT, or SIGTERM turned into an exception by the command
    line) at any moment leaves nothing behind; temporary files of the same output
    left by killed processes are removed first.

    Parameters
    ----------
    path : str or os.PathLike
        Final name.
    write : callable
        ``write(tmp_path)`` writes the whole file at ``tmp_path``.
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    InputError
        The output exists (without ``force``) or cannot be written; the message
        names it.
    """
    path = Path(path)
    check_writable([path], force)
    remove_stale_temporaries(path)
    tmp = _temp_name(path)
    try:
        # the name is known before the file exists, so the handler below can
        # remove it whenever the interrupt comes; umask gives the usual mode
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        write(os.fspath(tmp))
        os.replace(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, InputError):
            raise InputError(
                f"{path}: cannot be written ({exc.strerror or exc})"
            ) from exc
        raise
    return path
