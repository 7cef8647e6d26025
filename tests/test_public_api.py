"""The public API is what __all__ says: every name exists, nothing private."""

import importlib

import pytest

PUBLIC_MODULES = [
    "sgmca_fast",
    "sgmca_fast.baselines",
    "sgmca_fast.cube",
    "sgmca_fast.datasets",
    "sgmca_fast.estimator",
    "sgmca_fast.events",
    "sgmca_fast.iae",
    "sgmca_fast.metrics",
    "sgmca_fast.starlet",
    "sgmca_fast.workflows",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_a_complete_list(name):
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"
        assert not attr.startswith("_") or attr == "__version__"


def test_top_level_api():
    import sgmca_fast

    assert set(sgmca_fast.__all__) == {
        "SGMCA",
        "Separation",
        "__version__",
        "datasets",
        "get_num_threads",
        "gmca",
        "metrics",
        "separate",
        "set_num_threads",
        "starlet",
        "thread_limits",
    }
    assert isinstance(sgmca_fast.__version__, str)


def test_importing_the_package_does_not_import_optional_extras(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, sgmca_fast; "
        "print(','.join(m for m in ('matplotlib', 'astropy', 'sklearn', 'dask') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == ""


def test_importing_the_package_is_light(tmp_path):
    # the command line installs its signal handlers after this import and before
    # the heavy ones, so that an interrupt meanwhile ends in one line
    import subprocess
    import sys

    code = (
        "import sys, sgmca_fast, sgmca_fast.cli; "
        "print(','.join(m for m in ('numpy', 'numba', 'scipy', 'onnxruntime') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == ""


def test_lazy_names_behave_like_imports():
    import sgmca_fast
    from sgmca_fast import separate
    from sgmca_fast._solver import separate as defined

    assert separate is defined
    from sgmca_fast import SGMCA
    from sgmca_fast.estimator import SGMCA as estimator_class

    assert SGMCA is estimator_class
    assert set(sgmca_fast.__all__) <= set(dir(sgmca_fast))
    assert sgmca_fast.metrics.__name__ == "sgmca_fast.metrics"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sgmca_fast.nothing  # noqa: B018
