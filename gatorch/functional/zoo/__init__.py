"""Stateless ops of the seed-paper architectures: GCAN (:mod:`~gatorch.functional.zoo.gcan`).

GLGENN's functional code is still :mod:`gatorch.functional.glgenn`.
"""
