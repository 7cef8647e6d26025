import csv
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import sgmca_fast
from sgmca_fast import baselines, datasets

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "bench" / "paper"


def binned(sources, factor):
    """Sum factor x factor blocks: a smaller image of the whole remnant."""
    i, h, w = sources.shape
    h, w = h // factor * factor, w // factor * factor
    s = sources[:, :h, :w].reshape(i, h // factor, factor, w // factor, factor)
    return s.sum(axis=(2, 4))


@pytest.fixture(scope="module")
def small_mix(casa):
    """Cas A sources binned 16x16 (21 x 21), the paper's protocol at 40 dB."""
    fam = casa.families
    spectra = [fam["sync"]["valid"], fam["thermal"]["valid"], fam["gauss"]["valid"],
               fam["gauss"]["valid"]]
    return datasets.make_mixture(binned(casa.sources, 16), spectra, snr_db=40.0,
                                 random_state=0)


def noiseless(seed=0, J=20, n_src=3, size=24):
    rng = np.random.default_rng(seed)
    A0 = rng.random((J, n_src)) + 0.05
    S0 = rng.exponential(1.0, (n_src, size, size))
    return np.einsum("ji,ihw->jhw", A0, S0), A0, S0


def test_public_api():
    assert baselines.__all__ == sorted(baselines.__all__)
    for name in baselines.__all__:
        assert getattr(baselines, name).__doc__
    assert baselines.gmca is sgmca_fast.gmca


def test_baselines_import_no_private_names():
    # They call the solver's final stage through names meant for other modules.
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(baselines))
    imported = [a.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.level and node.module
                for a in node.names]  # names from the package's modules
    assert "final_sources" in imported
    assert [name for name in imported if name.startswith("_")] == []


# --------------------------------------------------------------------------------
# NMF
# --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", [baselines.hals_nmf, baselines.sparse_nmf])
def test_nmf_shapes_and_signs(small_mix, method):
    X = small_mix.X
    res = method(X, 4, max_iter=50, random_state=0)
    assert isinstance(res, sgmca_fast.Separation)
    assert res.A.shape == (75, 4) and res.S.shape == (4, 21, 21)
    assert np.all(res.A >= 0) and np.all(res.S >= 0)
    np.testing.assert_allclose(np.linalg.norm(res.A, axis=0), 1.0, rtol=1e-12)
    assert 0 < res.history["clipped_fraction"] < 1  # the noise made X negative
    assert res.n_iter["nmf"] <= 50 and res.mapping == [None] * 4
    # (J, P) data give (I, P) sources
    flat = method(X.reshape(75, -1), 4, max_iter=5, random_state=0)
    assert flat.S.shape == (4, 21 * 21)


def test_nmf_fits_a_nonnegative_product():
    X, A0, S0 = noiseless()
    res = baselines.hals_nmf(X, 3, max_iter=400, tol=1e-8, random_state=0)
    fit = np.einsum("ji,ihw->jhw", res.A, res.S)
    assert np.linalg.norm(fit - X) / np.linalg.norm(X) < 1e-2


def test_sparse_nmf_penalty_sparsifies():
    X, _, _ = noiseless()
    plain = baselines.sparse_nmf(X, 3, alpha=0.0, max_iter=100, random_state=0)
    sparse = baselines.sparse_nmf(X, 3, alpha=5.0, max_iter=100, random_state=0)
    # multiplicative updates never reach 0 exactly: count the near-zero entries
    def small(S):
        return np.mean(S < 1e-3 * S.max())

    assert small(sparse.S) > 2 * small(plain.S)


def test_nmf_errors():
    X, _, _ = noiseless()
    with pytest.raises(ValueError, match="X has 20 channels, fewer than n_sources"):
        baselines.hals_nmf(X, 21)
    with pytest.raises(TypeError, match="max_iter must be an integer"):
        baselines.hals_nmf(X, 2, max_iter=1.5)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        baselines.sparse_nmf(X, 2, alpha=-1.0)
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        baselines.hals_nmf(np.full((5, 4, 4), np.nan), 2)


# --------------------------------------------------------------------------------
# nearest neighbour
# --------------------------------------------------------------------------------


def test_nn_projection_returns_training_rows():
    rng = np.random.default_rng(1)
    train = rng.random((30, 12))
    model = baselines.NearestNeighbourModel(train, "toy")
    assert model.name == "toy" and model.n_channels == 12
    assert model.training_spectra.shape == (30, 12)
    # scaled, slightly perturbed rows: the nearest by angle is the row itself
    a = 3.0 * train[[4, 17]] * (1 + 1e-3 * rng.standard_normal((2, 12)))
    spectra, lam, amp = model.fast_project(a)
    np.testing.assert_array_equal(lam[:, 0], [4, 17])
    np.testing.assert_allclose(amp, 3.0, rtol=1e-2)
    np.testing.assert_array_equal(spectra, amp[:, None] * train[[4, 17]])
    res = model.project(a, lambda0=lam)
    np.testing.assert_array_equal(res.lambdas[:, 0], [4, 17])
    np.testing.assert_array_equal(
        res.unit_spectra,
        train[[4, 17]] / np.linalg.norm(train[[4, 17]], axis=1)[:, None],
    )
    np.testing.assert_allclose(res.residual, np.linalg.norm(a - res.spectra, axis=1))
    np.testing.assert_array_equal(model.generate(lam), train[[4, 17]])
    # exact rows project on themselves with zero residual; 1-D input
    one = model.project(2.0 * train[9])
    assert one.lambdas.shape == (1,) and one.lambdas[0] == 9
    assert one.residual == pytest.approx(0.0, abs=1e-14)
    s1, l1, a1 = model.fast_project(train[9])
    np.testing.assert_allclose(s1, train[9], rtol=1e-14)
    np.testing.assert_array_equal(l1, [9.0])
    assert a1 == pytest.approx(1.0)


def test_nn_angle_not_distance():
    # a is far from row 0 in distance but points the same way
    train = np.array([[1.0, 0.0, 0.0], [0.1, 0.1, 0.0]])
    model = baselines.NearestNeighbourModel(train)
    _, lam, amp = model.fast_project(np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]])[1:])
    assert lam[0, 0] == 0 and amp[0] == pytest.approx(0.05)
    # opposite spectra get amplitude 0, as rho >= 0 in the manifold projection
    _, _, amp = model.fast_project(-train[:1])
    assert amp[0] == 0.0


def test_nn_errors():
    with pytest.raises(ValueError, match=r"non-empty 2-D \(n, J\) array"):
        baselines.NearestNeighbourModel(np.ones(5))
    with pytest.raises(ValueError, match="all zero"):
        baselines.NearestNeighbourModel(np.zeros((2, 3)))
    model = baselines.NearestNeighbourModel(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"a must have shape \(k, J\) or \(J,\)"):
        model.fast_project(np.ones((2, 4)))


def test_nn_sgmca_runs(casa, small_mix):
    fam = casa.families
    models = {
        baselines.NearestNeighbourModel(fam["sync"]["train"], "sync"): 1,
        baselines.NearestNeighbourModel(fam["thermal"]["train"], "thermal"): 1,
        baselines.NearestNeighbourModel(fam["gauss"]["train"], "gauss"): 2,
    }
    res = sgmca_fast.separate(small_mix.X, 4, models, noise_std=small_mix.noise_std,
                              random_state=0, max_iter_semiblind=5)
    assert sorted(res.mapping) == ["gauss", "gauss", "sync", "thermal"]
    assert res.n_iter["semiblind"] >= 1
    # every column is a training spectrum of its family, unit norm
    for i, name in enumerate(res.mapping):
        train = next(m for m in models if m.name == name).training_spectra
        unit = train / np.linalg.norm(train, axis=1)[:, None]
        assert np.min(np.linalg.norm(unit - res.A[:, i], axis=1)) < 1e-12


# --------------------------------------------------------------------------------
# oracles
# --------------------------------------------------------------------------------


def test_oracles_exact_on_noiseless_data():
    X, A0, S0 = noiseless()
    unit = np.linalg.norm(A0, axis=0)
    res = baselines.oracle_sources(X, A0, method="lstsq")
    np.testing.assert_allclose(res.A, A0 / unit)
    np.testing.assert_allclose(res.S, S0 * unit[:, None, None], rtol=1e-9)
    # the thresholded oracle with a negligible noise level keeps everything
    thr = baselines.oracle_sources(X, A0, noise_std=1e-12)
    np.testing.assert_allclose(thr.S, S0 * unit[:, None, None], rtol=1e-7,
                               atol=1e-9)
    mix = baselines.oracle_mixing(X, S0)
    np.testing.assert_allclose(mix.A, A0 / unit, rtol=1e-10)
    np.testing.assert_allclose(mix.S, S0 * unit[:, None, None], rtol=1e-10)
    # (J, P) data
    flat = baselines.oracle_mixing(X.reshape(20, -1), S0.reshape(3, -1))
    assert flat.S.shape == (3, 24 * 24)
    flat = baselines.oracle_sources(X.reshape(20, -1), A0, noise_std=1e-12)
    np.testing.assert_allclose(flat.S, (S0 * unit[:, None, None]).reshape(3, -1),
                               rtol=1e-7, atol=1e-9)


def test_oracle_sources_thresholds_noise(small_mix):
    from sgmca_fast import metrics

    ls = baselines.oracle_sources(small_mix.X, small_mix.A0, small_mix.noise_std,
                                  method="lstsq")
    thr = baselines.oracle_sources(small_mix.X, small_mix.A0, small_mix.noise_std)
    assert thr.S.shape == (4, 21, 21)
    m_ls = metrics.evaluate(small_mix.A0, small_mix.S0, ls.A, ls.S, noise=small_mix.N)
    m_thr = metrics.evaluate(small_mix.A0, small_mix.S0, thr.A, thr.S,
                             noise=small_mix.N)
    assert m_thr["SNR"] > m_ls["SNR"]  # the thresholds remove noise
    mad = baselines.oracle_sources(small_mix.X, small_mix.A0, nonneg_S=True)
    assert np.all(np.isfinite(mad.S))


def test_oracle_errors():
    X, A0, S0 = noiseless()
    with pytest.raises(ValueError, match=r"method must be one of .*, got 'ls'"):
        baselines.oracle_sources(X, A0, method="ls")
    with pytest.raises(ValueError, match=r"A0 must have shape \(J, I\) with J=20"):
        baselines.oracle_sources(X, A0[:5])
    with pytest.raises(ValueError, match="S0 must be .* with the 576 pixels of X"):
        baselines.oracle_mixing(X, S0[:, :5])
    with pytest.raises(ValueError, match="linearly dependent"):
        baselines.oracle_mixing(X, np.stack([S0[0], S0[0]]))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda X, A0, S0: baselines.oracle_sources(X, A0, k=np.inf), ValueError,
         "k must be a finite number"),
        (lambda X, A0, S0: baselines.oracle_sources(X, A0, l1="no"), TypeError,
         "l1 must be True or False"),
        (lambda X, A0, S0: baselines.oracle_sources(X, A0, nonneg_S=1), TypeError,
         "nonneg_S must be True or False"),
        (lambda X, A0, S0: baselines.oracle_sources(X, A0, nscales=5), ValueError,
         "nscales = 5 is too large for images of 24"),
        (lambda X, A0, S0: baselines.oracle_sources(X, A0, noise_std=[1.0] * 3),
         ValueError, "one value per channel"),
        (lambda X, A0, S0: baselines.hals_nmf(X, 2, random_state="x"), TypeError,
         "random_state must be None, a non-negative integer"),
        (lambda X, A0, S0: baselines.hals_nmf(X, 2, tol=np.inf), ValueError,
         "tol must be a finite number"),
        (lambda X, A0, S0: baselines.hals_nmf(np.ma.masked_less(X, 0.5), 2),
         ValueError, "X is a masked array with"),
        (lambda X, A0, S0: baselines.oracle_mixing(X, np.ma.masked_less(S0, 0.5)),
         ValueError, "S0 is a masked array with"),
    ],
)
def test_baseline_parameters_are_checked_before_any_work(call, error, match):
    X, A0, S0 = noiseless()
    with pytest.raises(error, match=match):
        call(X, A0, S0)


def test_baseline_errors_have_the_input_error_type():
    from sgmca_fast._validation import InputError

    X, A0, _ = noiseless()
    with pytest.raises(InputError):
        baselines.oracle_sources(X, A0[:5])
    with pytest.raises(InputError):
        baselines.NearestNeighbourModel(np.zeros((2, 3)))


# --------------------------------------------------------------------------------
# the experiment runner (bench/paper)
# --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper(casa_dir):
    sys.path.insert(0, str(PAPER))
    try:
        yield importlib.import_module("sgmca_paper")
    finally:
        sys.path.remove(str(PAPER))


TINY = ["table3", "--realisations", "2", "--size", "16",
        "--methods", "oracle,HALS,GMCA"]


def read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def check_rows(paper, rows):
    assert len(rows) == 2 * 2 * 3  # k values x seeds x methods
    keys = {tuple(r[k] for k in paper.KEY) for r in rows}
    assert len(keys) == len(rows)
    assert {r["method"] for r in rows} == {"oracle", "HALS", "GMCA"}
    assert {r["value"] for r in rows} == {"1", "0.01"}
    assert {r["seed"] for r in rows} == {"0", "1"}
    for r in rows:
        assert r["size"] == "16"
        for m in paper.METRICS:
            assert np.isfinite(float(r[m]))
    oracle = [r for r in rows if r["method"] == "oracle"]
    assert min(float(r["SAD"]) for r in oracle) > 10


def test_runner_jobs1_and_resume(paper, tmp_path, capsys):
    out = tmp_path / "table3.csv"
    assert paper.main(TINY + ["--jobs", "1", "--out", str(out)]) == 0
    rows = read(out)
    check_rows(paper, rows)
    # a rerun adds nothing
    assert paper.main(TINY + ["--out", str(out)]) == 0
    assert "12 already in" in capsys.readouterr().out
    assert read(out) == rows
    # drop two rows: the rerun adds exactly those back
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=paper.COLUMNS)
        writer.writeheader()
        writer.writerows(rows[2:])
    assert paper.main(TINY + ["--out", str(out)]) == 0
    again = read(out)
    assert len(again) == 12
    # same seed, same data, same result (all but the run time)
    def strip(rs):
        return sorted(str({k: v for k, v in r.items() if k != "time"}) for r in rs)

    assert strip(again) == strip(rows)
    assert strip(again[-2:]) == strip(rows[:2])


def test_runner_dask_local_cluster(paper, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "table3.csv"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                  processes=False, dashboard_address=None) as cluster:
        assert paper.main(TINY + ["--scheduler", cluster.scheduler_address,
                                  "--out", str(out)]) == 0
    check_rows(paper, read(out))


def test_runner_tasks_and_methods(paper):
    tasks = paper.make_tasks("table3", [0], 346)
    # per k: sGMCA with 4 model sets + GMCA, HALS, SNMF, NN-sGMCA, oracle
    assert len(tasks) == 2 * 9
    assert {t.models for t in tasks if t.method == "sGMCA"} == {
        "all", "thermal+gauss", "sync+gauss", "gauss"}
    snr = paper.make_tasks("snr", [0, 1], 86, ["sGMCA"])
    assert [t.snr_db for t in snr[::2]] == [10, 20, 30, 40, 50, 60]
    assert paper.parse_seeds("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(ValueError, match="unknown experiment 'tab'"):
        paper.make_tasks("tab", [0], 16)
    with pytest.raises(ValueError, match=r"unknown methods \['ICA'\]"):
        paper.make_tasks("snr", [0], 16, ["ICA"])
    assert paper.bin_sources(np.ones((4, 346, 346)), 86).shape == (4, 86, 86)
    # one sGMCA and one NN-sGMCA run on a tiny delta point
    for task in paper.make_tasks("delta", [0], 24, ["sGMCA", "NN-sGMCA"])[:2]:
        row = paper.run_task(task)
        assert row["method"] == task.method and row["value"] == "1"
        names = sorted(row["mapping"].split())  # the authors' model names
        for name, family in zip(names, ["gauss", "gauss", "sync", "thermal"],
                                strict=True):
            assert family in name


def test_report_markdown_and_plots(paper, tmp_path):
    sys.path.insert(0, str(PAPER))
    try:
        report = importlib.import_module("report")
    finally:
        sys.path.remove(str(PAPER))
    results = tmp_path / "results"
    for experiment in ("table3", "k"):
        assert paper.main([experiment, "--seeds", "0", "--size", "16", "--methods",
                           "oracle,GMCA", "--out",
                           str(results / f"{experiment}.csv")]) == 0
    doc = tmp_path / "doc.md"
    doc.write_text("# title\n\nhand text\n")
    report.main(["--results", str(results), "--figures", str(tmp_path / "fig"),
                 "--update", str(doc)])
    text = doc.read_text()
    assert text.startswith("# title\n\nhand text\n")
    assert "| SAD | - | 21.67+-1.33 |" in text  # no sGMCA rows: ours is '-'
    assert "| GMCA | " in text and "| oracle | " in text
    assert "![Figure 9 style, k](fig/fig9_k.png)" in text
    assert (tmp_path / "fig" / "fig9_k.png").stat().st_size > 1000
    # a second update replaces the block instead of appending one
    report.main(["--results", str(results), "--figures", str(tmp_path / "fig"),
                 "--update", str(doc)])
    assert doc.read_text().count(report.BEGIN) == 1
