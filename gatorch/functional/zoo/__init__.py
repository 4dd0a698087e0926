"""Stateless ops of the seed-paper architectures: GCAN (:mod:`~gatorch.functional.zoo.gcan`) and
GLGENN (:mod:`~gatorch.functional.zoo.glgenn`)."""
