"""Models of the Navier-Stokes smoke example: gatorch's field nets and plain baselines of matched size.

Every model maps the last ``history`` frames of a Cl(2,0) field, ``(B, history, N, N, 4)``
(smoke on the scalar blade, velocity on ``e1, e2``), to the next frame ``(B, 1, N, N, 4)``.
:class:`FieldModel` wraps a network: it scales smoke and velocity by fixed training-set scales
(one scale for both velocity components, so a rotation of the input commutes with the scaling),
adds the network's output to the last input frame (the net predicts the change) and zeroes the
bivector, which the data never has.

``--model``:

``clifford-resnet``
    :class:`gatorch.nets.fields.CliffordResNet` (cliffordlayers' Clifford ResNet), Cl(2,0).
``resnet``
    The same architecture with real ``nn.Conv2d`` on ``4 * history`` input and 4 output channels
    (the blades flattened into channels) and ``nn.GroupNorm``; its width is chosen so that its
    parameter count is within 5% of the Clifford ResNet's.
``clifford-fno``
    :class:`gatorch.nets.fields.CliffordFNO`, Cl(2,0).
``fno``
    The same architecture with real FNO spectral convolutions (complex weights per kept mode,
    Li et al. 2021) and 1x1 ``nn.Conv2d``; width matched to the Clifford FNO.
``steerable``
    :class:`gatorch.nets.fields.CliffordSteerableResNet`: exactly equivariant to the grid's
    rotations and reflections; the buoyancy direction enters as one more, constant, input
    channel (a spurion), since gravity is what breaks the symmetry of the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gatorch import Algebra
from gatorch.nets.fields import CliffordFNO, CliffordResNet, CliffordSteerableResNet

CL2 = Algebra(2)
DIM = 4  # blades of Cl(2,0): 1, e1, e2, e12

MODELS: tuple[str, ...] = ("clifford-resnet", "resnet", "clifford-fno", "fno", "steerable")

__all__ = ["MODELS", "FieldModel", "PlainFNO", "PlainResNet", "build_model", "count_parameters"]


def count_parameters(module: nn.Module) -> int:
    """Real parameters (a complex weight would count twice; all weights here are real tensors)."""
    return sum(p.numel() for p in module.parameters())


# -- plain baselines ---------------------------------------------------------------------------------------


class _ResBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, norm: bool, num_groups: int) -> None:
        super().__init__()
        conv = dict(padding=kernel_size // 2, padding_mode="circular")
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, **conv)  # type: ignore[arg-type]
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, **conv)  # type: ignore[arg-type]
        self.norm1: nn.Module = nn.GroupNorm(num_groups, channels) if norm else nn.Identity()
        self.norm2: nn.Module = nn.GroupNorm(num_groups, channels) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(nn.functional.gelu(self.norm1(x)))
        out = self.conv2(nn.functional.gelu(self.norm2(out)))
        return out + x


class SpectralConv2d(nn.Module):
    """FNO spectral convolution: complex weights on the lowest ``modes1 x modes2`` modes (both signs of k_x).

    Weights are stored as real tensors ``(2, in, out, modes1, modes2, 2)`` (real, imaginary part).
    """

    def __init__(self, in_channels: int, out_channels: int, modes1: int, modes2: int) -> None:
        super().__init__()
        self.out_channels, self.modes1, self.modes2 = out_channels, modes1, modes2
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(2, in_channels, out_channels, modes1, modes2, 2))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        m1, m2 = self.modes1, self.modes2
        x_hat = torch.fft.rfft2(x)
        weight = torch.view_as_complex(self.weight)
        out = x_hat.new_zeros(b, self.out_channels, h, w // 2 + 1)
        out[:, :, :m1, :m2] = torch.einsum("bixy,ioxy->boxy", x_hat[:, :, :m1, :m2], weight[0])
        out[:, :, -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", x_hat[:, :, -m1:, :m2], weight[1])
        return torch.fft.irfft2(out, s=(h, w))


class _FourierBlock(nn.Module):
    def __init__(self, channels: int, modes1: int, modes2: int) -> None:
        super().__init__()
        self.fourier = SpectralConv2d(channels, channels, modes1, modes2)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.gelu(self.fourier(x) + self.conv(x))


class _PlainNet(nn.Module):
    """cliffordlayers' encoder / blocks / decoder with real channels ``(B, C, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(in_channels, hidden, 1)
        self.blocks = nn.ModuleList(blocks)
        self.decoder = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.encoder(nn.functional.gelu(x))
        for block in self.blocks:
            h = block(h)
        return self.decoder(h)


class PlainResNet(_PlainNet):
    """The ResNet baseline: ``in_channels`` real channels in (here ``4 * history``), ``out_channels`` out."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_blocks: int,
        kernel_size: int = 3,
        norm: bool = True,
        num_groups: int = 1,
    ) -> None:
        blocks = [_ResBlock(hidden_channels, kernel_size, norm, num_groups) for _ in range(num_blocks)]
        super().__init__(in_channels, out_channels, hidden_channels, blocks)


class PlainFNO(_PlainNet):
    """The FNO baseline (Li et al. 2021) in cliffordlayers' block structure."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        num_blocks: int,
        modes1: int,
        modes2: int,
    ) -> None:
        blocks = [_FourierBlock(hidden_channels, modes1, modes2) for _ in range(num_blocks)]
        super().__init__(in_channels, out_channels, hidden_channels, blocks)


class _Flatten(nn.Module):
    """Adapt a real-channel net to fields: ``(B, T, H, W, 4) -> (B, 4 T, H, W) -> net -> (B, 1, H, W, 4)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        b, t, h, w, d = x.shape
        out = self.net(x.permute(0, 1, 4, 2, 3).reshape(b, t * d, h, w))
        return out.reshape(b, -1, d, h, w).permute(0, 1, 3, 4, 2)


# -- the wrapper ---------------------------------------------------------------------------------------------


class FieldModel(nn.Module):
    """Scale, predict the change of the last frame, unscale; the bivector output is zeroed.

    Parameters
    ----------
    net : nn.Module
        ``(B, history, N, N, 4) -> (B, 1, N, N, 4)`` on scaled fields.
    smoke_scale, velocity_scale : float
        Typical sizes (standard deviations over the training set) of the smoke and the
        velocity components; stored as buffers.

    Shapes
    ------
    ``forward(x) -> y``, ``x: (B, history, N, N, 4)``, ``y: (B, 1, N, N, 4)``.
    """

    scale: Tensor
    keep: Tensor
    spurion: Tensor | None

    def __init__(
        self,
        net: nn.Module,
        smoke_scale: float = 1.0,
        velocity_scale: float = 1.0,
        direction: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("scale", torch.tensor([smoke_scale, velocity_scale, velocity_scale, 1.0]))
        self.register_buffer("keep", torch.tensor([1.0, 1.0, 1.0, 0.0]))
        spurion = (
            None if direction is None else torch.tensor([0.0, float(direction[0]), float(direction[1]), 0.0])
        )
        self.register_buffer("spurion", spurion)

    def forward(self, x: Tensor) -> Tensor:
        z = x / self.scale
        inp = z
        if self.spurion is not None:  # the buoyancy direction as a constant vector field, one more channel
            inp = torch.cat((z, self.spurion.expand(z.shape[0], 1, *z.shape[2:])), dim=1)
        out = z[:, -1:] + self.net(inp)
        return out * self.scale * self.keep


def _clifford_resnet(history: int, hidden_channels: int, num_blocks: int, **kw: Any) -> nn.Module:
    return CliffordResNet(
        CL2, in_channels=history, out_channels=1, hidden_channels=hidden_channels, num_blocks=num_blocks, **kw
    )


def _clifford_fno(history: int, hidden_channels: int, num_blocks: int, modes: int, **kw: Any) -> nn.Module:
    return CliffordFNO(
        CL2, in_channels=history, out_channels=1, hidden_channels=hidden_channels, num_blocks=num_blocks,
        modes1=modes, modes2=modes, **kw,
    )  # fmt: skip


def _plain_resnet(history: int, hidden_channels: int, num_blocks: int, **kw: Any) -> nn.Module:
    return _Flatten(PlainResNet(DIM * history, DIM, hidden_channels, num_blocks, **kw))


def _plain_fno(history: int, hidden_channels: int, num_blocks: int, modes: int) -> nn.Module:
    return _Flatten(PlainFNO(DIM * history, DIM, hidden_channels, num_blocks, modes, modes))


def _steerable(history: int, hidden_channels: int, num_blocks: int, **kw: Any) -> nn.Module:
    return CliffordSteerableResNet(
        CL2, in_channels=history, out_channels=1, hidden_channels=hidden_channels, num_blocks=num_blocks, **kw
    )


def matched_width(build: Callable[[int], nn.Module], target: int, widths: range = range(2, 513)) -> int:
    """The width whose ``build(width)`` has the parameter count closest to ``target``."""
    best, best_gap = widths[0], float("inf")
    for width in widths:
        gap = abs(count_parameters(build(width)) - target)
        if gap < best_gap:
            best, best_gap = width, gap
        elif count_parameters(build(width)) > target:
            break
    return best


def build_model(
    name: str,
    *,
    history: int = 4,
    hidden_channels: int = 8,
    num_blocks: int = 2,
    modes: int = 8,
    norm: bool = True,
    smoke_scale: float = 1.0,
    velocity_scale: float = 1.0,
    direction: tuple[float, float] = (0.0, 1.0),
    **kwargs: Any,
) -> FieldModel:
    """Build a model by name (see the module docstring).

    ``hidden_channels`` is the Clifford nets' multivector width; the plain baselines take the real
    width whose parameter count is closest to their Clifford counterpart's (``hidden_channels`` of
    the Clifford net they mirror). ``kwargs`` go to the network (e.g. ``kernel_hidden_channels``
    for ``steerable``). ``direction``: the buoyancy direction that ``steerable`` gets as a
    constant extra input channel: gravity breaks the rotation symmetry of the data, and an
    exactly equivariant net cannot tell up from down without it (with it, the prediction is
    equivariant under rotating the fields *and* the direction, like the simulator).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    if name == "clifford-resnet":
        net = _clifford_resnet(history, hidden_channels, num_blocks, norm=norm, **kwargs)
    elif name == "resnet":
        target = count_parameters(_clifford_resnet(history, hidden_channels, num_blocks, norm=norm))
        width = matched_width(lambda c: _plain_resnet(history, c, num_blocks, norm=norm), target)
        net = _plain_resnet(history, width, num_blocks, norm=norm, **kwargs)
    elif name == "clifford-fno":
        net = _clifford_fno(history, hidden_channels, num_blocks, modes, **kwargs)
    elif name == "fno":
        target = count_parameters(_clifford_fno(history, hidden_channels, num_blocks, modes))
        width = matched_width(lambda c: _plain_fno(history, c, num_blocks, modes), target)
        net = _plain_fno(history, width, num_blocks, modes)
    else:  # one more input channel: the buoyancy direction (a spurion; see FieldModel)
        net = _steerable(history + 1, hidden_channels, num_blocks, norm=norm, **kwargs)
        return FieldModel(net, smoke_scale, velocity_scale, direction=direction)
    return FieldModel(net, smoke_scale, velocity_scale)


def main() -> None:
    """Print the parameter counts of the Clifford nets and their matched baselines."""
    for hidden, blocks in ((8, 2), (16, 4)):
        counts = {name: count_parameters(build_model(name, hidden_channels=hidden, num_blocks=blocks))
                  for name in MODELS}  # fmt: skip
        print(f"hidden {hidden}, blocks {blocks}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for a, b in (("clifford-resnet", "resnet"), ("clifford-fno", "fno")):
            print(f"  {b} / {a} = {counts[b] / counts[a]:.3f}")


if __name__ == "__main__":
    main()
