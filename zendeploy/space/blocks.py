"""PyTorch modules for units (see ``space/units.py`` for what each unit contains). No parsing, no registries.

Every BatchNorm uses ``eps=1e-3`` and momentum 0.1 (official ZenNet setting). Convs have no bias, except the 1x1
projection shortcut, which has one (as in the official ``ResBlockProj``).
"""

from __future__ import annotations

import torch
from torch import nn

from .units import BASIC, BOTTLENECK, CONV, HEAD, INVERTED, PROJ, Unit, iter_conv_layers, se_channels

BN_EPS = 1e-3
BN_MOMENTUM = 0.1


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def conv(in_c: int, out_c: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=bias)


class SqueezeExcite(nn.Module):
    """Official SE: GAP, 1x1 C->C/4, BN, ReLU, 1x1 C/4->C, BN, sigmoid; multiplies the input."""

    def __init__(self, channels: int):
        super().__init__()
        mid = se_channels(channels)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            conv(channels, mid, 1),
            bn(mid),
            nn.ReLU(inplace=True),
            conv(mid, channels, 1),
            bn(channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class ConvBNReLU(nn.Sequential):
    def __init__(self, unit: Unit):
        (in_c, out_c, k, s, g, b), = iter_conv_layers(unit)
        super().__init__(conv(in_c, out_c, k, s, g, b), bn(out_c), nn.ReLU(inplace=True))
        self.unit = unit


class ResidualUnit(nn.Module):
    """A basic, bottleneck or inverted unit: main path, optional shortcut (projection or identity), then ReLU."""

    def __init__(self, unit: Unit):
        super().__init__()
        self.unit = unit
        layers: list[nn.Module] = []
        convs = list(iter_conv_layers(unit))
        for i, (in_c, out_c, k, s, g, b) in enumerate(convs):
            last = i == len(convs) - 1
            layers += [conv(in_c, out_c, k, s, g, b), bn(out_c)]
            if not last:
                layers.append(nn.ReLU(inplace=True))
            if unit.se and i == len(convs) - 2:  # SE after the KxK (or depthwise) conv's ReLU
                layers.append(SqueezeExcite(out_c))
        self.body = nn.Sequential(*layers)
        if unit.shortcut == PROJ:
            self.shortcut: nn.Module | None = nn.Sequential(
                conv(unit.in_channels, unit.out_channels, 1, unit.stride, bias=True), bn(unit.out_channels)
            )
        else:
            self.shortcut = None
        self.add_identity = unit.shortcut == "identity"
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        elif self.add_identity:
            out = out + x
        return self.act(out)


class ClassifierHead(nn.Module):
    """Global average pool + linear classifier."""

    def __init__(self, unit: Unit):
        super().__init__()
        self.unit = unit
        self.fc = nn.Linear(unit.in_channels, unit.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build_unit(unit: Unit) -> nn.Module:
    if unit.kind == CONV:
        return ConvBNReLU(unit)
    if unit.kind in (BASIC, BOTTLENECK, INVERTED):
        return ResidualUnit(unit)
    if unit.kind == HEAD:
        return ClassifierHead(unit)
    raise ValueError(f"unknown unit kind {unit.kind!r}")
