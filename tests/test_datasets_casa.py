"""Tests of sgmca_fast.datasets.load_casa: the paper's folder and broken copies."""

import numpy as np
import pytest

from sgmca_fast import datasets as ds
from sgmca_fast._validation import InputError


def test_load_casa(casa, casa_dir):
    data = casa
    assert data.sources.shape == (4, 346, 346)
    np.testing.assert_allclose(np.linalg.norm(data.sources.reshape(4, -1), axis=1), 1.0)
    assert data.names == ("sync", "therm", "fe1", "fe2")
    assert data.path == casa_dir
    shapes = {
        name: {key: v.shape for key, v in f.items()}
        for name, f in data.families.items()
    }
    assert shapes == {
        "sync": {"anchors": (3, 75), "train": (541, 75), "valid": (178, 75)},
        "thermal": {"anchors": (3, 75), "train": (601, 75), "valid": (198, 75)},
        "gauss": {"anchors": (2, 75), "train": (480, 75), "valid": (120, 75)},
    }
    with np.load(casa_dir / "spectra_gauss.npz") as raw:
        np.testing.assert_array_equal(
            data.families["gauss"]["train"], raw["train"][:480]
        )
        np.testing.assert_array_equal(
            data.families["gauss"]["valid"], raw["train"][480:]
        )
    with np.load(casa_dir / "sources.npz") as raw:
        fe2 = raw["fe2"].astype(np.float64)
    np.testing.assert_allclose(data.sources[3], fe2 / np.linalg.norm(fe2), rtol=1e-15)
    assert sorted(data.reference_models) == ["gauss", "sync", "thermal"]
    assert data.reference_models["sync"].is_file()


def _fake_casa(folder, n_gauss=10):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(
        folder / "sources.npz",
        **{key: rng.random((8, 8)) for key in ("sync", "therm", "fe1", "fe2")},
    )
    for name, n_anchors in (("sync", 3), ("thermal", 3)):
        np.savez(
            folder / f"spectra_{name}.npz",
            anchors=rng.random((n_anchors, 6)),
            train=rng.random((7, 6)),
            valid=rng.random((3, 6)),
        )
    np.savez(
        folder / "spectra_gauss.npz",
        anchors=rng.random((2, 6)),
        train=rng.random((n_gauss, 6)),
    )
    return folder


def test_load_casa_small_folder(tmp_path):
    folder = _fake_casa(tmp_path / "casa")
    data = ds.load_casa(str(folder))
    assert list(data.families) == ["sync", "thermal", "gauss"]
    assert data.sources.shape == (4, 8, 8)
    with np.load(folder / "spectra_gauss.npz") as raw:
        train = raw["train"]
    np.testing.assert_array_equal(data.families["gauss"]["train"], train[:8])
    np.testing.assert_array_equal(data.families["gauss"]["valid"], train[8:])
    assert data.reference_models == {}
    (folder / "reference_models").mkdir()
    (folder / "reference_models" / "model_gauss.pkl").write_bytes(b"x")
    assert list(ds.load_casa(folder).reference_models) == ["gauss"]


def test_load_casa_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="Cas A folder not found: .*nowhere"):
        ds.load_casa(tmp_path / "nowhere")
    folder = _fake_casa(tmp_path / "casa")
    (folder / "spectra_thermal.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing file .*spectra_thermal\.npz"):
        ds.load_casa(folder)


def test_load_casa_missing_key_is_an_input_error(tmp_path):
    # InputError (a ValueError) is what the command line reports as bad input
    folder = _fake_casa(tmp_path / "casa")
    rng = np.random.default_rng(1)
    np.savez(folder / "sources.npz", **{k: rng.random((8, 8)) for k in ("sync", "fe1")})
    with pytest.raises(
        InputError,
        match=r"sources\.npz: missing key\(s\) \['therm', 'fe2'\]; "
        r"found \['fe1', 'sync'\]",
    ):
        ds.load_casa(folder)
    folder = _fake_casa(tmp_path / "casa2")
    np.savez(folder / "spectra_thermal.npz", train=np.ones((7, 6)))
    with pytest.raises(
        InputError, match=r"spectra_thermal\.npz: missing key\(s\) \['anchors'\]"
    ):
        ds.load_casa(folder)


@pytest.mark.parametrize(
    ("fe2", "match"),
    [
        (np.ones((8, 9)), r"key 'fe2' must be a 2-D image of shape \(8, 8\)"),
        (np.zeros((8, 8)), r"key 'fe2' is all zero"),
        (np.full((8, 8), np.nan), r"key 'fe2': contains 64 NaN or inf"),
        (np.array([["a"] * 8] * 8), r"key 'fe2': holds <U1 values, not real"),
        (np.array([None] * 8, dtype=object), r"array 'fe2' cannot be read"),
        (np.ones((8, 8), dtype=complex), r"key 'fe2': holds complex128 values"),
    ],
)
def test_load_casa_broken_sources(tmp_path, fe2, match):
    folder = _fake_casa(tmp_path / "casa")
    rng = np.random.default_rng(1)
    src = {key: rng.random((8, 8)) for key in ("sync", "therm", "fe1")}
    np.savez(folder / "sources.npz", fe2=fe2, **src)
    with pytest.raises(InputError, match=r"sources\.npz: " + match):
        ds.load_casa(folder)


def test_load_casa_unreadable_archives(tmp_path):
    folder = _fake_casa(tmp_path / "casa")
    (folder / "sources.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(InputError, match=r"sources\.npz: not a readable \.npz"):
        ds.load_casa(folder)
    with open(folder / "sources.npz", "wb") as f:
        np.save(f, np.ones(3))  # an .npy under an .npz name
    with pytest.raises(InputError, match=r"sources\.npz: not a readable \.npz"):
        ds.load_casa(folder)


@pytest.mark.parametrize(
    ("anchors", "train", "match"),
    [
        ((3, 5), (7, 6), r"spectra_sync\.npz: key 'train' has 6 channels, expected 5"),
        # the channel count is shared across the families' files
        ((3, 5), (7, 5),
         r"spectra_thermal\.npz: key 'anchors' has 6 channels, expected 5"),
        ((6,), (7, 6), r"spectra_sync\.npz: key 'anchors' must be a non-empty 2-D"),
        ((0, 6), (7, 6), r"spectra_sync\.npz: key 'anchors': the array is empty"),
    ],
)
def test_load_casa_broken_spectra(tmp_path, anchors, train, match):
    folder = _fake_casa(tmp_path / "casa")
    np.savez(
        folder / "spectra_sync.npz", anchors=np.ones(anchors), train=np.ones(train)
    )
    with pytest.raises(InputError, match=match):
        ds.load_casa(folder)


def test_load_casa_too_few_lines_to_split(tmp_path):
    folder = _fake_casa(tmp_path / "casa", n_gauss=1)
    with pytest.raises(
        InputError,
        match=r"spectra_gauss\.npz: key 'train' has 1 spectra, too few",
    ):
        ds.load_casa(folder)
