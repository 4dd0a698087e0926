"""Convex-hull volumes in CSMPN's reference protocol: CSMPN, a CGENN-style graph net and an MLP.

:mod:`examples.hulls.data` (the seeded, cached splits and hull complexes),
:mod:`examples.hulls.models`, :mod:`examples.hulls.train` (the harness trainer) and
:mod:`examples.hulls.report` (the table over seeds and the curves); README.md says how to run it.
"""
