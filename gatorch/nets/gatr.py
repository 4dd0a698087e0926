"""``GATr`` and ``ConditionalGATr``: the geometric algebra transformer, for any algebra.

Both are one :class:`_GATrBase` (constructor checks, ``linear_in`` -> ``blocks`` ->
``linear_out``, the input checks and the packed / nested plumbing) with their own block:
:class:`ConditionalGATr` adds only what the condition needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gatorch.algebras.layout import Layout
from gatorch.functional.algebra import Algebra
from gatorch.functional.attention import packed_to_nested
from gatorch.functional.attention.masks import attended_keys, check_attn_mask
from gatorch.functional.attention.sets import check_packed_sets, unnest_sets
from gatorch.layers import AttentionConfig, EquiLinear, GATrBlock, MLPConfig
from gatorch.layers._checks import (
    check_algebra,
    check_layout,
    check_mv_in,
    check_scalars,
    check_scalars_match,
    check_tensor,
    mask_alias,
    module_dtype,
)
from gatorch.layers.block import ConditionalGATrBlock
from gatorch.layers.config import NormConfig

__all__ = ["ConditionalGATr", "GATr"]

#: A net's block factory: ``(attention, mlp, norm) -> block``.
BlockFactory = Callable[[AttentionConfig, MLPConfig, NormConfig], nn.Module]


class _GATrBase(nn.Module):
    """What :class:`GATr` and :class:`ConditionalGATr` share.

    The constructor checks, the configs, ``linear_in`` -> ``num_blocks`` blocks (built by
    ``make_block``) -> ``linear_out`` (registered in this order: the state dict's), the
    checks of the items input (:meth:`_items`), the join reference and the loop over the
    blocks (:meth:`_run`).
    """

    def __init__(
        self,
        who: str,
        alg: Algebra,
        *,
        in_mv_channels: int,
        out_mv_channels: int,
        hidden_mv_channels: int,
        in_s_channels: int,
        out_s_channels: int,
        hidden_s_channels: int,
        num_blocks: int,
        num_heads: int | None,
        attention: AttentionConfig | Mapping[str, Any] | None,
        mlp: MLPConfig | Mapping[str, Any] | None,
        norm: NormConfig | Mapping[str, Any] | None,
        group: str,
        checkpoint_blocks: bool,
        make_block: BlockFactory,
        linear_in_bias: bool | str = True,
        layout: Layout | None = None,
    ) -> None:
        super().__init__()
        check_algebra(alg, who)
        #: The grades every multivector channel stores (``None``: all blades).
        self.layout = lay = check_layout(alg, layout, who)
        self._dim = alg.dim if lay is None else lay.dim
        if not isinstance(num_blocks, int) or num_blocks < 1:
            raise ValueError(f"{who}: num_blocks must be an int >= 1, got {num_blocks!r}")
        attn_cfg = _heads(who, attention, num_heads)
        mlp_cfg, norm_cfg = MLPConfig.cast(mlp), NormConfig.cast(norm)
        self.alg, self.who = alg, who
        self.in_mv_channels, self.in_s_channels = in_mv_channels, in_s_channels
        self.hidden_s_channels = hidden_s_channels
        self.attention_config, self.mlp_config, self.norm_config = attn_cfg, mlp_cfg, norm_cfg
        self.group = group
        self.checkpoint_blocks = bool(checkpoint_blocks)
        self.linear_in = EquiLinear(
            alg,
            in_mv_channels,
            hidden_mv_channels,
            in_s_channels=in_s_channels,
            out_s_channels=hidden_s_channels,
            group=group,
            bias=linear_in_bias,
            in_layout=lay,
            out_layout=lay,
        )
        self.blocks = nn.ModuleList(make_block(attn_cfg, mlp_cfg, norm_cfg) for _ in range(num_blocks))
        self.linear_out = EquiLinear(
            alg,
            hidden_mv_channels,
            out_mv_channels,
            in_s_channels=hidden_s_channels,
            out_s_channels=out_s_channels,
            group=group,
            in_layout=lay,
            out_layout=lay,
        )

    def _items(
        self,
        who: str,
        mv: Tensor,
        scalars: Tensor | None,
        offsets: Tensor | None,
        max_items: int | None,
        attn_mask: Tensor | None,
        channels: int,
        s_channels: int,
        **names: str,
    ) -> None:
        """Check one items input: ``(batch..., items, channels, dim)`` or packed sets."""
        dtype = module_dtype(self)
        check_mv_in(self.alg, self.layout, mv, channels, who, dtype)
        check_scalars(scalars, s_channels, who, dtype)
        if mv.ndim < 3:
            raise ValueError(
                f"{who}: expected mv of shape (batch..., items, {channels}, {self._dim}), "
                f"got {tuple(mv.shape)}"
            )
        check_packed_sets(
            who,
            mv,
            offsets,
            max_items,
            scalars=scalars if s_channels else None,
            attn_mask=attn_mask,
            shape=f"(total_items, {channels}, {self._dim})",
            **names,
        )
        if s_channels:
            check_scalars_match(who, mv, scalars, s_channels)

    def _mask(self, name: str, mask: Tensor | None, mv: Tensor, items_k: int, heads: int) -> Tensor | None:
        """``mask`` checked (:func:`~gatorch.functional.attention.masks.check_attn_mask`) against
        the items ``mv: (batch..., items, channels, dim)`` and ``items_k`` keys."""
        return check_attn_mask(self.who, mask, tuple(mv.shape[:-3]), heads, mv.shape[-3], items_k, name=name)

    def _join_reference(
        self, mv: Tensor, offsets: Tensor | None, join_reference: Tensor | None, attn_mask: Tensor | None
    ) -> Tensor:
        """The given join reference (checked), else GATr's default (after the offsets' checks):
        the mean over the items that some item may attend to (``attn_mask``, checked)."""
        if join_reference is None:
            return _default_reference(mv, offsets, None if attn_mask is None else _attended_items(attn_mask))
        if self.layout is None:
            self.alg.check_dim(join_reference, f"{self.who} join_reference")
        elif not isinstance(join_reference, Tensor) or join_reference.shape[-1:] != (self._dim,):
            got = tuple(join_reference.shape) if isinstance(join_reference, Tensor) else type(join_reference)
            raise ValueError(
                f"{self.who}: expected join_reference with last dimension {self._dim} (the blades of "
                f"grades {self.layout.grades}), got {got}"
            )
        return join_reference

    def _run(
        self,
        mv: Tensor,
        scalars: Tensor | None,
        block_args: Callable[[Tensor, Tensor | None], tuple[Any, ...]],
        packing: dict[str, Any],
        offsets: Tensor | None,
        max_items: int | None,
        nested: bool,
    ) -> tuple[Tensor, Tensor]:
        """``linear_in``, the blocks (``block(*block_args(h, s), **packing)``), ``linear_out``;
        nested outputs when the inputs were nested."""
        h, s = self.linear_in(mv, scalars if self.in_s_channels else None)
        for block in self.blocks:
            args = block_args(h, s if self.hidden_s_channels else None)
            if self.checkpoint_blocks and self.training:
                h, s = checkpoint(block, *args, use_reentrant=False, **packing)
            else:
                h, s = block(*args, **packing)
        out, out_s = self.linear_out(h, s if self.hidden_s_channels else None)
        if nested:
            assert offsets is not None
            return packed_to_nested(out, offsets, max_items), packed_to_nested(out_s, offsets, max_items)
        return out, out_s


class GATr(_GATrBase):
    r"""Geometric algebra transformer (GATr) over any :class:`~gatorch.Algebra`.

    ``EquiLinear`` in, ``num_blocks`` :class:`~gatorch.layers.GATrBlock` s, ``EquiLinear``
    out. On ``PGA3`` this is GATr (E(3)), on ``STA`` L-GATr (Lorentz group), on ``CGA3``
    a conformal GATr, on ``VGA3`` an O(3) transformer; equivariant under the algebra's
    twisted versor action (reflections included) and under permutations of the items.

    The join in the MLPs (on by default for degenerate algebras) needs a reference
    multivector; by default it is the mean of the input multivectors over items and
    channels, per batch element (GATr's choice), which keeps the net Pin-equivariant.

    L-GATr's configuration is ``attention={"qkv_norm": True, "qkv_bias": False}``,
    ``mlp={"bilinear_norm": True}``, ``norm=NormConfig.lgatr()`` and ``group="spin"``;
    :func:`gatorch.interop.from_lgatr` builds it from an ``lgatr`` model.

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
    norm : NormConfig or mapping, optional
        The blocks' layer norms (GATr's by default).
    group : {"pin", "spin"}
        The group of every linear map. ``"spin"`` (even versors only) also mixes the
        pseudoscalar like a scalar; on ``STA`` that is L-GATr's default ``subgroup=True``.
    checkpoint_blocks : bool
        Recompute each block in the backward pass (activation checkpointing): less memory,
        about one more forward pass of time.
    linear_in_bias : bool or "scalar"
        The bias of ``linear_in`` (:class:`~gatorch.layers.EquiLinear`'s ``bias``). ``"scalar"``
        (on the scalar blade only) is L-GATr's input layer without scalar inputs, which
        :func:`gatorch.interop.from_lgatr` sets for ``in_s_channels=0``.
    layout : Layout, optional
        The grades every multivector channel stores (:class:`~gatorch.algebras.Layout`):
        inputs and outputs are ``(..., channels, layout.dim)`` and every layer (linear maps,
        layer norms, attention, bilinear products, gates) works on the stored blades only,
        so the net costs in proportion to them. It needs grade 0 (the gates). The join needs
        the pseudoscalar: with the default ``mlp={"join": None}`` it is off when the layout
        lacks grade ``n`` (PGA3 at grades ``(0, 1, 2)``); ``join=True`` then raises
        ``ValueError``. Distance features need grade ``n - 1``. The net
        equals the full net whose weights are zero outside the layout (and whose join is off
        where the layout's is), between ``layout.embed`` and ``layout.project``. ``None`` (the
        default) or a full layout: all blades, today's net and state dict.

    Shapes
    ------
    ``forward(mv, scalars=None, attn_mask=None, join_reference=None, is_causal=False) -> (mv, s)`` with
    ``mv: (batch..., items, in_mv_channels, dim)``, ``scalars: (batch..., items, in_s_channels)``,
    ``attn_mask`` of shape ``(items, items)``, ``(batch..., items, items)`` or
    ``(batch..., heads or 1, items, items)`` (boolean, ``True`` = may attend, or additive
    float; integer masks raise ``TypeError``: use ``mask.bool()``), ``join_reference`` broadcastable to
    ``(batch..., items, channels, dim)``, ``is_causal=True`` for causal attention (item ``i``
    sees items ``<= i``; combined with ``attn_mask`` when both are given); returns
    ``(batch..., items, out_mv_channels, dim)`` and ``(batch..., items, out_s_channels)``.

    Variable-size sets, without a quadratic mask over the batch, come in one of two forms:

    * packed: ``net(mv, scalars, offsets=offsets, max_items=m)`` with
      ``mv: (total_items, in_mv_channels, dim)``, the sets one after the other, and
      ``offsets = (0, n_0, n_0 + n_1, ..., total_items)``
      (:func:`~gatorch.functional.attention.offsets_from_sizes`); returns packed outputs;
    * nested: ``mv`` (and ``scalars``) nested tensors with the jagged layout,
      ``torch.nested.nested_tensor([...], layout=torch.jagged)`` of ``(n_i, channels, dim)``
      sets; returns nested tensors.

    Non-finite values: a NaN or inf in an item no query may attend to (masked out of every
    key) reaches no other item (its keys and values are zeroed before the attention and the
    default join reference is then the mean over the attended items only); in an attended
    item it propagates. Inputs are checked once here: a tensor (not a NumPy array), of the
    net's dtype unless autocast is active, scalars with the multivectors' leading dims.

    Each set is then processed as if it ran alone (attention within the set; the default
    join reference is the set's mean), see
    :func:`~gatorch.functional.attention.packed_geometric_attention`. ``max_items`` (the
    largest set) spares a host sync and is needed under ``torch.compile``.

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
        norm: NormConfig | Mapping[str, Any] | None = None,
        group: str = "pin",
        checkpoint_blocks: bool = False,
        linear_in_bias: bool | str = True,
        layout: Layout | None = None,
    ) -> None:
        def make_block(attn_cfg: AttentionConfig, mlp_cfg: MLPConfig, norm_cfg: NormConfig) -> nn.Module:
            return GATrBlock(
                alg,
                hidden_mv_channels,
                hidden_s_channels,
                attn_cfg,
                mlp_cfg,
                norm=norm_cfg,
                group=group,
                layout=layout,
            )

        super().__init__(
            "GATr",
            alg,
            in_mv_channels=in_mv_channels,
            out_mv_channels=out_mv_channels,
            hidden_mv_channels=hidden_mv_channels,
            in_s_channels=in_s_channels,
            out_s_channels=out_s_channels,
            hidden_s_channels=hidden_s_channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
            attention=attention,
            mlp=mlp,
            norm=norm,
            group=group,
            checkpoint_blocks=checkpoint_blocks,
            make_block=make_block,
            linear_in_bias=linear_in_bias,
            layout=layout,
        )

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
        check_tensor(self.who, "mv", mv)
        mv, scalars, offsets, nested = unnest_sets(self.who, mv, scalars, offsets)
        self._items(
            self.who, mv, scalars, offsets, max_items, attn_mask, self.in_mv_channels, self.in_s_channels
        )
        attn_mask = self._mask("attn_mask", attn_mask, mv, mv.shape[-3], self.attention_config.num_heads)
        reference = self._join_reference(mv, offsets, join_reference, attn_mask)
        packing: dict[str, Any] = {"offsets": offsets, "max_items": max_items}
        return self._run(
            mv,
            scalars,
            lambda h, s: (h, s, attn_mask, reference, is_causal),
            packing,
            offsets,
            max_items,
            nested,
        )


def _attended_items(attn_mask: Tensor) -> Tensor:
    """The items some query may attend to, ``(..., items)`` bool, from a checked mask
    (``(items, items)`` or ``(batch..., heads or 1, items, items)``)."""
    keys = attended_keys(attn_mask)
    return keys if attn_mask.ndim == 2 else keys.any(dim=-2)


def _default_reference(mv: Tensor, offsets: Tensor | None, keep: Tensor | None = None) -> Tensor:
    """GATr's join reference: the mean over items and channels, per batch element or per packed set.

    ``keep`` (broadcastable to ``(batch..., items)``, bool) restricts the mean to those items;
    the others are left out with ``torch.where`` (a NaN in them does not reach the mean).
    """
    if offsets is None:
        if keep is None:
            return mv.mean(dim=(-3, -2), keepdim=True)  # (batch..., 1, 1, dim)
        keep = keep.expand(mv.shape[:-2])[..., None, None]  # (batch..., items, 1, 1)
        total = torch.where(keep, mv, mv.new_zeros(())).sum(dim=(-3, -2), keepdim=True)
        count = keep.sum(dim=-3, keepdim=True).clamp_min(1) * mv.shape[-2]
        return total / count.to(mv.dtype)
    offsets = offsets.to(device=mv.device, dtype=torch.int64)
    item = torch.arange(mv.shape[0], device=mv.device)
    which = torch.searchsorted(offsets[1:].contiguous(), item, right=True)  # the set of each item
    sums = mv.new_zeros(offsets.shape[0] - 1, mv.shape[-1]).index_add(0, which, mv.mean(dim=-2))
    counts = (offsets[1:] - offsets[:-1]).clamp_min(1).to(mv.dtype)
    return (sums / counts[:, None])[which][:, None, :]  # (total_items, 1, dim)


def _heads(
    owner: str, attention: AttentionConfig | Mapping[str, Any] | None, num_heads: int | None
) -> AttentionConfig:
    """The attention config with ``num_heads`` applied (an error if it contradicts the config)."""
    attn_cfg = AttentionConfig.cast(attention)
    if num_heads is not None:
        if attention is not None and attn_cfg.num_heads != num_heads and _given(attention, "num_heads"):
            raise ValueError(
                f"{owner}: num_heads={num_heads} contradicts attention.num_heads={attn_cfg.num_heads}"
            )
        attn_cfg = dataclasses.replace(attn_cfg, num_heads=num_heads)
    return attn_cfg


def _given(config: object, name: str) -> bool:
    """Whether ``config`` (a config object or a mapping) set ``name`` explicitly."""
    if isinstance(config, Mapping):
        return name in config
    return True


class ConditionalGATr(_GATrBase):
    r"""GATr with cross-attention to a condition set in every block, over any :class:`~gatorch.Algebra`.

    ``EquiLinear`` in, ``num_blocks`` :class:`~gatorch.layers.ConditionalGATrBlock` s
    (self-attention, cross-attention to the condition, geometric MLP), ``EquiLinear`` out:
    the decoder of generative models (flow matching, diffusion) whose condition is an
    already-embedded set, e.g. the output of a :class:`GATr` encoder; on ``STA`` this is
    L-GATr's ``ConditionalLGATr``. The condition enters every block as it is (normalised per
    block, no input projection). Equivariant under the algebra's twisted versor action
    (acting on inputs and condition together) and under permutations of the items, and
    invariant under permutations of the condition items.

    Parameters
    ----------
    alg : Algebra
    in_mv_channels, out_mv_channels, hidden_mv_channels : int
    condition_mv_channels : int
    in_s_channels, out_s_channels, hidden_s_channels, condition_s_channels : int
    num_blocks : int
    num_heads : int, optional
        Overrides ``attention.num_heads`` and ``cross_attention.num_heads``.
    attention, cross_attention : AttentionConfig or mapping, optional
    mlp : MLPConfig or mapping, optional
    norm : NormConfig or mapping, optional
    group : {"pin", "spin"}
    checkpoint_blocks : bool
    linear_in_bias : bool or "scalar"
        As in :class:`GATr`.
    layout : Layout, optional
        As in :class:`GATr`; the condition stores the same grades (``condition_mv: (...,
        condition_items, condition_mv_channels, layout.dim)``).

    Shapes
    ------
    ``forward(mv, condition_mv, scalars=None, condition_scalars=None, attn_mask=None,
    crossattn_mask=None, join_reference=None, is_causal=False) -> (mv, s)`` with
    ``mv: (batch..., items, in_mv_channels, dim)``,
    ``condition_mv: (batch..., condition_items, condition_mv_channels, dim)``,
    ``scalars: (batch..., items, in_s_channels)``,
    ``condition_scalars: (batch..., condition_items, condition_s_channels)``,
    ``attn_mask: (..., items, items)``, ``crossattn_mask: (..., items, condition_items)``
    (the shapes and dtypes of :class:`GATr`'s mask; ``cross_attn_mask=`` is an alias, a
    ``TypeError`` if both are given);
    lgatr's keyword names ``multivectors_cond=`` and ``scalars_cond=`` are aliases of
    ``condition_mv=`` and ``condition_scalars=`` (the positions are lgatr's too);
    returns ``(batch..., items, out_mv_channels, dim)`` and ``(batch..., items, out_s_channels)``.
    Variable-size sets as in :class:`GATr`: packed, with ``offsets=`` and
    ``condition_offsets=`` (set ``i`` attends to condition set ``i``; ``max_items=``,
    ``condition_max_items=``), or nested tensors for the inputs and the condition.

    Examples
    --------
    >>> import torch
    >>> from gatorch import STA
    >>> from gatorch.nets import ConditionalGATr
    >>> net = ConditionalGATr(STA, in_mv_channels=1, condition_mv_channels=2, out_mv_channels=1,
    ...                       hidden_mv_channels=8, in_s_channels=0, condition_s_channels=3,
    ...                       out_s_channels=0, hidden_s_channels=8, num_blocks=2, num_heads=2)
    >>> mv, s = net(torch.randn(4, 10, 1, 16), torch.randn(4, 7, 2, 16), None, torch.randn(4, 7, 3))
    >>> mv.shape
    torch.Size([4, 10, 1, 16])
    """

    def __init__(
        self,
        alg: Algebra,
        *,
        in_mv_channels: int,
        condition_mv_channels: int,
        out_mv_channels: int,
        hidden_mv_channels: int,
        in_s_channels: int = 0,
        condition_s_channels: int = 0,
        out_s_channels: int = 0,
        hidden_s_channels: int = 0,
        num_blocks: int,
        num_heads: int | None = None,
        attention: AttentionConfig | Mapping[str, Any] | None = None,
        cross_attention: AttentionConfig | Mapping[str, Any] | None = None,
        mlp: MLPConfig | Mapping[str, Any] | None = None,
        norm: NormConfig | Mapping[str, Any] | None = None,
        group: str = "pin",
        checkpoint_blocks: bool = False,
        linear_in_bias: bool | str = True,
        layout: Layout | None = None,
    ) -> None:
        cross_cfg = _heads("ConditionalGATr", cross_attention, num_heads)

        def make_block(attn_cfg: AttentionConfig, mlp_cfg: MLPConfig, norm_cfg: NormConfig) -> nn.Module:
            return ConditionalGATrBlock(
                alg,
                hidden_mv_channels,
                hidden_s_channels,
                condition_mv_channels,
                condition_s_channels,
                attn_cfg,
                cross_cfg,
                mlp_cfg,
                norm=norm_cfg,
                group=group,
                layout=layout,
            )

        super().__init__(
            "ConditionalGATr",
            alg,
            in_mv_channels=in_mv_channels,
            out_mv_channels=out_mv_channels,
            hidden_mv_channels=hidden_mv_channels,
            in_s_channels=in_s_channels,
            out_s_channels=out_s_channels,
            hidden_s_channels=hidden_s_channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
            attention=attention,
            mlp=mlp,
            norm=norm,
            group=group,
            checkpoint_blocks=checkpoint_blocks,
            make_block=make_block,
            linear_in_bias=linear_in_bias,
            layout=layout,
        )
        self.condition_mv_channels, self.condition_s_channels = condition_mv_channels, condition_s_channels
        self.cross_attention_config = cross_cfg

    def forward(
        self,
        mv: Tensor,
        condition_mv: Tensor | None = None,
        scalars: Tensor | None = None,
        condition_scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        crossattn_mask: Tensor | None = None,
        join_reference: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        condition_offsets: Tensor | None = None,
        max_items: int | None = None,
        condition_max_items: int | None = None,
        cross_attn_mask: Tensor | None = None,
        multivectors_cond: Tensor | None = None,
        scalars_cond: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        who, cwho = self.who, f"{self.who} condition"
        crossattn_mask = mask_alias(who, "crossattn_mask", crossattn_mask, "cross_attn_mask", cross_attn_mask)
        condition_mv = mask_alias(who, "condition_mv", condition_mv, "multivectors_cond", multivectors_cond)
        condition_scalars = mask_alias(
            who, "condition_scalars", condition_scalars, "scalars_cond", scalars_cond
        )
        if condition_mv is None:
            raise TypeError(f"{who}: missing the condition: give condition_mv= (or multivectors_cond=)")
        check_tensor(who, "mv", mv)
        check_tensor(who, "condition_mv", condition_mv)
        if mv.is_nested != condition_mv.is_nested:
            raise ValueError(f"{who}: give the inputs and the condition both as nested tensors or neither")
        mv, scalars, offsets, nested = unnest_sets(who, mv, scalars, offsets)
        condition_mv, condition_scalars, condition_offsets, _ = unnest_sets(
            cwho, condition_mv, condition_scalars, condition_offsets
        )
        if (offsets is None) != (condition_offsets is None):
            raise ValueError(f"{who}: packed sets need both offsets and condition_offsets")
        self._items(who, mv, scalars, offsets, max_items, attn_mask, self.in_mv_channels, self.in_s_channels)
        self._items(
            cwho,
            condition_mv,
            condition_scalars,
            condition_offsets,
            condition_max_items,
            crossattn_mask,
            self.condition_mv_channels,
            self.condition_s_channels,
            name="offsets_k",
            max_name="condition_max_items",
            what="condition_mv",
        )
        if offsets is None and (condition_mv.ndim != mv.ndim or condition_mv.shape[:-3] != mv.shape[:-3]):
            raise ValueError(
                f"{who}: expected mv (batch..., items, channels, dim) and condition_mv "
                f"(batch..., condition_items, channels, dim) with the same batch dims, got "
                f"{tuple(mv.shape)} and {tuple(condition_mv.shape)}"
            )
        attn_mask = self._mask("attn_mask", attn_mask, mv, mv.shape[-3], self.attention_config.num_heads)
        crossattn_mask = self._mask(
            "crossattn_mask",
            crossattn_mask,
            mv,
            condition_mv.shape[-3],
            self.cross_attention_config.num_heads,
        )
        reference = self._join_reference(mv, offsets, join_reference, attn_mask)
        packing: dict[str, Any] = {
            "offsets": offsets,
            "condition_offsets": condition_offsets,
            "max_items": max_items,
            "condition_max_items": condition_max_items,
        }
        cs = condition_scalars if self.condition_s_channels else None
        return self._run(
            mv,
            scalars,
            lambda h, s: (h, condition_mv, s, cs, attn_mask, crossattn_mask, reference, is_causal),
            packing,
            offsets,
            max_items,
            nested,
        )
