"""Spatial cross-attention (SCA) of BEVFormer: BEV queries attend to the cameras that see them.

For every sample and camera only the BEV queries with at least one pillar anchor inside that
camera's image are processed: they are gathered into a dense `(B, num_cams, max_len, C)` tensor
("rebatching", which saves most of the memory because a camera sees a fraction of the BEV), passed
through `MSDeformableAttention3D` against that camera's features, scattered back and averaged over
the cameras that see each query. A camera that sees nothing contributes nothing.
"""

from __future__ import annotations

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from .deformable_sampling import xavier_uniform_linear_


def rebatch_indices(hit: Tensor) -> tuple[Tensor, Tensor]:
    """Per sample and camera, the indices of the queries a camera sees, padded to a common length.

    Args:
        hit: `(B, N, Q)` bool, True where camera n sees query q of sample b.

    Returns:
        `index`: `(B, N, L)` long query indices (hits first, in increasing order; padding entries
        point at arbitrary queries) with `L = max(1, max hits)`; `valid`: `(B, N, L)` bool, False on
        the padding.
    """
    counts = hit.sum(-1)
    max_len = max(int(counts.max()) if counts.numel() else 0, 1)
    # A stable sort of "not hit" puts the hit indices first, still in increasing order.
    order = torch.argsort((~hit).to(torch.uint8), dim=-1, stable=True)[..., :max_len]
    valid = torch.arange(max_len, device=hit.device) < counts[..., None]
    return order, valid


@MODELS.register_module()
class SpatialCrossAttention(BaseModule):
    """BEVFormer spatial cross-attention (state-dict compatible with upstream).

    Args:
        embed_dims: Channels of queries and image features.
        num_cams: Number of cameras.
        pc_range: Unused; accepted so upstream configs build unchanged.
        dropout: Dropout on the output before the residual.
        deformable_attention: Config of the per-camera attention (`MSDeformableAttention3D`).
        reproduce_batch0_rebatch_bug: Upstream selects every sample's queries with batch element 0's
            visibility mask. False (default) uses each sample's own mask; True reproduces upstream.
            Both are identical for batch size 1.
        batch_first: Must be True (kept for mmcv `BaseTransformerLayer` compatibility).
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        embed_dims: int = 256,
        num_cams: int = 6,
        pc_range: list[float] | None = None,
        dropout: float = 0.1,
        deformable_attention: dict | None = None,
        reproduce_batch0_rebatch_bug: bool = False,
        batch_first: bool = True,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        if not batch_first:
            raise ValueError('SpatialCrossAttention only supports batch_first=True')
        if deformable_attention is None:
            deformable_attention = dict(
                type='MSDeformableAttention3D', embed_dims=embed_dims, num_levels=4
            )
        self.embed_dims = embed_dims
        self.num_cams = num_cams
        self.pc_range = pc_range
        self.batch_first = batch_first
        self.reproduce_batch0_rebatch_bug = reproduce_batch0_rebatch_bug
        self.dropout = nn.Dropout(dropout)
        self.deformable_attention = MODELS.build(deformable_attention)
        if self.deformable_attention.embed_dims != embed_dims:
            raise ValueError(
                f'deformable_attention.embed_dims ({self.deformable_attention.embed_dims}) must equal embed_dims ({embed_dims})'
            )
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier output projection (the inner attention initialises itself)."""
        xavier_uniform_linear_(self.output_proj)
        self._is_init = True

    def forward(
        self,
        query: Tensor,
        value: Tensor,
        reference_points_cam: Tensor,
        bev_mask: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        identity: Tensor | None = None,
        query_pos: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Updates every BEV query from the cameras that see it.

        Args:
            query: `(B, Q, C)` BEV queries.
            value: `(B, N, L, C)` flattened multi-level features of every camera.
            reference_points_cam: `(N, B, Q, D, 2)` normalised projections of the pillar anchors.
            bev_mask: `(N, B, Q, D)` bool visibility of every anchor.
            spatial_shapes: `(num_levels, 2)` long `(h, w)` of the feature levels.
            level_start_index: `(num_levels,)` long.
            identity: Residual `(B, Q, C)`; None uses `query` (before adding `query_pos`).
            query_pos: Optional positional encoding added to the query.
            key_padding_mask: Optional `(B, N, L)` bool, True for feature positions to ignore.
            **kwargs: Ignored.

        Returns:
            `(B, Q, C)` updated queries.
        """
        bs, num_query, channels = query.shape
        num_cams = value.shape[1]
        if value.dim() != 4 or value.shape[0] != bs or value.shape[-1] != channels:
            raise ValueError(
                f'value must have shape ({bs}, num_cams, L, {channels}), got {tuple(value.shape)}'
            )
        if num_cams != self.num_cams:
            raise ValueError(
                f'SpatialCrossAttention was built for {self.num_cams} cameras, got {num_cams}'
            )
        if reference_points_cam.shape[:3] != (num_cams, bs, num_query):
            raise ValueError(
                f'reference_points_cam must have shape ({num_cams}, {bs}, {num_query}, D, 2), '
                f'got {tuple(reference_points_cam.shape)}'
            )
        if bev_mask.shape != reference_points_cam.shape[:-1]:
            raise ValueError(
                f'bev_mask must have shape {tuple(reference_points_cam.shape[:-1])}, got {tuple(bev_mask.shape)}'
            )
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos

        hit = bev_mask.any(-1).permute(1, 0, 2)  # (B, N, Q): camera sees any anchor of the pillar
        select = hit[:1].expand_as(hit) if self.reproduce_batch0_rebatch_bug else hit
        index, valid = rebatch_indices(select)
        max_len = index.shape[-1]
        num_anchors = reference_points_cam.shape[3]

        flat_index = index.reshape(bs, num_cams * max_len)
        queries = torch.gather(query, 1, flat_index[..., None].expand(-1, -1, channels))
        refs_bnq = reference_points_cam.permute(1, 0, 2, 3, 4)  # (B, N, Q, D, 2)
        refs = torch.gather(
            refs_bnq, 2, index[..., None, None].expand(-1, -1, -1, num_anchors, 2)
        )  # (B, N, L, D, 2)
        # Padding rows must look exactly like upstream's zero-filled rebatch tensor.
        queries = queries * valid.reshape(bs, num_cams * max_len, 1).to(queries.dtype)
        refs = refs * valid[..., None, None].to(refs.dtype)

        padding_mask = None
        if key_padding_mask is not None:
            padding_mask = key_padding_mask.reshape(bs * num_cams, -1)
        sampled = self.deformable_attention(
            query=queries.view(bs * num_cams, max_len, channels),
            value=value.reshape(bs * num_cams, -1, channels),
            reference_points=refs.view(bs * num_cams, max_len, num_anchors, 2),
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            key_padding_mask=padding_mask,
        ).view(bs, num_cams * max_len, channels)

        # Scatter each camera's results back onto its queries; padding rows add zeros.
        sampled = sampled * valid.reshape(bs, num_cams * max_len, 1).to(sampled.dtype)
        slots = sampled.new_zeros(bs, num_query, channels)
        slots = slots.scatter_add(1, flat_index[..., None].expand(-1, -1, channels), sampled)
        count = hit.sum(1).clamp(min=1).to(slots.dtype)  # cameras seeing each query, per sample
        slots = slots / count[..., None]
        output = self.output_proj(slots)
        return self.dropout(output) + identity
