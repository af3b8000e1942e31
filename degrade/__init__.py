"""``fer-degrade``: rebuild degraded FER datasets (under-display camera, low light)."""
