"""Argument validation shared by every DCNv3 entry point.

Every check raises a Python-level error that names the offending argument, so a wrong call never reaches
a kernel (where it could read out of bounds) and the user sees what was expected.
"""

from __future__ import annotations

import torch

__all__ = ['num_points', 'output_size', 'validate_dcnv3_args']


def output_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of one spatial dimension (same formula as a convolution)."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def num_points(kernel_h: int, kernel_w: int, remove_center: bool) -> int:
    """Number of sampling points per group: the kernel grid, minus the centre for the v1.1 variant."""
    return kernel_h * kernel_w - int(bool(remove_center))


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'dcnv3: {name} must be an int, got {type(value).__name__}')
    if value <= 0:
        raise ValueError(f'dcnv3: {name} must be positive, got {value}')


def validate_dcnv3_args(
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
    remove_center: bool,
) -> tuple[int, int]:
    """Check every argument of the DCNv3 operator and return the output size ``(H_out, W_out)``.

    Raises:
        TypeError: a tensor argument is not a tensor, or an integer argument is not an int.
        ValueError: wrong rank, channel count, shape, dtype/device mismatch or a non-positive size.
    """
    for name, t in (('input', input), ('offset', offset), ('mask', mask)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f'dcnv3: {name} must be a torch.Tensor, got {type(t).__name__}')
        if t.dim() != 4:
            raise ValueError(
                f'dcnv3: {name} must be 4-D channels-last (N, H, W, C), got shape {tuple(t.shape)}'
            )
        if not t.is_floating_point():
            raise ValueError(f'dcnv3: {name} must be a floating-point tensor, got {t.dtype}')
    for name, value in (
        ('kernel_h', kernel_h),
        ('kernel_w', kernel_w),
        ('stride_h', stride_h),
        ('stride_w', stride_w),
        ('dilation_h', dilation_h),
        ('dilation_w', dilation_w),
        ('group', group),
        ('group_channels', group_channels),
    ):
        _check_positive(name, value)
    for name, value in (('pad_h', pad_h), ('pad_w', pad_w)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f'dcnv3: {name} must be an int, got {type(value).__name__}')
        if value < 0:
            raise ValueError(f'dcnv3: {name} must be >= 0, got {value}')
    if not isinstance(offset_scale, (int, float)) or isinstance(offset_scale, bool):
        raise TypeError(f'dcnv3: offset_scale must be a float, got {type(offset_scale).__name__}')
    if remove_center not in (0, 1, False, True):
        raise ValueError(f'dcnv3: remove_center must be a bool (or 0/1), got {remove_center!r}')
    if remove_center and kernel_h * kernel_w == 1:
        raise ValueError('dcnv3: remove_center needs more than one kernel point (kernel 1x1 given)')

    for name, t in (('offset', offset), ('mask', mask)):
        if t.device != input.device:
            raise ValueError(
                f'dcnv3: {name} is on {t.device} but input is on {input.device}; '
                'all tensors must be on the same device'
            )
        if t.dtype != input.dtype:
            raise ValueError(
                f'dcnv3: {name} has dtype {t.dtype} but input has {input.dtype}; '
                'all tensors must have the same dtype'
            )

    n, h_in, w_in, channels = input.shape
    if channels != group * group_channels:
        raise ValueError(
            f'dcnv3: input has {channels} channels but group * group_channels = '
            f'{group} * {group_channels} = {group * group_channels}'
        )
    h_out = output_size(h_in, kernel_h, stride_h, pad_h, dilation_h)
    w_out = output_size(w_in, kernel_w, stride_w, pad_w, dilation_w)
    if h_out <= 0 or w_out <= 0:
        raise ValueError(
            f'dcnv3: input of spatial size {h_in}x{w_in} is too small for kernel '
            f'{kernel_h}x{kernel_w}, dilation {dilation_h}x{dilation_w}, pad {pad_h}x{pad_w}: '
            f'output size would be {h_out}x{w_out}'
        )
    points = num_points(kernel_h, kernel_w, remove_center)
    expected_offset = (n, h_out, w_out, group * points * 2)
    if tuple(offset.shape) != expected_offset:
        raise ValueError(
            f'dcnv3: offset must have shape (N, H_out, W_out, group*points*2) = {expected_offset}, '
            f'got {tuple(offset.shape)}'
        )
    expected_mask = (n, h_out, w_out, group * points)
    if tuple(mask.shape) != expected_mask:
        raise ValueError(
            f'dcnv3: mask must have shape (N, H_out, W_out, group*points) = {expected_mask}, '
            f'got {tuple(mask.shape)}'
        )
    return h_out, w_out
