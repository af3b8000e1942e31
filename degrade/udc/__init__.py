"""Physically based under-display-camera (UDC) simulator.

One file per idea:

* :mod:`~degrade.udc.optics` -- Fraunhofer diffraction: pupil -> PSF, sampling, MTF.
* :mod:`~degrade.udc.displays` -- panels (``toled``, ``poled`` cells and materials) and PNG masks.
* ``presets/*.json`` -- the UDC presets as data (calibrated ``toled``, ``poled``; v0.1 ``*-binary``).
* :mod:`~degrade.udc.psf` -- the RGB PSF in image pixels: computed and cached, or measured.
* :mod:`~degrade.udc.ops` -- the image-formation stages as pure batched torch functions.
* :mod:`~degrade.udc.degradation` -- :class:`UDC` (a :class:`~degrade.base.Degradation`),
  its settings and per-image parameter ranges; :func:`make_udc`.
* :mod:`~degrade.udc.severity` -- severity levels 1..5 around the calibrated preset: :func:`udc_severity`.
* :mod:`~degrade.udc.augment` -- :class:`UDCAugment`, the simulator as a kornia augmentation.
* :mod:`~degrade.udc.plots` -- PSF and MTF figures for ``fer-degrade psf``.

Names are imported lazily so ``fer-degrade --help`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "make_udc": "degradation", "UDC": "degradation", "UDCSettings": "degradation",
    "FALLBACKS": "degradation", "PANELS": "displays", "Display": "displays",
    "UDCAugment": "augment", "udc_severity": "severity", "UDC_LEVELS": "severity",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
