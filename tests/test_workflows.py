"""The workflows from Python, and the command line's handling of signals.

Reliability gaps of issue 11: outputs checked before any work (gap 1), SIGTERM and
SIGINT (gap 2), the demo's size check, the train summary's counts and the figure
titles with a truth (gap 7), and the README's command sequence (gap 8).
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import sgmca_fast
from sgmca_fast import cli, datasets

SIZE = 32
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wf")
    mix = datasets.make_demo_mixture(size=SIZE, random_state=1)
    np.save(folder / "cube.npy", mix.X)
    np.savez(folder / "truth.npz", A=mix.A0, S=mix.S0, N=mix.N)
    return folder, mix


@pytest.fixture
def no_separation(monkeypatch):
    """Make any separation fail loudly: the check must come before it."""

    def boom(*args, **kwargs):
        raise AssertionError("the separation started before the outputs were checked")

    monkeypatch.setattr(sgmca_fast, "separate", boom)
    monkeypatch.setattr(sgmca_fast, "gmca", boom)


def _main(capsys, *args):
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


# ---------------------------------------------------------------- gap 1: outputs


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_unwritable_folder_found_before_separating(capsys, cube_file, no_separation):
    # /proc takes no new files, for root too (whom permission bits do not stop)
    folder, _ = cube_file
    code, err = _main(capsys, "separate", folder / "cube.npy", "-n", 2,
                      "--no-figures", "-o", "/proc/sgmca-fast-test.npz")
    assert code == 2, err
    assert err.startswith("sgmca-fast: error: /proc: cannot write files"), err


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_unwritable_model_output_found_before_training(capsys, tmp_path, monkeypatch):
    import sgmca_fast.iae

    def boom(*args, **kwargs):
        raise AssertionError("training started before the output was checked")

    monkeypatch.setattr(sgmca_fast.iae, "train", boom)
    sets = datasets.make_spectra_sets("gauss", n_train=10, n_valid=2)
    np.savez(tmp_path / "g.npz", **sets)
    code, err = _main(capsys, "train", tmp_path / "g.npz", "-o", "/proc/m.onnx")
    assert code == 2, err
    assert "/proc: cannot write files" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores permission bits")
def test_read_only_folder(capsys, tmp_path, cube_file, no_separation):
    folder, _ = cube_file
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = _main(capsys, "separate", folder / "cube.npy", "-n", 2,
                          "--no-figures", "-o", ro / "out.npz")
    finally:
        ro.chmod(0o755)
    assert code == 2 and "cannot write files" in err, err


def test_fits_output_without_astropy(capsys, tmp_path, cube_file, monkeypatch,
                                     no_separation):
    folder, _ = cube_file
    for name in ("astropy", "astropy.io", "astropy.io.fits"):
        monkeypatch.setitem(sys.modules, name, None)  # import now fails
    code, err = _main(capsys, "separate", folder / "cube.npy", "-n", 2,
                      "--no-figures", "-o", tmp_path / "out.fits")
    assert code == 2, err
    assert "out.fits: reading or writing FITS needs astropy" in err
    assert list(tmp_path.iterdir()) == []


def test_folder_output_under_a_file(capsys, tmp_path, cube_file, no_separation):
    folder, _ = cube_file
    (tmp_path / "plain").write_text("a file")
    code, err = _main(capsys, "separate", folder / "cube.npy", "-n", 2,
                      "-o", tmp_path / "plain" / "out")
    assert code == 2 and "plain: is not a folder" in err, err


# ---------------------------------------------------------------- gap 2: signals

# A subprocess that runs the command line with numpy's writers slowed down, so
# that the test can signal it while an output is half written.
_SLOW_WRITE = """
import sys, time, numpy as np
real = np.savez_compressed
def slow(fh, **arrays):
    fh.write(b"partial")
    fh.flush()
    print("WRITING", flush=True)
    time.sleep(60)
np.savez_compressed = slow
from sgmca_fast.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _spawn(code, *args):
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
    )


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "status", "message"), [
    (signal.SIGTERM, 143, "sgmca-fast: terminated (SIGTERM)"),
    (signal.SIGINT, 130, "sgmca-fast: interrupted"),
])
def test_signal_while_writing(tmp_path, cube_file, signum, status, message):
    folder, _ = cube_file
    out = tmp_path / "res"
    proc = _spawn(_SLOW_WRITE, "separate", folder / "cube.npy", "-n", 2,
                  "--no-figures", "--quiet", "-o", out)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "WRITING", proc.stderr.read()
        assert [p.name for p in out.iterdir() if ".tmp-" in p.name]  # half written
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert err.strip() == message
    assert list(out.iterdir()) == []  # no temporary file, no estimate


_INTERRUPT_AT_IMPORT = """
import builtins, os, signal, sys
real = builtins.__import__
def interrupting(name, *args, **kwargs):
    if name == "numba":
        builtins.__import__ = real
        os.kill(os.getpid(), signal.SIGINT)
    return real(name, *args, **kwargs)
builtins.__import__ = interrupting
from sgmca_fast.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigint_during_the_imports_is_one_line(tmp_path):
    proc = _spawn(_INTERRUPT_AT_IMPORT, "demo", "--size", 16, "--out",
                  tmp_path / "d")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "sgmca-fast: interrupted"


_INTERRUPT_AT_CREATION = """
import os, signal, sys, tempfile
real_open, real_mkstemp = os.open, tempfile.mkstemp
def interrupt_after(result):
    os.kill(os.getpid(), signal.SIGINT)
    return result
def opening(path, flags, *args, **kwargs):
    fd = real_open(path, flags, *args, **kwargs)
    if ".tmp" in os.fspath(path) and flags & os.O_CREAT:
        return interrupt_after(fd)
    return fd
def mkstemp(*args, **kwargs):
    return interrupt_after(real_mkstemp(*args, **kwargs))
os.open, tempfile.mkstemp = opening, mkstemp
from sgmca_fast import _io
_io.write_npz(sys.argv[1], {"A": [1.0]})
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigint_right_after_the_temporary_is_made(tmp_path):
    proc = _spawn(_INTERRUPT_AT_CREATION, tmp_path / "a.npz")
    _, err = proc.communicate(timeout=120)
    assert "KeyboardInterrupt" in err
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    from sgmca_fast import _io

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)  # that process has exited
    stale = tmp_path / f".e.npz.tmp-{pid}-0123abcd.npz"
    stale.write_bytes(b"")
    mine = tmp_path / f".e.npz.tmp-{os.getpid()}-0123abcd.npz"  # a live writer
    mine.write_bytes(b"")
    other = tmp_path / f".f.npz.tmp-{pid}-0123abcd.npz"  # another output
    other.write_bytes(b"")
    _io.write_npz(tmp_path / "e.npz", {"A": np.ones(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["e.npz", mine.name, other.name]
    )


# ------------------------------------------------------------------- gap 7


def test_demo_size_refused_before_the_folder_is_made(capsys, tmp_path):
    code, err = _main(capsys, "demo", "--size", 8, "--out", tmp_path / "d")
    assert code == 2 and "size must be at least 16 pixels, got 8" in err, err
    assert not (tmp_path / "d").exists()


def test_train_json_counts_epochs_and_lbfgs_apart(tmp_path, capsys):
    sets = datasets.make_spectra_sets("gauss", n_train=20, n_valid=5)
    np.savez(tmp_path / "g.npz", **sets)
    capsys.readouterr()
    code = cli.main([str(a) for a in ("train", tmp_path / "g.npz", "-o",
                                      tmp_path / "m.onnx", "--max-epochs", 3,
                                      "--lbfgs-iter", 4, "--json", "--quiet")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs"] <= 3 and summary["lbfgs_iterations"] <= 4
    assert summary["epochs"] == 3  # no early stop within 3 epochs (patience)
    assert "epochs_run" not in summary["training"]  # Adam and L-BFGS together


def test_truth_figures_keep_the_model_names(tmp_path, cube_file, monkeypatch,
                                            capsys):
    pytest.importorskip("matplotlib")
    from sgmca_fast import plots

    folder, _ = cube_file
    titles = []
    real = plots.plot_spectra

    def spy(*args, **kwargs):
        titles.append(list(kwargs["names"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_spectra", spy)
    code, err = _main(capsys, "separate", folder / "cube.npy", "-n", 4, "--model",
                      "sync", "--model", "thermal", "--model", "gauss:2",
                      "--max-iter", 5, "--truth", folder / "truth.npz", "--quiet",
                      "-o", tmp_path / "o")
    assert code == 0, err
    (names,) = titles
    found = sorted(re.findall(r"\((\w+)\)", " ".join(names)))
    assert found == ["gauss", "gauss", "sync", "thermal"], names
    assert [n.split(" (")[0] for n in names] == [f"source {i}" for i in range(4)]


# ----------------------------------------------------------------- from Python


def test_workflows_from_python(tmp_path, cube_file):
    from sgmca_fast import workflows

    folder, mix = cube_file
    run = workflows.separate_file(folder / "cube.npy", tmp_path / "r.npz",
                                  n_sources=4, figures=False,
                                  truth=folder / "truth.npz")
    assert run.method == "GMCA" and run.shape == mix.X.shape
    assert set(run.outputs) == {"estimate", "csv"}
    assert all(Path(p).is_file() for p in run.outputs.values())
    with np.load(run.outputs["estimate"]) as est:
        np.testing.assert_array_equal(est["A"], run.result.A)
    scored = workflows.evaluate_files(run.outputs["estimate"], folder / "truth.npz")
    assert scored.has_noise
    assert scored.metrics["SAD"] == pytest.approx(run.metrics["SAD"], rel=1e-12)
    with pytest.raises(sgmca_fast._validation.InputError, match="already exists"):
        workflows.separate_file(folder / "cube.npy", tmp_path / "r.npz",
                                n_sources=4, figures=False)


def test_a_bug_is_not_a_user_error(capsys, tmp_path, cube_file, monkeypatch):
    folder, _ = cube_file

    def bug(*args, **kwargs):
        raise ValueError("a bug inside the solver")

    monkeypatch.setattr(sgmca_fast, "gmca", bug)
    with pytest.raises(ValueError, match="a bug inside the solver"):
        cli.main(["separate", str(folder / "cube.npy"),
                  "-n", "2", "--no-figures", "-o", str(tmp_path / "o.npz")])


# ------------------------------------------------------------- gap 8: README


def _readme_commands() -> list[str]:
    text = README.read_text()
    block = text.split("<!-- cli-sequence -->", 1)[1].split("```bash", 1)[1]
    block = block.split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def test_readme_command_sequence_runs(tmp_path):
    """The README's command-line examples, in order, on a small demo."""
    bin_dir = Path(sys.executable).parent
    small = {"demo": ["--size", str(SIZE)],
             "train": ["--max-epochs", "3", "--lbfgs-iter", "2"],
             "separate": ["--max-iter", "5"]}
    commands = _readme_commands()
    assert [c.split()[1] for c in commands if c.startswith("sgmca-fast")] == [
        "demo", "separate", "evaluate", "train", "info", "separate"]
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "sgmca-fast":
            argv = [sys.executable, "-m", "sgmca_fast.cli", *argv[1:],
                    *small.get(argv[1], [])]
        elif argv[0] == "python":
            argv[0] = sys.executable
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, env=env)
        assert done.returncode == 0, (command, done.stderr,
                                      time.perf_counter() - t0)
