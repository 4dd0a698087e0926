"""Test configuration: reproducible hypothesis examples in CI (``CI`` set), exploration locally.

Also the one test-internal helper the equivariance and compile tests share, :func:`small_gatr`
(the checks themselves come from :mod:`gatorch.testing`).
"""

import os

from hypothesis import settings

from gatorch import Algebra

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def small_gatr(alg: Algebra, num_blocks: int = 2, **options: object):  # type: ignore[no-untyped-def]
    """A small ``GATr`` (2 -> 8 -> 1 mv channels, 3 -> 8 -> 2 scalar channels, 2 heads) for tests."""
    from gatorch.nets import GATr

    return GATr(
        alg,
        in_mv_channels=2,
        out_mv_channels=1,
        hidden_mv_channels=8,
        in_s_channels=3,
        out_s_channels=2,
        hidden_s_channels=8,
        num_blocks=num_blocks,
        num_heads=2,
        **options,  # type: ignore[arg-type]
    )
