"""Built-in synthetic data: X-ray-like spectra, Cas A-like sources and mixtures.

Everything here is made from a seed with numpy and scipy, so a new user can run the
whole pipeline without downloading anything. The data imitate the Cassiopeia A toy
model of the sGMCA paper: four sources (synchrotron, thermal, two iron lines)
observed on 75 channels between 0.5 and 8 keV, but with a *toy* instrument response
and simple analytic emission models instead of the Chandra response and APEC. They
are meant for demos, tests and benchmarks, not for physics.

Spectral families (each spectrum normalised to unit sum, like the Cas A files):

``"sync"``
    Absorbed power law, photon index ``gamma`` and absorbing column ``nh``.
``"thermal"``
    Bremsstrahlung-like continuum of temperature ``kt`` plus emission lines at fixed
    energies whose equivalent widths follow the temperature, absorbed by ``nh``.
``"gauss"``
    One Gaussian emission line, centre ``center``, width ``sigma`` proportional to
    the centre, no continuum.

``load_casa`` reads the paper's Cas A folder when a user has it (it is not shipped).

One private module per concept:

- ``_instrument``: the toy instrument (energy grid, effective area, resolution,
  photoabsorption, response);
- ``_families``: the spectral families and their anchor, training and validation
  sets;
- ``_images``: the source images;
- ``_mixtures``: mixtures X = A0 S0 + N and the demo;
- ``_casa``: the reader of the paper's Cas A folder;
- ``_events``: photon event lists simulated from a mixture (``simulate_events``);
- ``_example_cube``: a FITS cube like a real one, with a WCS, NaN voxels and a
  variance extension (``make_example_cube``).
"""

from ._casa import CasaData, load_casa
from ._events import SimulatedEvents, simulate_events
from ._example_cube import ExampleCube, make_example_cube
from ._families import FAMILIES, make_family, make_spectra_sets
from ._images import make_sources
from ._instrument import (
    apply_response,
    effective_area,
    energy_grid,
    photoabsorption,
    resolution_fwhm,
)
from ._mixtures import Mixture, make_demo_mixture, make_mixture

__all__ = [
    "FAMILIES",
    "CasaData",
    "ExampleCube",
    "Mixture",
    "SimulatedEvents",
    "apply_response",
    "effective_area",
    "energy_grid",
    "load_casa",
    "make_demo_mixture",
    "make_example_cube",
    "make_family",
    "make_mixture",
    "make_sources",
    "make_spectra_sets",
    "photoabsorption",
    "resolution_fwhm",
    "simulate_events",
]
