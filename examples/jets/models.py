r"""Jet taggers: two Lorentz-equivariant transformers from gatorch and a plain baseline.

Every model maps ``(momenta, mask) -> logits`` with ``momenta: (B, N, 4)`` constituent
four-momenta ``(E, px, py, pz)`` in GeV (zero-padded), ``mask: (B, N)`` bool (``True`` on
real constituents) and ``logits: (B,)`` (top vs QCD, before the sigmoid). All divide the
momenta by a fixed ``momentum_scale`` (a constant, so Lorentz covariance is untouched),
ignore padded constituents in attention and pooling, and are invariant under permutations of
the constituents.

* :class:`JetGATr`: :class:`gatorch.nets.GATr` on ``STA`` (L-GATr). One token per
  constituent with its four-momentum as a vector (``sta.embed_vector``) and the beam
  spurions (:func:`gatorch.interface.spurions.sta_spurions`) and the invariant ``1`` (which
  keeps the layer norm of null momenta well conditioned) appended as extra multivector
  channels; the output scalar channels are averaged over the jet and an MLP gives the logit.
  The net is equivariant under all of O(1, 3); the spurions restrict the model's symmetry to
  their stabiliser. With the default (the xy-plane ``e12``, no time spurion) that is the
  symmetry of a collider: boosts along the beam, rotations about it and the flips z -> -z,
  t -> -t; the score is exactly invariant under those.
* :class:`JetGATrSlim`: :class:`gatorch.nets.slim.GATrSlim` on ``STA`` (L-GATr-slim), which
  carries vectors and scalars only, so the bivector spurion cannot be a channel. It enters as
  the invariant it induces on each constituent, :math:`|\langle p \rfloor B, p \rfloor B\rangle|
  = p_T^2` for :math:`B = e_{12}` (one scalar channel, :math:`p_T` / scale), which keeps the
  same boosts and rotations (and, being a square, also the mirrors x -> -x).
* :class:`JetTransformer`: ``torch.nn.TransformerEncoder`` on the raw ``(E, px, py, pz)``
  features: permutation invariant only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gatorch import STA
from gatorch.interface import sta
from gatorch.interface.spurions import append_spurions, num_sta_spurions, sta_spurions
from gatorch.nets import GATr

__all__ = ["MODELS", "JetGATr", "JetGATrSlim", "JetTransformer", "build_model", "check_inputs", "masked_mean"]

_SCALAR = STA.index("1")


def check_inputs(momenta: object, mask: object, who: str) -> tuple[Tensor, Tensor]:
    """Check ``momenta: (B, N, 4)`` (floating) and ``mask: (B, N)`` (bool); ``ValueError`` / ``TypeError``."""
    if not isinstance(momenta, Tensor) or not isinstance(mask, Tensor):
        raise TypeError(f"{who}: expected torch.Tensor momenta and mask")
    if momenta.ndim != 3 or momenta.shape[-1] != 4:
        raise ValueError(
            f"{who}: expected momenta of shape (batch, constituents, 4), got {tuple(momenta.shape)}"
        )
    if not momenta.is_floating_point():
        raise TypeError(f"{who}: expected floating-point momenta, got dtype {momenta.dtype}")
    if tuple(mask.shape) != tuple(momenta.shape[:2]) or mask.dtype != torch.bool:
        raise ValueError(
            f"{who}: expected a bool mask of shape {tuple(momenta.shape[:2])}, "
            f"got {mask.dtype} of shape {tuple(mask.shape)}"
        )
    return momenta, mask


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x: (B, N, C)`` over the items where ``mask: (B, N)`` is true: ``(B, C)``."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(-2) / w.sum(-2).clamp_min(1.0)


def _attention_mask(mask: Tensor) -> Tensor:
    """``(B, N, N)`` boolean, ``True`` = may attend: every query attends to the real constituents.

    Padded queries attend to the real keys too (never to an empty set, which would give NaN);
    their outputs are dropped by the pooling.
    """
    return mask[:, None, :].expand(-1, mask.shape[1], -1)


def _head(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, 1))


class JetGATr(nn.Module):
    r"""L-GATr (``GATr`` on ``STA``) with beam spurions as extra channels; see the module docstring.

    Parameters
    ----------
    hidden_mv_channels, hidden_s_channels, num_blocks, num_heads : int
        Size of the transformer.
    beam_spurion, add_time_spurion, beam_mirror
        The spurions, as in :func:`gatorch.interface.spurions.sta_spurions` (default: the
        xy-plane only, which keeps boosts along and rotations about the beam).
    unit_scalar : bool
        Append the constant multivector ``1`` as one more channel. It is invariant, so the
        symmetry is unchanged, but it keeps the equivariant layer norm well conditioned:
        massless momenta are null vectors, so a token that holds only (multiples of) its
        momentum has :math:`|\langle x, x\rangle| \approx 0`, and the norm would divide
        rounding noise by itself (without a spurion this loses Lorentz invariance to
        rounding even in float64).
    momentum_scale : float
        GeV per unit of the network's input. 20 GeV (rather than the jet's ~600) keeps the
        pair products :math:`p_i \cdot p_j` of soft collinear constituents from vanishing at
        initialisation; with 100 GeV training stalls on a plateau for longer.
    head_hidden : int
        Width of the MLP on the pooled invariants.

    Shapes
    ------
    ``forward(momenta: (B, N, 4), mask: (B, N)) -> (B,)`` logits.
    """

    def __init__(
        self,
        *,
        hidden_mv_channels: int = 8,
        hidden_s_channels: int = 16,
        num_blocks: int = 2,
        num_heads: int = 4,
        beam_spurion: str | None = "xyplane",
        add_time_spurion: bool = False,
        beam_mirror: bool = True,
        momentum_scale: float = 20.0,
        unit_scalar: bool = True,
        head_hidden: int = 32,
    ) -> None:
        super().__init__()
        self.momentum_scale = float(momentum_scale)
        spurions = sta_spurions(beam_spurion, add_time_spurion, beam_mirror)
        if unit_scalar:  # the invariant 1 (the scalar blade): no symmetry breaking, see the docstring
            one = torch.zeros(1, STA.dim)
            one[0, _SCALAR] = 1.0
            spurions = torch.cat([spurions, one])
        self.num_spurions = num_sta_spurions(beam_spurion, add_time_spurion, beam_mirror)
        self.register_buffer("spurions", spurions, persistent=False)
        self.net = GATr(
            STA,
            in_mv_channels=1 + spurions.shape[0],
            out_mv_channels=1,
            hidden_mv_channels=hidden_mv_channels,
            in_s_channels=0,
            out_s_channels=hidden_s_channels,
            hidden_s_channels=hidden_s_channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
        )
        self.head = _head(hidden_s_channels + 1, head_hidden)

    def forward(self, momenta: Tensor, mask: Tensor) -> Tensor:
        momenta, mask = check_inputs(momenta, mask, "JetGATr")
        mv = sta.embed_vector(momenta / self.momentum_scale).unsqueeze(-2)  # (B, N, 1, 16)
        mv = append_spurions(mv, self.spurions, STA)
        out_mv, out_s = self.net(mv, None, attn_mask=_attention_mask(mask))
        invariants = torch.cat([out_mv[..., 0, _SCALAR : _SCALAR + 1], out_s], dim=-1)  # (B, N, 1 + s)
        return self.head(masked_mean(invariants, mask)).squeeze(-1)


class JetGATrSlim(nn.Module):
    r"""L-GATr-slim (``GATrSlim`` on ``STA``): four-momenta as vectors, :math:`p_T` from the beam plane.

    Parameters
    ----------
    hidden_v_channels, hidden_s_channels, num_blocks, num_heads : int
    beam_plane : bool
        Feed the invariant :math:`|p \rfloor e_{12}|` (= :math:`p_T`) of every constituent as a
        scalar channel, which breaks O(1, 3) to the collider symmetry. ``False``: no
        symmetry breaking (fully Lorentz invariant).
    momentum_scale : float
    head_hidden : int

    Shapes
    ------
    ``forward(momenta: (B, N, 4), mask: (B, N)) -> (B,)`` logits.
    """

    def __init__(
        self,
        *,
        hidden_v_channels: int = 8,
        hidden_s_channels: int = 16,
        num_blocks: int = 2,
        num_heads: int = 4,
        beam_plane: bool = True,
        momentum_scale: float = 100.0,
        head_hidden: int = 32,
    ) -> None:
        super().__init__()
        from gatorch.nets.slim import (
            GATrSlim,
        )  # written alongside; imported here so this module loads without it

        self.momentum_scale = float(momentum_scale)
        self.beam_plane = bool(beam_plane)
        self.register_buffer("plane", sta_spurions("xyplane", False), persistent=False)
        self.net = GATrSlim(
            STA,
            in_v_channels=1,
            out_v_channels=1,
            hidden_v_channels=hidden_v_channels,
            in_s_channels=1 if self.beam_plane else 0,
            out_s_channels=hidden_s_channels,
            hidden_s_channels=hidden_s_channels,
            num_blocks=num_blocks,
            num_heads=num_heads,
        )
        self.head = _head(hidden_s_channels + 1, head_hidden)

    def forward(self, momenta: Tensor, mask: Tensor) -> Tensor:
        momenta, mask = check_inputs(momenta, mask, "JetGATrSlim")
        p = momenta / self.momentum_scale
        scalars = None
        if self.beam_plane:
            in_plane = STA.lcontract(sta.embed_vector(p), self.plane[0].to(p.dtype))  # p _| e12
            scalars = STA.inner_product(in_plane, in_plane, keepdim=True).abs().clamp_min(1e-12).sqrt()
        vectors, out_s = self.net(p.unsqueeze(-2), scalars, attn_mask=_attention_mask(mask))
        v = vectors[..., 0, :]
        metric = torch.tensor(STA.metric, dtype=v.dtype, device=v.device)
        square = (v * v * metric).sum(-1, keepdim=True)  # the Minkowski square of the output vector
        return self.head(masked_mean(torch.cat([square, out_s], dim=-1), mask)).squeeze(-1)


class JetTransformer(nn.Module):
    """A plain transformer encoder on ``(E, px, py, pz) / scale`` tokens: the non-equivariant baseline.

    Parameters
    ----------
    hidden, num_layers, num_heads : int
    momentum_scale : float
    dropout : float

    Shapes
    ------
    ``forward(momenta: (B, N, 4), mask: (B, N)) -> (B,)`` logits.
    """

    def __init__(
        self,
        *,
        hidden: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        momentum_scale: float = 100.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.momentum_scale = float(momentum_scale)
        self.embed = nn.Linear(4, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, num_heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = _head(hidden, hidden)

    def forward(self, momenta: Tensor, mask: Tensor) -> Tensor:
        momenta, mask = check_inputs(momenta, mask, "JetTransformer")
        h = self.encoder(self.embed(momenta / self.momentum_scale), src_key_padding_mask=~mask)
        return self.head(masked_mean(h, mask)).squeeze(-1)


MODELS: dict[str, type[nn.Module]] = {"gatr": JetGATr, "slim": JetGATrSlim, "transformer": JetTransformer}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """A model from :data:`MODELS` by name, with its options."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)
