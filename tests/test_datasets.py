"""Tests of sgmca_fast.datasets: built-in spectra, sources, mixtures, Cas A loader."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from sgmca_fast import datasets as ds
from sgmca_fast import starlet
from sgmca_fast._validation import InputError, InputTypeError

FAMILY_PARAMS = {
    "sync": ("gamma", "nh"),
    "thermal": ("kt", "nh"),
    "gauss": ("center", "sigma"),
}


# ------------------------------------------------------------------ public API


def test_all_is_literal_and_documented():
    tree = ast.parse(Path(ds.__file__).read_text())
    literal = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "__all__" for t in node.targets)
    ]
    assert len(literal) == 1
    assert ast.literal_eval(literal[0]) == ds.__all__
    for name in ds.__all__:
        obj = getattr(ds, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), name


# ------------------------------------------------------------- grid, response


def test_energy_grid_is_linear_0p1_kev():
    e = ds.energy_grid()
    assert e.shape == (75,)
    np.testing.assert_allclose(np.diff(e), 0.1, rtol=1e-12)
    np.testing.assert_allclose(e[[0, -1]], [0.55, 7.95])
    e = ds.energy_grid(10, 1.0, 2.0)
    np.testing.assert_allclose(e, 1.05 + 0.1 * np.arange(10))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_channels": 1}, ValueError, "n_channels must be at least 2"),
        ({"n_channels": 7.5}, TypeError, "n_channels must be an integer"),
        ({"e_min": 3.0, "e_max": 2.0}, ValueError, "0 < e_min < e_max"),
        ({"e_min": 0.0}, ValueError, "0 < e_min < e_max"),
    ],
)
def test_energy_grid_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ds.energy_grid(**kwargs)


def test_toy_response_shapes():
    e = np.linspace(0.3, 10, 500)
    area = ds.effective_area(e)
    peak = e[np.argmax(area)]
    assert 1.0 < peak < 2.0
    assert area[0] < 0.2 * area.max() and area[-1] < 0.3 * area.max()
    assert np.all(np.diff(area[e < 1.2]) > 0) and np.all(np.diff(area[e > 2.0]) < 0)
    fwhm = ds.resolution_fwhm(e)
    np.testing.assert_allclose(fwhm / np.sqrt(e), 0.15 / np.sqrt(6.0))
    t = ds.photoabsorption(e, [0.5, 2.5])
    assert t.shape == (2, 500)
    assert np.all(np.diff(t, axis=1) > 0) and np.all(t[1] < t[0])
    np.testing.assert_allclose(ds.photoabsorption(1.0, 1.0), np.exp(-2.4))


def test_apply_response_narrow_line_lands_in_its_channel():
    counts = ds.apply_response(lines=([3.05], [0.0], [[1.0]]))
    assert counts.shape == (1, 75)
    assert np.argmax(counts[0]) == 25  # channel 3.0-3.1 keV
    np.testing.assert_allclose(counts.sum(), ds.effective_area(3.05), rtol=1e-6)
    with pytest.raises(ValueError, match="give a continuum, lines, or both"):
        ds.apply_response()


# ------------------------------------------------------------- spectral families


@pytest.mark.parametrize("name", ds.FAMILIES)
def test_family_shapes_and_unit_sum(name):
    spectra, params = ds.make_family(name, 40, random_state=1)
    assert spectra.shape == (40, 75) and spectra.dtype == np.float64
    assert np.all(spectra >= 0)
    np.testing.assert_allclose(spectra.sum(axis=1), 1.0, rtol=1e-12)
    assert sorted(params) == sorted(FAMILY_PARAMS[name])
    for value in params.values():
        assert value.shape == (40,)
    spectra, _ = ds.make_family(name, 3, random_state=1, n_channels=30, e_max=6.0)
    assert spectra.shape == (3, 30)


@pytest.mark.parametrize("name", ds.FAMILIES)
def test_family_seeded(name):
    a, pa = ds.make_family(name, 10, random_state=7)
    b, pb = ds.make_family(name, 10, random_state=np.random.default_rng(7))
    c, _ = ds.make_family(name, 10, random_state=8)
    np.testing.assert_array_equal(a, b)
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key])
    assert not np.allclose(a, c)


def test_default_parameter_ranges():
    _, p = ds.make_family("sync", 500, random_state=0)
    assert 1.8 <= p["gamma"].min() and p["gamma"].max() <= 3.2
    assert 0.5 <= p["nh"].min() and p["nh"].max() <= 2.5
    _, p = ds.make_family("thermal", 500, random_state=0)
    assert 0.5 <= p["kt"].min() and p["kt"].max() <= 4.0
    _, p = ds.make_family("gauss", 500, random_state=0)
    assert 3.5 <= p["center"].min() and p["center"].max() <= 7.5


def test_sync_index_and_column():
    e = ds.energy_grid()
    hard, _ = ds.make_family("sync", 1, 0, gamma_range=(1.8, 1.8), nh_range=(1, 1))
    soft, _ = ds.make_family("sync", 1, 0, gamma_range=(3.2, 3.2), nh_range=(1, 1))
    thick, _ = ds.make_family("sync", 1, 0, gamma_range=(1.8, 1.8), nh_range=(3, 3))
    assert hard[0, e > 5].sum() > 2 * soft[0, e > 5].sum()
    assert thick[0, e < 1].sum() < 0.5 * hard[0, e < 1].sum()


def _line_contrast(spectrum, energy):
    j = int(np.argmin(np.abs(ds.energy_grid() - energy)))
    return spectrum[j] / (0.5 * (spectrum[j - 4] + spectrum[j + 4]))


def test_thermal_lines_follow_temperature():
    cool, _ = ds.make_family("thermal", 1, 0, kt_range=(0.8, 0.8), nh_range=(1, 1))
    hot, _ = ds.make_family("thermal", 1, 0, kt_range=(4.0, 4.0), nh_range=(1, 1))
    # Fe XXV (6.7 keV) needs a hot plasma, Si XIII (1.86 keV) a cooler one
    assert _line_contrast(hot[0], 6.7) > 3.0 > 1.5 > _line_contrast(cool[0], 6.7)
    assert _line_contrast(cool[0], 1.86) > 2 * _line_contrast(hot[0], 1.86)
    # the continuum of the hot plasma is harder
    e = ds.energy_grid()
    assert hot[0, e > 4].sum() > 10 * cool[0, e > 4].sum()


def test_gauss_width_proportional_to_centre():
    spectra, p = ds.make_family("gauss", 50, 3, center_range=(3.5, 6.8))
    e = ds.energy_grid()
    np.testing.assert_allclose(p["sigma"], 0.06 * p["center"])
    mean = spectra @ e
    var = spectra @ e**2 - mean**2
    np.testing.assert_allclose(mean, p["center"], atol=0.005)
    # observed variance = intrinsic + resolution + binning (0.1 keV bins)
    res = ds.resolution_fwhm(p["center"]) / (2 * np.sqrt(2 * np.log(2)))
    intrinsic = np.sqrt(var - res**2 - 0.1**2 / 12)
    np.testing.assert_allclose(intrinsic / p["center"], 0.06, rtol=0.02)
    # wider lines at higher energy
    assert np.corrcoef(p["center"], np.sqrt(var))[0, 1] > 0.99


@pytest.mark.parametrize(
    ("name", "n_anchors"), [("sync", 3), ("thermal", 3), ("gauss", 3)]
)
def test_spectra_sets_layout(name, n_anchors):
    sets = ds.make_spectra_sets(name, random_state=0, n_train=30, n_valid=10)
    assert list(sets) == ["anchors", "train", "valid"]
    assert sets["anchors"].shape == (n_anchors, 75)
    assert sets["train"].shape == (30, 75) and sets["valid"].shape == (10, 75)
    for value in sets.values():
        np.testing.assert_allclose(value.sum(axis=1), 1.0, rtol=1e-12)
    # anchors far from collinear
    sv = np.linalg.svd(sets["anchors"], compute_uv=False)
    assert np.linalg.matrix_rank(sets["anchors"]) == n_anchors
    assert sv[-1] / sv[0] > 0.05
    again = ds.make_spectra_sets(name, random_state=0, n_train=30, n_valid=10)
    other = ds.make_spectra_sets(name, random_state=1, n_train=30, n_valid=10)
    for key in sets:
        np.testing.assert_array_equal(sets[key], again[key])
    np.testing.assert_array_equal(sets["anchors"], other["anchors"])
    assert not np.allclose(sets["train"], other["train"])
    assert not np.allclose(sets["train"][:10], sets["valid"])


def test_family_errors():
    with pytest.raises(
        ValueError,
        match=r"spectral family must be one of \['gauss', 'sync', 'thermal'\], "
        r"got 'apec'",
    ):
        ds.make_family("apec", 3)
    with pytest.raises(
        TypeError,
        match=r"unexpected option\(s\) \['kt_range'\] for "
        r"family 'sync'; valid options are \['gamma_range', "
        r"'nh_range'\]",
    ):
        ds.make_family("sync", 3, kt_range=(1, 2))
    with pytest.raises(ValueError, match="nh_range must be"):
        ds.make_family("thermal", 3, nh_range=(2, 1))
    with pytest.raises(ValueError, match=r"width_ratio must be > 0\.0, got -1\.0"):
        ds.make_family("gauss", 3, width_ratio=-1)
    with pytest.raises(ValueError, match="n must be at least 0, got -1"):
        ds.make_family("gauss", -1)
    assert ds.make_family("sync", 0)[0].shape == (0, 75)


# ------------------------------------------------------------------ sources


@pytest.fixture(scope="module")
def sources128():
    return ds.make_sources(128, random_state=0)


def test_sources_shapes_nonneg_unit_norm(sources128):
    s = sources128
    assert s.shape == (4, 128, 128) and s.dtype == np.float64
    assert np.all(s >= 0)
    np.testing.assert_allclose(np.linalg.norm(s.reshape(4, -1), axis=1), 1.0)
    # empty sky around the remnant, compact iron knots
    assert np.all(s[:, 0, 0] == 0)
    assert np.all((s[1:] > 0).mean(axis=(1, 2)) < 0.4)


def test_sources_sparse_in_starlets(sources128):
    w = starlet.forward(sources128, 2)[:, :2].reshape(4, -1)
    for row in np.abs(w):
        assert (row > 0.05 * row.max()).mean() < 0.3
        energy = np.sort(row**2)[::-1]
        # 95% of the detail energy in under a quarter of the coefficients
        n95 = np.searchsorted(np.cumsum(energy) / energy.sum(), 0.95)
        assert n95 < 0.25 * row.size


def test_sources_seeded(sources128):
    np.testing.assert_array_equal(ds.make_sources(128, 0), sources128)
    assert not np.allclose(ds.make_sources(128, 1), sources128)
    gram = np.corrcoef(sources128.reshape(4, -1))
    assert np.all(np.abs(gram[np.triu_indices(4, 1)]) < 0.6)


@pytest.mark.parametrize("size", [16, 33, 200])
def test_sources_any_size(size):
    s = ds.make_sources(size, random_state=2)
    assert s.shape == (4, size, size)
    assert np.all(np.isfinite(s)) and np.all(s >= 0)
    np.testing.assert_allclose(np.linalg.norm(s.reshape(4, -1), axis=1), 1.0)


def test_sources_errors():
    with pytest.raises(ValueError, match="size must be at least 16, got 8"):
        ds.make_sources(8)
    with pytest.raises(TypeError, match="size must be an integer, got 64.0"):
        ds.make_sources(64.0)


# ------------------------------------------------------------------ mixtures


@pytest.fixture(scope="module")
def sets():
    return {name: ds.make_spectra_sets(name, 0, 120, 40) for name in ds.FAMILIES}


def _families(sets):
    return [
        sets["sync"]["valid"],
        sets["thermal"]["valid"],
        sets["gauss"]["valid"],
        sets["gauss"]["valid"],
    ]


def _snr(m):
    signal = m.X - m.N
    return 10 * np.log10(np.sum(signal**2) / np.sum(m.N**2))


@pytest.mark.parametrize("snr_db", [10.0, 40.0, 60.0])
def test_mixture_protocol(sources128, sets, snr_db):
    m = ds.make_mixture(sources128, _families(sets), snr_db=snr_db, random_state=4)
    assert m.X.shape == m.N.shape == (75, 128, 128)
    assert m.A0.shape == (75, 4) and m.S0.shape == (4, 128, 128)
    np.testing.assert_allclose(
        m.X - m.N, np.einsum("ji,ihw->jhw", m.A0, m.S0), atol=1e-15
    )
    assert abs(_snr(m) - snr_db) < 0.1
    assert m.noise_std == pytest.approx(np.std(m.N))
    np.testing.assert_allclose(m.A0.sum(axis=0), 1.0)
    fams = _families(sets)
    for i in range(4):
        np.testing.assert_array_equal(m.A0[:, i], fams[i][m.indices[i]])
    assert m.indices[2] != m.indices[3]
    assert m.names == ("source_0", "source_1", "source_2", "source_3")


def test_mixture_normalises_and_scales(sources128, sets):
    m = ds.make_mixture(5.0 * sources128, _families(sets), k=0.01, random_state=0)
    norms = np.linalg.norm(m.S0.reshape(4, -1), axis=1)
    np.testing.assert_allclose(norms, [1.0, 0.01, 0.01, 0.01])
    m = ds.make_mixture(sources128, _families(sets), k=3.0, scaled=(0,), random_state=0)
    np.testing.assert_allclose(
        np.linalg.norm(m.S0.reshape(4, -1), axis=1), [3.0, 1.0, 1.0, 1.0]
    )


def test_mixture_seeded(sets):
    src = ds.make_sources(32, 0)
    a = ds.make_mixture(src, _families(sets), random_state=11)
    b = ds.make_mixture(src, _families(sets), random_state=np.random.default_rng(11))
    c = ds.make_mixture(src, _families(sets), random_state=12)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.indices == b.indices
    assert not np.allclose(a.X, c.X)


def test_mixture_same_family_draws_are_distinct(sets):
    src = ds.make_sources(16, 0)
    two = np.repeat(sets["gauss"]["valid"][:2], 3, axis=0)  # 2 distinct rows
    fams = [sets["sync"]["valid"], sets["thermal"]["valid"], two, two.copy()]
    for seed in range(10):
        m = ds.make_mixture(src, fams, random_state=seed)
        assert not np.array_equal(m.A0[:, 2], m.A0[:, 3])
    with pytest.raises(ValueError, match=r"has 1 distinct spectra but serves 2"):
        ds.make_mixture(src, fams[:2] + [two[:1], two[:1]])


@pytest.mark.parametrize("delta", [0, 3, 10, 20, 500])
def test_mixture_delta(sets, delta):
    src = ds.make_sources(16, 0)
    gauss = sets["gauss"]["valid"]
    peaks = np.argmax(gauss, axis=1)
    gaps = np.abs(peaks[:, None] - peaks[None, :])[~np.eye(len(peaks), dtype=bool)]
    best = gaps[np.argmin(np.abs(gaps - delta))]
    for seed in range(3):
        m = ds.make_mixture(src, _families(sets), delta=delta, random_state=seed)
        got = abs(int(np.argmax(m.A0[:, 2])) - int(np.argmax(m.A0[:, 3])))
        assert got == best
        assert m.indices[2] != m.indices[3]


def test_mixture_without_noise_and_flat_sources(sets):
    src = ds.make_sources(16, 0).reshape(4, -1)
    m = ds.make_mixture(src, _families(sets), snr_db=np.inf, random_state=0)
    assert m.X.shape == (75, 256) and np.all(m.N == 0) and m.noise_std == 0.0


def test_mixture_errors(sets):
    src = ds.make_sources(16, 0)
    fams = _families(sets)
    with pytest.raises(ValueError, match="got 3 spectral families for 4 sources"):
        ds.make_mixture(src, fams[:3])
    with pytest.raises(TypeError, match="got a single 2-D array"):
        ds.make_mixture(src, fams[0])
    with pytest.raises(ValueError, match="delta needs exactly one family shared"):
        ds.make_mixture(src, fams[:1] + [fams[2]] * 3, delta=5)
    with pytest.raises(ValueError, match="delta needs exactly one family shared"):
        ds.make_mixture(src, fams[:2] + [fams[2][:20], fams[2][20:]], delta=5)
    with pytest.raises(ValueError, match=r"k must be > 0\.0, got 0\.0"):
        ds.make_mixture(src, fams, k=0)
    with pytest.raises(ValueError, match=r"scaled indices \[4\] out of range"):
        ds.make_mixture(src, fams, scaled=(4,))
    with pytest.raises(ValueError, match=r"source\(s\) \[1\] are all zero"):
        ds.make_mixture(src * np.array([1, 0, 1, 1])[:, None, None], fams)
    with pytest.raises(ValueError, match="same number of channels"):
        ds.make_mixture(src, fams[:3] + [fams[3][:, :70]])
    with pytest.raises(ValueError, match=r"sources must be of shape \(I, H, W\)"):
        ds.make_mixture(src[0, 0], fams)
    with pytest.raises(ValueError, match="got 2 names for 4 sources"):
        ds.make_mixture(src, fams, names=("a", "b"))


def test_demo_mixture():
    m = ds.make_demo_mixture(size=48, snr_db=30.0, random_state=5)
    assert m.X.shape == (75, 48, 48) and m.A0.shape == (75, 4)
    assert m.names == ("sync", "thermal", "fe1", "fe2")
    assert abs(_snr(m) - 30.0) < 0.5
    valid = ds.make_spectra_sets("gauss")["valid"]
    np.testing.assert_array_equal(m.A0[:, 3], valid[m.indices[3]])
    again = ds.make_demo_mixture(size=48, snr_db=30.0, random_state=5)
    np.testing.assert_array_equal(m.X, again.X)
    m = ds.make_demo_mixture(size=16, k=0.1, delta=20, random_state=1)
    assert abs(int(np.argmax(m.A0[:, 2])) - int(np.argmax(m.A0[:, 3]))) == 20
    np.testing.assert_allclose(np.linalg.norm(m.S0[3]), 0.1)


# ------------------------------------------------------------- error types


def _two_gauss():
    valid = ds.make_spectra_sets("gauss", 0, 20, 20)["valid"]
    return [valid, valid, valid[:5], valid[5:]]


_BAD_CALLS = {
    "grid_n1": (lambda: ds.energy_grid(1), InputError),
    "grid_float": (lambda: ds.energy_grid(7.5), InputTypeError),
    "grid_nan": (lambda: ds.energy_grid(10, np.nan), InputError),
    "response_empty": (lambda: ds.apply_response(), InputError),
    "family_unknown": (lambda: ds.make_family("apec", 3), InputError),
    "family_option": (lambda: ds.make_family("sync", 3, kt_range=(1, 2)),
                      InputTypeError),
    "family_triple": (lambda: ds.make_family("sync", 3, nh_range=(1, 2, 3)),
                      InputTypeError),
    "family_inf": (lambda: ds.make_family("sync", 3, nh_range=(1, np.inf)),
                   InputError),
    "family_n_float": (lambda: ds.make_family("gauss", 2.5), InputTypeError),
    "sources_small": (lambda: ds.make_sources(8), InputError),
    "sources_float": (lambda: ds.make_sources(64.0), InputTypeError),
    "mixture_k_inf": (lambda: ds.make_mixture(np.ones((4, 16)), _two_gauss(),
                                              k=np.inf), InputError),
    "mixture_one_family": (lambda: ds.make_mixture(np.ones((4, 16)),
                                                   _two_gauss()[0]), InputTypeError),
    "mixture_1d": (lambda: ds.make_mixture(np.ones(16), _two_gauss()), InputError),
    "mixture_scaled_float": (lambda: ds.make_mixture(np.ones((4, 16)), _two_gauss(),
                                                     scaled=(1.5,)), InputTypeError),
}


@pytest.mark.parametrize("case", sorted(_BAD_CALLS))
def test_errors_are_input_errors(case):
    # the command line reports InputError as bad input (exit 2), anything else
    # as a bug
    call, error = _BAD_CALLS[case]
    with pytest.raises(error):
        call()


def test_spectra_sets_name_their_sizes():
    with pytest.raises(InputError, match="n_train must be at least 0, got -1"):
        ds.make_spectra_sets("gauss", n_train=-1)
    with pytest.raises(InputTypeError, match="n_valid must be an integer"):
        ds.make_spectra_sets("gauss", n_valid=2.0)


def test_range_option_must_be_a_pair():
    with pytest.raises(
        InputTypeError, match=r"nh_range must be a pair \(low, high\), got 2\.0"
    ):
        ds.make_family("sync", 3, nh_range=2.0)


def test_mixture_refuses_masked_sources():
    src = np.ma.masked_less(ds.make_sources(16, 0), 1e-3)
    with pytest.raises(InputError, match="sources is a masked array"):
        ds.make_mixture(src, _two_gauss())
