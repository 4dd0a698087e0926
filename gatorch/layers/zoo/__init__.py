"""The seed-paper architectures' own layers, under the same rules as the rest of gatorch.layers.

GCAN (:mod:`~gatorch.layers.zoo.gcan`), GLGENN (:mod:`~gatorch.layers.zoo.glgenn`), Spellings'
geometric algebra attention (:mod:`~gatorch.layers.zoo.ga_attention`) and CSMPN
(:mod:`~gatorch.layers.zoo.csmpn`).
"""

from gatorch.layers.zoo.csmpn import CSMPNLayer, SimplexEmbedding
from gatorch.layers.zoo.ga_attention import (
    GACovariantAttention,
    GAInvariantAttention,
    ga_attention_invariant_dims,
)
from gatorch.layers.zoo.gcan import GCANActivation, GCANGroupNorm, GroupActionLinear, transform_parameters
from gatorch.layers.zoo.glgenn import QTGeometricProduct, QTLinear

__all__ = [
    "CSMPNLayer",
    "GACovariantAttention",
    "GAInvariantAttention",
    "GCANActivation",
    "GCANGroupNorm",
    "GroupActionLinear",
    "QTGeometricProduct",
    "QTLinear",
    "SimplexEmbedding",
    "ga_attention_invariant_dims",
    "transform_parameters",
]
