"""Direct, loop-by-loop transcription of the DCNv3 math (REFERENCE.md Part 1 §2.2), float64.

Independent of ``grid_sample``: used to check the reference itself on tiny shapes.
"""

from __future__ import annotations

import math

import torch


def _bilinear(img: torch.Tensor, h: float, w: float) -> torch.Tensor:
    """img (H, W, Cg); zero outside; matches the CUDA ``dcnv3_im2col_bilinear``."""
    height, width, _ = img.shape
    h_low, w_low = math.floor(h), math.floor(w)
    lh, lw = h - h_low, w - w_low
    out = torch.zeros(img.shape[-1], dtype=img.dtype)
    for dh, dw, weight in (
        (0, 0, (1 - lh) * (1 - lw)),
        (0, 1, (1 - lh) * lw),
        (1, 0, lh * (1 - lw)),
        (1, 1, lh * lw),
    ):
        y, x = h_low + dh, w_low + dw
        if 0 <= y < height and 0 <= x < width:
            out += weight * img[y, x]
    return out


def dcnv3_naive(
    input,
    offset,
    mask,
    kernel_h,
    kernel_w,
    stride_h,
    stride_w,
    pad_h,
    pad_w,
    dilation_h,
    dilation_w,
    group,
    group_channels,
    offset_scale,
    remove_center=False,
):
    n, h_in, w_in, _ = input.shape
    h_out = (h_in + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) // stride_h + 1
    w_out = (w_in + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) // stride_w + 1
    points = kernel_h * kernel_w - int(remove_center)
    half_w = (dilation_w * (kernel_w - 1)) // 2
    half_h = (dilation_h * (kernel_h - 1)) // 2
    out = torch.zeros(n, h_out, w_out, group * group_channels, dtype=torch.float64)
    inp = input.double()
    off = offset.double().reshape(n, h_out, w_out, group, points, 2)
    msk = mask.double().reshape(n, h_out, w_out, group, points)
    for b in range(n):
        for ho in range(h_out):
            for wo in range(w_out):
                p0_w = half_w - pad_w + wo * stride_w
                p0_h = half_h - pad_h + ho * stride_h
                for g in range(group):
                    img = inp[b, :, :, g * group_channels : (g + 1) * group_channels]
                    acc = torch.zeros(group_channels, dtype=torch.float64)
                    k = 0
                    for i in range(kernel_w):
                        for j in range(kernel_h):
                            if remove_center and i == kernel_w // 2 and j == kernel_h // 2:
                                continue
                            dx, dy = off[b, ho, wo, g, k].tolist()
                            loc_w = (
                                p0_w - half_w * offset_scale + (i * dilation_w + dx) * offset_scale
                            )
                            loc_h = (
                                p0_h - half_h * offset_scale + (j * dilation_h + dy) * offset_scale
                            )
                            if -1 < loc_h < h_in and -1 < loc_w < w_in:
                                acc += msk[b, ho, wo, g, k] * _bilinear(img, loc_h, loc_w)
                            k += 1
                    out[b, ho, wo, g * group_channels : (g + 1) * group_channels] = acc
    return out
