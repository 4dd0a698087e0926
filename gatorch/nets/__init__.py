"""Networks composed from gatorch.layers: GATr for any algebra and a Clifford message-passing net."""

from gatorch.nets.gatr import GATr
from gatorch.nets.gnn import CliffordGNN

__all__ = ["CliffordGNN", "GATr"]
