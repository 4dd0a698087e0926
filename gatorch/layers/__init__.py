"""Equivariant nn.Modules built on gatorch.functional (arrive with the layers issue)."""
