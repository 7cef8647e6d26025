"""Projections of spectra on an IAE model: fast (encoder) and least squares.

Both are those of docs/algorithm.md section 5, run through a model's backend
(``_generator.Generator``): this module never evaluates the network itself.

The least-squares projection solves, for each row ``a`` of a batch,

    min over lambda (sum(lambda) = 1) and rho >= 0 of ||a - rho g(lambda)||^2

with ``g(lambda) = psi(lambda PhiE)``. For fixed ``lambda`` the best amplitude is
``rho* = max(0, <a, g> / ||g||^2)``; eliminating it (variable projection) leaves
N - 1 free latent coordinates ``t`` (``lambda = lambda_base + E t``, ``E`` an
orthonormal basis of the sum-zero subspace), solved by Levenberg-Marquardt with
the Kaufman Jacobian ``-rho (I - g g^T / ||g||^2) dg/dt``. Every spectrum keeps its
own damping and convergence flag; a step is accepted only if it lowers that
spectrum's residual, so the result is never worse than its start.

The step is Kaufman's Gauss-Newton step rescaled by the amplitude it implies:
the linear model ``a ~ c g + dg/dt u`` (c, u free) is solved exactly and the
latent step is ``u / c``, which lands on the optimum when g is affine. With
leaky ReLU, ReLU or linear layers g is affine in lambda between activation
kinks, and the model evaluations also return the decoder's pre-activations and
their derivatives: a step along which none of them changes sign stays where g
is affine, so it is taken without evaluating the model (g moves along the
derivatives at hand, which stay valid). From the fast projection's start most
spectra reach the optimum that way, at the cost of the start's evaluation alone
(~88% of the held-out Cas A spectra); a step that crosses a kink is evaluated
with its Jacobian. For other activations (tanh) a step the Gauss-Newton model
predicts to be the last is evaluated without its Jacobian and must reach the
residual the model predicts. The bookkeeping runs in Numba kernels, so that the
model evaluations (onnxruntime) are nearly all the time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from .._validation import InputError
from ._checks import as_batch
from ._network import PIECEWISE_AFFINE

__all__ = ["ProjectionResult", "fast_project", "project"]

# Initial damping relative to the mean curvature: small, as Madsen, Nielsen &
# Tingleff (2004) advise for a good start (the fast projection's weights are
# typically within 0.003 of the optimum); 1e-3 took one evaluation more on ~12% of
# the held-out Cas A spectra.
_MU_INIT = 1e-6
_MU_MAX = 1e8
_STEP_TOL = 1e-10  # latent steps below this (lambda units) change nothing
_MAX_STEP = 1.0  # largest latent step (in lambda units) per iteration
# Spectra projected per batch: a batch holds g, its Jacobian, the pre-activations
# and theirs, (1 + d) (J + P) doubles per spectrum in our buffers and as many in
# onnxruntime's (~9 kB each for the Cas A models): a cube's pixels are split.
_CHUNK = 4096
# Dot products may be reassociated (vectorised); decisions stay IEEE.
_DOT_FASTMATH = {"reassoc", "contract", "nsz"}


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
        Levenberg-Marquardt iterations (steps tried) per spectrum; a step that
        stays where g is affine costs no model evaluation.
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


def fast_project(generator, a):
    """Encoder-based projection; see :meth:`IAEModel.fast_project`."""
    arr, single = as_batch(a, generator.network.anchors.shape[1], "a", "k, J")
    spectra, lam, amp = generator.fast_project(arr)
    if single:
        return spectra[0], lam[0], float(amp[0])
    return spectra, lam, amp


@njit(cache=True)
def _solve_shifted(hess, shift, rhs, out, work):
    """Solve ``(hess + shift I) out = rhs`` for one small system, in place.

    Gaussian elimination with partial pivoting on ``work`` (d, d+1); a zero
    (or NaN) pivot gives ``out = 0``: no step.
    """
    d = rhs.shape[0]
    for p in range(d):
        for q in range(d):
            work[p, q] = hess[p, q]
        work[p, p] += shift
        work[p, d] = rhs[p]
    for col in range(d):
        piv = col
        for p in range(col + 1, d):
            if abs(work[p, col]) > abs(work[piv, col]):
                piv = p
        if not work[piv, col] != 0.0:
            for p in range(d):
                out[p] = 0.0
            return
        if piv != col:
            for q in range(col, d + 1):
                work[col, q], work[piv, q] = work[piv, q], work[col, q]
        for p in range(col + 1, d):
            factor = work[p, col] / work[col, col]
            for q in range(col, d + 1):
                work[p, q] -= factor * work[col, q]
    for p in range(d - 1, -1, -1):
        acc = work[p, d]
        for q in range(p + 1, d):
            acc -= work[p, q] * out[q]
        out[p] = acc / work[p, p]


@njit(cache=True, fastmath=_DOT_FASTMATH)
def _dot(x, y):
    acc = 0.0
    for j in range(x.shape[0]):
        acc += x[j] * y[j]
    return acc


@njit(cache=True)
def _start_state(arr, g, rho, r, f, aa, active, converged):
    """Residual state at the start: best amplitude, residual and its square."""
    n_channels = arr.shape[1]
    for i in range(arr.shape[0]):
        gg = _dot(g[i], g[i])
        rho[i] = max(_dot(arr[i], g[i]), 0.0) / gg if gg > 0.0 else 0.0
        for j in range(n_channels):
            r[i, j] = arr[i, j] - rho[i] * g[i, j]
        f[i] = _dot(r[i], r[i])
        aa[i] = _dot(arr[i], arr[i])
        # Spectra the amplitude clamps to 0 sit on a flat part of the
        # objective (residual = ||a||): nothing to improve locally.
        active[i] = rho[i] > 0.0
        converged[i] = not active[i]


@njit(cache=True, fastmath=_DOT_FASTMATH)
def _add_rows(out, base, rows, step):
    """``out = base + step @ rows`` for one spectrum (rows: (d, n))."""
    for u in range(out.shape[0]):
        out[u] = base[u]
    for p in range(step.shape[0]):
        coef = step[p]
        row = rows[p]
        for u in range(out.shape[0]):
            out[u] += coef * row[u]


@njit(cache=True)
def _within_piece(z, dz, step, z_try):
    """Whether every pre-activation keeps its sign over the step.

    ``z`` (P,) are the decoder's pre-activations and ``dz`` (d, P) their
    derivatives; ``z_try`` receives ``z + step @ dz``. If the first layer's keep
    their signs at the step's end, they keep them along it (they are affine in
    the step), so that layer is affine there, and so the next layer's
    pre-activations are affine too: layer by layer, g is then affine over the
    whole step, with the derivatives it has at its start.
    """
    _add_rows(z_try, z, dz, step)
    crossed = 0
    for u in range(z.shape[0]):
        # A unit held at exactly 0 (its weights and bias 0) is no kink either.
        # (A count rather than an early exit: the loop vectorises.)
        kept = z[u] * z_try[u] > 0.0 or (z[u] == 0.0 and z_try[u] == 0.0)
        crossed += 0 if kept else 1
    return crossed == 0


@njit(cache=True)
def _free_step(i, arr, step, basis, g_try, r_try, z_try, lam, g, tangents, r, z,
               rho, f):
    """Take ``step`` within the piece where g is affine: no model evaluation.

    g moves along its derivatives, which (like those of the pre-activations,
    whose new values are ``z_try``) stay as they are; the step is taken if it
    lowers the squared residual (rho re-eliminated). ``g_try`` and ``r_try``
    are scratch rows. Returns whether it was taken.
    """
    _add_rows(g_try, g[i], tangents[i], step)
    gg = _dot(g_try, g_try)
    rho_try = max(_dot(arr[i], g_try), 0.0) / gg if gg > 0.0 else 0.0
    for j in range(g.shape[1]):
        r_try[j] = arr[i, j] - rho_try * g_try[j]
    f_try = _dot(r_try, r_try)
    if not f_try < f[i]:
        return False
    for col in range(lam.shape[1]):
        lam[i, col] += _dot(basis[col], step)
    for j in range(g.shape[1]):
        g[i, j] = g_try[j]
        r[i, j] = r_try[j]
    for u in range(z.shape[1]):
        z[i, u] = z_try[u]
    rho[i] = rho_try
    f[i] = f_try
    return True


# Categories of proposed steps (first axis of the step buffers).
_FULL, _FINAL = 0, 1


@njit(cache=True)
def _propose_steps(arr, tangents, g, r, z, dz, rho, f, aa, mu, pred_prev, lam,
                   basis, tol, affine, kinks, max_iter, n_iter, retry_full,
                   active, converged, spectra, lam_try, predicted):
    """Levenberg-Marquardt steps for each active spectrum, up to a model evaluation.

    ``tangents[i, p]`` is dg/dt_p (the free Jacobian as rows). The normal
    equations of the Kaufman Jacobian ``rho (I - g g^T / ||g||^2) dg/dt`` come
    from small Gram products (the residual is orthogonal to g when rho > 0).
    Their (damped) solution ``s`` holds the amplitude at rho; the linear model
    ``a ~ c g + dg/dt u`` has the same minimiser with ``u = rho s`` and
    ``c = rho (1 - <dg/dt s, g> / ||g||^2)``, so the step taken is
    ``u / c = s / (1 - <dg/dt s, g> / ||g||^2)`` (when ``c > 0``): exact for an
    affine g, where the Kaufman step is not. Each active spectrum

    - converges, when the undamped model predicts a decrease of the squared
      residual ``<= tol * f`` (or a step below ``_STEP_TOL``): it is marked
      converged and inactive;
    - stops, unconverged, after ``max_iter`` iterations;
    - takes the step at once, without evaluating the model, if g is
      ``affine`` between activation kinks and the step crosses none of them
      (:func:`_within_piece`; ``kinks`` False: there are none), then goes on;
    - or proposes the step, filed under ``_FINAL`` (evaluate g only; the
      projection stops there if :func:`_accept_steps` finds the residual the
      model predicts) when g is not piecewise affine and the next decrease,
      extrapolated from the rate so far, is ``<= tol * f`` (unless
      ``retry_full[i]``: its last final step missed), and under ``_FULL``
      otherwise (evaluate g, its Jacobian and the pre-activations).

    For category ``c`` and its ``n``-th step: ``spectra[c, n]`` is the
    spectrum, ``lam_try[c, n]`` the trial weights, ``predicted[c, n, 0]`` the
    undamped model decrease and ``predicted[c, n, 1]`` that of the step taken.

    Returns
    -------
    counts : (int, int)
        Steps filed under ``_FULL`` and ``_FINAL``.
    """
    d = tangents.shape[1]
    hess = np.empty((d, d))
    grad = np.empty(d)
    jtg = np.empty(d)
    step = np.empty(d)
    work = np.empty((d, d + 1))
    g_try = np.empty(g.shape[1])
    r_try = np.empty(g.shape[1])
    z_try = np.empty(z.shape[1])
    counts = np.zeros(2, dtype=np.int64)
    for i in range(g.shape[0]):
        while active[i]:
            if n_iter[i] >= max_iter:
                active[i] = False
                break
            gg = _dot(g[i], g[i])
            rho2 = rho[i] * rho[i]
            trace = 0.0
            for p in range(d):
                jtg[p] = _dot(tangents[i, p], g[i])
                grad[p] = rho[i] * _dot(tangents[i, p], r[i])
            for p in range(d):
                for q in range(p + 1):
                    jtj = _dot(tangents[i, p], tangents[i, q])
                    hess[p, q] = rho2 * (jtj - jtg[p] * jtg[q] / gg)
                    hess[q, p] = hess[p, q]
                trace += hess[p, p]
            scale = trace / d + 1e-300
            _solve_shifted(hess, 1e-12 * scale, grad, step, work)
            decrease = _dot(grad, step)
            small = np.sqrt(_dot(step, step)) <= _STEP_TOL
            if decrease <= tol * f[i] + 1e-30 * aa[i] or small:
                converged[i] = True
                active[i] = False
                break
            _solve_shifted(hess, mu[i] * scale, grad, step, work)
            taken = 0.0
            for p in range(d):
                taken += step[p] * (2.0 * grad[p] - _dot(hess[p], step))
            # The amplitude the linear model lands on, relative to rho.
            new_amp = 1.0 - _dot(jtg, step) / gg
            if new_amp > 0.0:
                for p in range(d):
                    step[p] /= new_amp
            length = np.sqrt(_dot(step, step))
            if length > _MAX_STEP:
                for p in range(d):
                    step[p] *= _MAX_STEP / length
                taken *= _MAX_STEP / length
            # (_within_piece also moves the pre-activations into z_try.)
            if affine and (_within_piece(z[i], dz[i], step, z_try) or not kinks):
                n_iter[i] += 1
                if _free_step(i, arr, step, basis, g_try, r_try, z_try, lam, g,
                              tangents, r, z, rho, f):
                    mu[i] = max(mu[i] / 3.0, 1e-12)
                    pred_prev[i] = decrease
                    # A step that cuts rho to zero lands on the flat region.
                    if not rho[i] > 0.0:
                        active[i] = False
                else:
                    mu[i] *= 4.0
                    if mu[i] > _MU_MAX:  # the step is below rounding
                        converged[i] = True
                        active[i] = False
                continue
            # Rate of convergence so far: the model decrease relative to the
            # last point's (linear convergence) or, with no history, to f
            # (quadratic).
            rate = decrease / (f[i] + 1e-300)
            if pred_prev[i] > 0.0:
                rate = max(rate, decrease / pred_prev[i])
            next_decrease = (decrease - taken) + decrease * min(rate, 1.0)
            last = not affine and not retry_full[i] and next_decrease <= tol * f[i]
            c = _FINAL if last else _FULL
            n = counts[c]
            counts[c] += 1
            spectra[c, n] = i
            predicted[c, n, 0] = decrease
            predicted[c, n, 1] = taken
            for col in range(lam.shape[1]):
                lam_try[c, n, col] = lam[i, col] + _dot(basis[col], step)
            break
    return counts[0], counts[1]


@njit(cache=True)
def _accept_steps(arr, spectra, lam_try, g_try, tangents_try, z_try, dz_try, final,
                  predicted, tol, lam, g, tangents, z, dz, rho, r, f, mu,
                  pred_prev, n_iter, retry_full, active, converged):
    """Accept or reject the trial points ``lam_try[n]`` of spectra ``spectra[n]``.

    ``g_try[n]`` (and, unless ``final``, ``tangents_try[n]``, ``z_try[n]`` and
    ``dz_try[n]``) were evaluated at ``lam_try[n]``; ``predicted[n]`` is from
    :func:`_propose_steps`. A step is accepted if it lowers the squared
    residual (rho re-eliminated) with a finite Jacobian; accepting divides the
    damping by 3, rejecting multiplies it by 4, and a rejected step leaves the
    point (and its derivatives) as it was. A final step, evaluated without
    Jacobian, ends the projection, so it must also reach the squared residual
    ``f_try`` its model predicts within ``tol * f_try``, counting what the
    damping left of the undamped model decrease; if it does not, the step is
    retried with its Jacobian (``retry_full``).
    """
    n_channels = arr.shape[1]
    for n in range(spectra.shape[0]):
        i = spectra[n]
        gg = _dot(g_try[n], g_try[n])
        rho_try = max(_dot(arr[i], g_try[n]), 0.0) / gg if gg > 0.0 else 0.0
        f_try = 0.0
        for j in range(n_channels):
            res = arr[i, j] - rho_try * g_try[n, j]
            f_try += res * res
        ok = f_try < f[i]
        if final:
            model_gap = abs(f_try - (f[i] - predicted[n, 1]))
            left = predicted[n, 0] - predicted[n, 1]
            if ok and model_gap + left > tol * f_try:
                # A better point, but not known to be the optimum: retry
                # the same step with the Jacobian.
                retry_full[i] = True
                n_iter[i] += 1
                continue
        else:
            for p in range(tangents_try.shape[1]):
                ok = ok and np.isfinite(_dot(tangents_try[n, p], tangents_try[n, p]))
        n_iter[i] += 1
        # (Explicit loops rather than slice assignments: they compile in a
        # fraction of the time.)
        if ok:
            for col in range(lam.shape[1]):
                lam[i, col] = lam_try[n, col]
            for j in range(n_channels):
                g[i, j] = g_try[n, j]
                r[i, j] = arr[i, j] - rho_try * g_try[n, j]
            if not final:
                for p in range(tangents.shape[1]):
                    for j in range(n_channels):
                        tangents[i, p, j] = tangents_try[n, p, j]
                for u in range(z.shape[1]):
                    z[i, u] = z_try[n, u]
                    for p in range(dz.shape[1]):
                        dz[i, p, u] = dz_try[n, p, u]
                retry_full[i] = False
            rho[i] = rho_try
            f[i] = f_try
            mu[i] = max(mu[i] / 3.0, 1e-12)
            pred_prev[i] = predicted[n, 0]
            if final:
                converged[i] = True
                active[i] = False
            # A step that cuts rho to zero lands on the flat region: stop there.
            if not rho_try > 0.0:
                active[i] = False
        else:
            mu[i] *= 4.0
            retry_full[i] = True
            # Rejected even with a huge damping: the step is below rounding.
            if mu[i] > _MU_MAX:
                converged[i] = True
                active[i] = False


@njit(cache=True)
def _outputs(g, rho, f):
    """``rho g``, ``g / ||g||`` (0 where g is) and ``sqrt(f)``, row by row."""
    spectra = np.empty_like(g)
    unit = np.empty_like(g)
    for i in range(g.shape[0]):
        norm = np.sqrt(_dot(g[i], g[i]))
        inv = 1.0 / norm if norm > 0.0 else 1.0
        for j in range(g.shape[1]):
            spectra[i, j] = rho[i] * g[i, j]
            unit[i, j] = g[i, j] * inv
    return spectra, unit, np.sqrt(f)


def _kernel_ready(x):
    """``x`` as a C-ordered, writable float64 array (copied only if it is not)."""
    if x.dtype == np.float64 and x.flags.c_contiguous and x.flags.writeable:
        return x
    return np.array(x, dtype=np.float64, order="C")


def _check_settings(max_iter, tol, rho0, k):
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise InputError(
            f"max_iter must be a non-negative integer, got {max_iter!r}"
        )
    if not (np.isfinite(tol) and tol >= 0):
        raise InputError(f"tol must be finite and >= 0, got {tol!r}")
    if rho0 is not None:
        rho0 = np.broadcast_to(np.asarray(rho0, dtype=np.float64), (k,))
        if not np.isfinite(rho0).all():
            raise InputError("rho0 holds NaN or infinite values")
    return int(max_iter)


def project(generator, a, lambda0=None, rho0=None, *, max_iter=50, tol=1e-8):
    """Least-squares projection on the manifold; see :meth:`IAEModel.project`.

    ``generator`` (``_generator.Generator``) evaluates the model.
    """
    net = generator.network
    n_anchors, n_channels = net.anchors.shape
    arr, single = as_batch(a, n_channels, "a", "k, J")
    k = arr.shape[0]
    max_iter = _check_settings(max_iter, tol, rho0, k)
    if lambda0 is not None:
        lambda0, _ = as_batch(lambda0, n_anchors, "lambda0", "k, N")
        if lambda0.shape[0] != k:
            raise InputError(
                f"lambda0 has {lambda0.shape[0]} rows, expected {k} (one per spectrum)"
            )
    if k <= _CHUNK:
        result = _project_batch(generator, arr, lambda0, max_iter, tol)
    else:
        parts = [
            _project_batch(generator, arr[start:start + _CHUNK],
                           None if lambda0 is None else lambda0[start:start + _CHUNK],
                           max_iter, tol)
            for start in range(0, k, _CHUNK)
        ]
        result = ProjectionResult(*(
            np.concatenate([getattr(part, field.name) for part in parts])
            for field in fields(ProjectionResult)
        ))
    if single:
        return ProjectionResult(*(
            getattr(result, field.name)[0] for field in fields(ProjectionResult)
        ))
    return result


def _project_batch(generator, arr, lambda0, max_iter, tol):
    """Project validated (k, J) spectra, from validated (k, N) weights or None."""
    net = generator.network
    k, n = arr.shape[0], net.anchors.shape[0]
    if lambda0 is None:
        lam, g, tangents, z, dz = generator.start(arr)
    else:
        lam = net.to_constraint_set(lambda0.copy())
        g, tangents, z, dz = generator.generate_free(lam)
    # The kernels update these in place: C-ordered, writable float64.
    lam, g, tangents = _kernel_ready(lam), _kernel_ready(g), _kernel_ready(tangents)
    z, dz = _kernel_ready(z), _kernel_ready(dz)
    r = np.empty_like(g)
    # Per-spectrum state (one allocation for the reals, one for the flags).
    rho, f, aa, mu, pred_prev = np.zeros((5, k))
    active, converged, retry_full = np.zeros((3, k), dtype=bool)
    n_iter = np.zeros(k, dtype=np.int64)
    _start_state(arr, g, rho, r, f, aa, active, converged)
    mu.fill(_MU_INIT)
    affine = net.activation in PIECEWISE_AFFINE
    kinks = net.activation != "linear"
    # Step buffers, per category (_FULL, _FINAL): see _propose_steps.
    spectra = np.empty((2, k), dtype=np.int64)
    lam_try = np.empty((2, k, n))
    predicted = np.empty((2, k, 2))
    basis = net.free_basis
    # Every round evaluates the model at most once per spectrum and counts an
    # iteration for it, so max_iter rounds are enough.
    for _ in range(max_iter):
        n_full, n_final = _propose_steps(
            arr, tangents, g, r, z, dz, rho, f, aa, mu, pred_prev, lam, basis, tol,
            affine, kinks, max_iter, n_iter, retry_full, active, converged, spectra,
            lam_try, predicted,
        )
        if n_full:
            g_try, tangents_try, z_try, dz_try = generator.generate_free(
                lam_try[_FULL, :n_full]
            )
            _accept_steps(
                arr, spectra[_FULL, :n_full], lam_try[_FULL, :n_full],
                _kernel_ready(g_try), _kernel_ready(tangents_try),
                _kernel_ready(z_try), _kernel_ready(dz_try), False,
                predicted[_FULL, :n_full], tol, lam, g, tangents, z, dz, rho, r, f,
                mu, pred_prev, n_iter, retry_full, active, converged,
            )
        if n_final:
            g_try = generator.generate(lam_try[_FINAL, :n_final])
            _accept_steps(
                arr, spectra[_FINAL, :n_final], lam_try[_FINAL, :n_final],
                _kernel_ready(g_try), tangents[:0], z[:0], dz[:0], True,
                predicted[_FINAL, :n_final], tol, lam, g, tangents, z, dz, rho, r, f,
                mu, pred_prev, n_iter, retry_full, active, converged,
            )
        if n_full + n_final == 0:
            break
    spectra, unit, residual = _outputs(g, rho, f)
    return ProjectionResult(spectra, lam, rho, residual, n_iter, unit, converged)
