"""Pure-PyTorch DCNv3 reference (``grid_sample`` based), usable without the compiled extension.

This is the ground truth the kernels are tested against and the CPU fallback when the extension is
missing. It is slow and memory hungry by construction: it materialises the sampled values of every
kernel point, a tensor ``points`` times the size of the output.

Differences from upstream ``dcnv3_core_pytorch``: the input is padded with ``pad_w`` along W and
``pad_h`` along H (upstream swaps them, harmless only for square pads), and ``N == 0`` works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import validate_dcnv3_args

__all__ = ['dcnv3_reference', 'kernel_grid']


def kernel_grid(
    kernel_h: int,
    kernel_w: int,
    dilation_h: int,
    dilation_w: int,
    remove_center: bool,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Regular grid offsets ``(points, 2)`` as (x, y) relative to the kernel centre, in point order.

    Points are enumerated with x outer and y inner (index = i * kernel_h + j), as the CUDA kernel does;
    ``remove_center`` drops the point (kernel_w // 2, kernel_h // 2).
    """
    half_w = (dilation_w * (kernel_w - 1)) // 2
    half_h = (dilation_h * (kernel_h - 1)) // 2
    points = [
        (i * dilation_w - half_w, j * dilation_h - half_h)
        for i in range(kernel_w)
        for j in range(kernel_h)
        if not (remove_center and i == kernel_w // 2 and j == kernel_h // 2)
    ]
    return torch.tensor(points, device=device, dtype=dtype).reshape(-1, 2)


def dcnv3_reference(
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
    """DCNv3 sampling in pure PyTorch (differentiable through autograd).

    Args:
        input: ``(N, H_in, W_in, group * group_channels)`` channels-last values to sample.
        offset: ``(N, H_out, W_out, group * points * 2)`` learned offsets, x before y, in pixels.
        mask: ``(N, H_out, W_out, group * points)`` per-point weights (softmax-normalised in DCNv3).
        kernel_h, kernel_w: kernel size.
        stride_h, stride_w: output stride.
        pad_h, pad_w: zero padding of the input.
        dilation_h, dilation_w: spacing of the regular grid.
        group: number of offset groups.
        group_channels: channels per group.
        offset_scale: scales both the regular grid and the learned offsets.
        remove_center: drop the centre point of the kernel (DCNv3 v1.1).

    Returns:
        ``(N, H_out, W_out, group * group_channels)`` in the input's dtype.
    """
    h_out, w_out = validate_dcnv3_args(
        input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
        dilation_h, dilation_w, group, group_channels, offset_scale, remove_center,
    )  # fmt: skip
    n, h_in, w_in, channels = input.shape
    if n == 0:
        return input.new_zeros((0, h_out, w_out, channels))
    points = mask.shape[-1] // group

    x = F.pad(input, (0, 0, pad_w, pad_w, pad_h, pad_h))
    h_pad, w_pad = h_in + 2 * pad_h, w_in + 2 * pad_w
    half_w = (dilation_w * (kernel_w - 1)) // 2
    half_h = (dilation_h * (kernel_h - 1)) // 2

    # Sampling locations in padded pixel coordinates (pixel centres at integers).
    dtype, device = input.dtype, input.device
    centre_x = half_w + torch.arange(w_out, device=device, dtype=dtype) * stride_w  # (W_out,)
    centre_y = half_h + torch.arange(h_out, device=device, dtype=dtype) * stride_h  # (H_out,)
    grid = kernel_grid(
        kernel_h, kernel_w, dilation_h, dilation_w, remove_center, device=device, dtype=dtype
    )  # (P, 2)
    off = offset.reshape(n, h_out, w_out, group, points, 2)
    loc = (grid + off) * offset_scale  # (N, H_out, W_out, G, P, 2)
    loc_x = loc[..., 0] + centre_x.view(1, 1, w_out, 1, 1)
    loc_y = loc[..., 1] + centre_y.view(1, h_out, 1, 1, 1)
    # grid_sample with align_corners=False maps pixel p to (2p + 1) / size - 1.
    norm = torch.stack(((2 * loc_x + 1) / w_pad - 1, (2 * loc_y + 1) / h_pad - 1), dim=-1)
    norm = norm.permute(0, 3, 1, 2, 4, 5).reshape(n * group, h_out * w_out, points, 2)

    values = x.reshape(n, h_pad, w_pad, group, group_channels).permute(0, 3, 4, 1, 2)
    values = values.reshape(n * group, group_channels, h_pad, w_pad)
    sampled = F.grid_sample(
        values, norm, mode='bilinear', padding_mode='zeros', align_corners=False
    )  # (N*G, Cg, H_out*W_out, P)
    weights = mask.reshape(n, h_out * w_out, group, points).permute(0, 2, 1, 3)
    weights = weights.reshape(n * group, 1, h_out * w_out, points)
    out = (sampled * weights).sum(-1)  # (N*G, Cg, H_out*W_out)
    out = out.view(n, group * group_channels, h_out, w_out).permute(0, 2, 3, 1)
    return out.contiguous()
