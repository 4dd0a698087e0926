"""The multivector MLPs: ``GeoMLP`` (GATr's: a bilinear layer, then gated linear layers) and
``CliffordMLP`` (CGENN's: linear maps, steerable geometric products and MVSiLU)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.layers._checks import check_algebra, check_layout, check_mv_in, check_scalars, module_dtype
from gatorch.layers.bilinear import GeometricBilinear, SteerableGeometricProduct
from gatorch.layers.config import CliffordMLPConfig, MLPConfig, NormConfig
from gatorch.layers.dropout import GradeDropout
from gatorch.layers.linear import EquiLinear
from gatorch.layers.nonlinear import EquiLayerNorm, MVSiLU, ScalarGatedNonlinearity, norm_from_config

__all__ = ["CliffordMLP", "GeoMLP"]


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
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`): every layer
        works on them (``dim`` below is ``layout.dim``). The gate needs grade 0 in the layout.
        The join needs the pseudoscalar (grade ``n``): with ``config.join=None`` (the default)
        it is on only for degenerate algebras whose layout stores grade ``n`` (so off for
        PGA3 at grades ``(0, 1, 2)``); ``join=True`` on a layout without grade ``n`` raises
        ``ValueError``. ``None`` or a full layout: all blades.

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
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, "GeoMLP")
        cfg = MLPConfig.cast(config)
        self.layout = lay = check_layout(alg, layout, "GeoMLP")
        join = cfg.join
        if lay is not None:
            if join is None:  # the join's default: on for degenerate algebras, if the layout can hold it
                join = alg.is_degenerate and lay.has_grade(alg.n)
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
            join=join,
            group=group,
            layout=lay,
        )
        self.bilinear_norm = (
            norm_from_config(alg, mvs[0], ss[0], NormConfig.cast(norm), learnt=False, layout=lay)
            if cfg.bilinear_norm
            else None
        )
        self.gate = ScalarGatedNonlinearity(alg, cfg.activation, layout=lay)
        self.linears = nn.ModuleList(
            EquiLinear(
                alg,
                mvs[i],
                mvs[i + 1],
                in_s_channels=ss[i],
                out_s_channels=ss[i + 1],
                group=group,
                in_layout=lay,
                out_layout=lay,
            )
            for i in range(cfg.num_layers - 1)
        )
        self.dropout = GradeDropout(alg, cfg.dropout, layout=lay) if cfg.dropout > 0 else None

    def forward(
        self, mv: Tensor, scalars: Tensor | None = None, join_reference: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        dtype = module_dtype(self)
        check_mv_in(self.alg, self.layout, mv, self.mv_channels, "GeoMLP", dtype)
        check_scalars(scalars, self.s_channels, "GeoMLP", dtype)
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


class CliffordMLP(nn.Module):
    r"""CGENN's multivector MLP on ``(mv, scalars)``, in one of two styles (:class:`CliffordMLPConfig`).

    * ``"gatorch"`` (default): EquiLinear -> SteerableGeometricProduct -> MVSiLU -> EquiLinear.
    * ``"cgenn"``: ``blocks`` x (EquiLinear -> MVSiLU -> SteerableGeometricProduct ->
      EquiLayerNorm(statistic="mean", elementwise_affine=True)), CGENN's ``CEMLP``.

    Parameters
    ----------
    alg : Algebra
    in_channels, out_channels : int
        Multivector channels in and out; the hidden width is ``out_channels``.
    in_s_channels, out_s_channels : int
        Scalar channels in and out (0: none); the hidden width is ``out_s_channels``.
    config : CliffordMLPConfig or mapping, optional
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`); every layer
        gets it (not with ``normalization_init``, see :class:`SteerableGeometricProduct`).
        ``None`` or a full layout: all blades.

    Shapes
    ------
    ``forward(mv, scalars=None) -> (mv, scalars)`` with ``mv: (..., in_channels, dim) ->
    (..., out_channels, dim)`` and ``scalars: (..., in_s_channels) -> (..., out_s_channels)``.
    """

    def __init__(
        self,
        alg: Algebra,
        in_channels: int,
        out_channels: int,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        config: CliffordMLPConfig | Mapping[str, Any] | None = None,
        *,
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        self.config = cfg = CliffordMLPConfig.cast(config)
        self.layout = lay = check_layout(alg, layout, "CliffordMLP")
        norm_init, weight_init = cfg.normalization_init, cfg.weight_init
        if cfg.style == "gatorch":
            self.linear_in = EquiLinear(
                alg,
                in_channels,
                out_channels,
                in_s_channels=in_s_channels,
                out_s_channels=out_s_channels,
                in_layout=lay,
                out_layout=lay,
            )
            self.product = SteerableGeometricProduct(
                alg,
                out_channels,
                in_s_channels=out_s_channels,
                normalization_init=norm_init,
                weight_init=weight_init,
                layout=lay,
            )
            self.activation = MVSiLU(alg, out_channels, layout=lay)
            self.linear_out = EquiLinear(
                alg,
                out_channels,
                out_channels,
                in_s_channels=out_s_channels,
                out_s_channels=out_s_channels,
                in_layout=lay,
                out_layout=lay,
            )
            self.blocks: nn.ModuleList | None = None
            return
        layers: list[nn.Module] = []
        for block in range(cfg.blocks):
            c_in, s_in = (in_channels, in_s_channels) if block == 0 else (out_channels, out_s_channels)
            layers += [
                EquiLinear(
                    alg,
                    c_in,
                    out_channels,
                    in_s_channels=s_in,
                    out_s_channels=out_s_channels,
                    in_layout=lay,
                    out_layout=lay,
                ),
                MVSiLU(alg, out_channels, layout=lay),
                SteerableGeometricProduct(
                    alg,
                    out_channels,
                    in_s_channels=out_s_channels,
                    normalization_init=norm_init,
                    weight_init=weight_init,
                    layout=lay,
                ),
            ]
            if cfg.block_norm == "mean":
                layers.append(
                    EquiLayerNorm(
                        alg,
                        out_s_channels,
                        statistic="mean",
                        mv_channels=out_channels,
                        elementwise_affine=True,
                        layout=lay,
                    )
                )
            elif cfg.block_norm == "rms":
                layers.append(EquiLayerNorm(alg, out_s_channels, layout=lay))
        self.blocks = nn.ModuleList(layers)

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor]:
        s: Tensor | None = scalars
        sequence = (
            (self.linear_in, self.product, self.activation, self.linear_out)
            if self.blocks is None
            else self.blocks
        )
        for layer in sequence:
            mv, s = layer(mv, s)
        assert s is not None
        return mv, s
