"""BEVFormer encoder: a stack of (temporal self-attn, norm, spatial cross-attn, norm, FFN, norm) layers.

The encoder owns the geometry every layer shares: the 2-D BEV reference points for the temporal
self-attention (the previous-BEV ones shifted by the ego motion) and the projection of every
pillar's height anchors into the cameras for the spatial cross-attention.

Metadata: `img_metas` is one dict per sample with `lidar2img` `(num_cams, 4, 4)`, optional
`ego2lidar` `(4, 4)`, and `img_shape`/`pad_shape`; see `interndrive.common.bev.img_metas`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmcv.cnn.bricks.transformer import BaseTransformerLayer, TransformerLayerSequence
from mmengine.registry import MODELS
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .geometry import (
    bev_reference_points_2d,
    bev_reference_points_3d,
    check_pc_range,
    project_to_cameras,
)
from .img_metas import image_size_from_metas, lidar2img_from_metas

_OPERATIONS = {'self_attn', 'norm', 'cross_attn', 'ffn'}


@MODELS.register_module()
class BEVFormerLayer(BaseTransformerLayer):
    """One BEVFormer encoder layer built from mmcv transformer bricks (upstream key names).

    Args:
        attn_cfgs: Two attention configs: the temporal self-attention (`self_attn`) and the spatial
            cross-attention (`cross_attn`), in `operation_order`.
        ffn_cfgs: FFN config (mmcv `FFN`), e.g. `dict(type='FFN', embed_dims=256,
            feedforward_channels=512, ffn_drop=0.1)`.
        operation_order: Default `('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm')`
            (post-norm, upstream); a leading `'norm'` gives pre-norm.
        norm_cfg: Normalisation config, default LayerNorm.
        init_cfg: mmengine initialisation config.
        batch_first: Must be True.
    """

    def __init__(
        self,
        attn_cfgs: Sequence[dict],
        ffn_cfgs: dict | Sequence[dict] | None = None,
        operation_order: Sequence[str] = ('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'),
        norm_cfg: dict | None = None,
        init_cfg: dict | None = None,
        batch_first: bool = True,
        **kwargs,
    ) -> None:
        operation_order = tuple(operation_order)
        if not set(operation_order) <= _OPERATIONS:
            raise ValueError(
                f'operation_order may only contain {sorted(_OPERATIONS)}, got {operation_order}'
            )
        if operation_order.count('self_attn') != 1 or operation_order.count('cross_attn') != 1:
            raise ValueError(
                f'operation_order needs exactly one self_attn (temporal) and one cross_attn (spatial), got {operation_order}'
            )
        if not batch_first:
            raise ValueError('BEVFormerLayer only supports batch_first=True')
        if ffn_cfgs is None:
            # Pass a fresh dict: mmcv mutates its mutable default.
            ffn_cfgs = dict(type='FFN', feedforward_channels=512, num_fcs=2, ffn_drop=0.1)
        super().__init__(
            attn_cfgs=list(attn_cfgs) if not isinstance(attn_cfgs, Mapping) else attn_cfgs,
            ffn_cfgs=ffn_cfgs,
            operation_order=operation_order,
            norm_cfg=norm_cfg if norm_cfg is not None else dict(type='LN'),
            init_cfg=init_cfg,
            batch_first=True,
            **kwargs,
        )

    def forward(
        self,
        query: Tensor,
        features: Tensor,
        *,
        bev_pos: Tensor | None,
        prev_bev: Tensor | None,
        ref_2d: Tensor,
        bev_spatial_shapes: Tensor,
        reference_points_cam: Tensor,
        bev_mask: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Runs the operations in `operation_order`.

        Args:
            query: `(B, Q, C)` BEV queries.
            features: `(B, N, L, C)` flattened camera features.
            bev_pos: `(B, Q, C)` BEV positional encoding (used by the temporal self-attention only,
                as upstream).
            prev_bev: `(B, 2, Q, C)` `[aligned previous BEV, encoder input queries]`, or None.
            ref_2d: `(B, 2, Q, 1, 2)` temporal reference points.
            bev_spatial_shapes: `(1, 2)` long `(bev_h, bev_w)`.
            reference_points_cam: `(N, B, Q, D, 2)`.
            bev_mask: `(N, B, Q, D)`.
            spatial_shapes: `(num_levels, 2)` long of the camera features.
            level_start_index: `(num_levels,)` long.
            key_padding_mask: Optional `(B, N, L)` mask of the camera features.

        Returns:
            `(B, Q, C)`.
        """
        norm_index = attn_index = ffn_index = 0
        identity = query
        for operation in self.operation_order:
            if operation == 'self_attn':
                query = self.attentions[attn_index](
                    query,
                    value=prev_bev,
                    identity=identity if self.pre_norm else None,
                    query_pos=bev_pos,
                    reference_points=ref_2d,
                    spatial_shapes=bev_spatial_shapes,
                    level_start_index=bev_spatial_shapes.new_zeros(1),
                )
                attn_index += 1
                identity = query
            elif operation == 'norm':
                query = self.norms[norm_index](query)
                norm_index += 1
            elif operation == 'cross_attn':
                query = self.attentions[attn_index](
                    query,
                    value=features,
                    reference_points_cam=reference_points_cam,
                    bev_mask=bev_mask,
                    spatial_shapes=spatial_shapes,
                    level_start_index=level_start_index,
                    identity=identity if self.pre_norm else None,
                    key_padding_mask=key_padding_mask,
                )
                attn_index += 1
                identity = query
            else:
                query = self.ffns[ffn_index](query, identity if self.pre_norm else None)
                ffn_index += 1
        return query


@MODELS.register_module()
class BEVFormerEncoder(TransformerLayerSequence):
    """The BEVFormer encoder (upstream `BEVFormerEncoder`, batch-first interface).

    Args:
        transformerlayers: Config of one `BEVFormerLayer` (repeated) or a list of `num_layers`.
        num_layers: Number of layers.
        pc_range: `[x_min, y_min, z_min, x_max, y_max, z_max]` of the BEV volume in metres.
        num_points_in_pillar: Height anchors per BEV cell (8 occupancy, 4 OpenLane-V2).
        return_intermediate: Return every layer's output stacked instead of the last one.
        image_size_key: `'pad_shape'` or `'img_shape'`: which image size normalises projected
            pixels (see `interndrive.common.bev.img_metas.image_size_from_metas`).
        reproduce_shift_ref_2d_bug: Upstream OCC aliases `shift_ref_2d = ref_2d` before adding the
            ego-motion shift, so the current-BEV reference points are shifted too. False (default)
            shifts only the previous-BEV ones; True reproduces upstream (for its checkpoints).
        with_cp: Recompute each layer in the backward pass (gradient checkpointing) to trade
            compute for activation memory; ignored when gradients are off.
        dataset_type: Ignored; accepted so upstream encoder configs build unchanged.
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        transformerlayers: dict | list[dict],
        num_layers: int,
        pc_range: Sequence[float],
        num_points_in_pillar: int = 4,
        return_intermediate: bool = False,
        image_size_key: str = 'pad_shape',
        reproduce_shift_ref_2d_bug: bool = False,
        with_cp: bool = False,
        dataset_type: str | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            transformerlayers=transformerlayers, num_layers=num_layers, init_cfg=init_cfg
        )
        self.pc_range = check_pc_range(pc_range)
        if num_points_in_pillar < 1:
            raise ValueError(f'num_points_in_pillar must be >= 1, got {num_points_in_pillar}')
        self.num_points_in_pillar = num_points_in_pillar
        self.return_intermediate = return_intermediate
        self.image_size_key = image_size_key
        self.reproduce_shift_ref_2d_bug = reproduce_shift_ref_2d_bug
        self.with_cp = with_cp

    def camera_projection(
        self,
        img_metas: Sequence[Mapping[str, Any]],
        bev_h: int,
        bev_w: int,
        num_cams: int,
        device: torch.device,
    ) -> tuple[Tensor, Tensor]:
        """Projects every pillar anchor into every camera.

        Returns:
            `reference_points_cam` `(N, B, Q, D, 2)` and `bev_mask` `(N, B, Q, D)`.
        """
        lidar2img = lidar2img_from_metas(img_metas, num_cams, device=device)
        image_hw = image_size_from_metas(
            img_metas, num_cams, key=self.image_size_key, device=device
        )
        ref_3d = bev_reference_points_3d(
            bev_h,
            bev_w,
            self.pc_range[5] - self.pc_range[2],
            self.num_points_in_pillar,
            len(img_metas),
            device=device,
        )
        return project_to_cameras(ref_3d, self.pc_range, lidar2img, image_hw)

    def temporal_reference_points(
        self,
        bev_h: int,
        bev_w: int,
        shift: Tensor | None,
        batch_size: int,
        device: torch.device,
        has_history: bool,
    ) -> Tensor:
        """`(B, 2, Q, 1, 2)` reference points of the `[previous, current]` BEV queue items.

        Only the previous-BEV item is shifted, and only when there is history. With
        `reproduce_shift_ref_2d_bug` both items are shifted whenever a shift is given (upstream
        aliasing), with or without history.
        """
        ref_2d = bev_reference_points_2d(bev_h, bev_w, batch_size, device=device)
        if shift is None:
            return torch.stack([ref_2d, ref_2d], dim=1)
        shifted = ref_2d + shift.to(ref_2d)[:, None, None, :]
        if self.reproduce_shift_ref_2d_bug:
            return torch.stack([shifted, shifted], dim=1)
        if not has_history:
            return torch.stack([ref_2d, ref_2d], dim=1)
        return torch.stack([shifted, ref_2d], dim=1)

    def forward(
        self,
        bev_query: Tensor,
        features: Tensor,
        *,
        bev_h: int,
        bev_w: int,
        bev_pos: Tensor | None,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
        img_metas: Sequence[Mapping[str, Any]],
        prev_bev: Tensor | None = None,
        shift: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """Encodes the camera features into the BEV queries.

        Args:
            bev_query: `(B, bev_h * bev_w, C)` BEV queries (row-major).
            features: `(B, N, L, C)` flattened multi-level camera features (embeddings added).
            bev_h: BEV rows.
            bev_w: BEV columns.
            bev_pos: `(B, bev_h * bev_w, C)` positional encoding, or None.
            spatial_shapes: `(num_levels, 2)` long `(h, w)` of the feature levels.
            level_start_index: `(num_levels,)` long.
            img_metas: One metadata dict per sample.
            prev_bev: `(B, bev_h * bev_w, C)` previous BEV already rotated into the current frame,
                or None (no history).
            shift: `(B, 2)` normalised ego-motion shift (see `geometry.ego_motion_bev_shift`),
                applied to the previous-BEV reference points; None means no shift.
            key_padding_mask: Optional `(B, N, L)` bool mask of the camera features.

        Returns:
            `(B, Q, C)`, or `(num_layers, B, Q, C)` with `return_intermediate`.
        """
        bs, num_query, _ = bev_query.shape
        if num_query != bev_h * bev_w:
            raise ValueError(
                f'bev_query has {num_query} queries, expected bev_h * bev_w = {bev_h * bev_w}'
            )
        if features.dim() != 4 or features.shape[0] != bs:
            raise ValueError(
                f'features must have shape ({bs}, num_cams, L, C), got {tuple(features.shape)}'
            )
        if len(img_metas) != bs:
            raise ValueError(
                f'img_metas has {len(img_metas)} entries but the batch has {bs} samples'
            )
        if prev_bev is not None and prev_bev.shape != bev_query.shape:
            raise ValueError(
                f'prev_bev must have shape {tuple(bev_query.shape)}, got {tuple(prev_bev.shape)}'
            )
        if shift is not None and shift.shape != (bs, 2):
            raise ValueError(f'shift must have shape ({bs}, 2), got {tuple(shift.shape)}')
        device = bev_query.device
        ref_2d = self.temporal_reference_points(
            bev_h, bev_w, shift, bs, device, prev_bev is not None
        )
        reference_points_cam, bev_mask = self.camera_projection(
            img_metas, bev_h, bev_w, features.shape[1], device
        )

        # With history every layer sees [previous BEV, encoder input]; without, each layer's TSA
        # falls back to [its own input, its own input] (upstream behaviour).
        queue = None
        if prev_bev is not None:
            queue = torch.stack([prev_bev.to(bev_query.dtype), bev_query], dim=1)
        bev_spatial_shapes = torch.tensor([[bev_h, bev_w]], device=device, dtype=torch.long)

        output = bev_query
        intermediate = []
        shared = dict(
            bev_pos=bev_pos,
            prev_bev=queue,
            ref_2d=ref_2d,
            bev_spatial_shapes=bev_spatial_shapes,
            reference_points_cam=reference_points_cam,
            bev_mask=bev_mask,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            key_padding_mask=key_padding_mask,
        )
        for layer in self.layers:
            if self.with_cp and torch.is_grad_enabled() and self.training:
                output = checkpoint(layer, output, features, use_reentrant=False, **shared)
            else:
                output = layer(output, features, **shared)
            if self.return_intermediate:
                intermediate.append(output)
        if self.return_intermediate:
            return torch.stack(intermediate)
        return output
