"""``GeoMLP``: GATr's equivariant MLP (a bilinear layer, then gated linear layers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from gatorch.algebras.algebra import Algebra
from gatorch.layers._checks import check_algebra, check_mv, check_scalars
from gatorch.layers.bilinear import GeometricBilinear
from gatorch.layers.config import MLPConfig, NormConfig
from gatorch.layers.dropout import GradeDropout
from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import ScalarGatedNonlinearity, norm_from_config

__all__ = ["GeoMLP"]


class GeoMLP(nn.Module):
    r"""Equivariant MLP: :class:`GeometricBilinear`, then (gate, :class:`EquiLinear`) layers.

    .. math::
        (h, t) = \mathrm{Bilinear}(x, s), \qquad
        (h, t) \leftarrow \mathrm{EquiLinear}(\sigma(\langle h\rangle_0) h, \sigma(t))
        \ \text{(num\_layers - 1 times)}

    Hidden channels are ``config.mlp_ratio`` times the input channels; the output has the
    input's channels (the block adds it to the residual stream). With
    ``config.bilinear_norm`` the bilinear layer's output is normalised (L-GATr).

    Parameters
    ----------
    alg : Algebra
    mv_channels, s_channels : int
    config : MLPConfig or mapping, optional
    group : {"pin", "spin"}
        The group of every linear map (:class:`EquiLinear`).
    norm : NormConfig or mapping, optional
        Epsilon settings of the bilinear layer's norm (``config.bilinear_norm``).

    Shapes
    ------
    ``forward(mv, scalars=None, join_reference=None) -> (mv, s)`` with
    ``mv: (..., mv_channels, dim)``, ``scalars: (..., s_channels)``; ``join_reference``
    as in :class:`GeometricBilinear`.
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        s_channels: int = 0,
        config: MLPConfig | Mapping[str, Any] | None = None,
        *,
        group: str = "pin",
        norm: NormConfig | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, "GeoMLP")
        cfg = MLPConfig.cast(config)
        self.alg, self.config = alg, cfg
        self.mv_channels, self.s_channels = mv_channels, s_channels
        # channels after each layer: the bilinear layer, then num_layers - 1 gated linear layers
        mvs = [cfg.mlp_ratio * mv_channels] * (cfg.num_layers - 1) + [mv_channels]
        ss = [cfg.mlp_ratio * s_channels] * (cfg.num_layers - 1) + [s_channels]
        self.bilinear = GeometricBilinear(
            alg,
            mv_channels,
            mvs[0],
            in_s_channels=s_channels,
            out_s_channels=ss[0],
            join=cfg.join,
            group=group,
        )
        self.bilinear_norm = (
            norm_from_config(alg, mvs[0], ss[0], NormConfig.cast(norm), learnt=False)
            if cfg.bilinear_norm
            else None
        )
        self.gate = ScalarGatedNonlinearity(alg, cfg.activation)
        self.linears = nn.ModuleList(
            EquiLinear(alg, mvs[i], mvs[i + 1], in_s_channels=ss[i], out_s_channels=ss[i + 1], group=group)
            for i in range(cfg.num_layers - 1)
        )
        self.dropout = GradeDropout(alg, cfg.dropout) if cfg.dropout > 0 else None

    def forward(
        self, mv: Tensor, scalars: Tensor | None = None, join_reference: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        check_mv(self.alg, mv, self.mv_channels, "GeoMLP")
        check_scalars(scalars, self.s_channels, "GeoMLP")
        h, s = self.bilinear(mv, scalars, join_reference=join_reference)
        if self.bilinear_norm is not None:
            h, s = self.bilinear_norm(h, s if s.shape[-1] else None)
        if not self.linears and self.dropout is not None:
            h, s = self.dropout(h, s)
        for linear in self.linears:
            if self.dropout is not None:
                h, s = self.dropout(h, s)
            h, s = self.gate(h, s)
            h, s = linear(h, s if s.shape[-1] else None)
        return h, s
