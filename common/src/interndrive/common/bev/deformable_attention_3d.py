"""MSDeformableAttention3D: deformable attention around the projections of a pillar's height anchors.

Used inside `SpatialCrossAttention`: every (re-batched) BEV query carries D projected anchors per
camera; the `num_points` sampling points of each head and level are split evenly over the anchors
(`num_points / D` points around each). It has no output projection: the spatial cross-attention
projects after summing the cameras.
"""

from __future__ import annotations

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from .deformable_sampling import (
    init_deformable_offsets_,
    multi_scale_deformable_attention,
    xavier_uniform_linear_,
)


@MODELS.register_module()
class MSDeformableAttention3D(BaseModule):
    """Multi-scale deformable attention with several reference points (anchors) per query.

    Args:
        embed_dims: Channels of queries and values.
        num_heads: Attention heads; must divide `embed_dims`.
        num_levels: Feature levels.
        num_points: Sampling points per head and level, a multiple of the number of anchors.
        im2col_step: Chunk size of the CUDA kernel.
        batch_first: Must be True (kept for mmcv `BaseTransformerLayer` compatibility).
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        embed_dims: int = 256,
        num_heads: int = 8,
        num_levels: int = 4,
        num_points: int = 8,
        im2col_step: int = 64,
        batch_first: bool = True,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})'
            )
        if not batch_first:
            raise ValueError('MSDeformableAttention3D only supports batch_first=True')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.im2col_step = im2col_step
        self.batch_first = batch_first
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = None  # upstream has none; the key must not appear in state dicts
        self.init_weights()

    def init_weights(self) -> None:
        """Deformable-DETR offsets fanned out per head, zero weights, xavier value projection."""
        init_deformable_offsets_(
            self.sampling_offsets,
            self.attention_weights,
            self.num_heads,
            self.num_levels,
            self.num_points,
        )
        xavier_uniform_linear_(self.value_proj)
        self._is_init = True

    def forward(
        self,
        query: Tensor,
        value: Tensor,
        reference_points: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        query_pos: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Samples the value maps around every anchor of every query.

        Args:
            query: `(bs, num_query, C)`.
            value: `(bs, num_value, C)`, the levels' flattened maps concatenated.
            reference_points: `(bs, num_query, D, 2)` normalised `(u, v)` of the D anchors.
            spatial_shapes: `(num_levels, 2)` long `(h, w)`.
            level_start_index: `(num_levels,)` long.
            query_pos: Optional positional encoding added to the query.
            key_padding_mask: Optional `(bs, num_value)` bool, True for positions to ignore.
            **kwargs: Ignored.

        Returns:
            `(bs, num_query, C)` float32 (no residual, no output projection).
        """
        if query_pos is not None:
            query = query + query_pos
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        num_anchors = reference_points.shape[2]
        if reference_points.shape != (bs, num_query, num_anchors, 2):
            raise ValueError(
                f'reference_points must have shape ({bs}, {num_query}, D, 2), got {tuple(reference_points.shape)}'
            )
        if self.num_points % num_anchors != 0:
            raise ValueError(
                f'num_points ({self.num_points}) must be a multiple of the number of anchors per pillar ({num_anchors})'
            )
        if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != num_value:
            raise ValueError(
                f'spatial_shapes {spatial_shapes.tolist()} do not add up to {num_value} values'
            )

        projected = self.value_proj(value)
        if key_padding_mask is not None:
            projected = projected.masked_fill(key_padding_mask[..., None], 0.0)
        projected = projected.view(bs, num_value, self.num_heads, self.embed_dims // self.num_heads)

        shape = (bs, num_query, self.num_heads, self.num_levels, self.num_points)
        offsets = self.sampling_offsets(query).view(*shape, 2)
        # Locations in at least float32: offsets are fractions of feature maps up to ~256 wide.
        precision = torch.promote_types(offsets.dtype, torch.float32)
        offsets = offsets.to(precision)
        weights = self.attention_weights(query).view(bs, num_query, self.num_heads, -1)
        weights = weights.softmax(-1).view(*shape)

        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1).to(precision)
        offsets = offsets / normalizer[None, None, None, :, None, :]
        # Point index p = k * D + d belongs to anchor d (upstream layout, needed for checkpoints).
        offsets = offsets.view(*shape[:4], self.num_points // num_anchors, num_anchors, 2)
        refs = reference_points.to(precision)[:, :, None, None, None, :, :]
        locations = (refs + offsets).view(*shape, 2)
        return multi_scale_deformable_attention(
            projected, spatial_shapes, level_start_index, locations, weights, self.im2col_step
        )
