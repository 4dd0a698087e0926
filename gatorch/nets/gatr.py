"""``GATr``: the geometric algebra transformer, for any algebra."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gatorch.algebras.algebra import Algebra
from gatorch.layers import AttentionConfig, EquiLinear, GATrBlock, MLPConfig
from gatorch.layers._checks import check_algebra, check_mv, check_scalars

__all__ = ["GATr"]


class GATr(nn.Module):
    r"""Geometric algebra transformer (GATr) over any :class:`~gatorch.Algebra`.

    ``EquiLinear`` in, ``num_blocks`` :class:`~gatorch.layers.GATrBlock` s, ``EquiLinear``
    out. On ``PGA3`` this is GATr (E(3)), on ``STA`` L-GATr (Lorentz group), on ``CGA3``
    a conformal GATr, on ``VGA3`` an O(3) transformer; equivariant under the algebra's
    twisted versor action (reflections included) and under permutations of the items.

    The join in the MLPs (on by default for degenerate algebras) needs a reference
    multivector; by default it is the mean of the input multivectors over items and
    channels, per batch element (GATr's choice), which keeps the net Pin-equivariant.

    Parameters
    ----------
    alg : Algebra
    in_mv_channels, out_mv_channels, hidden_mv_channels : int
    in_s_channels, out_s_channels, hidden_s_channels : int
    num_blocks : int
    num_heads : int, optional
        Overrides ``attention.num_heads`` (default 4 when neither is given).
    attention : AttentionConfig or mapping, optional
    mlp : MLPConfig or mapping, optional
    checkpoint_blocks : bool
        Recompute each block in the backward pass (activation checkpointing): less memory,
        about one more forward pass of time.

    Shapes
    ------
    ``forward(mv, scalars=None, attn_mask=None, join_reference=None, is_causal=False) -> (mv, s)`` with
    ``mv: (batch..., items, in_mv_channels, dim)``, ``scalars: (batch..., items, in_s_channels)``,
    ``attn_mask`` of shape ``(items, items)`` or ``(batch..., items, items)`` (boolean,
    ``True`` = may attend, or additive), ``join_reference`` broadcastable to
    ``(batch..., items, channels, dim)``, ``is_causal=True`` for causal attention (item ``i``
    sees items ``<= i``; combined with ``attn_mask`` when both are given); returns
    ``(batch..., items, out_mv_channels, dim)`` and ``(batch..., items, out_s_channels)``.

    Compiling: ``torch.compile(net, fullgraph=True)`` works on a freshly built net (every plan
    is built at construction) and recompiles at most once for new item counts (dynamic
    shapes). How products compile is set by :class:`gatorch.functional.KernelPolicy`.

    Examples
    --------
    >>> import torch
    >>> from gatorch import STA
    >>> from gatorch.nets import GATr
    >>> net = GATr(STA, in_mv_channels=1, out_mv_channels=1, hidden_mv_channels=8,
    ...            in_s_channels=2, out_s_channels=1, hidden_s_channels=8, num_blocks=2, num_heads=2)
    >>> mv, s = net(torch.randn(3, 20, 1, 16), torch.randn(3, 20, 2))  # 3 events of 20 particles
    >>> mv.shape, s.shape
    (torch.Size([3, 20, 1, 16]), torch.Size([3, 20, 1]))
    """

    def __init__(
        self,
        alg: Algebra,
        *,
        in_mv_channels: int,
        out_mv_channels: int,
        hidden_mv_channels: int,
        in_s_channels: int = 0,
        out_s_channels: int = 0,
        hidden_s_channels: int = 0,
        num_blocks: int,
        num_heads: int | None = None,
        attention: AttentionConfig | Mapping[str, Any] | None = None,
        mlp: MLPConfig | Mapping[str, Any] | None = None,
        checkpoint_blocks: bool = False,
    ) -> None:
        super().__init__()
        check_algebra(alg, "GATr")
        if not isinstance(num_blocks, int) or num_blocks < 1:
            raise ValueError(f"GATr: num_blocks must be an int >= 1, got {num_blocks!r}")
        attn_cfg = AttentionConfig.cast(attention)
        if num_heads is not None:
            if attention is not None and attn_cfg.num_heads != num_heads and _given(attention, "num_heads"):
                raise ValueError(
                    f"GATr: num_heads={num_heads} contradicts attention.num_heads={attn_cfg.num_heads}"
                )
            attn_cfg = dataclasses.replace(attn_cfg, num_heads=num_heads)
        mlp_cfg = MLPConfig.cast(mlp)
        self.alg = alg
        self.in_mv_channels, self.in_s_channels = in_mv_channels, in_s_channels
        self.hidden_s_channels = hidden_s_channels
        self.attention_config, self.mlp_config = attn_cfg, mlp_cfg
        self.checkpoint_blocks = bool(checkpoint_blocks)
        self.linear_in = EquiLinear(
            alg,
            in_mv_channels,
            hidden_mv_channels,
            in_s_channels=in_s_channels,
            out_s_channels=hidden_s_channels,
        )
        self.blocks = nn.ModuleList(
            GATrBlock(alg, hidden_mv_channels, hidden_s_channels, attn_cfg, mlp_cfg)
            for _ in range(num_blocks)
        )
        self.linear_out = EquiLinear(
            alg,
            hidden_mv_channels,
            out_mv_channels,
            in_s_channels=hidden_s_channels,
            out_s_channels=out_s_channels,
        )

    def forward(
        self,
        mv: Tensor,
        scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        join_reference: Tensor | None = None,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor]:
        check_mv(self.alg, mv, self.in_mv_channels, "GATr")
        check_scalars(scalars, self.in_s_channels, "GATr")
        if mv.ndim < 3:
            raise ValueError(
                f"GATr: expected mv of shape (batch..., items, {self.in_mv_channels}, {self.alg.dim}), "
                f"got {tuple(mv.shape)}"
            )
        if join_reference is None:
            join_reference = mv.mean(dim=(-3, -2), keepdim=True)  # (batch..., 1, 1, dim)
        else:
            self.alg.check_dim(join_reference, "GATr join_reference")
        h, s = self.linear_in(mv, scalars if self.in_s_channels else None)
        for block in self.blocks:
            s_in = s if self.hidden_s_channels else None
            if self.checkpoint_blocks and self.training:
                h, s = checkpoint(block, h, s_in, attn_mask, join_reference, is_causal, use_reentrant=False)
            else:
                h, s = block(h, s_in, attn_mask, join_reference, is_causal)
        return self.linear_out(h, s if self.hidden_s_channels else None)


def _given(config: object, name: str) -> bool:
    """Whether ``config`` (a config object or a mapping) set ``name`` explicitly."""
    if isinstance(config, Mapping):
        return name in config
    return True
