"""Functional entry point ``dcnv3(...)``: validates, then runs the compiled kernel or the reference."""

from __future__ import annotations

import warnings

import torch

from . import _ops
from ._validation import validate_dcnv3_args
from .reference import dcnv3_reference

__all__ = ['dcnv3', 'kernel_supports']

# Both kernels dispatch on the same types (AT_DISPATCH_FLOATING_TYPES_AND2(Half, BFloat16)).
_KERNEL_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def kernel_supports(input: torch.Tensor) -> tuple[bool, str]:
    """Whether a compiled kernel can run on ``input``'s device and dtype, and why not if it cannot."""
    if not _ops.has_compiled_ops():
        return False, f'the DCNv3 extension is not available ({_ops.load_error()})'
    if input.device.type == 'cpu':
        if input.dtype in _KERNEL_DTYPES:
            return True, ''
        return False, f'the CPU kernel does not support {input.dtype}'
    if input.device.type == 'cuda':
        if not _ops.has_cuda_kernel():
            return False, 'the DCNv3 extension was built without the CUDA kernel'
        if input.dtype in _KERNEL_DTYPES:
            return True, ''
        return False, f'the CUDA kernel does not support {input.dtype}'
    return False, f'no DCNv3 kernel for device type {input.device.type!r}'


def dcnv3(
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
    remove_center: bool = False,
) -> torch.Tensor:
    """Deformable convolution v3 sampling (differentiable w.r.t. input, offset and mask).

    Runs the compiled CPU/CUDA kernel when available; otherwise falls back to
    :func:`dcnv3.reference.dcnv3_reference` and warns once per reason.

    Args:
        input: ``(N, H_in, W_in, group * group_channels)`` channels-last values.
        offset: ``(N, H_out, W_out, group * points * 2)``, laid out [group][point][x, y].
        mask: ``(N, H_out, W_out, group * points)``, laid out [group][point].
        kernel_h, kernel_w: kernel size; ``points = kernel_h * kernel_w - remove_center``.
        stride_h, stride_w: output stride.
        pad_h, pad_w: zero padding.
        dilation_h, dilation_w: grid dilation.
        group: number of groups.
        group_channels: channels per group.
        offset_scale: multiplies the regular grid and the learned offsets.
        remove_center: drop the kernel centre (DCNv3 v1.1).

    Returns:
        ``(N, H_out, W_out, group * group_channels)``, same dtype and device as ``input``.
    """
    validate_dcnv3_args(
        input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
        dilation_h, dilation_w, group, group_channels, offset_scale, remove_center,
    )  # fmt: skip
    ok, reason = kernel_supports(input)
    if not ok:
        _warn_once(reason, f'dcnv3: {reason}; using the slow pure-PyTorch reference instead.')
        return dcnv3_reference(
            input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
            dilation_h, dilation_w, group, group_channels, offset_scale, remove_center,
        )  # fmt: skip
    return torch.ops.dcnv3.dcnv3_forward(
        input.contiguous(), offset.contiguous(), mask.contiguous(),
        kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w,
        group, group_channels, float(offset_scale), bool(remove_center),
    )  # fmt: skip
