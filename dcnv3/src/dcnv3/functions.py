"""Upstream ``ops_dcnv3.functions`` drop-in: ``DCNv3Function`` and ``dcnv3_core_pytorch``.

Upstream code keeps working by changing only its import, e.g.
``from dcnv3.functions import DCNv3Function`` and ``DCNv3Function.apply(..., im2col_step, remove_center)``.
"""

from __future__ import annotations

import torch

from .functional import dcnv3
from .reference import dcnv3_reference

__all__ = ['DCNv3Function', 'dcnv3_core_pytorch']


class DCNv3Function:
    """Call-compatible stand-in for upstream's ``torch.autograd.Function``.

    Gradients come from the registered autograd of the ``dcnv3::dcnv3_forward`` op (or from the
    reference's autograd when falling back), so no ``ctx`` plumbing is needed here. ``im2col_step``
    is accepted and checked for compatibility but unused: our kernels do not chunk the batch.
    """

    @staticmethod
    def apply(
        input: torch.Tensor,
        offset: torch.Tensor,
        mask: torch.Tensor,
        kernel_h: int,
        kernel_w: int,
        stride_h: int,
        stride_w: int,
        pad_h: int,
        pad_w: int,
        dilation_h: int,
        dilation_w: int,
        group: int,
        group_channels: int,
        offset_scale: float,
        im2col_step: int = 256,
        remove_center: bool | int = False,
    ) -> torch.Tensor:
        if isinstance(im2col_step, bool) or not isinstance(im2col_step, int) or im2col_step <= 0:
            raise ValueError(f'dcnv3: im2col_step must be a positive int, got {im2col_step!r}')
        return dcnv3(
            input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
            dilation_h, dilation_w, group, group_channels, offset_scale, bool(remove_center),
        )  # fmt: skip


def dcnv3_core_pytorch(
    input: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    group_channels: int,
    offset_scale: float,
    remove_center: bool | int = False,
) -> torch.Tensor:
    """Upstream name of the pure-PyTorch reference (see :func:`dcnv3.reference.dcnv3_reference`)."""
    return dcnv3_reference(
        input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
        dilation_h, dilation_w, group, group_channels, offset_scale, bool(remove_center),
    )  # fmt: skip
