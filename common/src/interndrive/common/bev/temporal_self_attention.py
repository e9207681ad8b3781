"""Temporal self-attention (TSA) of BEVFormer: deformable attention over a 2-frame BEV queue.

Each BEV query predicts offsets and weights from `[previous BEV, query + pos]` and samples both the
(ego-motion aligned) previous BEV and the current BEV around its reference point; the two results
are averaged. Without history the current BEV stands in for the previous one.
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
class TemporalSelfAttention(BaseModule):
    """BEVFormer temporal self-attention (state-dict compatible with upstream).

    Differences from upstream: the offset/weight query pairs each sample with its *own* previous
    BEV (upstream takes `value[:bs]` of a sample-interleaved tensor, i.e. sample 0's history and
    current BEV for a batch of 2; identical for batch size 1), and sampling runs in float32.

    Args:
        embed_dims: Channels of queries and values.
        num_heads: Attention heads; must divide `embed_dims`.
        num_levels: BEV levels (1 in BEVFormer).
        num_points: Sampling points per head, level and queue item.
        num_bev_queue: Queue length; only 2 (previous, current) is supported.
        im2col_step: Chunk size of the CUDA kernel.
        dropout: Dropout on the output before the residual.
        batch_first: Must be True (kept for mmcv `BaseTransformerLayer`, which passes it).
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        embed_dims: int = 256,
        num_heads: int = 8,
        num_levels: int = 1,
        num_points: int = 4,
        num_bev_queue: int = 2,
        im2col_step: int = 64,
        dropout: float = 0.1,
        batch_first: bool = True,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})'
            )
        if num_bev_queue != 2:
            raise ValueError(
                f'num_bev_queue must be 2 (previous and current BEV), got {num_bev_queue}'
            )
        if not batch_first:
            raise ValueError('TemporalSelfAttention only supports batch_first=True')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.num_bev_queue = num_bev_queue
        self.im2col_step = im2col_step
        self.batch_first = batch_first
        self.dropout = nn.Dropout(dropout)
        samples = num_bev_queue * num_heads * num_levels * num_points
        self.sampling_offsets = nn.Linear(embed_dims * num_bev_queue, samples * 2)
        self.attention_weights = nn.Linear(embed_dims * num_bev_queue, samples)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """Deformable-DETR offsets fanned out per head, zero weights, xavier projections."""
        init_deformable_offsets_(
            self.sampling_offsets,
            self.attention_weights,
            self.num_heads,
            self.num_levels * self.num_bev_queue,
            self.num_points,
        )
        xavier_uniform_linear_(self.value_proj)
        xavier_uniform_linear_(self.output_proj)
        self._is_init = True

    def forward(
        self,
        query: Tensor,
        value: Tensor | None = None,
        identity: Tensor | None = None,
        query_pos: Tensor | None = None,
        reference_points: Tensor | None = None,
        spatial_shapes: Tensor | None = None,
        level_start_index: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Attends from every BEV query to the previous and the current BEV.

        Args:
            query: `(B, Q, C)` current BEV queries.
            value: `(B, 2, Q, C)` `[previous BEV, current BEV]`; None uses `[query, query]`.
            identity: Residual `(B, Q, C)`; None uses `query` (before adding `query_pos`).
            query_pos: `(B, Q, C)` positional encoding added to the query.
            reference_points: `(B, 2, Q, num_levels, 2)` normalised `(x, y)` per queue item
                (the previous item shifted by the ego motion).
            spatial_shapes: `(num_levels, 2)` long `(h, w)` of the BEV levels.
            level_start_index: `(num_levels,)` long.
            key_padding_mask: Optional `(B, 2, Q)` bool, True for value positions to ignore.
            **kwargs: Ignored (mmcv layers pass extra keys).

        Returns:
            `(B, Q, C)` updated queries.
        """
        if reference_points is None or spatial_shapes is None or level_start_index is None:
            raise ValueError(
                'TemporalSelfAttention needs reference_points, spatial_shapes and level_start_index'
            )
        bs, num_query, _ = query.shape
        queue = self.num_bev_queue
        if value is None:
            value = query[:, None].expand(bs, queue, num_query, self.embed_dims)
        if value.shape != (bs, queue, num_query, self.embed_dims):
            raise ValueError(
                f'value must have shape {(bs, queue, num_query, self.embed_dims)} '
                f'([previous, current] BEV), got {tuple(value.shape)}'
            )
        if reference_points.shape[:3] != (bs, queue, num_query) or reference_points.shape[-1] != 2:
            raise ValueError(
                f'reference_points must have shape ({bs}, {queue}, {num_query}, num_levels, 2), '
                f'got {tuple(reference_points.shape)}'
            )
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos

        # Offsets and weights see this sample's previous BEV next to its current query.
        offset_query = torch.cat([value[:, 0].to(query.dtype), query], dim=-1)
        projected = self.value_proj(value)
        if key_padding_mask is not None:
            projected = projected.masked_fill(key_padding_mask[..., None], 0.0)
        head_dims = self.embed_dims // self.num_heads
        projected = projected.reshape(bs * queue, num_query, self.num_heads, head_dims)

        shape = (bs, num_query, self.num_heads, queue, self.num_levels, self.num_points)
        offsets = self.sampling_offsets(offset_query).view(*shape, 2)
        weights = self.attention_weights(offset_query).view(
            bs, num_query, self.num_heads, queue, self.num_levels * self.num_points
        )
        weights = weights.softmax(-1).view(*shape)
        # Move the queue next to the batch: sample b's items are rows 2b (previous) and 2b+1.
        offsets = offsets.permute(0, 3, 1, 2, 4, 5, 6).reshape(
            bs * queue, num_query, self.num_heads, self.num_levels, self.num_points, 2
        )
        weights = weights.permute(0, 3, 1, 2, 4, 5).reshape(
            bs * queue, num_query, self.num_heads, self.num_levels, self.num_points
        )
        # Locations in at least float32 (half precision cannot resolve fractions of a 200-cell BEV).
        precision = torch.promote_types(offsets.dtype, torch.float32)
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1).to(precision)
        refs = reference_points.reshape(bs * queue, num_query, self.num_levels, 2).to(precision)
        locations = (
            refs[:, :, None, :, None, :]
            + offsets.to(precision) / normalizer[None, None, None, :, None, :]
        )

        sampled = multi_scale_deformable_attention(
            projected, spatial_shapes, level_start_index, locations, weights, self.im2col_step
        )
        # Average the previous-BEV and current-BEV results of each sample.
        output = sampled.view(bs, queue, num_query, self.embed_dims).mean(1)
        output = self.output_proj(output)
        return self.dropout(output) + identity
