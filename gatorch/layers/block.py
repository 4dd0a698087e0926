"""``GATrBlock`` and ``ConditionalGATrBlock``: pre-norm residual blocks of attention and a geometric MLP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.layers._checks import check_algebra, check_layout, check_mv_in, mask_alias, module_dtype
from gatorch.layers.attention import CrossAttention, SelfAttention
from gatorch.layers.config import AttentionConfig, MLPConfig, NormConfig
from gatorch.layers.mlp import GeoMLP
from gatorch.layers.nonlinear import norm_from_config

__all__ = ["ConditionalGATrBlock", "GATrBlock"]


def block_norm_config(
    owner: str, norm: NormConfig | Mapping[str, Any] | None, eps: float | None
) -> NormConfig:
    """The :class:`NormConfig` of a block from ``norm`` and the older ``eps`` argument (not both)."""
    if eps is not None and norm is not None:
        raise ValueError(f"{owner}: give the layer-norm epsilon either as eps={eps!r} or in norm, not both")
    if norm is None:
        return NormConfig() if eps is None else NormConfig(eps=eps)
    return NormConfig.cast(norm)


class GATrBlock(nn.Module):
    r"""One transformer block: pre-norm, residual attention, pre-norm, residual MLP.

    .. math::
        x \leftarrow x + \mathrm{Attention}(\mathrm{Norm}(x)), \qquad
        x \leftarrow x + \mathrm{GeoMLP}(\mathrm{Norm}(x))

    applied to multivector and scalar channels together.

    Parameters
    ----------
    alg : Algebra
    mv_channels, s_channels : int
    attention : AttentionConfig or mapping, optional
    mlp : MLPConfig or mapping, optional
    eps : float, optional
        Layer-norm epsilon (default 0.01, a clamp: see :class:`~gatorch.layers.NormConfig`); a
        shorthand for ``norm={"eps": eps}``.
    norm : NormConfig or mapping, optional
        The layer norms' options (L-GATr's are in :class:`~gatorch.layers.NormConfig`'s docstring).
    group : {"pin", "spin"}
        The group of every linear map: ``"spin"`` also mixes the pseudoscalar like a scalar
        (L-GATr's ``subgroup=True``).
    layout : Layout, optional
        The grades the multivectors store (:class:`~gatorch.algebras.Layout`); every layer of
        the block gets it (``dim`` below is ``layout.dim``). Needs grade 0 (the MLP's gate);
        the MLP's join is off by default when the layout lacks grade ``n`` (:class:`GeoMLP`).
        ``None`` or a full layout: all blades.

    Shapes
    ------
    ``forward(mv, scalars=None, attn_mask=None, join_reference=None, is_causal=False) -> (mv, s)``
    with ``mv: (batch..., items, mv_channels, dim)`` and ``scalars: (batch..., items, s_channels)``;
    ``is_causal=True`` lets item ``i`` attend to items ``<= i`` only (no mask tensor is built,
    so the fused attention kernels still run). Packed variable-size sets: ``offsets=`` and
    ``max_items=`` with ``mv: (total_items, mv_channels, dim)``, see :class:`SelfAttention`.
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        s_channels: int = 0,
        attention: AttentionConfig | Mapping[str, Any] | None = None,
        mlp: MLPConfig | Mapping[str, Any] | None = None,
        *,
        eps: float | None = None,
        norm: NormConfig | Mapping[str, Any] | None = None,
        group: str = "pin",
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, "GATrBlock")
        norm_cfg = block_norm_config("GATrBlock", norm, eps)
        self.alg, self.s_channels = alg, s_channels
        self.layout = lay = check_layout(alg, layout, "GATrBlock")
        self.norm_attn = norm_from_config(alg, mv_channels, s_channels, norm_cfg, layout=lay)
        self.attention = SelfAttention(
            alg, mv_channels, s_channels, attention, group=group, norm=norm_cfg, layout=lay
        )
        self.norm_mlp = norm_from_config(alg, mv_channels, s_channels, norm_cfg, layout=lay)
        self.mlp = GeoMLP(alg, mv_channels, s_channels, mlp, group=group, norm=norm_cfg, layout=lay)

    def forward(
        self,
        mv: Tensor,
        scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        join_reference: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        max_items: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        check_mv_in(self.alg, self.layout, mv, self.attention.q_channels[0], "GATrBlock", module_dtype(self))
        s_in = scalars if self.s_channels else None
        h, hs = self.norm_attn(mv, s_in)
        h, hs = self.attention(
            h,
            hs if self.s_channels else None,
            attn_mask=attn_mask,
            is_causal=is_causal,
            offsets=offsets,
            max_items=max_items,
        )
        mv = mv + h
        s = scalars + hs if self.s_channels else hs
        h, hs = self.norm_mlp(mv, s if self.s_channels else None)
        h, hs = self.mlp(h, hs if self.s_channels else None, join_reference=join_reference)
        mv = mv + h
        s = s + hs if self.s_channels else hs
        return mv, s


class ConditionalGATrBlock(nn.Module):
    r"""A :class:`GATrBlock` with cross-attention to a condition set between attention and MLP.

    .. math::
        x \leftarrow x + \mathrm{SelfAttention}(\mathrm{Norm}(x)), \quad
        x \leftarrow x + \mathrm{CrossAttention}(\mathrm{Norm}(x), \mathrm{Norm}_c(c)), \quad
        x \leftarrow x + \mathrm{GeoMLP}(\mathrm{Norm}(x))

    The condition :math:`c` (multivector and scalar channels of its own, its own number of
    items) is normalised in every block and is not changed by it (ConditionalLGATr's decoder
    block).

    Parameters
    ----------
    alg : Algebra
    mv_channels, s_channels : int
    condition_mv_channels, condition_s_channels : int
    attention, cross_attention : AttentionConfig or mapping, optional
    mlp : MLPConfig or mapping, optional
    norm : NormConfig or mapping, optional
    group : {"pin", "spin"}
    layout : Layout, optional
        As in :class:`GATrBlock`; the condition stores the same grades.

    Shapes
    ------
    ``forward(mv, condition_mv, scalars=None, condition_scalars=None, attn_mask=None,
    cross_attn_mask=None, join_reference=None, is_causal=False) -> (mv, s)`` with
    ``mv: (batch..., items, mv_channels, dim)``,
    ``condition_mv: (batch..., condition_items, condition_mv_channels, dim)``,
    ``attn_mask: (..., items, items)`` and ``cross_attn_mask: (..., items, condition_items)``
    (``crossattn_mask=``, the nets' name, is an alias).
    Packed sets: ``offsets=``, ``condition_offsets=`` (set ``i`` attends to condition set
    ``i``), ``max_items=``, ``condition_max_items=``, with ``(total_items, channels, dim)``
    inputs, as in :class:`SelfAttention` and :class:`CrossAttention`.
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        s_channels: int,
        condition_mv_channels: int,
        condition_s_channels: int = 0,
        attention: AttentionConfig | Mapping[str, Any] | None = None,
        cross_attention: AttentionConfig | Mapping[str, Any] | None = None,
        mlp: MLPConfig | Mapping[str, Any] | None = None,
        *,
        norm: NormConfig | Mapping[str, Any] | None = None,
        group: str = "pin",
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, "ConditionalGATrBlock")
        norm_cfg = NormConfig.cast(norm)
        self.alg, self.s_channels, self.condition_s_channels = alg, s_channels, condition_s_channels
        self.layout = lay = check_layout(alg, layout, "ConditionalGATrBlock")
        self.norm_attn = norm_from_config(alg, mv_channels, s_channels, norm_cfg, layout=lay)
        self.attention = SelfAttention(
            alg, mv_channels, s_channels, attention, group=group, norm=norm_cfg, layout=lay
        )
        self.norm_cross = norm_from_config(alg, mv_channels, s_channels, norm_cfg, layout=lay)
        self.norm_condition = norm_from_config(
            alg, condition_mv_channels, condition_s_channels, norm_cfg, layout=lay
        )
        self.cross_attention = CrossAttention(
            alg,
            mv_channels,
            condition_mv_channels,
            s_channels,
            condition_s_channels,
            cross_attention,
            group=group,
            norm=norm_cfg,
            layout=lay,
        )
        self.norm_mlp = norm_from_config(alg, mv_channels, s_channels, norm_cfg, layout=lay)
        self.mlp = GeoMLP(alg, mv_channels, s_channels, mlp, group=group, norm=norm_cfg, layout=lay)

    def forward(
        self,
        mv: Tensor,
        condition_mv: Tensor,
        scalars: Tensor | None = None,
        condition_scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        cross_attn_mask: Tensor | None = None,
        join_reference: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        condition_offsets: Tensor | None = None,
        max_items: int | None = None,
        condition_max_items: int | None = None,
        crossattn_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        who = "ConditionalGATrBlock"
        cross_attn_mask = mask_alias(
            who, "cross_attn_mask", cross_attn_mask, "crossattn_mask", crossattn_mask
        )
        check_mv_in(self.alg, self.layout, mv, self.attention.q_channels[0], who, module_dtype(self))
        has_s, has_cs = bool(self.s_channels), bool(self.condition_s_channels)
        h, hs = self.norm_attn(mv, scalars if has_s else None)
        h, hs = self.attention(
            h,
            hs if has_s else None,
            attn_mask=attn_mask,
            is_causal=is_causal,
            offsets=offsets,
            max_items=max_items,
        )
        mv = mv + h
        s = scalars + hs if has_s else hs
        h, hs = self.norm_cross(mv, s if has_s else None)
        c, cs = self.norm_condition(condition_mv, condition_scalars if has_cs else None)
        h, hs = self.cross_attention(
            h,
            c,
            hs if has_s else None,
            cs if has_cs else None,
            attn_mask=cross_attn_mask,
            offsets=offsets,
            context_offsets=condition_offsets,
            max_items=max_items,
            context_max_items=condition_max_items,
        )
        mv = mv + h
        s = s + hs if has_s else hs
        h, hs = self.norm_mlp(mv, s if has_s else None)
        h, hs = self.mlp(h, hs if has_s else None, join_reference=join_reference)
        mv = mv + h
        s = s + hs if has_s else hs
        return mv, s
