"""Minimal ConvNeXt (Liu et al., CVPR 2022), only as a speed baseline for ``bench_backbone.py``.

timm cannot be imported in this environment (every timm release imports torchvision, whose PyPI
wheel links libtorch_cuda and fails next to the CPU torch wheel), so the benchmark uses this
re-implementation of the same architecture: 4×4 stride-4 stem + LayerNorm; per stage a
LayerNorm + 2×2 stride-2 conv downsample (stages 1–3) and blocks of 7×7 depthwise conv → LayerNorm →
Linear 4× → GELU → Linear → layer scale → residual; global pool → LayerNorm → Linear head.
Its parameter count equals timm's / torchvision's (28,589,128 for T, 50,223,688 for S), which the
benchmark checks, so the FLOPs and layer shapes are the same; timings can differ from timm only by
implementation details (e.g. timm's channels-last LayerNorm kernels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Published parameter counts (torchvision/timm, 1000 classes).
PUBLISHED_PARAMS = {'convnext_tiny': 28_589_128, 'convnext_small': 50_223_688}


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(
        self,
        depths: Sequence[int],
        dims: Sequence[int] = (96, 192, 384, 768),
        num_classes: int = 1000,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, dims[0], kernel_size=4, stride=4), LayerNorm2d(dims[0], eps=1e-6)
        )
        stages = []
        for i, depth in enumerate(depths):
            down = (
                nn.Sequential(
                    LayerNorm2d(dims[i - 1], eps=1e-6),
                    nn.Conv2d(dims[i - 1], dims[i], kernel_size=2, stride=2),
                )
                if i > 0
                else nn.Identity()
            )
            stages.append(nn.Sequential(down, *[ConvNeXtBlock(dims[i]) for _ in range(depth)]))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(self.norm(x.mean((2, 3))))


def convnext_tiny() -> ConvNeXt:
    return ConvNeXt(depths=(3, 3, 9, 3))


def convnext_small() -> ConvNeXt:
    return ConvNeXt(depths=(3, 3, 27, 3))
