r"""``GATrSlim`` and ``ConditionalGATrSlim``: L-GATr-slim for any algebra.

A slim GATr carries, per item, vector (grade-1) channels and scalar channels only. On
``STA`` it is L-GATr-slim (lgatr's ``LGATrSlim`` / ``ConditionalLGATrSlim``) and computes
the same function with the same parameters (see :mod:`gatorch.interop.lgatr_slim`); on any
other algebra the Minkowski product becomes the algebra's metric on grade 1, so the net is
equivariant under the algebra's versor action on vectors (the orthogonal group of the
metric, reflections included: O(1,3) on STA, O(3) on VGA3, E(n) acting on the planes of
PGA) and under permutations of the items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gatorch.functional.algebra import Algebra
from gatorch.functional.attention import packed_to_nested
from gatorch.functional.attention.masks import check_attn_mask
from gatorch.functional.attention.sets import check_packed_sets, unnest_sets
from gatorch.layers._checks import check_dtype, check_int, check_tensor, mask_alias, module_dtype
from gatorch.layers.slim import (
    ConditionalSlimBlock,
    SlimBlock,
    SlimLinear,
    SlimMLP,
    SlimRMSNorm,
    check_dropout,
    check_nonlinearity,
    check_vector_algebra,
)

__all__ = ["ConditionalGATrSlim", "GATrSlim"]

#: A slim net's block factory: the block options (``nonlinearity``, ...,
#: ``norm_elementwise_affine``) as keywords -> block.
SlimBlockFactory = Callable[..., nn.Module]


def _freeze_dead_tail(norm: SlimRMSNorm, mlp: SlimMLP, out_v_channels: int, out_s_channels: int) -> None:
    """Freeze the last block's parameters that cannot get a gradient when an output stream is empty."""
    if out_v_channels == 0:
        if norm.weight_v is not None:
            norm.weight_v.requires_grad_(False)
        for name, p in mlp.named_parameters():
            if name.endswith("weight_v"):
                p.requires_grad_(False)
    if out_s_channels == 0:
        if norm.weight_s is not None:
            norm.weight_s.requires_grad_(False)
        for name, p in mlp.named_parameters():
            if "linear_s" in name:
                p.requires_grad_(False)


class _SlimNetBase(nn.Module):
    """What :class:`GATrSlim` and :class:`ConditionalGATrSlim` share.

    The option checks and the ``config``, ``linear_in`` -> ``num_blocks`` blocks (built by
    ``make_block`` from the block options) -> ``linear_out`` (registered in this order: the
    state dict's), the frozen dead tail of the last block, the input checks
    (:meth:`_inputs`) and the loop over the blocks in the hidden layout (:meth:`_run`).

    ``channels`` holds the channel options in the order of the net's signature (``config``
    and the checks follow it); ``in_v_channels`` ... ``hidden_s_channels`` must be among them.
    ``tail_norm`` names the last block's norm before its MLP.
    """

    config: dict[str, Any]

    def __init__(
        self,
        who: str,
        alg: Algebra,
        channels: dict[str, int],
        *,
        num_blocks: int,
        num_heads: int,
        nonlinearity: str,
        nonlinearity_v: str | None,
        mlp_ratio: int,
        attn_ratio: int,
        num_layers_mlp: int,
        dropout_prob: float | None,
        norm_elementwise_affine: bool,
        checkpoint_blocks: bool,
        make_block: SlimBlockFactory,
        tail_norm: str,
    ) -> None:
        super().__init__()
        check_vector_algebra(alg, who)
        for name, value in channels.items():
            check_int(who, name, value, 1 if name == "hidden_v_channels" else 0)
        check_int(who, "num_blocks", num_blocks, 0)
        check_int(who, "num_heads", num_heads, 1)
        check_int(who, "mlp_ratio", mlp_ratio, 1)
        check_int(who, "attn_ratio", attn_ratio, 1)
        check_int(who, "num_layers_mlp", num_layers_mlp, 2)
        check_nonlinearity(who, "nonlinearity", nonlinearity)
        if nonlinearity_v is not None:
            check_nonlinearity(who, "nonlinearity_v", nonlinearity_v)
        check_dropout(who, dropout_prob)
        self.alg, self.who = alg, who
        self.in_v_channels, self.in_s_channels = channels["in_v_channels"], channels["in_s_channels"]
        self.checkpoint_blocks = bool(checkpoint_blocks)
        block_options: dict[str, Any] = {
            "nonlinearity": nonlinearity,
            "nonlinearity_v": nonlinearity_v,
            "mlp_ratio": mlp_ratio,
            "attn_ratio": attn_ratio,
            "num_layers_mlp": num_layers_mlp,
            "dropout_prob": dropout_prob,
            "norm_elementwise_affine": bool(norm_elementwise_affine),
        }
        self.config = {
            **channels,
            "num_blocks": num_blocks,
            "num_heads": num_heads,
            **block_options,
            "checkpoint_blocks": bool(checkpoint_blocks),
        }
        hidden_v, hidden_s = channels["hidden_v_channels"], channels["hidden_s_channels"]
        out_v, out_s = channels["out_v_channels"], channels["out_s_channels"]
        self.linear_in = SlimLinear(self.in_v_channels, hidden_v, self.in_s_channels, hidden_s)
        self.blocks = nn.ModuleList(make_block(**block_options) for _ in range(num_blocks))
        self.linear_out = SlimLinear(hidden_v, out_v, hidden_s, out_s)
        if num_blocks:
            last = self.blocks[-1]
            norm, mlp = getattr(last, tail_norm), last.mlp
            assert isinstance(norm, SlimRMSNorm) and isinstance(mlp, SlimMLP)
            _freeze_dead_tail(norm, mlp, out_v, out_s)

    def _inputs(
        self,
        who: str,
        vectors: object,
        scalars: object,
        v_channels: int,
        s_channels: int,
        what: str,
        offsets: Tensor | None,
        max_items: int | None,
        attn_mask: Tensor | None,
        **names: str,
    ) -> tuple[Tensor, Tensor]:
        """Check ``(batch..., items, v_channels, n)`` vectors and ``(batch..., items, s_channels)``
        scalars (``None`` allowed when ``s_channels == 0``: zeros then), or packed sets."""
        vectors, scalars = self._check_pair(vectors, scalars, v_channels, s_channels, what)
        check_packed_sets(
            who,
            vectors,
            offsets,
            max_items,
            scalars=scalars,
            attn_mask=attn_mask,
            what=what,
            shape=f"(total_items, {v_channels}, {self.alg.n})",
            **names,
        )
        return vectors, scalars

    def _check_pair(
        self, vectors: object, scalars: object, v_channels: int, s_channels: int, what: str
    ) -> tuple[Tensor, Tensor]:
        n, who = self.alg.n, self.who
        check_tensor(who, what, vectors)
        assert isinstance(vectors, Tensor)
        if not vectors.is_floating_point():
            raise TypeError(f"{who}: {what} must be a floating-point tensor, got dtype {vectors.dtype}")
        if vectors.ndim < 3 or vectors.shape[-1] != n or vectors.shape[-2] != v_channels:
            raise ValueError(
                f"{who}: expected {what} of shape (batch..., items, {v_channels}, {n}) (the {n} "
                f"grade-1 components of {self.alg!r}), got {tuple(vectors.shape)}"
            )
        dtype = module_dtype(self)
        check_dtype(who, vectors, dtype, what)
        lead = tuple(vectors.shape[:-2])
        s_what = what.replace("vectors", "scalars")
        if scalars is None:
            if s_channels:
                raise ValueError(
                    f"{who}: expected {s_what} of shape (batch..., items, {s_channels}), got None"
                )
            return vectors, vectors.new_zeros(*lead, 0)
        check_tensor(who, s_what, scalars)
        assert isinstance(scalars, Tensor)
        if tuple(scalars.shape) != (*lead, s_channels):
            raise ValueError(
                f"{who}: expected {s_what} of shape {(*lead, s_channels)} (batch..., items, {s_channels}) "
                f"to match {what} of shape {tuple(vectors.shape)}, got {tuple(scalars.shape)}"
            )
        if s_channels:
            check_dtype(who, scalars, dtype, s_what)
        return vectors, scalars

    def _mask(self, name: str, mask: Tensor | None, vectors: Tensor, items_k: int) -> Tensor | None:
        """``mask`` checked (:func:`~gatorch.functional.attention.masks.check_attn_mask`) against
        the items ``vectors: (batch..., items, channels, n)`` and ``items_k`` keys."""
        heads = self.config["num_heads"]
        return check_attn_mask(
            self.who, mask, tuple(vectors.shape[:-3]), heads, vectors.shape[-3], items_k, name=name
        )

    def _run(
        self,
        vectors: Tensor,
        scalars: Tensor,
        block_args: Callable[[Tensor, Tensor], tuple[Any, ...]],
        packing: dict[str, Any],
        offsets: Tensor | None,
        max_items: int | None,
        nested: bool,
    ) -> tuple[Tensor, Tensor]:
        """``linear_in`` in the hidden layout ``(..., items, n, channels)`` (the vector maps are
        flat GEMMs), the blocks (``block(*block_args(h_v, h_s), **packing)``), ``linear_out``
        and back to ``(..., items, channels, n)``; nested outputs when the inputs were nested."""
        h_v, h_s = self.linear_in(vectors.transpose(-2, -1), scalars)
        for block in self.blocks:
            args = block_args(h_v, h_s)
            if self.checkpoint_blocks and self.training:
                h_v, h_s = checkpoint(block, *args, use_reentrant=False, **packing)
            else:
                h_v, h_s = block(*args, **packing)
        out_v, out_s = self.linear_out(h_v, h_s)
        out_v = out_v.transpose(-2, -1)
        if nested:
            assert offsets is not None
            return packed_to_nested(out_v, offsets, max_items), packed_to_nested(out_s, offsets, max_items)
        return out_v, out_s

    def extra_repr(self) -> str:
        c = self.config
        return f"{self.alg!r}, " + ", ".join(f"{k}={v!r}" for k, v in c.items())


class GATrSlim(_SlimNetBase):
    r"""Slim geometric algebra transformer (L-GATr-slim) over any :class:`~gatorch.Algebra`.

    A :class:`~gatorch.layers.slim.SlimLinear` in, ``num_blocks``
    :class:`~gatorch.layers.slim.SlimBlock` s (pre-norm self-attention and a gated MLP, each
    residual), a :class:`~gatorch.layers.slim.SlimLinear` out, on vector (grade-1) and scalar
    channels only. With :math:`\langle x, y\rangle = \sum_i m_i x_i y_i`, ``m = alg.metric``:

    * linear maps mix channels, never components (no vector bias);
    * the RMS norm divides by :math:`\sqrt{\mathrm{mean}(|\langle v_c, v_c\rangle|, s_k^2) + 0.01}`
      (degenerate components drop out, finite for null vectors);
    * attention logits are :math:`\sum_c\langle q_c, k_c\rangle + q^s\cdot k^s` over
      :math:`\sqrt{n\,hv + hs}`;
    * the MLP gates vectors by :math:`\sigma_v(\langle b, c\rangle/\sqrt{n})` and scalars by
      :math:`\sigma(u)`.

    On ``STA`` this is exactly lgatr's ``LGATrSlim`` (same function, same parameter names);
    see :func:`gatorch.interop.lgatr_slim.from_lgatr_slim`.

    Parameters
    ----------
    alg : Algebra
    in_v_channels, out_v_channels, hidden_v_channels : int
        Vector channels (``hidden_v_channels >= 1``).
    in_s_channels, out_s_channels, hidden_s_channels : int
        Scalar channels (0 allowed: ``scalars=None``).
    num_blocks, num_heads : int
    nonlinearity : str
        Scalar gate of the MLPs: ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"gelu"`` (tanh
        approximation) or ``"silu"``.
    nonlinearity_v : str or None
        Vector gate of the MLPs; ``None`` uses ``nonlinearity``.
    mlp_ratio : int
        Hidden channels of the MLPs over the block's channels.
    attn_ratio : int
        Attention channels per head: ``max(attn_ratio * v // num_heads, 1)`` vectors and
        ``max(attn_ratio * s // num_heads, 4)`` scalars.
    num_layers_mlp : int
        Layers per MLP (>= 2): ``num_layers_mlp - 1`` gated layers and a linear one.
    dropout_prob : float, optional
        Dropout after every gated layer and every attention (whole vector channels).
    norm_elementwise_affine : bool
        Learnt per-channel gains in the blocks' RMS norms.
    checkpoint_blocks : bool
        Recompute each block in the backward pass in training mode (less memory).

    Shapes
    ------
    ``forward(vectors, scalars=None, attn_mask=None, is_causal=False) -> (vectors, scalars)``
    with ``vectors: (batch..., items, in_v_channels, alg.n)`` (grade-1 components in the
    algebra's blade order: ``(t, x, y, z)`` on STA), ``scalars: (batch..., items, in_s_channels)``;
    ``attn_mask`` boolean (``True`` = may attend) or additive of shape ``(items, items)``,
    ``(batch..., items, items)`` or ``(batch..., heads or 1, items, items)`` (integer masks
    raise ``TypeError``; keys no query may attend to are zeroed, so a NaN in a masked-out item
    reaches no other item); ``is_causal=True``:
    item ``i`` attends to items ``<= i``. Returns ``(batch..., items, out_v_channels, alg.n)``
    and ``(batch..., items, out_s_channels)``.

    Variable-size sets, without a quadratic mask over the batch, come in one of two forms:

    * packed: ``net(vectors, scalars, offsets=offsets, max_items=m)`` with
      ``vectors: (total_items, in_v_channels, alg.n)`` and ``scalars: (total_items,
      in_s_channels)``, the sets one after the other, and ``offsets = (0, n_0, n_0 + n_1, ...,
      total_items)`` (:func:`~gatorch.functional.attention.offsets_from_sizes`); returns packed
      outputs;
    * nested: ``vectors`` (and ``scalars``) nested tensors with the jagged layout,
      ``torch.nested.nested_tensor([...], layout=torch.jagged)`` of ``(n_i, in_v_channels,
      alg.n)`` sets; returns nested tensors.

    Each set is then processed as if it ran alone (attention within the set, ``is_causal``
    within each set; no ``attn_mask``), see
    :func:`~gatorch.functional.attention.packed_scaled_dot_product_attention`. ``max_items``
    (the largest set) spares a host sync and is needed under ``torch.compile``.

    Examples
    --------
    >>> import torch
    >>> from gatorch import STA
    >>> from gatorch.nets.slim import GATrSlim
    >>> net = GATrSlim(STA, in_v_channels=1, out_v_channels=1, hidden_v_channels=8,
    ...                in_s_channels=2, out_s_channels=1, hidden_s_channels=16, num_blocks=2, num_heads=2)
    >>> v, s = net(torch.randn(3, 20, 1, 4), torch.randn(3, 20, 2))  # 3 events of 20 particles
    >>> v.shape, s.shape
    (torch.Size([3, 20, 1, 4]), torch.Size([3, 20, 1]))
    """

    def __init__(
        self,
        alg: Algebra,
        *,
        in_v_channels: int,
        out_v_channels: int,
        hidden_v_channels: int,
        in_s_channels: int,
        out_s_channels: int,
        hidden_s_channels: int,
        num_blocks: int,
        num_heads: int,
        nonlinearity: str = "gelu",
        nonlinearity_v: str | None = "sigmoid",
        mlp_ratio: int = 2,
        attn_ratio: int = 1,
        num_layers_mlp: int = 2,
        dropout_prob: float | None = None,
        norm_elementwise_affine: bool = True,
        checkpoint_blocks: bool = False,
    ) -> None:
        def make_block(**options: Any) -> nn.Module:
            return SlimBlock(alg, hidden_v_channels, hidden_s_channels, num_heads, **options)

        channels = {
            "in_v_channels": in_v_channels,
            "out_v_channels": out_v_channels,
            "hidden_v_channels": hidden_v_channels,
            "in_s_channels": in_s_channels,
            "out_s_channels": out_s_channels,
            "hidden_s_channels": hidden_s_channels,
        }
        super().__init__(
            "GATrSlim",
            alg,
            channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
            nonlinearity=nonlinearity,
            nonlinearity_v=nonlinearity_v,
            mlp_ratio=mlp_ratio,
            attn_ratio=attn_ratio,
            num_layers_mlp=num_layers_mlp,
            dropout_prob=dropout_prob,
            norm_elementwise_affine=norm_elementwise_affine,
            checkpoint_blocks=checkpoint_blocks,
            make_block=make_block,
            tail_norm="norm2",
        )

    def forward(
        self,
        vectors: Tensor,
        scalars: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        max_items: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        who = self.who
        vectors, scalars, offsets, nested = unnest_sets(who, vectors, scalars, offsets, what="vectors")
        vectors, s = self._inputs(
            who, vectors, scalars, self.in_v_channels, self.in_s_channels, "vectors", offsets, max_items,
            attn_mask,
        )  # fmt: skip
        attn_mask = self._mask("attn_mask", attn_mask, vectors, vectors.shape[-3])
        packing: dict[str, Any] = {"offsets": offsets, "max_items": max_items}
        return self._run(
            vectors, s, lambda h_v, h_s: (h_v, h_s, attn_mask, is_causal), packing, offsets, max_items, nested
        )


class ConditionalGATrSlim(_SlimNetBase):
    r"""Conditional slim GATr (conditional L-GATr-slim) over any :class:`~gatorch.Algebra`.

    As :class:`GATrSlim`, with :class:`~gatorch.layers.slim.ConditionalSlimBlock` s: after the
    self-attention each block cross-attends from the items to a second set of condition items
    (``v_channels_cond`` vector and ``s_channels_cond`` scalar channels, taken as they are: no
    input map), then runs the MLP. On ``STA`` this is exactly lgatr's
    ``ConditionalLGATrSlim``.

    Parameters
    ----------
    alg : Algebra
    in_v_channels, v_channels_cond, out_v_channels, hidden_v_channels : int
    in_s_channels, s_channels_cond, out_s_channels, hidden_s_channels : int
    num_blocks, num_heads, nonlinearity, nonlinearity_v, mlp_ratio, attn_ratio,
    num_layers_mlp, dropout_prob, norm_elementwise_affine, checkpoint_blocks
        As in :class:`GATrSlim`.

    Shapes
    ------
    ``forward(vectors, vectors_cond, scalars=None, scalars_cond=None, attn_mask=None,
    crossattn_mask=None, is_causal=False) -> (vectors, scalars)`` with
    ``vectors: (batch..., items, in_v_channels, alg.n)``,
    ``vectors_cond: (batch..., items_cond, v_channels_cond, alg.n)``,
    ``scalars: (batch..., items, in_s_channels)``,
    ``scalars_cond: (batch..., items_cond, s_channels_cond)``; ``attn_mask`` (items x items)
    and ``crossattn_mask`` (items x items_cond; alias ``cross_attn_mask=``, ``ConditionalGATr``'s
    former name) as in :class:`GATrSlim`; ``condition_scalars=`` is an alias of
    ``scalars_cond=`` (``ConditionalGATr``'s name); ``is_causal`` applies
    to the self-attention. Returns ``(batch..., items, out_v_channels, alg.n)`` and
    ``(batch..., items, out_s_channels)``. Variable-size sets as in :class:`GATrSlim`: packed,
    with ``offsets=`` and ``condition_offsets=`` (set ``i`` cross-attends to condition set
    ``i``; ``max_items=``, ``condition_max_items=``) and ``(total_items, channels, alg.n)`` /
    ``(total_items, s_channels)`` inputs, or nested tensors for the inputs and the condition
    (nested outputs).

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.nets.slim import ConditionalGATrSlim
    >>> net = ConditionalGATrSlim(VGA3, in_v_channels=1, v_channels_cond=2, out_v_channels=1,
    ...     hidden_v_channels=8, in_s_channels=1, s_channels_cond=3, out_s_channels=1,
    ...     hidden_s_channels=8, num_blocks=1, num_heads=2)
    >>> v, s = net(torch.randn(4, 10, 1, 3), torch.randn(4, 7, 2, 3), torch.randn(4, 10, 1),
    ...            torch.randn(4, 7, 3))
    >>> v.shape, s.shape
    (torch.Size([4, 10, 1, 3]), torch.Size([4, 10, 1]))
    """

    def __init__(
        self,
        alg: Algebra,
        *,
        in_v_channels: int,
        v_channels_cond: int,
        out_v_channels: int,
        hidden_v_channels: int,
        in_s_channels: int,
        s_channels_cond: int,
        out_s_channels: int,
        hidden_s_channels: int,
        num_blocks: int,
        num_heads: int,
        nonlinearity: str = "gelu",
        nonlinearity_v: str | None = "sigmoid",
        mlp_ratio: int = 2,
        attn_ratio: int = 1,
        num_layers_mlp: int = 2,
        dropout_prob: float | None = None,
        norm_elementwise_affine: bool = True,
        checkpoint_blocks: bool = False,
    ) -> None:
        def make_block(**options: Any) -> nn.Module:
            return ConditionalSlimBlock(
                alg, hidden_v_channels, v_channels_cond, hidden_s_channels, s_channels_cond, num_heads,
                **options,
            )  # fmt: skip

        channels = {
            "in_v_channels": in_v_channels,
            "v_channels_cond": v_channels_cond,
            "out_v_channels": out_v_channels,
            "hidden_v_channels": hidden_v_channels,
            "in_s_channels": in_s_channels,
            "s_channels_cond": s_channels_cond,
            "out_s_channels": out_s_channels,
            "hidden_s_channels": hidden_s_channels,
        }
        super().__init__(
            "ConditionalGATrSlim",
            alg,
            channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
            nonlinearity=nonlinearity,
            nonlinearity_v=nonlinearity_v,
            mlp_ratio=mlp_ratio,
            attn_ratio=attn_ratio,
            num_layers_mlp=num_layers_mlp,
            dropout_prob=dropout_prob,
            norm_elementwise_affine=norm_elementwise_affine,
            checkpoint_blocks=checkpoint_blocks,
            make_block=make_block,
            tail_norm="norm3",  # the pre-MLP norm; norm2 (cross-attention) stays alive
        )
        self.v_channels_cond, self.s_channels_cond = v_channels_cond, s_channels_cond

    def forward(
        self,
        vectors: Tensor,
        vectors_cond: Tensor,
        scalars: Tensor | None = None,
        scalars_cond: Tensor | None = None,
        attn_mask: Tensor | None = None,
        crossattn_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        condition_offsets: Tensor | None = None,
        max_items: int | None = None,
        condition_max_items: int | None = None,
        cross_attn_mask: Tensor | None = None,
        condition_scalars: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        who = self.who
        crossattn_mask = mask_alias(who, "crossattn_mask", crossattn_mask, "cross_attn_mask", cross_attn_mask)
        scalars_cond = mask_alias(who, "scalars_cond", scalars_cond, "condition_scalars", condition_scalars)
        nested = isinstance(vectors, Tensor) and vectors.is_nested
        if nested != (isinstance(vectors_cond, Tensor) and vectors_cond.is_nested):
            raise ValueError(f"{who}: give the inputs and the condition both as nested tensors or neither")
        vectors, scalars, offsets, nested = unnest_sets(who, vectors, scalars, offsets, what="vectors")
        vectors_cond, scalars_cond, condition_offsets, _ = unnest_sets(
            who, vectors_cond, scalars_cond, condition_offsets, what="vectors_cond", s_what="scalars_cond"
        )
        if (offsets is None) != (condition_offsets is None):
            raise ValueError(f"{who}: packed sets need both offsets and condition_offsets")
        if offsets is not None and (attn_mask is not None or crossattn_mask is not None):
            raise ValueError(
                f"{who}: give either attn_mask / crossattn_mask or offsets (packed sets), not both"
            )
        vectors, s = self._inputs(
            who, vectors, scalars, self.in_v_channels, self.in_s_channels, "vectors", offsets, max_items,
            None,
        )  # fmt: skip
        vectors_cond, s_cond = self._inputs(
            f"{who} condition", vectors_cond, scalars_cond, self.v_channels_cond, self.s_channels_cond,
            "vectors_cond", condition_offsets, condition_max_items, None, name="offsets_k",
            max_name="condition_max_items",
        )  # fmt: skip
        if offsets is None and vectors.shape[:-3] != vectors_cond.shape[:-3]:
            raise ValueError(
                f"{who}: vectors {tuple(vectors.shape)} and vectors_cond {tuple(vectors_cond.shape)} "
                "need the same batch dims (batch..., items, channels, n)"
            )
        attn_mask = self._mask("attn_mask", attn_mask, vectors, vectors.shape[-3])
        crossattn_mask = self._mask("crossattn_mask", crossattn_mask, vectors, vectors_cond.shape[-3])
        packing: dict[str, Any] = {
            "offsets": offsets,
            "condition_offsets": condition_offsets,
            "max_items": max_items,
            "condition_max_items": condition_max_items,
        }
        c_v = vectors_cond.transpose(-2, -1)
        return self._run(
            vectors,
            s,
            lambda h_v, h_s: (h_v, c_v, h_s, s_cond, attn_mask, crossattn_mask, is_causal),
            packing,
            offsets,
            max_items,
            nested,
        )
