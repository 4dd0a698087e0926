"""Whitening batch and group norms for multivector fields ``(batch, channels, *spatial, dim)``.

The blade components of a channel are treated as a ``dim``-vector: its mean is removed and
it is multiplied by the inverse of a Cholesky factor of its ``dim x dim`` covariance
(``L L^T = cov + eps * I``, ``L`` lower triangular), then an optional affine map
``weight @ x_w + bias`` with a full ``dim x dim`` matrix per channel (or per group). Nothing
depends on the metric, so the norms work for any algebra.

``whitening="cholesky"`` (default) uses ``x_w = L^{-1} (x - mean)``: the output covariance is
the identity. ``whitening="cliffordlayers"`` uses ``x_w = L^{-T} (x - mean)``, what
cliffordlayers 0.1.1 computes (``solve_triangular(cholesky(cov).mH, x, upper=True)``): its
output covariance is ``L^{-T} L L^T L^{-1}``, not the identity unless ``cov`` is diagonal;
converted cliffordlayers modules use it. The whitening itself is
:func:`gatorch.functional.fields.whiten.whiten`.

:class:`EquiFieldGroupNorm` is the equivariant alternative: channels divided by the RMS of
their invariant norms over a group of channels and the grid, no centring.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gatorch.functional.algebra import Algebra
from gatorch.functional.fields.whiten import WHITENINGS, whiten
from gatorch.functional.steerable import blade_inner
from gatorch.layers._checks import check_algebra, check_input, check_int

__all__ = [
    "CliffordBatchNorm1d",
    "CliffordBatchNorm2d",
    "CliffordBatchNorm3d",
    "CliffordGroupNorm1d",
    "CliffordGroupNorm2d",
    "CliffordGroupNorm3d",
    "EquiFieldGroupNorm",
]


class _FieldNorm(nn.Module):
    """Parameters, buffers and checks shared by the batch and group norms."""

    weight: Tensor | None
    bias: Tensor | None
    running_mean: Tensor | None
    running_cov: Tensor | None
    num_batches_tracked: Tensor | None

    _spatial: tuple[int, ...] = ()

    def __init__(
        self,
        who: str,
        alg: Algebra,
        channels: int,
        units: int,
        eps: float,
        momentum: float | None,
        affine: bool,
        track_running_stats: bool,
        whitening: str,
    ) -> None:
        super().__init__()
        check_algebra(alg, who)
        if whitening not in WHITENINGS:
            raise ValueError(f"{who}: whitening must be one of {WHITENINGS}, got {whitening!r}")
        self.whitening = whitening
        check_int(who, "channels", channels, 1)
        if not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"{who}: eps must be a float >= 0, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1):
            raise ValueError(f"{who}: momentum must be a float in [0, 1] or None, got {momentum!r}")
        self.alg = alg
        self.channels = channels
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dim = alg.dim
        if self.affine:
            self.weight = nn.Parameter(torch.eye(dim).expand(units, dim, dim).clone())
            self.bias = nn.Parameter(torch.zeros(units, dim))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(units, dim))
            self.register_buffer("running_cov", torch.eye(dim).expand(units, dim, dim).clone())
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_cov", None)
            self.register_buffer("num_batches_tracked", None)
        self._who = who

    def _check_input(self, x: Tensor) -> None:
        who = self._who
        self.alg.check_dim(x, f"{who} input")
        ranks = tuple(3 + s for s in self._spatial)
        if x.ndim not in ranks or x.shape[1] != self.channels:
            spatial = " or ".join(str(s) for s in self._spatial)
            raise ValueError(
                f"{who}: expected input (batch, {self.channels}, *spatial, {self.alg.dim}) with "
                f"{spatial} spatial axes, got shape {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, {self.channels}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}, "
            f"whitening={self.whitening!r}"
        )


class _CliffordBatchNorm(_FieldNorm):
    def __init__(
        self,
        alg: Algebra,
        channels: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        track_running_stats: bool = True,
        affine: bool = True,
        *,
        whitening: str = "cholesky",
    ) -> None:
        super().__init__(
            type(self).__name__,
            alg,
            channels,
            channels,
            eps,
            momentum,
            affine,
            track_running_stats,
            whitening,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Normalise a field.

        Parameters
        ----------
        x : (batch, channels, *spatial, dim) Tensor

        Returns
        -------
        (batch, channels, *spatial, dim) Tensor
        """
        check_input(self._who, x, self)
        self._check_input(x)
        b, c, dim = x.shape[0], x.shape[1], x.shape[-1]
        xf = x.reshape(b, c, -1, dim)  # (B, C, P, dim)
        if self.training or self.running_mean is None or self.running_cov is None:
            if b * xf.shape[2] == 1:  # a shape check (static under compile), as torch's BatchNorm
                raise ValueError(
                    f"{self._who}: expected more than 1 value per channel when using batch statistics "
                    f"(training, or track_running_stats=False), got input size {tuple(x.shape)}: the "
                    f"centred value would be 0 and the output the bias alone"
                )
            mean = xf.mean(dim=(0, 2))  # (C, dim)
            xc = xf - mean[:, None, :]
            # one batched GEMM per channel over all B * P vectors: einsum's reduction (over b, then
            # p) lost up to 1e-5 relative accuracy in float32 whitening of ill-conditioned fields
            z = xc.permute(1, 3, 0, 2).reshape(c, dim, -1)  # (C, dim, B * P), contiguous rows
            cov = (z @ z.mT) / z.shape[-1]
            if self.training and self.running_mean is not None and self.running_cov is not None:
                assert self.num_batches_tracked is not None
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    factor: Tensor | float = self.momentum if self.momentum is not None else 0.0
                    if self.momentum is None:
                        factor = 1.0 / self.num_batches_tracked.to(x.dtype)
                    self.running_mean.add_(factor * (mean.detach() - self.running_mean))
                    self.running_cov.add_(factor * (cov.detach() - self.running_cov))
        else:
            mean, cov = self.running_mean, self.running_cov
        return whiten(xf, mean, cov, self.weight, self.bias, self.eps, self.whitening).reshape(x.shape)


class CliffordBatchNorm1d(_CliffordBatchNorm):
    """Whitening batch norm of multivector fields on 1-D grids (or of plain multivector channels).

    Statistics per channel over the batch and the grid; running mean ``(channels, dim)`` and
    covariance ``(channels, dim, dim)`` updated as ``r += momentum * (batch - r)`` (cumulative
    average when ``momentum`` is None) in training mode and used in eval mode.

    Batch statistics need more than one value per channel (``batch * grid points > 1``): like
    ``torch.nn.BatchNorm2d``, a single one raises ``ValueError`` in training mode (and in eval
    mode without running statistics), where cliffordlayers returns zeros. Eval mode with
    running statistics takes any batch.

    Parameters
    ----------
    alg : Algebra
    channels : int
    eps : float
        Added to the covariance's diagonal.
    momentum : float or None
    track_running_stats : bool
    affine : bool
        A learned ``(channels, dim, dim)`` matrix and ``(channels, dim)`` bias after whitening.
    whitening : {"cholesky", "cliffordlayers"}
        See the module docstring.

    Shapes
    ------
    input and output ``(batch, channels, dim)`` or ``(batch, channels, n, dim)``.
    """

    _spatial = (0, 1)


class CliffordBatchNorm2d(_CliffordBatchNorm):
    """Whitening batch norm on 2-D grids, ``(batch, channels, n1, n2, dim)``.

    See :class:`CliffordBatchNorm1d`.
    """

    _spatial = (2,)


class CliffordBatchNorm3d(_CliffordBatchNorm):
    """Whitening batch norm on 3-D grids, ``(batch, channels, n1, n2, n3, dim)``.

    See :class:`CliffordBatchNorm1d`.
    """

    _spatial = (3,)


class _CliffordGroupNorm(_FieldNorm):
    def __init__(
        self,
        alg: Algebra,
        num_groups: int,
        channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        momentum: float | None = 0.1,
        track_running_stats: bool = False,
        *,
        whitening: str = "cholesky",
        cliffordlayers_bias: bool = False,
    ) -> None:
        who = type(self).__name__
        if not isinstance(cliffordlayers_bias, bool):
            raise TypeError(
                f"{who}: cliffordlayers_bias must be a bool, got {type(cliffordlayers_bias).__name__}"
            )
        check_int(who, "num_groups", num_groups, 1)
        check_int(who, "channels", channels, 1)
        if channels % num_groups:
            raise ValueError(f"{who}: channels ({channels}) must be divisible by num_groups ({num_groups})")
        super().__init__(
            who, alg, channels, num_groups, eps, momentum, affine, track_running_stats, whitening
        )
        self.num_groups = num_groups
        self.cliffordlayers_bias = cliffordlayers_bias

    def _group_bias(self, batch: int) -> Tensor | None:
        """The bias added to each sample's groups, ``(G, dim)`` or ``(batch, G, 1, dim)``.

        With ``cliffordlayers_bias`` the stored ``(G, dim)`` bias holds cliffordlayers' ``(dim, G)``
        bias in memory order; cliffordlayers repeats that tensor over the batch,
        ``(dim, batch * G)``, and reads it in memory order as ``(batch * G, dim)``: sample ``b``
        gets a bias that depends on ``b`` once ``batch > 1`` (the same as here for one sample).
        """
        if self.bias is None or not self.cliffordlayers_bias:
            return self.bias
        dim = self.bias.shape[-1]
        per_sample = self.bias.reshape(dim, self.num_groups).repeat(1, batch)
        return per_sample.reshape(batch, self.num_groups, 1, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise a field per sample and group.

        Parameters
        ----------
        x : (batch, channels, *spatial, dim) Tensor

        Returns
        -------
        (batch, channels, *spatial, dim) Tensor
        """
        check_input(self._who, x, self)
        self._check_input(x)
        b, dim = x.shape[0], x.shape[-1]
        xg = x.reshape(b, self.num_groups, -1, dim)  # (B, G, group size * P, dim)
        if self.training or self.running_mean is None or self.running_cov is None:
            mean = xg.mean(dim=2)  # (B, G, dim)
            xc = xg - mean.unsqueeze(2)
            cov = (xc.mT @ xc) / xg.shape[2]  # (B, G, dim, dim)
            if self.training and self.running_mean is not None and self.running_cov is not None:
                factor = 0.0 if self.momentum is None else self.momentum
                with torch.no_grad():
                    self.running_mean.add_(factor * (mean.detach().mean(0) - self.running_mean))
                    self.running_cov.add_(factor * (cov.detach().mean(0) - self.running_cov))
        else:
            mean, cov = self.running_mean, self.running_cov
        if self.cliffordlayers_bias:
            out = whiten(xg, mean, cov, self.weight, None, self.eps, self.whitening)
            bias = self._group_bias(b)
            return (out if bias is None else out + bias).reshape(x.shape)
        return whiten(xg, mean, cov, self.weight, self.bias, self.eps, self.whitening).reshape(x.shape)

    def extra_repr(self) -> str:
        extra = ", cliffordlayers_bias=True" if self.cliffordlayers_bias else ""
        return f"num_groups={self.num_groups}, " + super().extra_repr() + extra


class CliffordGroupNorm1d(_CliffordGroupNorm):
    """Whitening group norm of multivector fields on 1-D grids.

    Channels are split into ``num_groups`` contiguous groups; each sample's group is whitened
    with the mean and ``dim x dim`` covariance of its channels and grid points, then mapped by
    the group's affine ``(dim, dim)`` matrix and bias. With ``track_running_stats`` the
    batch-averaged statistics update running buffers ``(num_groups, dim)``,
    ``(num_groups, dim, dim)`` (no update when ``momentum`` is None), used in eval mode.

    Parameters
    ----------
    alg : Algebra
    num_groups : int
        Number of groups (divides ``channels``). cliffordlayers' ``num_groups`` is the size of
        a group: its ``CliffordGroupNorm(g, G, C)`` is ``CliffordGroupNorm(alg, C // G, C)`` here.
    channels : int
    eps : float
    affine : bool
    momentum : float or None
    track_running_stats : bool
    whitening : {"cholesky", "cliffordlayers"}
        See the module docstring.
    cliffordlayers_bias : bool
        Reproduce cliffordlayers 0.1.1's placement of the bias (set by
        :func:`~gatorch.interop.cliffordlayers.from_cliffordlayers`): ``bias`` then holds
        cliffordlayers' ``(dim, num_groups)`` bias in memory order, and sample ``b`` of a batch
        of ``B`` gets row ``b * num_groups + g`` of ``bias.reshape(dim, num_groups).repeat(1, B)``
        read as ``(B * num_groups, dim)``. For one sample this is the plain bias; for more it
        depends on the sample's position in the batch (cliffordlayers' quirk). Default False.

    Shapes
    ------
    input and output ``(batch, channels, dim)`` or ``(batch, channels, n, dim)``.
    """

    _spatial = (0, 1)


class CliffordGroupNorm2d(_CliffordGroupNorm):
    """Whitening group norm on 2-D grids, ``(batch, channels, n1, n2, dim)``.

    See :class:`CliffordGroupNorm1d`.
    """

    _spatial = (2,)


class CliffordGroupNorm3d(_CliffordGroupNorm):
    """Whitening group norm on 3-D grids, ``(batch, channels, n1, n2, n3, dim)``.

    See :class:`CliffordGroupNorm1d`.
    """

    _spatial = (3,)


class EquiFieldGroupNorm(nn.Module):
    r"""Equivariant group norm of a field: channels divided by the RMS of their invariant norms.

    For each group of channels the statistic is :math:`\sigma^2 = \operatorname{mean}_{c, p}
    \sum_k |\langle x_{c,k}(p), x_{c,k}(p)\rangle|` over the group's channels ``c`` and every
    grid point ``p`` (cliffordlayers' group-norm extent), and :math:`y_c = \gamma_c\, x_c /
    \sqrt{\sigma^2 + \epsilon}` with an invariant gain :math:`\gamma_c` (init 1). No centring.
    The statistic is invariant under the versor action on the values and under any permutation
    of the grid points, so the norm commutes with the grid symmetries; unlike a per-point layer
    norm it does not blow up near-empty regions of the field to unit size.

    Parameters
    ----------
    alg : Algebra
    num_groups : int
        Must divide ``channels``.
    channels : int
    eps : float

    Shapes
    ------
    ``forward(x) -> y`` with ``x, y: (batch, channels, *spatial, dim)``.
    """

    _inner: Tensor

    def __init__(self, alg: Algebra, num_groups: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_groups, self.eps = num_groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        grades = torch.tensor(alg.grades)
        inner = torch.tensor(blade_inner(alg))
        # (dim, n + 1): sums x_A^2 <~e_A e_A> per grade
        self.register_buffer(
            "_inner",
            inner[:, None] * nn.functional.one_hot(grades, alg.n + 1).to(inner.dtype),
            persistent=False,
        )

    def forward(self, x: Tensor) -> Tensor:
        check_input(type(self).__name__, x, self)
        b, c = x.shape[:2]
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # at least float32 (autocast)
        q = torch.matmul(xf * xf, self._inner.to(xf.dtype)).abs().sum(-1)  # (B, C, *spatial)
        var = q.reshape(b, self.num_groups, -1).mean(-1)  # (B, G)
        scale = torch.rsqrt(var + self.eps).repeat_interleave(c // self.num_groups, dim=1)
        scale = (scale * self.weight).to(x.dtype)
        return x * scale.reshape(b, c, *([1] * (x.ndim - 2)))
