"""Projections of spectra on an IAE model: fast (encoder) and least squares.

The least-squares projection solves, for each row ``a`` of a batch,

    min over lambda (sum(lambda) = 1) and rho >= 0 of ||a - rho g(lambda)||^2

with ``g(lambda) = psi(lambda PhiE)``. For fixed ``lambda`` the best amplitude is
``rho* = max(0, <a, g> / ||g||^2)``; eliminating it (variable projection) leaves
N - 1 free latent coordinates ``t`` (``lambda = lambda_base + E t``, ``E`` an
orthonormal basis of the sum-zero subspace), solved by Levenberg-Marquardt with
the Kaufman Jacobian ``-rho (I - g g^T / ||g||^2) dg/dt``. Every spectrum keeps its
own damping and convergence flag; a step is accepted only if it lowers that
spectrum's residual, so the result is never worse than its start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ProjectionResult", "fast_project", "project"]

_AMPLITUDE_FLOOR = 1e-3  # the authors' floor on ||y||^2 in the fast projection
_MU_INIT = 1e-3
_MU_MAX = 1e8
_STEP_TOL = 1e-10  # latent steps below this (lambda units) change nothing
_MAX_STEP = 1.0  # largest latent step (in lambda units) per iteration


@dataclass(frozen=True)
class ProjectionResult:
    """Result of :meth:`IAEModel.project`.

    Attributes
    ----------
    spectra : (k, J) ndarray
        ``rho * g(lambda)``, the projected spectra.
    lambdas : (k, N) ndarray
        Barycentric weights (they sum to one for a simplex model).
    rho : (k,) ndarray
        Amplitudes, ``>= 0``.
    residual : (k,) ndarray
        ``||a - rho g(lambda)||_2``.
    n_iter : (k,) ndarray of int
        Levenberg-Marquardt iterations (evaluations of g and its Jacobian) per
        spectrum.
    unit_spectra : (k, J) ndarray
        ``g(lambda) / ||g(lambda)||``: the unit-norm column a solver puts in the
        mixing matrix (its amplitude goes into the sources).
    converged : (k,) ndarray of bool
        Whether the stopping test was met before ``max_iter``.

    For a single spectrum (1-D input) every field drops its batch axis.
    """

    spectra: np.ndarray
    lambdas: np.ndarray
    rho: np.ndarray
    residual: np.ndarray
    n_iter: np.ndarray
    unit_spectra: np.ndarray
    converged: np.ndarray


def fast_project_numpy(model, arr: np.ndarray):
    """Fast projection of validated (k, J) float64 spectra with numpy."""
    amp0 = np.sum(np.abs(arr), axis=1) / model._anchor_scale
    # A zero spectrum has no scale: encode it as is instead of dividing by 0.
    amp0 = np.where(amp0 > 0, amp0, 1.0)
    code = model._layers(
        arr / amp0[:, None],
        model.encoder_weights,
        model.encoder_biases,
        model.residual_factors,
    )
    lam = code @ model._interp_matrix
    if model.simplex:
        lam = lam / (np.sum(lam, axis=1, keepdims=True) + 1e-3)
    y = model._layers(
        lam @ model.anchor_codes,
        model.decoder_weights,
        model.decoder_biases,
        model.residual_factors[::-1],
    )
    amp = np.sum(y * arr, axis=1) / np.maximum(np.sum(y * y, axis=1), _AMPLITUDE_FLOOR)
    return amp[:, None] * y, lam, amp


def fast_project(model, a):
    """Encoder-based projection; see :meth:`IAEModel.fast_project`."""
    from ._model import as_batch

    arr, single = as_batch(a, model.n_channels, "a", "k, J")
    spectra, lam, amp = model._rt_fast(arr)
    if single:
        return spectra[0], lam[0], float(amp[0])
    return spectra, lam, amp


def sum_zero_basis(n: int) -> np.ndarray:
    """Orthonormal basis (n, n-1) of {v : sum(v) = 0}."""
    q, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    # The first n-1 columns of the QR of the centring matrix span its range.
    return np.ascontiguousarray(q[:, : n - 1])


def to_constraint_set(model, lam: np.ndarray) -> np.ndarray:
    """Move weights onto sum(lambda) = 1 along the ones direction (simplex only).

    The interpolator's rescaling leaves them at sum/(sum + 1e-3); a shift, unlike
    a division, stays finite when the sum is near zero.
    """
    if not model.simplex:
        return lam
    return lam + (1.0 - lam.sum(axis=1, keepdims=True)) / lam.shape[1]


def _amplitude(a, g):
    ag = np.einsum("ij,ij->i", a, g)
    gg = np.einsum("ij,ij->i", g, g)
    rho = np.where(gg > 0, np.maximum(ag, 0.0) / np.where(gg > 0, gg, 1.0), 0.0)
    return rho, ag, gg


def project(model, a, lambda0=None, rho0=None, *, max_iter=50, tol=1e-8):
    """Least-squares projection on the manifold; see :meth:`IAEModel.project`."""
    from ._model import as_batch

    arr, single = as_batch(a, model.n_channels, "a", "k, J")
    k, n = arr.shape[0], model.n_anchors
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    max_iter = int(max_iter)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")
    if rho0 is not None:
        rho0 = np.broadcast_to(np.asarray(rho0, dtype=np.float64), (k,))
        if not np.all(np.isfinite(rho0)):
            raise ValueError("rho0 holds NaN or infinite values")
    if lambda0 is None:
        lam, g, jac = model._rt_start(arr)
    else:
        lam, _ = as_batch(lambda0, n, "lambda0", "k, N")
        if lam.shape[0] != k:
            raise ValueError(
                f"lambda0 has {lam.shape[0]} rows, expected {k} (one per spectrum)"
            )
        lam = to_constraint_set(model, lam.copy())
        g, jac = model._rt_generate_free(lam)
    lam = np.array(lam)  # writable
    g, jac = np.array(g), np.array(jac)
    rho, _, _ = _amplitude(arr, g)
    r = arr - rho[:, None] * g
    f = np.einsum("ij,ij->i", r, r)
    aa = np.einsum("ij,ij->i", arr, arr)
    mu = np.full(k, _MU_INIT)
    n_iter = np.zeros(k, dtype=np.int64)
    converged = np.zeros(k, dtype=bool)
    # Spectra the amplitude clamps to 0 sit on a flat part of the objective
    # (residual = ||a||): nothing to improve locally.
    active = rho > 0
    converged[~active] = True
    basis = model._free_basis
    eye = np.eye(basis.shape[1])
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        g_i, rho_i = g[idx], rho[idx]
        # Kaufman's variable-projection Jacobian rho (I - g g^T / ||g||^2) dg/dt,
        # formed through small Gram products: r is orthogonal to g when rho > 0.
        jt = jac[idx]  # (m, J, d): dg/dt
        jt_t = np.swapaxes(jt, 1, 2)
        jtj = jt_t @ jt  # (m, d, d)
        side = jt_t @ np.stack([g_i, r[idx]], axis=2)  # (m, d, 2)
        jtg = side[:, :, 0]
        gg = np.einsum("ij,ij->i", g_i, g_i)
        rho2 = rho_i * rho_i
        hess = rho2[:, None, None] * (
            jtj - jtg[:, :, None] * jtg[:, None, :] / gg[:, None, None]
        )
        grad = rho_i[:, None] * side[:, :, 1]
        scale = np.trace(hess, axis1=1, axis2=2) / hess.shape[1] + 1e-300
        # Decrease the undamped Gauss-Newton model predicts: grad^T H^-1 grad.
        step_gn = np.linalg.solve(
            hess + (1e-12 * scale)[:, None, None] * eye, grad[:, :, None]
        )[:, :, 0]
        predicted = np.einsum("id,id->i", grad, step_gn)
        done = (predicted <= tol * f[idx] + 1e-30 * aa[idx]) | (
            np.linalg.norm(step_gn, axis=1) <= _STEP_TOL
        )
        converged[idx[done]] = True
        active[idx[done]] = False
        keep = ~done
        idx, hess, grad, scale = idx[keep], hess[keep], grad[keep], scale[keep]
        if idx.size == 0:
            break
        damp = hess + (mu[idx] * scale)[:, None, None] * eye
        step = np.linalg.solve(damp, grad[:, :, None])[:, :, 0]
        norm = np.linalg.norm(step, axis=1)
        step *= np.minimum(1.0, _MAX_STEP / np.maximum(norm, 1e-300))[:, None]
        lam_try = lam[idx] + step @ basis.T
        g_try, jac_try = model._rt_generate_free(lam_try)
        a_i = arr[idx]
        rho_try, _, _ = _amplitude(a_i, g_try)
        r_try = a_i - rho_try[:, None] * g_try
        f_try = np.einsum("ij,ij->i", r_try, r_try)
        ok = (f_try < f[idx]) & np.all(np.isfinite(jac_try), axis=(1, 2))
        acc = idx[ok]
        lam[acc], g[acc], jac[acc] = lam_try[ok], g_try[ok], jac_try[ok]
        rho[acc], r[acc], f[acc] = rho_try[ok], r_try[ok], f_try[ok]
        mu[acc] = np.maximum(mu[acc] / 3.0, 1e-12)
        mu[idx[~ok]] *= 4.0
        n_iter[idx] += 1
        # Rejected even with a huge damping: the step is below rounding.
        stuck = active & (mu > _MU_MAX)
        converged[stuck] = True
        active &= ~stuck
        # A step that cuts rho to zero lands on the flat region: stop there.
        active &= rho > 0
    gnorm = np.sqrt(np.einsum("ij,ij->i", g, g))
    unit = g / np.where(gnorm > 0, gnorm, 1.0)[:, None]
    spectra = rho[:, None] * g
    residual = np.sqrt(f)
    if single:
        return ProjectionResult(
            spectra[0], lam[0], rho[0], residual[0], n_iter[0], unit[0], converged[0]
        )
    return ProjectionResult(spectra, lam, rho, residual, n_iter, unit, converged)
