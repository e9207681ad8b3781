"""Multi-scale deformable attention sampling shared by the BEV attentions.

Dispatches to mmcv's compiled `MultiScaleDeformableAttnFunction` for CUDA tensors and to mmcv's
`multi_scale_deformable_attn_pytorch` (`grid_sample`) otherwise, in at least float32: the sampling
locations are fractions of up to 2048-pixel-wide maps, which half precision cannot resolve
(upstream uses a float32-only variant of the function for the same reason).
"""

from __future__ import annotations

import math

import torch
from mmcv.ops.multi_scale_deform_attn import (
    MultiScaleDeformableAttnFunction,
    multi_scale_deformable_attn_pytorch,
)
from torch import Tensor, nn


def multi_scale_deformable_attention(
    value: Tensor,
    spatial_shapes: Tensor,
    level_start_index: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
    im2col_step: int = 64,
) -> Tensor:
    """Weighted bilinear sampling of multi-level value maps.

    Args:
        value: `(bs, num_keys, num_heads, head_dims)`, the levels' flattened maps concatenated.
        spatial_shapes: `(num_levels, 2)` long tensor of `(h, w)` per level.
        level_start_index: `(num_levels,)` long tensor, offset of each level in `num_keys`.
        sampling_locations: `(bs, num_queries, num_heads, num_levels, num_points, 2)` normalised
            `(x, y)` in `[0, 1]` (outside samples read zeros).
        attention_weights: `(bs, num_queries, num_heads, num_levels, num_points)`.
        im2col_step: Chunk size of the CUDA kernel.

    Returns:
        `(bs, num_queries, num_heads * head_dims)`, float32 (float64 for float64 inputs).
    """
    # Half precision is promoted to float32; float64 stays float64 (used by the reference tests).
    dtype = torch.promote_types(value.dtype, torch.float32)
    with torch.autocast(device_type=value.device.type, enabled=False):
        value = value.to(dtype)
        sampling_locations = sampling_locations.to(dtype)
        attention_weights = attention_weights.to(dtype)
        if value.is_cuda:
            return MultiScaleDeformableAttnFunction.apply(
                value.contiguous(),
                spatial_shapes,
                level_start_index,
                sampling_locations.contiguous(),
                attention_weights.contiguous(),
                im2col_step,
            )
        return multi_scale_deformable_attn_pytorch(
            value, spatial_shapes, sampling_locations, attention_weights
        )


def init_deformable_offsets_(
    sampling_offsets: nn.Linear,
    attention_weights: nn.Linear,
    num_heads: int,
    num_levels: int,
    num_points: int,
) -> None:
    """Deformable-DETR initialisation: offsets fan out per head, uniform attention weights.

    The offset bias of head `h`, point `p` points in direction `2πh / num_heads` (scaled so its
    largest component is 1) with length `p + 1`, for every level; the weights start at zero.

    Args:
        sampling_offsets: Linear layer with `num_heads * num_levels * num_points * 2` outputs.
        attention_weights: Linear layer with `num_heads * num_levels * num_points` outputs.
        num_heads: Number of attention heads.
        num_levels: Number of levels (for TSA: levels × BEV queue length).
        num_points: Number of sampling points per head and level.
    """
    nn.init.zeros_(sampling_offsets.weight)
    thetas = torch.arange(num_heads, dtype=torch.float32) * (2.0 * math.pi / num_heads)
    grid = torch.stack([thetas.cos(), thetas.sin()], -1)
    grid = grid / grid.abs().max(-1, keepdim=True)[0]
    grid = grid.view(num_heads, 1, 1, 2).repeat(1, num_levels, num_points, 1)
    grid = grid * torch.arange(1, num_points + 1, dtype=torch.float32).view(1, 1, num_points, 1)
    with torch.no_grad():
        sampling_offsets.bias.copy_(grid.view(-1))
    nn.init.zeros_(attention_weights.weight)
    nn.init.zeros_(attention_weights.bias)


def xavier_uniform_linear_(layer: nn.Linear) -> None:
    """Xavier-uniform weights and zero bias (mmengine `xavier_init(distribution='uniform')`)."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
