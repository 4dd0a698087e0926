"""``GATrBlock``: pre-norm residual block of geometric attention and a geometric MLP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from gatorch.algebras.algebra import Algebra
from gatorch.layers._checks import check_algebra
from gatorch.layers.attention import SelfAttention
from gatorch.layers.config import AttentionConfig, MLPConfig
from gatorch.layers.mlp import GeoMLP
from gatorch.layers.nonlinear import EquiLayerNorm

__all__ = ["GATrBlock"]


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
    eps : float
        Layer-norm epsilon.

    Shapes
    ------
    ``forward(mv, scalars=None, attn_mask=None, join_reference=None, is_causal=False) -> (mv, s)``
    with ``mv: (batch..., items, mv_channels, dim)`` and ``scalars: (batch..., items, s_channels)``;
    ``is_causal=True`` lets item ``i`` attend to items ``<= i`` only (no mask tensor is built,
    so the fused attention kernels still run).
    """

    def __init__(
        self,
        alg: Algebra,
        mv_channels: int,
        s_channels: int = 0,
        attention: AttentionConfig | Mapping[str, Any] | None = None,
        mlp: MLPConfig | Mapping[str, Any] | None = None,
        *,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        check_algebra(alg, "GATrBlock")
        self.alg, self.s_channels = alg, s_channels
        self.norm_attn = EquiLayerNorm(alg, s_channels, eps)
        self.attention = SelfAttention(alg, mv_channels, s_channels, attention)
        self.norm_mlp = EquiLayerNorm(alg, s_channels, eps)
        self.mlp = GeoMLP(alg, mv_channels, s_channels, mlp)

    def forward(
        self,
        mv: Tensor,
        scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        join_reference: Tensor | None = None,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor]:
        s_in = scalars if self.s_channels else None
        h, hs = self.norm_attn(mv, s_in)
        h, hs = self.attention(h, hs if self.s_channels else None, attn_mask=attn_mask, is_causal=is_causal)
        mv = mv + h
        s = scalars + hs if self.s_channels else hs
        h, hs = self.norm_mlp(mv, s if self.s_channels else None)
        h, hs = self.mlp(h, hs if self.s_channels else None, join_reference=join_reference)
        mv = mv + h
        s = s + hs if self.s_channels else hs
        return mv, s
