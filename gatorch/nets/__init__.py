"""Networks composed from gatorch.layers: GATr for any algebra and a Clifford message-passing net."""

from gatorch.nets.gatr import GATr

__all__ = ["GATr"]
