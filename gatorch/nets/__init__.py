"""Networks composed from gatorch.layers: GATr, ConditionalGATr and the slim (vector and scalar)
transformers for any algebra, a Clifford message-passing net, Clifford simplicial message
passing (CSMPN) with its Rips lift, and grid models for multivector fields (Clifford ResNet /
FNO, a Clifford-steerable ResNet)."""

from gatorch.nets.csmpn import CSMPN
from gatorch.nets.fields import CliffordFNO, CliffordResNet, CliffordSteerableResNet
from gatorch.nets.gatr import ConditionalGATr, GATr
from gatorch.nets.gnn import CliffordGNN, CliffordMLPConfig
from gatorch.nets.simplicial import SimplicialComplex, rips_lift
from gatorch.nets.slim import ConditionalGATrSlim, GATrSlim

__all__ = [
    "CSMPN",
    "CliffordFNO",
    "CliffordGNN",
    "CliffordMLPConfig",
    "CliffordResNet",
    "CliffordSteerableResNet",
    "ConditionalGATr",
    "ConditionalGATrSlim",
    "GATr",
    "GATrSlim",
    "SimplicialComplex",
    "rips_lift",
]
