"""Shared helpers for the dcnv3 tests (imported by name: unique module names across the monorepo)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import torch

import dcnv3

requires_ops = pytest.mark.skipif(
    not dcnv3.has_compiled_ops(),
    reason=f'dcnv3 extension not built/loaded: {dcnv3.load_error()}',
)
requires_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and dcnv3.has_cuda_kernel()),
    reason='needs a CUDA device and the extension built with the CUDA kernel',
)


@dataclass(frozen=True)
class Config:
    """One operator configuration (all the scalar arguments plus the input size)."""

    n: int = 2
    h: int = 7
    w: int = 6
    group: int = 2
    group_channels: int = 4
    kernel_h: int = 3
    kernel_w: int = 3
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 1
    pad_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    offset_scale: float = 1.0
    remove_center: bool = False
    offset_std: float = 2.0  # large enough that many samples fall outside the image

    def with_(self, **kwargs) -> Config:
        return replace(self, **kwargs)

    @property
    def points(self) -> int:
        return self.kernel_h * self.kernel_w - int(self.remove_center)

    @property
    def out_hw(self) -> tuple[int, int]:
        ho = (
            self.h + 2 * self.pad_h - (self.dilation_h * (self.kernel_h - 1) + 1)
        ) // self.stride_h + 1
        wo = (
            self.w + 2 * self.pad_w - (self.dilation_w * (self.kernel_w - 1) + 1)
        ) // self.stride_w + 1
        return ho, wo

    def args(self) -> tuple:
        return (
            self.kernel_h,
            self.kernel_w,
            self.stride_h,
            self.stride_w,
            self.pad_h,
            self.pad_w,
            self.dilation_h,
            self.dilation_w,
            self.group,
            self.group_channels,
            self.offset_scale,
            self.remove_center,
        )

    def inputs(
        self,
        dtype: torch.dtype = torch.float64,
        device: str = 'cpu',
        requires_grad: bool = False,
        seed: int = 0,
    ) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        ho, wo = self.out_hw
        channels = self.group * self.group_channels
        x = torch.rand(self.n, self.h, self.w, channels, generator=g, dtype=torch.float64)
        off = torch.randn(
            self.n, ho, wo, self.group * self.points * 2, generator=g, dtype=torch.float64
        )
        off = off * self.offset_std
        mask = torch.rand(self.n, ho, wo, self.group, self.points, generator=g, dtype=torch.float64)
        mask = (mask / mask.sum(-1, keepdim=True)).flatten(-2)
        return [
            t.to(device=device, dtype=dtype).requires_grad_(requires_grad) for t in (x, off, mask)
        ]
