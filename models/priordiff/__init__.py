"""What LRDif and LLDif share: the stage logic (:mod:`.method`) and their settings as nested
dataclasses (:mod:`.config`). The networks live in :mod:`models.blocks` (FPEN, PNET, the
prior diffusion, the DT/DIL former); the methods in :mod:`models.lrdif` and :mod:`models.lldif`."""

from .config import (ClipConfig, DiffusionConfig, EncoderConfig, FormerConfig, LandmarkConfig, LossConfig,
                     PriorConfig, PriorMethodConfig, build_config, flat_settings, preset)
from .method import PriorDiffusionMethod

__all__ = ["ClipConfig", "DiffusionConfig", "EncoderConfig", "FormerConfig", "LandmarkConfig", "LossConfig",
           "PriorConfig", "PriorDiffusionMethod", "PriorMethodConfig", "build_config", "flat_settings", "preset"]
