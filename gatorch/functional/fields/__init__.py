"""Stateless ops on multivector fields ``(batch, channels, *spatial, dim)``.

:mod:`~gatorch.functional.fields.conv` (Clifford convolutions), :mod:`~gatorch.functional.fields.fourier`
(Clifford Fourier layers), :mod:`~gatorch.functional.fields.steerable_conv` (Clifford-steerable
kernels) and :mod:`~gatorch.functional.fields.whiten` (the whitening of the field norms).
"""
