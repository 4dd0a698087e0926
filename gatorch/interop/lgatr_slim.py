r"""Conversion between lgatr's slim nets and gatorch's :mod:`gatorch.nets.slim`.

``lgatr`` is optional (``pip install lgatr``): both functions import it when called and
raise ``ImportError`` naming it if it is missing.

Correspondence
--------------
``LGATrSlim`` is :class:`~gatorch.nets.slim.GATrSlim` on ``STA`` and
``ConditionalLGATrSlim`` is :class:`~gatorch.nets.slim.ConditionalGATrSlim` on ``STA``:
STA's basis vectors are ``e0`` (timelike, ``+1``), ``e1, e2, e3`` (``-1``), so a gatorch
vector ``(..., channels, 4)`` is lgatr's ``(t, x, y, z)`` component for component, and the
metric read from the algebra is lgatr's ``diag(1, -1, -1, -1)``. The gatorch layers use
lgatr's parameter names, shapes and channel orders (heads, query / key / value chunks), so
the state dicts are the same dictionaries: the map is the identity on every tensor, a
bijection, and :func:`to_lgatr_slim` inverts :func:`from_lgatr_slim` exactly.

Calls: the converted net takes the same positional arguments, ``(vectors, scalars)`` and
``(vectors, vectors_cond, scalars, scalars_cond)``. Masks are keyword arguments in both
libraries but spelled differently for the conditional net: lgatr's
``attn_kwargs={"attn_mask": m}`` / ``crossattn_kwargs={"attn_mask": c}`` are gatorch's
``attn_mask=m`` / ``crossattn_mask=c``; ``LGATrSlim(v, s, attn_mask=m, is_causal=b)`` is
``GATrSlim(v, s, attn_mask=m, is_causal=b)`` (masks of shape ``(batch, 1, items, items)``
as SDPA takes them are accepted, as are ``(items, items)`` and ``(batch, items, items)``).

Options: every constructor option of lgatr's slim nets that changes the function
(``nonlinearity``, ``nonlinearity_v``, ``mlp_ratio``, ``attn_ratio``, ``num_layers_mlp``,
``dropout_prob``, ``norm_elementwise_affine``, the channel counts) is read back from the
model's modules. ``checkpoint_blocks`` is carried over (gatorch checkpoints in training mode
only). ``compile`` / ``compile_kwargs`` / ``activation_memory_budget`` do not change the
function and are dropped (compile the gatorch net with ``torch.compile``). What gatorch
cannot represent raises ``ValueError`` naming it: ``naive_amp=True`` (gatorch always keeps
the norms, vector maps and attention in float32 under autocast), an RMS-norm ``epsilon``
other than 0.01, a metric buffer other than ``(1, -1, -1, -1)``, a nonlinearity outside
lgatr's five, ``num_blocks=0`` for the conditional net (the condition channels are not
recorded) and ``hidden_v_channels=0``. The model must be the module tree lgatr builds for
these options (compared with one built on the meta device): a replaced module
(``TypeError``), a missing or extra module, or a block built with other heads, sizes or
nonlinearities than the first (``ValueError``) is refused, naming the module's path.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from gatorch.functional.algebra import STA
from gatorch.nets.slim import ConditionalGATrSlim, GATrSlim

__all__ = ["from_lgatr_slim", "to_lgatr_slim"]

_NONLINEARITIES = ("relu", "sigmoid", "tanh", "gelu", "silu")
_MINKOWSKI = (1, -1, -1, -1)


def _lgatr() -> Any:
    try:
        lgatr = importlib.import_module("lgatr")
        importlib.import_module("lgatr.layers.slim_layers")
        importlib.import_module("lgatr.utils.misc")
    except ImportError as err:
        raise ImportError(
            "gatorch.interop.lgatr_slim needs the optional dependency lgatr, which is not installed: "
            "pip install lgatr"
        ) from err
    return lgatr


def _same_function(a: object, b: object) -> bool:
    """Whether two of lgatr's activation callables are the same (``functools.partial`` aware)."""
    if a is b:
        return True
    fa, fb = getattr(a, "func", None), getattr(b, "func", None)
    if fa is not None and fb is not None:
        return bool(fa is fb and a.args == b.args and a.keywords == b.keywords)  # type: ignore[attr-defined]
    return False


def _nonlinearity_name(lgatr: Any, fn: object, option: str) -> str:
    for name in _NONLINEARITIES:
        if _same_function(fn, lgatr.utils.misc.get_nonlinearity(name)):
            return name
    raise ValueError(
        f"from_lgatr_slim: {option}={fn!r} is not one of lgatr's nonlinearities {_NONLINEARITIES}; "
        "gatorch cannot convert it"
    )


def _attn_ratio(attn: Any, v_channels: int, s_channels: int) -> int:
    """The ``attn_ratio`` giving the attention's head sizes (any one, when several give the same)."""
    heads, hv, hs = attn.num_heads, attn.hidden_v_channels, attn.hidden_s_channels
    bound = (hv + 1) * heads + (hs + 1) * heads + 1
    for ratio in range(1, bound + 1):
        if max(ratio * v_channels // heads, 1) == hv and max(ratio * s_channels // heads, 4) == hs:
            return ratio
    raise ValueError(
        f"from_lgatr_slim: no attn_ratio gives head sizes ({hv} vectors, {hs} scalars) for "
        f"{v_channels} vector and {s_channels} scalar channels and {heads} heads"
    )


def _check_model(lgatr: Any, model: nn.Module) -> None:
    """Raise ``ValueError`` for what gatorch's slim nets cannot represent."""
    if getattr(model, "_naive_amp", False):
        raise ValueError(
            "from_lgatr_slim: naive_amp=True cannot be converted (gatorch keeps the norms, vector "
            "maps and attention in float32 under autocast); build the lgatr model with naive_amp=False"
        )
    layers = lgatr.layers.slim_layers
    for name, module in model.named_modules():
        if isinstance(module, layers.SlimRMSNorm) and module.epsilon != 0.01:
            raise ValueError(
                f"from_lgatr_slim: {name}.epsilon={module.epsilon} cannot be converted (gatorch's slim "
                "nets use epsilon=0.01)"
            )
        metric = getattr(module, "metric", None)
        if isinstance(metric, torch.Tensor) and tuple(metric.tolist()) != _MINKOWSKI:
            raise ValueError(
                f"from_lgatr_slim: {name}.metric={tuple(metric.tolist())} cannot be converted "
                f"(expected the Minkowski metric {_MINKOWSKI})"
            )


def _block_options(lgatr: Any, model: Any, v: int, s: int, conditional: bool) -> dict[str, Any]:
    """The block options, read back from the first block's modules."""
    if len(model.blocks) == 0:
        return {"num_heads": 1}
    block = _submodule(lgatr, model, "blocks.0", "ConditionalSlimBlock" if conditional else "SlimBlock")
    attn = _submodule(
        lgatr, model, f"blocks.0.{'selfattention' if conditional else 'attention'}", "SlimSelfAttention"
    )
    _submodule(lgatr, model, "blocks.0.mlp", "SlimMLP")
    _submodule(lgatr, model, "blocks.0.norm1", "SlimRMSNorm")
    glus = [m for m in block.mlp.layers if isinstance(m, lgatr.layers.slim_layers.SlimGLU)]
    if not glus:
        raise ValueError(
            "from_lgatr_slim: model.blocks.0.mlp.layers has no SlimGLU (expected lgatr's SlimMLP layers: "
            "SlimGLU, [SlimDropout], ..., SlimLinear)"
        )
    glu = glus[0]
    nonlinearity = _nonlinearity_name(lgatr, glu.nonlinearity, "nonlinearity")
    if glu.nonlinearity_v is glu.nonlinearity:
        nonlinearity_v: str | None = None
    else:
        nonlinearity_v = _nonlinearity_name(lgatr, glu.nonlinearity_v, "nonlinearity_v")
    out_v = glu.linear._out_v_channels
    if out_v % (3 * v):
        raise ValueError(
            f"from_lgatr_slim: the MLP's first layer has {out_v} vector outputs, not 3 * mlp_ratio * {v}"
        )
    dropout = attn.dropout
    return {
        "num_heads": attn.num_heads,
        "nonlinearity": nonlinearity,
        "nonlinearity_v": nonlinearity_v,
        "mlp_ratio": out_v // (3 * v),
        "attn_ratio": _attn_ratio(attn, v, s),
        "num_layers_mlp": len(glus) + 1,
        "dropout_prob": None if dropout is None else float(dropout._dropout_prob),
        "norm_elementwise_affine": bool(block.norm1.elementwise_affine),
    }


_MODULE_INTERNALS = frozenset(vars(nn.Module()))


def _missing(where: str, want: str) -> ValueError:
    return ValueError(
        f"from_lgatr_slim: {where} is missing (expected {want}); from_lgatr_slim converts lgatr models "
        "with the modules lgatr builds"
    )


def _replaced(where: str, got: object, want: str) -> TypeError:
    return TypeError(
        f"from_lgatr_slim: {where} is a {type(got).__module__}.{type(got).__qualname__}, not a module lgatr "
        f"builds there (expected {want}); from_lgatr_slim cannot convert a replaced module"
    )


def _submodule(lgatr: Any, model: nn.Module, path: str, *expected: str) -> Any:
    """``model``'s submodule at ``path``, exactly one of lgatr's slim layer classes ``expected``."""
    want = " or ".join(f"lgatr's {name}" for name in expected)
    try:
        module = model.get_submodule(path)
    except AttributeError:
        raise _missing(f"model.{path}", want) from None
    if not any(type(module) is getattr(lgatr.layers.slim_layers, name) for name in expected):
        raise _replaced(f"model.{path}", module, want)
    return module


def _settings(module: nn.Module) -> dict[str, Any]:
    """A module's own settings: the plain values and callables it holds besides torch's bookkeeping."""
    return {
        k: v
        for k, v in vars(module).items()
        if k not in _MODULE_INTERNALS and (v is None or isinstance(v, (bool, int, float, str)) or callable(v))
    }


def _check_structure(model: nn.Module, reference: nn.Module) -> None:
    """``model`` has exactly the modules, shapes and settings lgatr builds for its options.

    ``reference`` is the lgatr net built (on the meta device) from the options read back from
    ``model``'s first block: a module swapped in by the user (or an lgatr subclass), a missing
    or extra module, a block built with other sizes, heads or nonlinearities are refused,
    naming the module path, instead of a state-dict error or a silently different function.
    """
    ours, theirs = dict(model.named_modules()), dict(reference.named_modules())
    for path, ref in theirs.items():
        where = f"model.{path}" if path else "model"
        want = f"lgatr's {type(ref).__name__}"
        if path not in ours:
            raise _missing(where, want)
        got = ours[path]
        if path and type(got) is not type(ref):
            raise _replaced(where, got, want)
        mine, expected = _settings(got), _settings(ref)
        for key, value in expected.items():
            same = key in mine and (
                _same_function(mine[key], value) if callable(value) else mine[key] == value
            )
            if not same:
                raise ValueError(
                    f"from_lgatr_slim: {where}.{key} is {mine.get(key, 'missing')!r} where an lgatr net "
                    f"built like model.blocks.0 has {value!r}; gatorch's slim nets have one configuration "
                    "for all blocks"
                )
        for name, param in ref.named_parameters(recurse=False):
            have = getattr(got, name, None)
            if not isinstance(have, torch.Tensor) or have.shape != param.shape:
                shape = tuple(have.shape) if isinstance(have, torch.Tensor) else None
                raise ValueError(
                    f"from_lgatr_slim: {where}.{name} has shape {shape} where an lgatr net built like "
                    f"model.blocks.0 has {tuple(param.shape)}"
                )
    extra = [p for p in ours if p not in theirs]
    if extra:
        raise ValueError(
            f"from_lgatr_slim: model.{extra[0]} is a module lgatr does not build for these options "
            f"({type(ours[extra[0]]).__name__}); from_lgatr_slim converts lgatr models with the modules "
            "lgatr builds"
        )


def _copy_state(src: nn.Module, dst: nn.Module) -> None:
    """Load ``src``'s state dict into ``dst`` (same keys), with its dtype, device, flags and mode."""
    params = list(src.parameters())
    if params:
        dst.to(device=params[0].device, dtype=params[0].dtype)
    dst.load_state_dict(src.state_dict(), strict=True)
    flags = dict(src.named_parameters())
    for name, p in dst.named_parameters():
        p.requires_grad_(flags[name].requires_grad)
    dst.train(src.training)


def from_lgatr_slim(model: Any) -> GATrSlim | ConditionalGATrSlim:
    """The gatorch net of an lgatr ``LGATrSlim`` or ``ConditionalLGATrSlim``, with its weights.

    Parameters
    ----------
    model : lgatr.LGATrSlim or lgatr.ConditionalLGATrSlim

    Returns
    -------
    GATrSlim or ConditionalGATrSlim
        On ``STA``, with the same parameters (copied, same dtype and device, same
        ``requires_grad`` flags and train / eval mode), computing the same function: it takes
        the same positional arguments and returns the same ``(vectors, scalars)``.

    Raises
    ------
    ImportError
        When lgatr is not installed.
    TypeError
        When ``model`` is not one of lgatr's slim nets.
    ValueError
        For an option gatorch cannot represent (see the module docstring), naming it.

    Examples
    --------
    >>> import torch
    >>> from lgatr import LGATrSlim  # doctest: +SKIP
    >>> ref = LGATrSlim(num_blocks=2, in_v_channels=1, out_v_channels=1, hidden_v_channels=8,
    ...                 in_s_channels=2, out_s_channels=1, hidden_s_channels=8, num_heads=2)  # doctest: +SKIP
    >>> net = from_lgatr_slim(ref)  # doctest: +SKIP
    >>> v, s = torch.randn(3, 10, 1, 4), torch.randn(3, 10, 2)  # doctest: +SKIP
    >>> all(torch.allclose(a, b) for a, b in zip(net(v, s), ref(v, s)))  # doctest: +SKIP
    True
    """
    lgatr = _lgatr()
    conditional = isinstance(model, lgatr.ConditionalLGATrSlim)
    if not (conditional or isinstance(model, lgatr.LGATrSlim)):
        raise TypeError(
            "from_lgatr_slim: expected an lgatr LGATrSlim or ConditionalLGATrSlim, "
            f"got {type(model).__name__}"
        )
    _check_model(lgatr, model)
    for name in ("linear_in", "linear_out"):
        _submodule(lgatr, model, name, "SlimLinear")
    if not isinstance(getattr(model, "blocks", None), nn.ModuleList):
        raise ValueError(
            "from_lgatr_slim: model.blocks is missing or not an nn.ModuleList (expected lgatr's blocks)"
        )
    lin_in, lin_out = model.linear_in, model.linear_out
    v, s = lin_in._out_v_channels, lin_in._out_s_channels
    options: dict[str, Any] = {
        "in_v_channels": lin_in._in_v_channels,
        "out_v_channels": lin_out._out_v_channels,
        "hidden_v_channels": v,
        "in_s_channels": lin_in._in_s_channels,
        "out_s_channels": lin_out._out_s_channels,
        "hidden_s_channels": s,
        "num_blocks": len(model.blocks),
        "checkpoint_blocks": bool(model._checkpoint_blocks),
    }
    if v < 1:
        raise ValueError("from_lgatr_slim: hidden_v_channels=0 cannot be converted (GATrSlim needs >= 1)")
    options.update(_block_options(lgatr, model, v, s, conditional))
    net: GATrSlim | ConditionalGATrSlim
    if conditional:
        if options["num_blocks"] == 0:
            raise ValueError(
                "from_lgatr_slim: a ConditionalLGATrSlim with num_blocks=0 cannot be converted "
                "(its condition channels are not recorded)"
            )
        kv = _submodule(lgatr, model, "blocks.0.crossattention.linear_in_kv", "SlimLinear")
        options["v_channels_cond"] = kv._in_v_channels
        options["s_channels_cond"] = kv._in_s_channels
        net = ConditionalGATrSlim(STA, **options)
    else:
        net = GATrSlim(STA, **options)
    with torch.device("meta"):  # lgatr's net for these options, without memory for its weights
        reference = (lgatr.ConditionalLGATrSlim if conditional else lgatr.LGATrSlim)(**net.config)
    _check_structure(model, reference)
    _copy_state(model, net)
    return net


def to_lgatr_slim(net: GATrSlim | ConditionalGATrSlim) -> nn.Module:
    """The lgatr ``LGATrSlim`` / ``ConditionalLGATrSlim`` of a gatorch slim net on STA.

    The inverse of :func:`from_lgatr_slim`: the same constructor options, the same state
    dict (dtype, device, ``requires_grad`` flags and mode copied).

    Parameters
    ----------
    net : GATrSlim or ConditionalGATrSlim
        On an algebra with the Minkowski metric ``(1, -1, -1, -1)`` in basis order (``STA``).

    Returns
    -------
    lgatr.LGATrSlim or lgatr.ConditionalLGATrSlim

    Raises
    ------
    ImportError
        When lgatr is not installed.
    TypeError
        When ``net`` is not a gatorch slim net.
    ValueError
        When the net's algebra is not STA (lgatr's vectors are Minkowski 4-vectors).
    """
    lgatr = _lgatr()
    if not isinstance(net, (GATrSlim, ConditionalGATrSlim)):
        raise TypeError(
            f"to_lgatr_slim: expected a GATrSlim or ConditionalGATrSlim, got {type(net).__name__}"
        )
    if net.alg.metric != _MINKOWSKI:
        raise ValueError(
            f"to_lgatr_slim: lgatr's slim nets act on Minkowski vectors (metric {_MINKOWSKI}, STA); "
            f"the net's algebra is {net.alg!r} with metric {net.alg.metric}"
        )
    cls = lgatr.ConditionalLGATrSlim if isinstance(net, ConditionalGATrSlim) else lgatr.LGATrSlim
    model = cls(**net.config)
    _copy_state(net, model)
    return model
