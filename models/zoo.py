"""Imports every method module so that its ``register_model`` call runs.

Add one line per method file here.
"""

from . import cnn  # noqa: F401
from . import lrdif  # noqa: F401
