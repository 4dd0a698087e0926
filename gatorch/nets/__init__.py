"""Networks composed from gatorch.layers: GATr and a Clifford message-passing net.

They arrive with the layers issue.
"""
