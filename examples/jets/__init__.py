"""Toy top tagging with Lorentz-equivariant transformers (see ``examples/jets/README.md``)."""
