"""Slow, obvious numpy versions of kernels and formulas, for the tests to check."""

import numpy as np


def mad_std(x):
    x = np.asarray(x, dtype=np.float64)
    med = np.median(x, axis=1, keepdims=True)
    return np.median(np.abs(x - med), axis=1) / 0.6745


def support_thresholds(x, thr, fraction, min_count=5):
    x = np.asarray(x, dtype=np.float64)
    thr = np.broadcast_to(np.asarray(thr, dtype=np.float64), x.shape[:1])
    out = np.empty(x.shape[0])
    for r, row in enumerate(np.abs(x)):
        npix = int(np.sum(row > thr[r]))
        kval = min(max(int(fraction * npix), min_count), row.size)
        out[r] = np.sort(row)[::-1][kval - 1]
    return out


def threshold(x, thr, prev=None, kstd=None, hard=False):
    x = np.asarray(x, dtype=np.float64)
    t = np.broadcast_to(np.asarray(thr, dtype=np.float64), x.shape[:1])[:, None]
    if prev is not None:
        kstd = np.broadcast_to(np.asarray(kstd, dtype=np.float64), x.shape[:1])
        safe = np.where(kstd == 0, 1.0, kstd)[:, None]
        weight = np.where(kstd[:, None] == 0, 1.0, np.abs(prev) / safe + 1.0)
        t = t / weight
    if hard:
        return np.where(np.abs(x) > t, x, 0.0)
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def nonneg_sources(w):
    w = np.array(w, dtype=np.float64)
    negative = w.sum(axis=1) < 0  # (I, P)
    return np.where(negative[:, None, :], 0.0, w)


def _project(basis, rows):
    """Orthogonal projection of each row of ``rows`` on the span of ``basis`` rows."""
    coef = np.linalg.lstsq(basis.T, rows.T, rcond=None)[0]
    return (basis.T @ coef).T


def bss_eval(S0, S, noise=None):
    """BSS-eval with explicit least-squares projections (correct, not transposed)."""
    S0 = np.asarray(S0, dtype=np.float64).reshape(len(S0), -1)
    S = np.asarray(S, dtype=np.float64).reshape(len(S), -1)
    S = S / np.linalg.norm(S, axis=1, keepdims=True)
    target = (np.sum(S * S0, axis=1) / np.sum(S0**2, axis=1))[:, None] * S0
    p_s = _project(S0, S)
    e_interf = p_s - target
    e_noise = np.zeros_like(S)
    if noise is not None:
        noise = np.asarray(noise, dtype=np.float64).reshape(len(noise), -1)
        e_noise = _project(np.vstack([S0, noise]), S) - p_s
    e_artif = S - p_s - e_noise

    def energy(e):
        return np.sum(e**2)

    return {
        "SDR": 10 * np.log10(energy(target) / energy(e_interf + e_noise + e_artif)),
        "SIR": 10 * np.log10(energy(target) / energy(e_interf)),
        "SNR": (
            10 * np.log10(energy(target + e_interf) / energy(e_noise))
            if noise is not None
            else np.inf
        ),
        "SAR": 10 * np.log10(energy(target + e_interf + e_noise) / energy(e_artif)),
    }


def authors_source_eval(S0, S, N=None):
    """The authors' utils.source_eval (transposed projection), rows unit-normalised."""
    S0 = S0 / np.linalg.norm(S0, axis=1, keepdims=True)
    S = S / np.linalg.norm(S, axis=1, keepdims=True)
    target = (np.sum(S * S0, axis=1) / np.sum(S0**2, axis=1))[:, None] * S0
    ps = np.linalg.solve(S0 @ S0.T, S0 @ S.T @ S0)
    e_interf = ps - target
    e_noise = 0 if N is None else (S @ N.T / np.sum(N**2, axis=1)) @ N
    e_artif = S - (ps + e_noise)
    sdr = 10 * np.log10(np.sum(target**2) / np.sum((e_interf + e_noise + e_artif) ** 2))
    sir = 10 * np.log10(np.sum(target**2) / np.sum(e_interf**2))
    sar = 10 * np.log10(np.sum((ps + e_noise) ** 2) / np.sum(e_artif**2))
    return {"SDR": sdr, "SIR": sir, "SAR": sar}


def sad_arccos(A0, A):
    """The authors' SAD: -10 log10(mean arccos(clipped cosine))."""
    cos = np.sum(A0 * A, axis=0) / np.sqrt(np.sum(A0**2, axis=0) * np.sum(A**2, axis=0))
    return -10 * np.log10(np.mean(np.arccos(np.clip(cos, -1, 1))))


ACTIVATIONS = {  # the IAE activations; the leaky ReLU's slope is 0.01
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "linear": lambda z: z,
}


def iae_residual_factors(res_factor, n_layers):
    """r_l = res_factor (2^(l / (L - 1)) - 1) of encoder layer l (0 for L = 1)."""
    if n_layers == 1:
        return [0.0]
    return [res_factor * (2.0 ** (ell / (n_layers - 1)) - 1.0)
            for ell in range(n_layers)]


def decoder_preactivations(m, lam):
    """An IAE decoder's pre-activations h W + b of every layer, side by side.

    ``h`` starts at ``lam @ phi(anchors)``; decoder layer l uses r_{L-1-l}.
    """
    r = iae_residual_factors(m.res_factor, m.n_layers)[::-1]
    h = lam @ m.anchor_codes
    zs = []
    for w, b, r_l in zip(m.decoder_weights, m.decoder_biases, r, strict=True):
        z = h @ w + b
        zs.append(z)
        h = ACTIVATIONS[m.activation](z) + r_l * h
    return np.concatenate(zs, axis=-1)


def random_iae_parts(n_channels, n_anchors, n_layers, seed=0):
    """Anchors (unit-sum rows) and random layers: the tests' recipe for an IAE.

    Returns ``(anchors, enc_w, enc_b, dec_w, dec_b)``, weights of std
    ``1 / sqrt(J)`` and biases of std 0.1, drawn in that order from ``seed``.
    """
    rng = np.random.default_rng(seed)
    J, L = n_channels, n_layers
    anchors = rng.random((n_anchors, J)) + 0.1
    anchors /= anchors.sum(axis=1, keepdims=True)
    ws = [rng.standard_normal((J, J)) / np.sqrt(J) for _ in range(2 * L)]
    bs = [0.1 * rng.standard_normal(J) for _ in range(2 * L)]
    return anchors, ws[:L], bs[:L], ws[L:], bs[L:]
