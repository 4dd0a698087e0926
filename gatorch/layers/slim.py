r"""Layers of the slim (vector + scalar) transformers, L-GATr-slim for any algebra.

The slim layers carry only grade-1 channels (vectors) and scalar channels, never full
multivectors. They are generic over the algebra: the only table they need is the metric on
grade 1, :math:`\langle x, y\rangle = \sum_i m_i x_i y_i` with ``m = alg.metric`` (``+1``,
``-1`` or ``0`` per basis vector, in the algebra's basis order). On ``STA`` (``e0``
timelike) this is the Minkowski product of L-GATr-slim (Spinner et al.) and every layer
computes exactly what ``lgatr.layers.slim_layers`` computes, with the same parameter names
and shapes (so state dicts load one to one).

Hidden layout
-------------
Inside the nets vectors are kept *channels last*: ``(..., n, channels)`` with
``n = alg.n`` the number of basis vectors, so that the vector linear maps run as one flat
GEMM over all components. The nets (:mod:`gatorch.nets.slim`) take and return the public
layout ``(..., channels, n)`` and transpose once at entry and exit. Every layer here takes
and returns ``(vectors, scalars)`` with ``vectors: (..., n, v_channels)`` and
``scalars: (..., s_channels)``.

Degenerate and indefinite metrics
---------------------------------
The squared norm of a vector channel is :math:`|\langle x, x\rangle|`: finite and
non-negative for indefinite metrics (the absolute value) and for degenerate ones (the
components along degenerate basis vectors have ``m_i = 0`` and drop out). The RMS norm adds
``epsilon`` before the inverse square root, so null and zero vectors give finite outputs.

Packed sets
-----------
The attention layers and blocks also take variable-size sets packed along the items axis:
``vectors: (total_items, n, v_channels)``, ``scalars: (total_items, s_channels)`` with
``offsets=`` (cumulative starts, torch's ``cu_seqlens``, see
:func:`~gatorch.functional.attention.offsets_from_sizes`) and ``max_items=`` (the largest set,
a Python int: spares a host sync, needed under ``torch.compile``); each item then attends
only within its own set (:func:`~gatorch.functional.attention.packed_scaled_dot_product_attention`),
exactly as if each set ran alone.

Precision
---------
Under autocast the vector stream, the metric contractions (norm, GLU gates) and the
attention run in float32 (or wider); only the scalar GEMMs follow the autocast dtype (the
same precision islands as lgatr without ``naive_amp``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatorch.functional.activations import ACTIVATIONS, activation
from gatorch.functional.algebra import Algebra
from gatorch.functional.attention.sets import check_packed_sets
from gatorch.functional.attention.slim import heads_mask, packed_slim_attention, slim_attention
from gatorch.functional.nonlinear import power_of_two_scale
from gatorch.functional.precision import as_dtype, no_autocast, wide_dtype
from gatorch.layers._checks import check_algebra, check_input, check_int, mask_alias

__all__ = [
    "NONLINEARITIES",
    "SLIM_NONLINEARITIES",
    "ConditionalSlimBlock",
    "SlimBlock",
    "SlimCrossAttention",
    "SlimDropout",
    "SlimGLU",
    "SlimLinear",
    "SlimMLP",
    "SlimRMSNorm",
    "SlimSelfAttention",
    "packed_slim_attention",
    "slim_attention",
]

#: The gate nonlinearities the slim layers take: lgatr's ``get_nonlinearity`` names.
SLIM_NONLINEARITIES = ("relu", "sigmoid", "tanh", "gelu", "silu")

#: Gate nonlinearities by name (read-only), from the one registry
#: :data:`gatorch.functional.activations.ACTIVATIONS` (``"gelu"`` is the tanh approximation,
#: as lgatr's).
NONLINEARITIES: Mapping[str, Callable[[Tensor], Tensor]] = MappingProxyType(
    {name: ACTIVATIONS[name] for name in SLIM_NONLINEARITIES}
)


def check_nonlinearity(who: str, name: str, value: object) -> Callable[[Tensor], Tensor]:
    """The gate nonlinearity called ``value`` (one of :data:`SLIM_NONLINEARITIES`).

    Parameters
    ----------
    who, name : str
        The caller and its option's name, in the message.
    value : object
        The name given.

    Raises
    ------
    ValueError
        ``value`` is not one of :data:`SLIM_NONLINEARITIES`.
    """
    if not isinstance(value, str) or value not in SLIM_NONLINEARITIES:
        raise ValueError(f"{who}: {name} must be one of {sorted(SLIM_NONLINEARITIES)}, got {value!r}")
    return activation(value, f"{who}: {name}", allowed=SLIM_NONLINEARITIES)


def check_vector_algebra(alg: object, who: str) -> None:
    """Raise unless ``alg`` is an :class:`~gatorch.Algebra` with at least one basis vector."""
    check_algebra(alg, who)
    assert isinstance(alg, Algebra)
    if alg.n < 1:
        raise ValueError(f"{who}: the algebra needs at least one basis vector, got {alg!r}")


def check_dropout(who: str, dropout_prob: object) -> None:
    """Raise unless ``dropout_prob`` is None or a float in ``[0, 1)``."""
    if dropout_prob is None:
        return
    if isinstance(dropout_prob, bool) or not isinstance(dropout_prob, (int, float)):
        raise ValueError(f"{who}: dropout_prob must be a float in [0, 1) or None, got {dropout_prob!r}")
    if not 0.0 <= float(dropout_prob) < 1.0:
        raise ValueError(f"{who}: dropout_prob must be a float in [0, 1) or None, got {dropout_prob!r}")


def _metric_buffer(alg: Algebra) -> Tensor:
    """The metric on grade 1, ``(n,)``, in the algebra's basis order (read from the algebra)."""
    return torch.tensor([float(m) for m in alg.metric], dtype=torch.float32)


class SlimDropout(nn.Module):
    """Dropout for vector and scalar channels; a vector channel is dropped as a whole.

    Parameters
    ----------
    dropout_prob : float
        Probability of zeroing a vector channel (all its components) or a scalar channel.

    Shapes
    ------
    ``forward(vectors, scalars) -> (vectors, scalars)`` with ``vectors: (..., n, v_channels)``
    and ``scalars: (..., s_channels)``; the identity in eval mode.
    """

    def __init__(self, dropout_prob: float) -> None:
        super().__init__()
        check_dropout("SlimDropout", dropout_prob)
        self._dropout_prob = float(dropout_prob)

    def extra_repr(self) -> str:
        return f"p={self._dropout_prob}"

    def forward(self, vectors: Tensor, scalars: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training or self._dropout_prob == 0.0:
            return vectors, scalars
        # one mask entry per vector channel, shared by its n components (equivariant)
        mask = F.dropout(torch.ones_like(vectors[..., :1, :]), p=self._dropout_prob, training=True)
        return vectors * mask, F.dropout(scalars, p=self._dropout_prob, training=True)


class SlimRMSNorm(nn.Module):
    r"""Joint RMS normalisation of vector and scalar channels (L-GATr-slim's ``SlimRMSNorm``).

    .. math::
        \rho = \Big(\frac{\sum_c |\langle v_c, v_c\rangle| + \sum_k s_k^2}{C_v + C_s}
        + \epsilon\Big)^{-1/2}, \qquad v_c \mapsto \rho\, g^v_c\, v_c, \quad
        s_k \mapsto \rho\, g^s_k\, s_k

    with :math:`\langle\cdot,\cdot\rangle` the algebra's metric on grade 1 (degenerate
    components drop out) and learnt gains :math:`g` when ``elementwise_affine``.

    Parameters
    ----------
    alg : Algebra
    v_channels, s_channels : int
    epsilon : float
        Added to the mean square before the inverse square root (0.01, lgatr's value).
    elementwise_affine : bool
        Learn one gain per vector channel (``weight_v``) and per scalar channel (``weight_s``).

    Shapes
    ------
    ``forward(vectors, scalars) -> (vectors, scalars)`` with ``vectors: (..., n, v_channels)``
    and ``scalars: (..., s_channels)``. Computed in float32 (or wider) under autocast; the
    outputs have the input dtypes.
    """

    metric: Tensor

    def __init__(
        self,
        alg: Algebra,
        v_channels: int,
        s_channels: int,
        epsilon: float = 0.01,
        elementwise_affine: bool = True,
    ) -> None:
        super().__init__()
        check_vector_algebra(alg, "SlimRMSNorm")
        check_int("SlimRMSNorm", "v_channels", v_channels, 0)
        check_int("SlimRMSNorm", "s_channels", s_channels, 0)
        if v_channels + s_channels == 0:
            raise ValueError("SlimRMSNorm: needs at least one vector or scalar channel, got 0 and 0")
        if not epsilon > 0:
            raise ValueError(f"SlimRMSNorm: epsilon must be > 0, got {epsilon!r}")
        self.alg = alg
        self.epsilon = float(epsilon)
        self.elementwise_affine = bool(elementwise_affine)
        self.register_buffer("metric", _metric_buffer(alg), persistent=False)
        self.weight_v: nn.Parameter | None
        self.weight_s: nn.Parameter | None
        if self.elementwise_affine:
            self.weight_v = nn.Parameter(torch.ones(v_channels))
            self.weight_s = nn.Parameter(torch.ones(s_channels))
            for weight in (self.weight_v, self.weight_s):
                if weight.numel() == 0:  # zero-size parameters would get no gradient (DDP)
                    weight.requires_grad_(False)
        else:
            self.register_parameter("weight_v", None)
            self.register_parameter("weight_s", None)

    def extra_repr(self) -> str:
        return f"{self.alg!r}, epsilon={self.epsilon}, elementwise_affine={self.elementwise_affine}"

    def forward(self, vectors: Tensor, scalars: Tensor) -> tuple[Tensor, Tensor]:
        v_dtype, s_dtype = vectors.dtype, scalars.dtype
        wide = wide_dtype(v_dtype, s_dtype)
        with no_autocast(vectors.device.type):
            v, s = as_dtype(vectors, wide), as_dtype(scalars, wide)
            metric = as_dtype(self.metric, wide)
            # divide out c, a power of two >= max(1, largest |component|) of the item, first (the
            # same result bit for bit, with epsilon / c^2), so that squares of large inputs
            # (1e20) cannot overflow
            both = torch.cat([v.detach().flatten(-2), s.detach()], -1)  # one of them may be empty
            c = power_of_two_scale(both.abs().amax(-1))
            v, s = v / c[..., None, None], s / c[..., None]
            v_squared_norm = (v.square() * metric[..., None]).sum(-2).abs()
            s_squared_norm = s.square()
            total_features = v_squared_norm.shape[-1] + s_squared_norm.shape[-1]
            mean_squared_norms = (v_squared_norm.sum(-1) + s_squared_norm.sum(-1)) / total_features
            norm = torch.rsqrt(mean_squared_norms + self.epsilon / (c * c))
            out_v = v * norm[..., None, None]
            out_s = s * norm[..., None]
            if self.weight_v is not None and self.weight_s is not None:
                out_v = out_v * as_dtype(self.weight_v, wide)
                out_s = out_s * as_dtype(self.weight_s, wide)
        return as_dtype(out_v, v_dtype), as_dtype(out_s, s_dtype)


class SlimLinear(nn.Module):
    r"""Channel-mixing linear map of vector channels and of scalar channels (no cross terms).

    .. math::
        v'_o = \sum_c W^v_{oc}\, v_c, \qquad s' = W^s s + b

    The vector map acts on channels only, so it commutes with every orthogonal map of the
    components (the group action on grade 1); vectors get no bias (a bias vector would not
    be equivariant).

    Parameters
    ----------
    in_v_channels, out_v_channels, in_s_channels, out_s_channels : int
    bias : bool
        Bias of the scalar map.
    initialization : {"default", "small"}
        Uniform weights with bound ``factor / sqrt(fan_in)``, ``factor`` 1 or 0.1 (lgatr's
        scheme; "small" is used for the attention projections), zero bias.

    Shapes
    ------
    ``forward(vectors, scalars) -> (vectors, scalars)`` with
    ``vectors: (..., n, in_v_channels) -> (..., n, out_v_channels)`` and
    ``scalars: (..., in_s_channels) -> (..., out_s_channels)`` (zeros when either scalar
    count is 0). The vector map runs in float32 (or wider) under autocast.
    """

    def __init__(
        self,
        in_v_channels: int,
        out_v_channels: int,
        in_s_channels: int,
        out_s_channels: int,
        bias: bool = True,
        initialization: str = "default",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_v_channels", in_v_channels),
            ("out_v_channels", out_v_channels),
            ("in_s_channels", in_s_channels),
            ("out_s_channels", out_s_channels),
        ):
            check_int("SlimLinear", name, value, 0)
        self._in_v_channels, self._out_v_channels = in_v_channels, out_v_channels
        self._in_s_channels, self._out_s_channels = in_s_channels, out_s_channels
        self._bias = bool(bias)
        self.weight_v = nn.Parameter(torch.empty(out_v_channels, in_v_channels))
        self.linear_s: nn.Linear | None
        if in_s_channels and out_s_channels:
            self.linear_s = nn.Linear(in_s_channels, out_s_channels, bias=bias)
        else:
            self.linear_s = None
        self.reset_parameters(initialization)
        if self.weight_v.numel() == 0:  # zero-size parameters would get no gradient (DDP)
            self.weight_v.requires_grad_(False)

    def extra_repr(self) -> str:
        return (
            f"v: {self._in_v_channels} -> {self._out_v_channels}, "
            f"s: {self._in_s_channels} -> {self._out_s_channels}, bias={self._bias}"
        )

    def reset_parameters(self, initialization: str = "default", additional_factor: float = 1.0) -> None:
        """Re-initialise the weights (``"default"`` or ``"small"``, see the class docstring)."""
        if initialization == "default":
            factor = additional_factor
        elif initialization == "small":
            factor = 0.1 * additional_factor
        else:
            raise ValueError(
                f"SlimLinear: initialization must be 'default' or 'small', got {initialization!r}"
            )
        with torch.no_grad():
            if self.weight_v.numel() > 0:
                bound = factor / math.sqrt(max(self._in_v_channels, 1))
                nn.init.uniform_(self.weight_v, -bound, bound)
            if self.linear_s is not None:
                bound = factor / math.sqrt(max(self._in_s_channels, 1))
                nn.init.uniform_(self.linear_s.weight, -bound, bound)
                if self.linear_s.bias is not None:
                    nn.init.zeros_(self.linear_s.bias)

    def linear_v(self, vectors: Tensor) -> Tensor:
        """The vector map alone: ``(..., n, in_v_channels) -> (..., n, out_v_channels)``."""
        w = self.weight_v
        dtype = vectors.dtype if vectors.dtype == w.dtype else torch.promote_types(vectors.dtype, w.dtype)
        with no_autocast(vectors.device.type):
            return F.linear(as_dtype(vectors, dtype), as_dtype(w, dtype))

    def forward(self, vectors: Tensor, scalars: Tensor) -> tuple[Tensor, Tensor]:
        out_v = self.linear_v(vectors)
        if self.linear_s is not None:
            out_s = self.linear_s(scalars)
        else:
            out_s = scalars.new_zeros(*scalars.shape[:-1], self._out_s_channels)
        return out_v, out_s


class SlimGLU(nn.Module):
    r"""Gated linear unit of vector and scalar channels (L-GATr-slim's ``SlimGLU``).

    A :class:`SlimLinear` to ``3 * out_v_channels`` vectors ``(a, b, c)`` and
    ``2 * out_s_channels`` scalars ``(t, u)``, then

    .. math::
        v'_o = \sigma_v\big(\langle b_o, c_o\rangle / \sqrt{n}\big)\, a_o, \qquad
        s'_k = \sigma(u_k)\, t_k

    with :math:`\langle\cdot,\cdot\rangle` the metric on grade 1 and ``n = alg.n`` (so the
    scale is 1/2 on STA, as in lgatr).

    Parameters
    ----------
    alg : Algebra
    in_v_channels, out_v_channels, in_s_channels, out_s_channels : int
    nonlinearity : str
        Scalar gate, one of ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"gelu"`` (tanh
        approximation), ``"silu"``.
    nonlinearity_v : str or None
        Vector gate; ``None`` uses ``nonlinearity``.

    Shapes
    ------
    ``forward(vectors, scalars) -> (vectors, scalars)``:
    ``(..., n, in_v_channels), (..., in_s_channels) -> (..., n, out_v_channels), (..., out_s_channels)``.
    """

    metric: Tensor

    def __init__(
        self,
        alg: Algebra,
        in_v_channels: int,
        out_v_channels: int,
        in_s_channels: int,
        out_s_channels: int,
        nonlinearity: str = "gelu",
        nonlinearity_v: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        check_vector_algebra(alg, "SlimGLU")
        self.alg = alg
        self.linear = SlimLinear(
            in_v_channels=in_v_channels,
            out_v_channels=3 * out_v_channels,
            in_s_channels=in_s_channels,
            out_s_channels=2 * out_s_channels,
        )
        self.nonlinearity_name = nonlinearity
        self.nonlinearity_v_name = nonlinearity if nonlinearity_v is None else nonlinearity_v
        self.nonlinearity = check_nonlinearity("SlimGLU", "nonlinearity", nonlinearity)
        self.nonlinearity_v = (
            self.nonlinearity
            if nonlinearity_v is None
            else check_nonlinearity("SlimGLU", "nonlinearity_v", nonlinearity_v)
        )
        self.scale = 1.0 / math.sqrt(alg.n)
        self.register_buffer("metric", _metric_buffer(alg), persistent=False)

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, nonlinearity={self.nonlinearity_name}, nonlinearity_v={self.nonlinearity_v_name}"
        )

    def _inner_product(self, a: Tensor, b: Tensor) -> Tensor:
        wide = wide_dtype(a.dtype, b.dtype)
        with no_autocast(a.device.type):
            metric = as_dtype(self.metric, wide)
            product = (as_dtype(a, wide) * as_dtype(b, wide)) * metric[..., None]
            return self.scale * product.sum(dim=-2, keepdim=True)

    def forward(self, vectors: Tensor, scalars: Tensor) -> tuple[Tensor, Tensor]:
        v_full, s_full = self.linear(vectors, scalars)
        v_pre, v_gates_1, v_gates_2 = v_full.chunk(3, dim=-1)
        s_pre, s_gates = s_full.chunk(2, dim=-1)
        v_gates = self._inner_product(v_gates_1, v_gates_2)
        out_v = as_dtype(self.nonlinearity_v(v_gates) * v_pre, v_pre.dtype)
        out_s = self.nonlinearity(s_gates) * s_pre
        return out_v, out_s


class SlimMLP(nn.Module):
    r"""``num_layers - 1`` :class:`SlimGLU` s (each followed by :class:`SlimDropout` when
    ``dropout_prob`` is set), then a :class:`SlimLinear` back to the input channels.

    Hidden channels are ``mlp_ratio`` times the input channels.

    Parameters
    ----------
    alg : Algebra
    v_channels, s_channels : int
    nonlinearity, nonlinearity_v : str, str or None
        See :class:`SlimGLU`.
    mlp_ratio : int
    num_layers : int
        At least 2.
    dropout_prob : float, optional

    Shapes
    ------
    ``forward(vectors, scalars) -> (vectors, scalars)`` with ``vectors: (..., n, v_channels)``,
    ``scalars: (..., s_channels)``.
    """

    def __init__(
        self,
        alg: Algebra,
        v_channels: int,
        s_channels: int,
        nonlinearity: str = "gelu",
        nonlinearity_v: str | None = "sigmoid",
        mlp_ratio: int = 2,
        num_layers: int = 2,
        dropout_prob: float | None = None,
    ) -> None:
        super().__init__()
        check_vector_algebra(alg, "SlimMLP")
        check_int("SlimMLP", "mlp_ratio", mlp_ratio, 1)
        check_int("SlimMLP", "num_layers", num_layers, 2)
        check_dropout("SlimMLP", dropout_prob)
        v_list = [v_channels] + [mlp_ratio * v_channels] * (num_layers - 1) + [v_channels]
        s_list = [s_channels] + [mlp_ratio * s_channels] * (num_layers - 1) + [s_channels]
        layers: list[nn.Module] = []
        for i in range(num_layers - 1):
            layers.append(
                SlimGLU(
                    alg,
                    in_v_channels=v_list[i],
                    out_v_channels=v_list[i + 1],
                    in_s_channels=s_list[i],
                    out_s_channels=s_list[i + 1],
                    nonlinearity=nonlinearity,
                    nonlinearity_v=nonlinearity_v,
                )
            )
            if dropout_prob is not None:
                layers.append(SlimDropout(dropout_prob))
        layers.append(
            SlimLinear(
                in_v_channels=v_list[-2],
                out_v_channels=v_list[-1],
                in_s_channels=s_list[-2],
                out_s_channels=s_list[-1],
            )
        )
        self.layers = nn.ModuleList(layers)

    def forward(self, vectors: Tensor, scalars: Tensor) -> tuple[Tensor, Tensor]:
        h_v, h_s = vectors, scalars
        for layer in self.layers:
            h_v, h_s = layer(h_v, h_s)
        return h_v, h_s


def _post_attention_reshape(out: Tensor, n: int, hidden_v_channels: int) -> tuple[Tensor, Tensor]:
    """``(..., H, N, n * hv + hs) -> (..., N, n, H * hv), (..., N, H * hs)`` (lgatr's channel order)."""
    h_v = out[..., : hidden_v_channels * n].unflatten(-1, (n, hidden_v_channels))
    h_s = out[..., hidden_v_channels * n :]
    h_v = h_v.movedim(-4, -2).flatten(-2, -1)
    h_s = h_s.movedim(-2, -3).flatten(-2, -1)
    return h_v, h_s


class _SlimAttentionBase(nn.Module):
    """Head sizes, the per-head norm and the output map shared by self- and cross-attention."""

    metric: Tensor

    def __init__(
        self, alg: Algebra, who: str, v_channels: int, s_channels: int, num_heads: int, attn_ratio: int
    ) -> None:
        super().__init__()
        check_vector_algebra(alg, who)
        check_int(who, "v_channels", v_channels, 0)
        check_int(who, "s_channels", s_channels, 0)
        check_int(who, "num_heads", num_heads, 1)
        check_int(who, "attn_ratio", attn_ratio, 1)
        self.alg, self.who = alg, who
        self.n = alg.n
        self.hidden_v_channels = max(attn_ratio * v_channels // num_heads, 1)
        self.hidden_s_channels = max(attn_ratio * s_channels // num_heads, 4)
        self.num_heads = num_heads
        self.register_buffer("metric", _metric_buffer(alg), persistent=False)

    def extra_repr(self) -> str:
        return (
            f"{self.alg!r}, heads={self.num_heads}, head_v={self.hidden_v_channels}, "
            f"head_s={self.hidden_s_channels}"
        )

    def _pack(self, q_v: Tensor, k_v: Tensor, v_v: Tensor, q_s: Tensor, k_s: Tensor, v_s: Tensor) -> tuple:
        """Normalised per-head ``(..., H, N, n, hv)`` / ``(..., H, N, hs)`` to SDPA features."""
        q_v = q_v * as_dtype(self.metric, q_v.dtype)[..., None]
        q = torch.cat([q_v.flatten(start_dim=-2), q_s], dim=-1)
        k = torch.cat([k_v.flatten(start_dim=-2), k_s], dim=-1)
        v = torch.cat([v_v.flatten(start_dim=-2), v_s], dim=-1)
        return q, k, v

    def _finish(self, out: Tensor, dtype_v: torch.dtype, dtype_s: torch.dtype) -> tuple[Tensor, Tensor]:
        h_v, h_s = _post_attention_reshape(out, self.n, self.hidden_v_channels)
        out_v, out_s = self.linear_out(as_dtype(h_v, dtype_v), as_dtype(h_s, dtype_s))
        if self.dropout is not None:
            out_v, out_s = self.dropout(out_v, out_s)
        return out_v, out_s

    linear_out: SlimLinear
    dropout: SlimDropout | None


class SlimSelfAttention(_SlimAttentionBase):
    r"""Multi-head self-attention of vector and scalar channels (L-GATr-slim's).

    Queries, keys and values per head (``hv = max(attn_ratio * v_channels // num_heads, 1)``
    vector and ``hs = max(attn_ratio * s_channels // num_heads, 4)`` scalar channels) come from
    one :class:`SlimLinear` and are each RMS-normalised (:class:`SlimRMSNorm` without gains);
    the logit of items ``i, j`` is

    .. math::
        \frac{1}{\sqrt{n\,hv + hs}}\Big(\sum_c \langle q^v_{ic}, k^v_{jc}\rangle
        + \sum_k q^s_{ik} k^s_{jk}\Big),

    the values are averaged with the softmax weights, the heads are concatenated and mixed by
    an output :class:`SlimLinear`, then :class:`SlimDropout` when ``dropout_prob`` is set.

    Parameters
    ----------
    alg : Algebra
    v_channels, s_channels, num_heads : int
    attn_ratio : int
    dropout_prob : float, optional

    Shapes
    ------
    ``forward(vectors, scalars, attn_mask=None, is_causal=False) -> (vectors, scalars)`` with
    ``vectors: (batch..., items, n, v_channels)``, ``scalars: (batch..., items, s_channels)``,
    ``attn_mask`` boolean (``True`` = may attend) or additive, of shape ``(items, items)``,
    ``(batch..., items, items)`` or ``(batch..., heads, items, items)``.

    Packed sets: ``forward(vectors, scalars, is_causal=False, offsets=offsets, max_items=m)``
    with ``vectors: (total_items, n, v_channels)``, ``scalars: (total_items, s_channels)``, the
    sets one after the other, and ``offsets = (0, n_0, n_0 + n_1, ..., total_items)``: each
    item attends within its own set (no ``attn_mask``; ``is_causal`` applies within each set).
    """

    def __init__(
        self,
        alg: Algebra,
        v_channels: int,
        s_channels: int,
        num_heads: int,
        attn_ratio: int = 1,
        dropout_prob: float | None = None,
    ) -> None:
        super().__init__(alg, "SlimSelfAttention", v_channels, s_channels, num_heads, attn_ratio)
        check_dropout("SlimSelfAttention", dropout_prob)
        hv, hs, h = self.hidden_v_channels, self.hidden_s_channels, num_heads
        self.linear_in = SlimLinear(
            v_channels, 3 * hv * h, s_channels, 3 * hs * h, bias=False, initialization="small"
        )
        self.linear_out = SlimLinear(hv * h, v_channels, hs * h, s_channels, initialization="small")
        self.norm = SlimRMSNorm(alg, hv, hs, elementwise_affine=False)
        self.dropout = SlimDropout(dropout_prob) if dropout_prob is not None else None

    def forward(
        self,
        vectors: Tensor,
        scalars: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        max_items: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        check_input(self.who, vectors, self, "vectors")
        check_packed_sets(
            self.who, vectors, offsets, max_items, scalars=scalars, attn_mask=attn_mask, what="vectors",
            shape="(total_items, n, channels)",
        )  # fmt: skip
        hv, hs, h = self.hidden_v_channels, self.hidden_s_channels, self.num_heads
        qkv_v, qkv_s = self.linear_in(vectors, scalars)
        # (..., N, n, 3*hv*h) -> (3, ..., h, N, n, hv); scalars likewise (lgatr's channel order)
        qkv_v = qkv_v.unflatten(-1, (3, hv, h)).movedim(-3, 0).movedim(-1, -4)
        qkv_s = qkv_s.unflatten(-1, (3, hs, h)).movedim(-3, 0).movedim(-1, -3)
        qkv_v, qkv_s = self.norm(qkv_v, qkv_s)
        q_v, k_v, v_v = qkv_v.unbind(0)
        q_s, k_s, v_s = qkv_s.unbind(0)
        q, k, v = self._pack(q_v, k_v, v_v, q_s, k_s, v_s)
        if offsets is not None:
            out = packed_slim_attention(q, k, v, offsets=offsets, max_items=max_items, is_causal=is_causal)
            return self._finish(out, vectors.dtype, scalars.dtype)
        batch = tuple(vectors.shape[:-3])
        items = vectors.shape[-3]
        mask = heads_mask(self.who, attn_mask, batch, h, items, items)
        out = slim_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        return self._finish(out, vectors.dtype, scalars.dtype)


class SlimCrossAttention(_SlimAttentionBase):
    r"""Multi-head cross-attention of vector and scalar channels (L-GATr-slim's).

    As :class:`SlimSelfAttention`, with queries from the items and keys and values from the
    condition items (``linear_in_q`` and ``linear_in_kv``).

    Parameters
    ----------
    alg : Algebra
    q_v_channels, kv_v_channels, q_s_channels, kv_s_channels, num_heads : int
    attn_ratio : int
    dropout_prob : float, optional

    Shapes
    ------
    ``forward(vectors_q, vectors_kv, scalars_q, scalars_kv, attn_mask=None) -> (vectors, scalars)``
    with ``vectors_q: (batch..., items_q, n, q_v_channels)``,
    ``vectors_kv: (batch..., items_kv, n, kv_v_channels)``, scalars likewise; ``attn_mask`` of
    shape ``(items_q, items_kv)``, ``(batch..., items_q, items_kv)`` or
    ``(batch..., heads, items_q, items_kv)``; returns the query items' channels.

    Packed sets: ``offsets=`` / ``context_offsets=`` (query set ``i`` attends to context set
    ``i``) and ``max_items=`` / ``context_max_items=``, with ``vectors_q: (total_q, n,
    q_v_channels)`` and ``vectors_kv: (total_kv, n, kv_v_channels)``, as in
    :class:`SlimSelfAttention`.
    """

    def __init__(
        self,
        alg: Algebra,
        q_v_channels: int,
        kv_v_channels: int,
        q_s_channels: int,
        kv_s_channels: int,
        num_heads: int,
        attn_ratio: int = 1,
        dropout_prob: float | None = None,
    ) -> None:
        super().__init__(alg, "SlimCrossAttention", q_v_channels, q_s_channels, num_heads, attn_ratio)
        check_int("SlimCrossAttention", "kv_v_channels", kv_v_channels, 0)
        check_int("SlimCrossAttention", "kv_s_channels", kv_s_channels, 0)
        check_dropout("SlimCrossAttention", dropout_prob)
        hv, hs, h = self.hidden_v_channels, self.hidden_s_channels, num_heads
        self.linear_in_q = SlimLinear(
            q_v_channels, hv * h, q_s_channels, hs * h, bias=False, initialization="small"
        )
        self.linear_in_kv = SlimLinear(
            kv_v_channels, 2 * hv * h, kv_s_channels, 2 * hs * h, bias=False, initialization="small"
        )
        self.linear_out = SlimLinear(hv * h, q_v_channels, hs * h, q_s_channels, initialization="small")
        self.norm = SlimRMSNorm(alg, hv, hs, elementwise_affine=False)
        self.dropout = SlimDropout(dropout_prob) if dropout_prob is not None else None

    def forward(
        self,
        vectors_q: Tensor,
        vectors_kv: Tensor,
        scalars_q: Tensor,
        scalars_kv: Tensor,
        attn_mask: Tensor | None = None,
        *,
        offsets: Tensor | None = None,
        context_offsets: Tensor | None = None,
        max_items: int | None = None,
        context_max_items: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        check_input(self.who, vectors_q, self, "vectors_q")
        if (offsets is None) != (context_offsets is None):
            raise ValueError(f"{self.who}: packed sets need both offsets and context_offsets")
        check_packed_sets(
            self.who, vectors_q, offsets, max_items, scalars=scalars_q, attn_mask=attn_mask,
            what="vectors_q", shape="(total_items, n, channels)",
        )  # fmt: skip
        check_packed_sets(
            self.who, vectors_kv, context_offsets, context_max_items, scalars=scalars_kv,
            name="context_offsets", max_name="context_max_items", what="vectors_kv",
            shape="(total_items, n, channels)",
        )  # fmt: skip
        hv, hs, h = self.hidden_v_channels, self.hidden_s_channels, self.num_heads
        q_v, q_s = self.linear_in_q(vectors_q, scalars_q)
        kv_v, kv_s = self.linear_in_kv(vectors_kv, scalars_kv)
        kv_v = kv_v.unflatten(-1, (2, hv, h)).movedim(-3, 0).movedim(-1, -4)
        kv_s = kv_s.unflatten(-1, (2, hs, h)).movedim(-3, 0).movedim(-1, -3)
        q_v = q_v.unflatten(-1, (hv, h)).movedim(-1, -4)
        q_s = q_s.unflatten(-1, (hs, h)).movedim(-1, -3)
        q_v, q_s = self.norm(q_v, q_s)
        kv_v, kv_s = self.norm(kv_v, kv_s)
        k_v, v_v = kv_v.unbind(0)
        k_s, v_s = kv_s.unbind(0)
        q, k, v = self._pack(q_v, k_v, v_v, q_s, k_s, v_s)
        if offsets is not None:
            out = packed_slim_attention(
                q,
                k,
                v,
                offsets=offsets,
                offsets_k=context_offsets,
                max_items=max_items,
                max_items_k=context_max_items,
            )
            return self._finish(out, vectors_q.dtype, scalars_q.dtype)
        batch = tuple(vectors_q.shape[:-3])
        mask = heads_mask(self.who, attn_mask, batch, h, vectors_q.shape[-3], vectors_kv.shape[-3])
        out = slim_attention(q, k, v, attn_mask=mask)
        return self._finish(out, vectors_q.dtype, scalars_q.dtype)


class SlimBlock(nn.Module):
    r"""One L-GATr-slim block: pre-norm self-attention and pre-norm MLP, each residual.

    .. math::
        x \leftarrow x + \mathrm{Attn}(\mathrm{Norm}_1(x)), \qquad
        x \leftarrow x + \mathrm{MLP}(\mathrm{Norm}_2(x))

    Parameters
    ----------
    alg : Algebra
    v_channels, s_channels, num_heads : int
    nonlinearity, nonlinearity_v, mlp_ratio, attn_ratio, num_layers_mlp, dropout_prob
        See :class:`SlimMLP` and :class:`SlimSelfAttention`.
    norm_elementwise_affine : bool
        Learnt gains in the two :class:`SlimRMSNorm` s.

    Shapes
    ------
    ``forward(vectors, scalars, attn_mask=None, is_causal=False) -> (vectors, scalars)`` with
    ``vectors: (batch..., items, n, v_channels)``, ``scalars: (batch..., items, s_channels)``.
    Packed sets: ``offsets=`` and ``max_items=`` with ``vectors: (total_items, n, v_channels)``,
    see :class:`SlimSelfAttention`.
    """

    def __init__(
        self,
        alg: Algebra,
        v_channels: int,
        s_channels: int,
        num_heads: int,
        nonlinearity: str = "gelu",
        nonlinearity_v: str | None = "sigmoid",
        mlp_ratio: int = 2,
        attn_ratio: int = 1,
        num_layers_mlp: int = 2,
        dropout_prob: float | None = None,
        norm_elementwise_affine: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = SlimRMSNorm(alg, v_channels, s_channels, elementwise_affine=norm_elementwise_affine)
        self.norm2 = SlimRMSNorm(alg, v_channels, s_channels, elementwise_affine=norm_elementwise_affine)
        self.attention = SlimSelfAttention(
            alg, v_channels, s_channels, num_heads, attn_ratio=attn_ratio, dropout_prob=dropout_prob
        )
        self.mlp = SlimMLP(
            alg,
            v_channels,
            s_channels,
            nonlinearity=nonlinearity,
            nonlinearity_v=nonlinearity_v,
            mlp_ratio=mlp_ratio,
            num_layers=num_layers_mlp,
            dropout_prob=dropout_prob,
        )

    def forward(
        self,
        vectors: Tensor,
        scalars: Tensor,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        max_items: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        check_input("SlimBlock", vectors, self, "vectors")
        h_v, h_s = self.norm1(vectors, scalars)
        h_v, h_s = self.attention(
            h_v, h_s, attn_mask=attn_mask, is_causal=is_causal, offsets=offsets, max_items=max_items
        )
        out_v, out_s = vectors + h_v, scalars + h_s
        h_v, h_s = self.norm2(out_v, out_s)
        h_v, h_s = self.mlp(h_v, h_s)
        return out_v + h_v, out_s + h_s


class ConditionalSlimBlock(nn.Module):
    r"""One conditional L-GATr-slim block: self-attention, cross-attention to the condition
    and MLP, each pre-norm and residual.

    Parameters
    ----------
    alg : Algebra
    v_channels, v_channels_cond, s_channels, s_channels_cond, num_heads : int
    nonlinearity, nonlinearity_v, mlp_ratio, attn_ratio, num_layers_mlp, dropout_prob,
    norm_elementwise_affine
        See :class:`SlimBlock`.

    Shapes
    ------
    ``forward(vectors, vectors_cond, scalars, scalars_cond, attn_mask=None,
    crossattn_mask=None, is_causal=False) -> (vectors, scalars)`` with
    ``vectors: (batch..., items, n, v_channels)``,
    ``vectors_cond: (batch..., items_cond, n, v_channels_cond)``, scalars likewise;
    ``cross_attn_mask=`` is an alias of ``crossattn_mask=``. Packed sets: ``offsets=``,
    ``condition_offsets=`` (set ``i`` cross-attends to condition set ``i``), ``max_items=``,
    ``condition_max_items=``, with ``(total_items, n, channels)`` vectors, as in
    :class:`SlimSelfAttention` and :class:`SlimCrossAttention`.
    """

    def __init__(
        self,
        alg: Algebra,
        v_channels: int,
        v_channels_cond: int,
        s_channels: int,
        s_channels_cond: int,
        num_heads: int,
        nonlinearity: str = "gelu",
        nonlinearity_v: str | None = "sigmoid",
        mlp_ratio: int = 2,
        attn_ratio: int = 1,
        num_layers_mlp: int = 2,
        dropout_prob: float | None = None,
        norm_elementwise_affine: bool = True,
    ) -> None:
        super().__init__()
        affine = norm_elementwise_affine
        self.norm1 = SlimRMSNorm(alg, v_channels, s_channels, elementwise_affine=affine)
        self.norm2 = SlimRMSNorm(alg, v_channels, s_channels, elementwise_affine=affine)
        self.norm3 = SlimRMSNorm(alg, v_channels, s_channels, elementwise_affine=affine)
        self.selfattention = SlimSelfAttention(
            alg, v_channels, s_channels, num_heads, attn_ratio=attn_ratio, dropout_prob=dropout_prob
        )
        self.crossattention = SlimCrossAttention(
            alg,
            v_channels,
            v_channels_cond,
            s_channels,
            s_channels_cond,
            num_heads,
            attn_ratio=attn_ratio,
            dropout_prob=dropout_prob,
        )
        self.mlp = SlimMLP(
            alg,
            v_channels,
            s_channels,
            nonlinearity=nonlinearity,
            nonlinearity_v=nonlinearity_v,
            mlp_ratio=mlp_ratio,
            num_layers=num_layers_mlp,
            dropout_prob=dropout_prob,
        )

    def forward(
        self,
        vectors: Tensor,
        vectors_cond: Tensor,
        scalars: Tensor,
        scalars_cond: Tensor,
        attn_mask: Tensor | None = None,
        crossattn_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        offsets: Tensor | None = None,
        condition_offsets: Tensor | None = None,
        max_items: int | None = None,
        condition_max_items: int | None = None,
        cross_attn_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        who = "ConditionalSlimBlock"
        crossattn_mask = mask_alias(who, "crossattn_mask", crossattn_mask, "cross_attn_mask", cross_attn_mask)
        check_input(who, vectors, self, "vectors")
        if (offsets is None) != (condition_offsets is None):
            raise ValueError(f"{who}: packed sets need both offsets and condition_offsets")
        h_v, h_s = self.norm1(vectors, scalars)
        h_v, h_s = self.selfattention(
            h_v, h_s, attn_mask=attn_mask, is_causal=is_causal, offsets=offsets, max_items=max_items
        )
        out_v, out_s = vectors + h_v, scalars + h_s
        h_v, h_s = self.norm2(out_v, out_s)
        h_v, h_s = self.crossattention(
            h_v,
            vectors_cond,
            h_s,
            scalars_cond,
            attn_mask=crossattn_mask,
            offsets=offsets,
            context_offsets=condition_offsets,
            max_items=max_items,
            context_max_items=condition_max_items,
        )
        out_v, out_s = out_v + h_v, out_s + h_s
        h_v, h_s = self.norm3(out_v, out_s)
        h_v, h_s = self.mlp(h_v, h_s)
        return out_v + h_v, out_s + h_s
