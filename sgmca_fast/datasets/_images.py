"""Source images that look like the Cas A templates, drawn from a seed.

A supernova-remnant picture on an empty sky: a synchrotron shell with filaments,
thermal clumps and two sets of iron knots, sparse in the starlet domain.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .._validation import integer


def _splat(image, y, x, weights):
    """Add point weights at fractional pixel positions (bilinear)."""
    h, w = image.shape
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = y - y0, x - x0
    for dy, dx, wt in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.add.at(image, (yy[ok], xx[ok]), (weights * wt)[ok])


def _blobs(size, y, x, sigma, amp):
    """Sum of isotropic Gaussians (pixels), each drawn on its own patch."""
    image = np.zeros((size, size))
    for yc, xc, s, a in zip(y, x, sigma, amp, strict=True):
        r = int(np.ceil(4 * s))
        ya, yb = max(int(yc) - r, 0), min(int(yc) + r + 2, size)
        xa, xb = max(int(xc) - r, 0), min(int(xc) + r + 2, size)
        if ya >= yb or xa >= xb:
            continue
        gy = np.exp(-0.5 * ((np.arange(ya, yb) - yc) / s) ** 2)
        gx = np.exp(-0.5 * ((np.arange(xa, xb) - xc) / s) ** 2)
        image[ya:yb, xa:xb] += a * np.outer(gy, gx)
    return image


def _filaments(rng, size, cy, cx, radius, count, inside):
    """Thin curved filaments: rim arcs (inside=False) or interior wisps."""
    image = np.zeros((size, size))
    step = 0.3  # pixels between splatted points
    for _ in range(count):
        if inside:
            # a smooth random walk started inside the shell
            rho = radius * np.sqrt(rng.uniform(0.0, 0.8))
            phi = rng.uniform(0, 2 * np.pi)
            length = radius * rng.uniform(0.2, 0.6)
            npts = max(int(length / step), 2)
            heading = rng.uniform(0, 2 * np.pi)
            turn = np.cumsum(rng.normal(0, 0.02 * 128 / size, npts))
            ang = heading + np.cumsum(turn) * step / max(radius, 1) * 20
            ys = cy + rho * np.sin(phi) + np.cumsum(np.sin(ang)) * step
            xs = cx + rho * np.cos(phi) + np.cumsum(np.cos(ang)) * step
        else:
            # an arc just inside the outer edge, slightly wavy in radius
            phi0 = rng.uniform(0, 2 * np.pi)
            span = rng.uniform(0.3, 1.2)
            npts = max(int(span * radius / step), 2)
            phi = phi0 + np.linspace(0, span, npts)
            wave = 0.02 * np.sin(phi * rng.integers(3, 9) + rng.uniform(0, 6.3))
            rho = radius * (rng.uniform(0.9, 0.96) + wave)
            ys, xs = cy + rho * np.sin(phi), cx + rho * np.cos(phi)
        taper = np.sin(np.linspace(0, np.pi, ys.size)) ** 0.5  # fade at both ends
        # nothing beyond the forward shock
        taper *= np.hypot(ys - cy, xs - cx) < 0.98 * radius
        _splat(image, ys, xs, rng.uniform(0.3, 1.0) * taper)
    return ndimage.gaussian_filter(image, max(0.5, 0.6 * size / 128))


def _soft_floor(image, fraction):
    """Subtract a fraction of the maximum and clip: compact support, zero sky."""
    return np.maximum(image - fraction * image.max(), 0.0)


def _synchrotron(rng, size, cy, cx, radius):
    """Limb-brightened shell, patchy in azimuth, plus rim arcs and interior wisps."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    rho = np.hypot(yy - cy, xx - cx)
    # thin-shell projection sqrt(R^2 - r^2) - sqrt(r_in^2 - r^2)
    r_in = 0.8 * radius
    shell = np.sqrt(np.maximum(radius**2 - rho**2, 0)) - np.sqrt(
        np.maximum(r_in**2 - rho**2, 0)
    )
    shell /= shell.max()
    # patchy brightness: a smooth log-normal random field
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.06 * size)
    sync = shell * np.exp(0.5 * field / field.std())
    rim = _filaments(rng, size, cy, cx, radius, 14, inside=False)
    wisps = _filaments(rng, size, cy, cx, radius, 25, inside=True)
    return (
        ndimage.gaussian_filter(sync, 0.5)
        + 1.5 * rim / rim.max()
        + 0.8 * wisps / wisps.max()
    )


def _clusters(rng, geometry, n_clusters, n_knots, sectors, spread, knot_sigma,
              r_range):
    """Clusters of Gaussian knots around the given azimuths (radians).

    ``geometry`` is ``(size, cy, cx, radius)`` in pixels; ``spread`` and
    ``knot_sigma`` are fractions of ``size``, ``r_range`` of ``radius``.
    """
    size, cy, cx, radius = geometry
    ys, xs, ss, amps = [], [], [], []
    for k in range(n_clusters):
        ang = sectors[k % len(sectors)] + rng.normal(0, 0.25)
        rr = radius * rng.uniform(*r_range)
        y0, x0 = cy + rr * np.sin(ang), cx + rr * np.cos(ang)
        sd = spread * size * rng.uniform(0.6, 1.4)
        ys.append(y0 + rng.normal(0, sd, n_knots))
        xs.append(x0 + rng.normal(0, sd, n_knots))
        ss.append(knot_sigma * size * rng.uniform(0.5, 1.5, n_knots))
        amps.append(rng.lognormal(0, 0.5, n_knots))
    return _blobs(size, *(np.concatenate(v) for v in (ys, xs, ss, amps)))


def make_sources(size: int = 128, random_state=None) -> np.ndarray:
    """Four source images that look like the Cas A templates, sparse in starlets.

    Drawn in a frame scaled with ``size`` (the same picture at any size), on a zero
    background:

    0. synchrotron: a projected spherical shell (limb-brightened), modulated in
       azimuth, with thin arcs at the forward shock and thin interior filaments;
    1. thermal: a clumpy shell of Gaussian clumps inside the forward shock,
       gathered in a few azimuthal sectors;
    2. iron I and 3. iron II: clusters of compact knots in different sectors.

    Each image is non-negative with unit L2 norm. Smooth blobs and thin filaments
    on an empty sky make most starlet detail coefficients negligible.

    Parameters
    ----------
    size : int, optional
        Height and width in pixels (>= 16).
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator.

    Returns
    -------
    sources : (4, size, size) ndarray
        float64 images, rows of unit L2 norm, in the order sync, thermal, Fe I, Fe II.
    """
    size = integer(size, "size", minimum=16)
    rng = np.random.default_rng(random_state)
    c = (size - 1) / 2
    cy, cx = c + rng.uniform(-0.02, 0.02, 2) * size
    radius = 0.44 * size
    geometry = (size, cy, cx, radius)
    sync = _synchrotron(rng, size, cy, cx, radius)
    base = rng.uniform(0, 2 * np.pi)
    # thermal clumps along the reverse-shock region, in three broad sectors
    thermal_sectors = base + np.array([0.0, 2.2, 4.0])
    therm = _clusters(rng, geometry, 9, 12, thermal_sectors, 0.06, 0.025, (0.55, 0.85))
    # iron knots: Fe I near the thermal sectors' gaps, Fe II on the other side
    fe1 = _clusters(rng, geometry, 4, 18, base + np.array([1.1, 3.1]), 0.035, 0.012,
                    (0.3, 0.8))
    fe2 = _clusters(rng, geometry, 3, 18, base + np.array([5.2, 0.5]), 0.03, 0.012,
                    (0.4, 0.9))
    images = np.stack(
        [
            _soft_floor(sync, 0.02),
            _soft_floor(therm, 0.05),
            _soft_floor(fe1, 0.05),
            _soft_floor(fe2, 0.05),
        ]
    )
    return images / np.linalg.norm(images.reshape(4, -1), axis=1)[:, None, None]
