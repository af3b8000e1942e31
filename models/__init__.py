"""FER methods behind one registry.

>>> from models import create_model
>>> model = create_model("cnn", preset="tiny", num_classes=7)

Every method is a :class:`~models.base.FERModel` with ``training_step`` / ``predict`` and a
default :class:`~models.recipe.Recipe` (see :mod:`models.base` for the batch contract).
"""

from .base import FERModel, StepContext, StepOutput
from .checkpoint import load_checkpoint, save_checkpoint
from .recipe import Recipe
from .registry import create_model, get_entry, list_models, model_info, register_model

__all__ = ["FERModel", "Recipe", "StepContext", "StepOutput", "create_model", "get_entry",
           "list_models", "load_checkpoint", "model_info", "register_model", "save_checkpoint"]
