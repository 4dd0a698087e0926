r"""Bridge between multivectors and e3nn irreps (``VGA3`` and ``PGA3``).

``to_irreps`` / ``from_irreps`` are signed gathers / scatters (exact, differentiable, any
floating dtype and device, pure torch); :func:`irreps_for` names the e3nn irreps a
multivector feature becomes, and the modules :class:`MVToIrreps` / :class:`IrrepsToMV`
add an e3nn ``o3.Linear`` on the irreps side so that a model can switch between e3nn and
gatorch layers mid-network. The functions need no e3nn; ``irreps_for`` and the modules do:
install the extra with ``pip install "gatorch-nn[irreps]"`` (``ImportError`` naming it
otherwise). ``import gatorch`` never imports e3nn.

Conventions
-----------
**Irreps and group action.** e3nn's irreps are representations of O(3): ``1o`` is a vector
in Cartesian order ``(x, y, z)`` with ``Irrep("1o").D_from_matrix(M) == M``, ``1e`` a
pseudovector (``det(M) M``), ``0o`` a pseudoscalar (``det M``). A versor ``g`` acts on
multivectors by the twisted action ``g . x = g involute^{|g|}(x) g^-1`` (``alg.sandwich``,
reflections included) and on vectors ``e1, e2, e3`` by an orthogonal matrix ``M_g``. The
bridge satisfies, with ``D = irreps_for(alg, C).D_from_matrix``,

.. math::  \mathrm{to\_irreps}(g \cdot x) = D(M_g)\, \mathrm{to\_irreps}(x),

i.e. ``to_irreps(alg, alg.sandwich(g, x)) == to_irreps(alg, x) @ D(M_g).T`` (tested in float64
to ~1e-14, odd versors included). Note: e3nn builds ``D_from_matrix`` in torch's *default*
dtype, so it is only float32-accurate unless the default dtype is float64.

**VGA3** ``Cl(3, 0)``, blades ``1, e1, e2, e3, e12, e13, e23, e123``: exact O(3) bridge. Per
channel ``[s] -> 0e``, ``[v1, v2, v3] -> 1o``, ``[b23, -b13, b12] -> 1e`` (the axial vector
``a`` of the bivector ``a e123``, as ``gatorch.interface.vga.extract_axial_vector``),
``[p] -> 0o``. ``C`` channels give ``Irreps("Cx0e+Cx1o+Cx1e+Cx0o")`` in e3nn's own
multiplicity-outer layout: the ``C`` scalars, then the ``C`` vectors (channel-major, 3
components each), then the ``C`` pseudovectors, then the ``C`` pseudoscalars.

**PGA3** ``Cl(3, 0, 1)``: write ``x = a + e0 b`` with ``a, b`` in the Euclidean subalgebra
(blades without ``e0``). The *Euclidean half* ``a`` reads like VGA3; the *ideal half*
``e0 b`` reads ``b`` like VGA3, i.e. ``e0 -> 0e``, ``[e01, e02, e03] -> 1o``,
``[e023, -e013, e012] -> 1e``, ``e0123 -> 0o`` (``e0 e_A`` located and signed through the
algebra's product table). Every versor is ``g = T_t g_M``, a translator times an O(3) versor
(which fixes ``e0``); its action is an algebra automorphism fixing ``e0``, so

.. math::  g \cdot (a + e_0 b) = g_M \cdot a + e_0 \big(g_M \cdot b + c_t(a)\big),
           \qquad c_0(a) = 0,

where ``c_t(a)`` is what the translation adds (for a point ``a = e123``: the move of its
position). Hence the keyword ``part``:

* ``"full"`` (default): both halves, ``Irreps("2Cx0e+2Cx1o+2Cx1e+2Cx0o")``, per irrep type
  the ``C`` Euclidean copies first (channel-major) then the ``C`` ideal copies, so the
  ``1o`` block is the ``"euclidean"`` ``1o`` block followed by the ``"ideal"`` one.
  **O(3)-equivariant only**: translations mix the Euclidean half into the ideal half
  (``c_t(a)``). Right for translation-free features (relative positions, directions,
  velocities, centred data); wrong for absolute points.
* ``"euclidean"``: ``a`` only, ``Irreps("Cx0e+Cx1o+Cx1e+Cx0o")``. ``to_irreps`` is
  E(3)-equivariant on *every* input: every motion acts on these coefficients through its
  O(3) part alone, translations trivially. ``from_irreps`` returns multivectors without
  ``e0`` components; it is O(3)- but not translation-equivariant (a translation gives them
  an ideal half).
* ``"ideal"``: ``e0 b`` only, ``Irreps("Cx0e+Cx1o+Cx1e+Cx0o")``. On the ideal
  ``e0 Cl(3, 0, 1)`` (inputs with ``a = 0``: directions / ideal points, ideal lines such
  as the translation bivectors ``e0 ^ v``, ``e0``, ``e0123``) translations act trivially, and
  ``to_irreps`` and ``from_irreps`` are E(3)-equivariant; ``from_irreps`` returns such
  multivectors. For inputs with ``a != 0`` the ``"ideal"`` reading changes under translations.

Useful PGA dictionary: a vector ``v`` (e3nn ``1o``) enters the ideal half as the bivector
``v1 e01 + v2 e02 + v3 e03 = e0 ^ v``; a direction ``d`` embedded by
``gatorch.interface.pga.embed_direction`` is a trivector that transforms with ``det M``
and reads as ``1e`` with value ``-d``; a plane ``n + d e0`` reads as ``1o = n``
(Euclidean) and ``0e = d`` (ideal).

**Other algebras** (STA, CGA3, any other signature) raise ``ValueError``: e3nn's irreps
represent O(3), which is the whole versor group of VGA3 and the rotation part of PGA3's
E(3), but not the Lorentz group of STA nor the conformal group of CGA3.

**Modules.** ``MVToIrreps(alg, C, irreps_out)`` is ``to_irreps`` then
``o3.Linear(irreps_for(alg, C), irreps_out)``; ``IrrepsToMV(alg, irreps_in, C)`` is
``o3.Linear(irreps_in, irreps_for(alg, C))`` then ``from_irreps``. ``o3.Linear`` only
connects equal irreps (and leaves outputs without a path at zero, drops inputs without
one), so irreps other than ``0e, 1o, 1e, 0o`` (``2e`` ...) are refused with a
``ValueError`` rather than silently zeroed or dropped.
"""

from gatorch.irreps.bridge import PARTS, IrrepsToMV, MVToIrreps, from_irreps, irreps_for, to_irreps

__all__ = ["PARTS", "IrrepsToMV", "MVToIrreps", "from_irreps", "irreps_for", "to_irreps"]
