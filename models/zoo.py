"""Imports every method module so that its ``register_model`` call runs.

Add one line per method file here.
"""

from . import cnn  # noqa: F401
from . import lrdif  # noqa: F401
from . import scn  # noqa: F401
from . import rul  # noqa: F401
from . import eac  # noqa: F401
from . import dan  # noqa: F401
from . import arm  # noqa: F401
from . import manet  # noqa: F401
from . import dacl  # noqa: F401
from . import lldif  # noqa: F401
from . import posterpp  # noqa: F401
