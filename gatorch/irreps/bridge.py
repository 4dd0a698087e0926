r"""Index maps between multivectors and e3nn irreps, and the modules built on them.

See :mod:`gatorch.irreps` for the conventions (layouts, the PGA parts and what each one
is equivariant under). Everything here is a gather (``to_irreps``) or a scatter
(``from_irreps``) of components times a fixed sign: no arithmetic beyond the sign, so the
maps are exact, differentiable, and work for any floating dtype and device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from gatorch.functional.algebra import PGA3, VGA3, Algebra
from gatorch.functional.products import gp

if TYPE_CHECKING:
    from e3nn import o3

__all__ = ["PARTS", "IrrepsToMV", "MVToIrreps", "from_irreps", "irreps_for", "to_irreps"]

#: The values of the ``part`` keyword (``"euclidean"`` and ``"ideal"`` exist for PGA3 only).
PARTS = ("full", "euclidean", "ideal")

#: Irrep types in the order they appear in every layout: scalar, vector, pseudovector, pseudoscalar.
_IRREP_TYPES = ("0e", "1o", "1e", "0o")

#: The Euclidean blades of each irrep type with their signs, in e3nn's component order
#: (``1o`` and ``1e`` are Cartesian ``x, y, z``). ``1e`` is the axial vector
#: ``a = [b23, -b13, b12]`` of the bivector ``b = a e123`` (its Hodge dual).
_EUCLIDEAN_TERMS: dict[str, tuple[tuple[str, float], ...]] = {
    "0e": (("1", 1.0),),
    "1o": (("e1", 1.0), ("e2", 1.0), ("e3", 1.0)),
    "1e": (("e23", 1.0), ("e13", -1.0), ("e12", 1.0)),
    "0o": (("e123", 1.0),),
}

_EXTRA = 'pip install "gatorch-nn[irreps]"'

_SUPPORTED_MESSAGE = (
    "the e3nn bridge supports VGA3 = Algebra(3, 0, 0) and PGA3 = Algebra(3, 0, 1) only, got {alg!r}. "
    "e3nn irreps are representations of O(3); the bridge needs an algebra whose versor group "
    "contains O(3) acting on a 3D Euclidean subspace e1, e2, e3 in the standard way and is "
    "described by that O(3) action: VGA3 (O(3) itself) and PGA3 (E(3), of which O(3) fixes e0 "
    "and the translations are handled by part=). The symmetry groups of other algebras "
    "(the Lorentz group of STA, the conformal group of CGA3, the group of any other "
    "signature) are not O(3), so e3nn irreps cannot represent them"
)


def _e3nn_o3() -> Any:
    """Import and return ``e3nn.o3``; ``ImportError`` naming the ``irreps`` extra if e3nn is missing."""
    try:
        from e3nn import o3
    except ImportError as err:
        raise ImportError(
            f"gatorch.irreps needs the optional dependency e3nn, which is not installed: {_EXTRA}"
        ) from err
    return o3


def _check_algebra(alg: object, who: str) -> Algebra:
    if not isinstance(alg, Algebra):
        raise TypeError(f"{who}: alg must be a gatorch.Algebra, got {type(alg).__name__}")
    if alg != VGA3 and alg != PGA3:
        raise ValueError(f"{who}: " + _SUPPORTED_MESSAGE.format(alg=alg))
    return alg


def _check_part(alg: Algebra, part: object, who: str) -> str:
    if part not in PARTS:
        raise ValueError(f"{who}: part must be one of {PARTS}, got {part!r}")
    if alg == VGA3 and part != "full":
        raise ValueError(
            f"{who}: part={part!r} is for PGA3 (it splits off the e0 half); VGA3 has only part='full'"
        )
    return str(part)


def _check_channels(channels: object, who: str, name: str = "channels") -> int:
    if not isinstance(channels, (int, np.integer)) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"{who}: {name} must be an int >= 1, got {channels!r}")
    return int(channels)


def _copies(alg: Algebra, part: str) -> dict[str, tuple[tuple[tuple[int, float], ...], ...]]:
    """Per irrep type, the copies one channel holds: each a tuple of ``(blade index, sign)``.

    The Euclidean copy reads the blades of ``_EUCLIDEAN_TERMS``; the ideal copy (PGA3) reads
    ``e0 * blade`` for the same blades, located and signed through the algebra's own
    product table (``e0 e_A = s e_B``), so no index is typed by hand. A plan on the
    algebra's store.
    """
    return alg.plan(("irreps_copies", part), lambda: _build_copies(alg, part))


def _build_copies(alg: Algebra, part: str) -> dict[str, tuple[tuple[tuple[int, float], ...], ...]]:
    euclidean = {ir: tuple((alg.index(n), s) for n, s in terms) for ir, terms in _EUCLIDEAN_TERMS.items()}
    if alg == VGA3:
        return {ir: (euclidean[ir],) for ir in _IRREP_TYPES}
    eye = torch.eye(alg.dim, dtype=torch.float64)
    e0_times = gp(alg, eye[alg.index("e0")], eye).numpy()  # row a: e0 * e_a
    ideal = {}
    for ir, comps in euclidean.items():
        terms = []
        for a, s in comps:
            (b,) = np.flatnonzero(e0_times[a])
            terms.append((int(b), s * float(e0_times[a, b])))
        ideal[ir] = tuple(terms)
    chosen = {"full": (euclidean, ideal), "euclidean": (euclidean,), "ideal": (ideal,)}[part]
    return {ir: tuple(c[ir] for c in chosen) for ir in _IRREP_TYPES}


def _irreps_str(alg: Algebra, part: str, channels: int) -> str:
    copies = _copies(alg, part)
    return "+".join(f"{len(copies[ir]) * channels}x{ir}" for ir in _IRREP_TYPES)


@torch.compiler.assume_constant_result
def _maps(alg: Algebra, part: str, channels: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """``(index, sign)``: irreps component ``k`` is ``sign[k] * mv.flatten(-2)[..., index[k]]``.

    Multiplicity outer: per irrep type, per copy (Euclidean first), per channel, the
    ``2l + 1`` components. Pure Python, a plan on the algebra's store; under
    ``torch.compile`` evaluated (not traced) and a constant of the graph. The modules keep
    them as buffers, the functions build them as tensors on every call (constants under
    ``torch.compile``).
    """
    return alg.plan(("irreps_maps", part, channels), lambda: _build_maps(alg, part, channels))


def _build_maps(alg: Algebra, part: str, channels: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    index: list[int] = []
    sign: list[float] = []
    for copies in _copies(alg, part).values():  # irrep types in _IRREP_TYPES order
        for copy in copies:
            for c in range(channels):
                for blade, s in copy:
                    index.append(c * alg.dim + blade)
                    sign.append(s)
    return tuple(index), tuple(sign)


def _map_tensors(alg: Algebra, part: str, channels: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_maps` as new tensors on the device of ``like`` (the signs in its dtype)."""
    index, sign = _maps(alg, part, channels)
    return (
        torch.tensor(index, dtype=torch.int64, device=like.device),
        torch.tensor(sign, dtype=like.dtype, device=like.device),
    )


def _check_mv(alg: Algebra, mv: object, who: str, channels: int | None = None) -> Tensor:
    if not isinstance(mv, torch.Tensor):
        raise TypeError(f"{who}: expected a torch.Tensor multivector, got {type(mv).__name__}")
    shape = f"(..., {channels if channels is not None else 'channels'}, {alg.dim})"
    if mv.ndim < 2 or mv.shape[-1] != alg.dim or (channels is not None and mv.shape[-2] != channels):
        raise ValueError(
            f"{who}: expected multivectors of shape {shape} (channels, then the {alg.dim} blades of "
            f"{alg!r}), got shape {tuple(mv.shape)}"
        )
    if not mv.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point tensor, got dtype {mv.dtype}")
    return mv


def _check_irreps_tensor(alg: Algebra, t: object, part: str, channels: int, who: str) -> Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{who}: expected a torch.Tensor, got {type(t).__name__}")
    width = len(_maps(alg, part, channels)[0])
    if t.ndim == 0 or t.shape[-1] != width:
        per_channel = width // channels
        hint = ""
        if t.ndim and t.shape[-1] % per_channel == 0 and t.shape[-1]:
            hint = f" (that width would be {t.shape[-1] // per_channel} channels)"
        raise ValueError(
            f"{who}: expected a tensor of shape (..., {width}) = irreps {_irreps_str(alg, part, channels)} "
            f"({channels} channels of {alg!r}, part={part!r}), got shape {tuple(t.shape)}{hint}"
        )
    if not t.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point tensor, got dtype {t.dtype}")
    return t


def _gather(mv: Tensor, index: Tensor, sign: Tensor) -> Tensor:
    flat = mv.reshape(*mv.shape[:-2], mv.shape[-2] * mv.shape[-1])
    return flat.index_select(-1, index) * sign


def _scatter(t: Tensor, index: Tensor, sign: Tensor, channels: int, dim: int) -> Tensor:
    out = t.new_zeros(*t.shape[:-1], channels * dim).index_copy(-1, index, t * sign)
    return out.reshape(*t.shape[:-1], channels, dim)


# -- public functions ----------------------------------------------------------------------------
def irreps_for(alg: Algebra, channels: int, *, part: str = "full") -> o3.Irreps:
    """The e3nn irreps that ``channels`` multivector channels of ``alg`` are mapped to.

    Parameters
    ----------
    alg : Algebra
        ``VGA3`` or ``PGA3``.
    channels : int
        Multivector channels (``>= 1``).
    part : {"full", "euclidean", "ideal"}
        PGA3 only (see :mod:`gatorch.irreps`); VGA3 has ``"full"`` alone.

    Returns
    -------
    e3nn.o3.Irreps
        ``Cx0e+Cx1o+Cx1e+Cx0o`` for VGA3 and for the PGA3 parts ``"euclidean"`` and
        ``"ideal"``; ``2Cx0e+2Cx1o+2Cx1e+2Cx0o`` for PGA3 ``"full"`` (with ``C = channels``).
        Needs e3nn (``ImportError`` naming the ``irreps`` extra otherwise).
    """
    alg = _check_algebra(alg, "irreps_for")
    part = _check_part(alg, part, "irreps_for")
    channels = _check_channels(channels, "irreps_for")
    return _e3nn_o3().Irreps(_irreps_str(alg, part, channels))


def to_irreps(alg: Algebra, mv: Tensor, *, part: str = "full") -> Tensor:
    r"""Multivector channels as an e3nn irreps tensor (a signed gather; exact).

    Parameters
    ----------
    alg : Algebra
        ``VGA3`` or ``PGA3``.
    mv : Tensor, shape (..., C, alg.dim)
        Any floating dtype and device.
    part : {"full", "euclidean", "ideal"}
        PGA3 only: which half of each multivector to read (``"full"``: both).

    Returns
    -------
    Tensor, shape (..., irreps_for(alg, C, part=part).dim)
        For VGA3, per channel ``[s], [v1, v2, v3], [b23, -b13, b12], [p]`` placed in e3nn's
        multiplicity-outer layout of ``Cx0e+Cx1o+Cx1e+Cx0o``. Satisfies
        :math:`\mathrm{to\_irreps}(g \cdot x) = D(M_g)\, \mathrm{to\_irreps}(x)` with
        ``D = irreps.D_from_matrix`` and :math:`M_g` the orthogonal matrix of the versor
        :math:`g` (for PGA3: of its O(3) part; see :mod:`gatorch.irreps` for which parts
        are E(3)-equivariant). Needs no e3nn.

    Examples
    --------
    >>> import torch
    >>> from gatorch import VGA3
    >>> from gatorch.irreps import to_irreps
    >>> x = torch.zeros(1, 8)
    >>> x[0, VGA3.index("e12")] = 1.0  # the bivector e12 is the axial vector e3
    >>> to_irreps(VGA3, x[None]).tolist()  # [0e | 1o (x, y, z) | 1e (x, y, z) | 0o]
    [[0.0, 0.0, 0.0, 0.0, 0.0, -0.0, 1.0, 0.0]]
    """
    alg = _check_algebra(alg, "to_irreps")
    part = _check_part(alg, part, "to_irreps")
    mv = _check_mv(alg, mv, "to_irreps")
    index, sign = _map_tensors(alg, part, mv.shape[-2], mv)
    return _gather(mv, index, sign)


def from_irreps(alg: Algebra, t: Tensor, channels: int, *, part: str = "full") -> Tensor:
    r"""An e3nn irreps tensor as multivector channels; the inverse of :func:`to_irreps`.

    Parameters
    ----------
    alg : Algebra
        ``VGA3`` or ``PGA3``.
    t : Tensor, shape (..., irreps_for(alg, channels, part=part).dim)
        Any floating dtype and device.
    channels : int
        Multivector channels ``C`` to produce.
    part : {"full", "euclidean", "ideal"}
        PGA3 only. ``"euclidean"`` returns multivectors without e0 components,
        ``"ideal"`` multivectors with only e0 components (the ideal ``e0 Cl(3, 0, 1)``).

    Returns
    -------
    Tensor, shape (..., channels, alg.dim)
        ``to_irreps(alg, from_irreps(alg, t, C, part=p), part=p) == t`` exactly, and
        ``from_irreps(alg, to_irreps(alg, x, part=p), C, part=p) == x`` for every ``x`` whose
        components outside the part are zero (every ``x`` for ``"full"``). Equivariant:
        :math:`\mathrm{from\_irreps}(D(M_g)\, t) = g \cdot \mathrm{from\_irreps}(t)` for
        O(3) versors, and for every E(3) versor with ``part="ideal"``. Needs no e3nn.
    """
    alg = _check_algebra(alg, "from_irreps")
    part = _check_part(alg, part, "from_irreps")
    channels = _check_channels(channels, "from_irreps")
    t = _check_irreps_tensor(alg, t, part, channels, "from_irreps")
    index, sign = _map_tensors(alg, part, channels, t)
    return _scatter(t, index, sign, channels, alg.dim)


# -- modules ----------------------------------------------------------------------------------------
def _check_representable(alg: Algebra, part: str, irreps: o3.Irreps, who: str, arg: str) -> None:
    have = {mul_ir.ir for mul_ir in _e3nn_o3().Irreps(_irreps_str(alg, part, 1))}
    missing = [str(mul_ir) for mul_ir in irreps if mul_ir.mul > 0 and mul_ir.ir not in have]
    if missing:
        kinds = ", ".join(_IRREP_TYPES)
        fate = "zero" if arg == "irreps_out" else "dropped"
        raise ValueError(
            f"{who}: {arg} {irreps} contains {' + '.join(missing)}, which multivectors of {alg!r} "
            f"(part={part!r}) cannot hold: they hold only {kinds}. e3nn's o3.Linear has no path "
            f"between different irreps, so these would be silently {fate}; "
            "remove them, or produce / consume them with an e3nn tensor product"
        )


class MVToIrreps(nn.Module):
    r"""Multivector channels to an e3nn irreps feature: :func:`to_irreps`, then ``o3.Linear``.

    .. math::
        y = \mathrm{Linear}_{\texttt{irreps\_for(alg, C)} \to \texttt{irreps\_out}}
            \big(\mathrm{to\_irreps}(x)\big)

    The linear map mixes channels (and, for PGA3 ``"full"``, the two halves) within each
    irrep type, so the module is equivariant exactly when :func:`to_irreps` is:
    :math:`y(g \cdot x) = D_{\mathrm{out}}(M_g)\, y(x)`.

    Parameters
    ----------
    alg : Algebra
        ``VGA3`` or ``PGA3``.
    mv_channels : int
        Input multivector channels ``C``.
    irreps_out : e3nn.o3.Irreps or str
        Output irreps. Every irrep in it must be one of ``0e, 1o, 1e, 0o`` (``ValueError``
        otherwise: ``o3.Linear`` has no path to other irreps and would output zeros there).
    part : {"full", "euclidean", "ideal"}
        Passed to :func:`to_irreps` (PGA3 only).
    biases : bool
        Biases on the ``0e`` outputs (``o3.Linear(biases=...)``); invariant, so equivariance holds.

    Shapes
    ------
    ``forward(mv: (..., C, alg.dim)) -> (..., irreps_out.dim)``. Weights are created in the
    default dtype; call ``.double()`` etc. to match the input.
    """

    index: Tensor
    sign: Tensor

    def __init__(
        self, alg: Algebra, mv_channels: int, irreps_out: Any, *, part: str = "full", biases: bool = False
    ) -> None:
        super().__init__()
        who = "MVToIrreps"
        o3_ = _e3nn_o3()
        self.alg = _check_algebra(alg, who)
        self.part = _check_part(alg, part, who)
        self.mv_channels = _check_channels(mv_channels, who, "mv_channels")
        self.irreps_in = o3_.Irreps(_irreps_str(alg, self.part, self.mv_channels))
        self.irreps_out = o3_.Irreps(irreps_out)
        _check_representable(alg, self.part, self.irreps_out, who, "irreps_out")
        self.linear = o3_.Linear(self.irreps_in, self.irreps_out, biases=biases)
        index, sign = _maps(alg, self.part, self.mv_channels)
        self.register_buffer("index", torch.tensor(index, dtype=torch.int64), persistent=False)
        self.register_buffer("sign", torch.tensor(sign), persistent=False)

    def forward(self, mv: Tensor) -> Tensor:
        mv = _check_mv(self.alg, mv, "MVToIrreps", self.mv_channels)
        return self.linear(_gather(mv, self.index, self.sign.to(mv.dtype)))

    def extra_repr(self) -> str:
        return f"alg={self.alg!r}, mv_channels={self.mv_channels}, part={self.part!r}"


class IrrepsToMV(nn.Module):
    r"""An e3nn irreps feature to multivector channels: ``o3.Linear``, then :func:`from_irreps`.

    .. math::
        x = \mathrm{from\_irreps}\big(\mathrm{Linear}_{\texttt{irreps\_in} \to
            \texttt{irreps\_for(alg, C)}}(t)\big)

    Equivariant: :math:`x(D_{\mathrm{in}}(M_g)\, t) = g \cdot x(t)` for every O(3) versor
    :math:`g`, and for every E(3) versor of PGA3 with ``part="ideal"`` (whose outputs have
    only e0 components, on which translations act trivially).

    Parameters
    ----------
    alg : Algebra
        ``VGA3`` or ``PGA3``.
    irreps_in : e3nn.o3.Irreps or str
        Input irreps. Every irrep in it must be one of ``0e, 1o, 1e, 0o`` (``ValueError``
        otherwise: ``o3.Linear`` would drop the others without a word).
    mv_channels : int
        Output multivector channels ``C``.
    part : {"full", "euclidean", "ideal"}
        Passed to :func:`from_irreps` (PGA3 only).
    biases : bool
        Biases on the ``0e`` outputs of the linear map (the scalar blade; ``e0`` for
        ``part="ideal"``): fixed by the group, so equivariance holds.

    Shapes
    ------
    ``forward(t: (..., irreps_in.dim)) -> (..., C, alg.dim)``.
    """

    index: Tensor
    sign: Tensor

    def __init__(
        self, alg: Algebra, irreps_in: Any, mv_channels: int, *, part: str = "full", biases: bool = False
    ) -> None:
        super().__init__()
        who = "IrrepsToMV"
        o3_ = _e3nn_o3()
        self.alg = _check_algebra(alg, who)
        self.part = _check_part(alg, part, who)
        self.mv_channels = _check_channels(mv_channels, who, "mv_channels")
        self.irreps_in = o3_.Irreps(irreps_in)
        self.irreps_out = o3_.Irreps(_irreps_str(alg, self.part, self.mv_channels))
        _check_representable(alg, self.part, self.irreps_in, who, "irreps_in")
        self.linear = o3_.Linear(self.irreps_in, self.irreps_out, biases=biases)
        index, sign = _maps(alg, self.part, self.mv_channels)
        self.register_buffer("index", torch.tensor(index, dtype=torch.int64), persistent=False)
        self.register_buffer("sign", torch.tensor(sign), persistent=False)
        # plain Python copies of what forward checks (dynamo cannot guard on e3nn's Irreps)
        self._in_dim = int(self.irreps_in.dim)
        self._in_str = str(self.irreps_in)

    def forward(self, t: Tensor) -> Tensor:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"IrrepsToMV: expected a torch.Tensor, got {type(t).__name__}")
        if t.ndim == 0 or t.shape[-1] != self._in_dim:
            raise ValueError(
                f"IrrepsToMV: expected input of shape (..., {self._in_dim}) (irreps {self._in_str}), "
                f"got shape {tuple(t.shape)}"
            )
        y = self.linear(t)
        return _scatter(y, self.index, self.sign.to(y.dtype), self.mv_channels, self.alg.dim)

    def extra_repr(self) -> str:
        return f"alg={self.alg!r}, mv_channels={self.mv_channels}, part={self.part!r}"
