"""Building blocks shared by LRDif, LLDif and POSTER++ (a file per idea).

* :mod:`.dynamic_transformer` -- prior modulation (Eq. 2), transposed attention (DMNet),
  gated depth-wise FFN (DGNet) and the block that combines them.
* :mod:`.dt_network` -- the multi-scale DTnetwork (``F1, F2, F3``).
* :mod:`.conv_pyramid` -- a small three-scale CNN (landmark / image streams).
* :mod:`.window_cross_attention` -- window multi-head cross-attention with relative position
  bias and its transformer block (Eq. 5-9).
* :mod:`.dil_network` -- the DILnetwork, cross-attention at three scales (``O1, O2, O3``).
* :mod:`.vit` -- scale fusion into tokens and the vanilla transformer classifier (Eq. 10-12).
* :mod:`.prior_diffusion` -- beta schedules, the prior denoiser, the T-step reverse chain and
  the prior KL loss (Eq. 14-18).
* :mod:`.former` -- DT + DIL + fusion + ViT assembled (UDCformer / LLformer).
* :mod:`.pnet` -- LLDif's prior networks: cross-attention PNET_S1, conv/residual PNET_S2.
* :mod:`.fpen` -- LRDif's prior network FPEN (linear layers; LLDif's ``pnet_s2_input="la-clip"``).
* :mod:`.conv_image_encoder` -- the trainable stand-in for CLIP's image tower (tiny presets).

POSTER++ (:mod:`models.posterpp`) uses the DIL network, the scale tokenizer and the ViT with
its official options.
"""

from .conv_pyramid import ConvPyramid
from .dil_network import DILNetwork
from .dt_network import DTNetwork
from .dynamic_transformer import (ChannelLayerNorm, DynamicTransformerBlock, GatedDConvFFN, PriorModulation,
                                  TransposedAttention)
from .former import PriorLandmarkFormer
from .pnet import EmbeddingCrossAttention, PNetS1, PNetS2, ResidualConvBlock
from .prior_diffusion import PriorDenoiser, PriorDiffusion, make_betas, prior_kl
from .vit import FeatureGate, ScaleTokenizer, ViTClassifier
from .window_cross_attention import (WindowCrossAttention, WindowCrossAttentionBlock, relative_position_index,
                                     window_partition, window_reverse)

__all__ = ["ChannelLayerNorm", "ConvPyramid", "DILNetwork", "DTNetwork", "DynamicTransformerBlock",
           "FeatureGate", "GatedDConvFFN", "PriorDenoiser", "PriorDiffusion", "PriorLandmarkFormer", "PriorModulation",
           "ScaleTokenizer", "TransposedAttention", "ViTClassifier", "WindowCrossAttention",
           "WindowCrossAttentionBlock", "make_betas", "prior_kl", "relative_position_index",
           "window_partition", "window_reverse"]
__all__ += ["EmbeddingCrossAttention", "PNetS1", "PNetS2", "ResidualConvBlock"]
