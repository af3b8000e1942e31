"""Shared mechanics of the FER degraded-camera toolkit.

Everything that more than one command needs lives here exactly once: errors, image I/O,
atomic writes, per-item seeding, manifests with sha256, progress bars, the canonical
expression classes and the dataset sources (RAF-DB, FERPlus, KDEF, any labelled folder and
the embedded sample set).
"""

__version__ = "0.1.0"
