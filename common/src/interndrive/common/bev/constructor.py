"""BEVFormerConstructer: from multi-camera FPN features to a BEV feature map (both tasks use it).

It owns the learned BEV queries and positional encoding, the CAN-bus MLP, the camera and level
embeddings, the ego-motion alignment of the previous BEV (rotation about the ego position and a
shift of the temporal reference points) and the `BEVFormerEncoder`.

Typical configs (see `common/docs/bev.md`):

* occupancy (Occ3D): 200×200 over ±40 m, `[-1, 5.4]` m, 4 layers, 8 anchors per pillar, 6 cameras,
  temporal, `ego2lidar` in the metadata, normalised by the padded size.
* OpenLane-V2: 100×200 over 102.4×51.2 m, `[-2.3, 1.7]` m, 3 layers, 4 anchors, 7 cameras, no
  history, `lidar2img` directly, normalised by the unpadded `img_shape`.

Metadata (`img_metas`, one dict per sample): `lidar2img` `(num_cams, 4, 4)`, optional `ego2lidar`
`(4, 4)`, `img_shape` / `pad_shape`, and `can_bus` `(18,)` (translation `[0:3]`, yaw in radians
`[-2]`, yaw in degrees `[-1]`; for temporal use the detector turns `[0:3]` and `[-1]` into deltas
to the previous frame, as upstream). Details in `interndrive.common.bev.img_metas`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from .deformable_attention_3d import MSDeformableAttention3D
from .geometry import (
    BEV_AXES,
    check_pc_range,
    ego_motion_bev_shift,
    ego_pixel_center,
    rotate_bev,
)
from .img_metas import CAN_BUS_DIMS, can_bus_from_metas
from .positional_encoding import BEVLearnedPositionalEncoding
from .temporal_self_attention import TemporalSelfAttention


@MODELS.register_module()
class BEVFormerConstructer(BaseModule):
    """Builds the BEV features of a batch (upstream OpenLane-V2 `BEVFormerConstructer` key names).

    Args:
        bev_h: BEV rows (y).
        bev_w: BEV columns (x).
        pc_range: `[x_min, y_min, z_min, x_max, y_max, z_max]` in metres; also given to the encoder.
        encoder: `BEVFormerEncoder` config.
        embed_dims: Channels of queries and features.
        num_feature_levels: Number of FPN levels fed in.
        num_cams: Number of cameras.
        positional_encoding: Optional upstream-style `dict(type='LearnedPositionalEncoding',
            num_feats=embed_dims // 2, row_num_embed=bev_h, col_num_embed=bev_w)`; only checked,
            the learned encoding is always used.
        use_can_bus: Add `can_bus_mlp(can_bus)` to every BEV query.
        can_bus_norm: LayerNorm at the end of the CAN-bus MLP.
        use_cams_embeds: Add a learned embedding per camera to its features.
        use_prev_bev: Use `prev_bev` when one is passed; False ignores it (single-frame model).
        rotate_prev_bev: Rotate the previous BEV by the yaw change (CAN bus `[-1]`, degrees).
        use_shift: Shift the previous-BEV reference points by the ego translation.
        rotate_center: `(x, y)` pixel centre of the rotation; None uses the ego position in the grid
            (the grid centre for a symmetric `pc_range`). Upstream occupancy: `[100, 100]`.
        rotate_interpolation: `'nearest'` (upstream, torchvision default) or `'bilinear'`.
        bev_axes: Orientation of the grid in the ego frame: `'forward_left'` (default; the ego
            frame of both tasks) or `'right_forward'` (upstream's shift formula, needed to reproduce
            the released occupancy checkpoint).
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        bev_h: int,
        bev_w: int,
        pc_range: Sequence[float],
        encoder: dict,
        embed_dims: int = 256,
        num_feature_levels: int = 4,
        num_cams: int = 6,
        positional_encoding: dict | None = None,
        use_can_bus: bool = True,
        can_bus_norm: bool = True,
        use_cams_embeds: bool = True,
        use_prev_bev: bool = True,
        rotate_prev_bev: bool = True,
        use_shift: bool = True,
        rotate_center: Sequence[float] | None = None,
        rotate_interpolation: str = 'nearest',
        bev_axes: str = 'forward_left',
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        if bev_h < 1 or bev_w < 1:
            raise ValueError(f'bev_h and bev_w must be positive, got {bev_h}×{bev_w}')
        if embed_dims % 2 != 0:
            raise ValueError(
                f'embed_dims must be even (half rows, half columns encoding), got {embed_dims}'
            )
        if bev_axes not in BEV_AXES:
            raise ValueError(f'bev_axes must be one of {BEV_AXES}, got {bev_axes!r}')
        if rotate_interpolation not in ('nearest', 'bilinear'):
            raise ValueError(
                f"rotate_interpolation must be 'nearest' or 'bilinear', got {rotate_interpolation!r}"
            )
        if rotate_center is not None and len(rotate_center) != 2:
            raise ValueError(f'rotate_center must be (x, y) in pixels, got {rotate_center}')
        self.bev_h = bev_h
        self.bev_w = bev_w
        self.pc_range = check_pc_range(pc_range)
        self.embed_dims = embed_dims
        self.num_feature_levels = num_feature_levels
        self.num_cams = num_cams
        self.use_can_bus = use_can_bus
        self.use_cams_embeds = use_cams_embeds
        self.use_prev_bev = use_prev_bev
        self.rotate_prev_bev = rotate_prev_bev
        self.use_shift = use_shift
        self.rotate_center = (
            tuple(float(c) for c in rotate_center)
            if rotate_center is not None
            else ego_pixel_center(bev_h, bev_w, self.pc_range)
        )
        self.rotate_interpolation = rotate_interpolation
        self.bev_axes = bev_axes

        encoder = dict(encoder)
        if 'pc_range' in encoder and check_pc_range(encoder['pc_range']) != self.pc_range:
            raise ValueError(
                f'encoder.pc_range {encoder["pc_range"]} differs from pc_range {list(self.pc_range)}'
            )
        encoder['pc_range'] = list(self.pc_range)
        self.encoder = MODELS.build(encoder)
        if self.encoder.embed_dims != embed_dims:
            raise ValueError(
                f'encoder embed_dims ({self.encoder.embed_dims}) must equal embed_dims ({embed_dims})'
            )

        if positional_encoding is not None:
            expected = dict(num_feats=embed_dims // 2, row_num_embed=bev_h, col_num_embed=bev_w)
            for key, value in expected.items():
                if key in positional_encoding and positional_encoding[key] != value:
                    raise ValueError(
                        f'positional_encoding.{key} must be {value}, got {positional_encoding[key]}'
                    )
            kind = str(positional_encoding.get('type', 'LearnedPositionalEncoding')).split('.')[-1]
            if kind != 'LearnedPositionalEncoding':
                raise ValueError(f'only LearnedPositionalEncoding is supported, got {kind!r}')

        self.bev_embedding = nn.Embedding(bev_h * bev_w, embed_dims)
        self.positional_encoding = BEVLearnedPositionalEncoding(
            num_feats=embed_dims // 2, row_num_embed=bev_h, col_num_embed=bev_w
        )
        self.level_embeds = nn.Parameter(torch.empty(num_feature_levels, embed_dims))
        self.cams_embeds = nn.Parameter(torch.empty(num_cams, embed_dims))
        self.can_bus_mlp = nn.Sequential(
            nn.Linear(CAN_BUS_DIMS, embed_dims // 2),
            nn.ReLU(inplace=True),
            nn.Linear(embed_dims // 2, embed_dims),
            nn.ReLU(inplace=True),
        )
        if can_bus_norm:
            self.can_bus_mlp.add_module('norm', nn.LayerNorm(embed_dims))
        self.init_weights()

    def init_weights(self) -> None:
        """Upstream scheme: xavier for matrices, Deformable-DETR init for the attentions,
        normal level/camera embeddings, xavier-uniform CAN-bus MLP with zero bias."""
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        for module in self.modules():
            if isinstance(module, (MSDeformableAttention3D, TemporalSelfAttention)):
                module.init_weights()
        nn.init.normal_(self.level_embeds)
        nn.init.normal_(self.cams_embeds)
        for layer in self.can_bus_mlp:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        self._is_init = True

    @property
    def num_query(self) -> int:
        return self.bev_h * self.bev_w

    def flatten_features(self, mlvl_feats: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Flattens FPN levels per camera and adds the camera and level embeddings.

        Args:
            mlvl_feats: `num_feature_levels` tensors `(B, num_cams, C, h_l, w_l)`.

        Returns:
            `features` `(B, num_cams, sum(h_l * w_l), C)`, `spatial_shapes` `(levels, 2)` long and
            `level_start_index` `(levels,)` long.
        """
        if isinstance(mlvl_feats, Tensor) or len(mlvl_feats) != self.num_feature_levels:
            got = (
                'a single tensor' if isinstance(mlvl_feats, Tensor) else f'{len(mlvl_feats)} levels'
            )
            raise ValueError(
                f'mlvl_feats must be a list of {self.num_feature_levels} feature levels, got {got}'
            )
        flat, shapes = [], []
        batch = mlvl_feats[0].shape[0]
        for level, feat in enumerate(mlvl_feats):
            if feat.dim() != 5 or feat.shape[:3] != (batch, self.num_cams, self.embed_dims):
                raise ValueError(
                    f'mlvl_feats[{level}] must have shape ({batch}, {self.num_cams}, {self.embed_dims}, h, w), '
                    f'got {tuple(feat.shape)}'
                )
            shapes.append(feat.shape[-2:])
            feat = feat.flatten(3).transpose(2, 3)  # (B, N, h*w, C)
            if self.use_cams_embeds:
                feat = feat + self.cams_embeds[None, :, None, :].to(feat.dtype)
            feat = feat + self.level_embeds[None, None, level : level + 1, :].to(feat.dtype)
            flat.append(feat)
        device = mlvl_feats[0].device
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=device)
        level_start_index = torch.cat(
            (
                spatial_shapes.new_zeros(1),
                (spatial_shapes[:, 0] * spatial_shapes[:, 1]).cumsum(0)[:-1],
            )
        )
        return torch.cat(flat, dim=2), spatial_shapes, level_start_index

    def align_prev_bev(self, prev_bev: Tensor, can_bus: Tensor) -> tuple[Tensor, Tensor | None]:
        """Brings the previous BEV into the current frame.

        Args:
            prev_bev: `(B, bev_h * bev_w, C)` BEV of the previous frame.
            can_bus: `(B, 18)` CAN bus with deltas (`[0:2]` global translation, `[-2]` current yaw
                in radians, `[-1]` yaw change in degrees).

        Returns:
            The previous BEV rotated by the yaw change (if `rotate_prev_bev`) and the `(B, 2)`
            normalised shift for its reference points (None if `use_shift` is off).
        """
        bs = prev_bev.shape[0]
        if prev_bev.shape[1:] != (self.num_query, self.embed_dims):
            raise ValueError(
                f'prev_bev must have shape (B, {self.num_query}, {self.embed_dims}), got {tuple(prev_bev.shape)}'
            )
        if self.rotate_prev_bev:
            image = prev_bev.transpose(1, 2).reshape(bs, self.embed_dims, self.bev_h, self.bev_w)
            image = rotate_bev(
                image, can_bus[:, -1], self.rotate_center, mode=self.rotate_interpolation
            )
            prev_bev = image.flatten(2).transpose(1, 2)
        return prev_bev, self.ego_shift(can_bus)

    def ego_shift(self, can_bus: Tensor) -> Tensor | None:
        """`(B, 2)` normalised ego-motion shift from the CAN bus, or None if `use_shift` is off."""
        if not self.use_shift:
            return None
        shift = ego_motion_bev_shift(can_bus[:, 0:2], can_bus[:, -2], self.pc_range, self.bev_axes)
        return shift.to(device=self.level_embeds.device, dtype=torch.float32)

    def forward(
        self,
        mlvl_feats: Sequence[Tensor],
        img_metas: Sequence[Mapping[str, Any]],
        prev_bev: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Encodes one batch into BEV features.

        Args:
            mlvl_feats: `num_feature_levels` FPN outputs `(B, num_cams, embed_dims, h, w)`.
            img_metas: One metadata dict per sample (see the module docstring).
            prev_bev: `(B, bev_h * bev_w, embed_dims)` BEV of the previous frame, or None.
            **kwargs: Ignored (detectors pass extra keys).

        Returns:
            `(B, bev_h * bev_w, embed_dims)` BEV features, row-major (`bev_to_image` makes them
            `(B, C, bev_h, bev_w)`), or `(num_layers, B, Q, C)` if the encoder returns intermediates.
        """
        features, spatial_shapes, level_start_index = self.flatten_features(mlvl_feats)
        bs = features.shape[0]
        if len(img_metas) != bs:
            raise ValueError(
                f'img_metas has {len(img_metas)} entries but the features have batch size {bs}'
            )
        dtype, device = features.dtype, features.device
        if not self.use_prev_bev:
            prev_bev = None
        if prev_bev is not None and prev_bev.shape[0] != bs:
            raise ValueError(f'prev_bev has batch size {prev_bev.shape[0]}, the features {bs}')

        bev_queries = self.bev_embedding.weight.to(dtype)[None].expand(bs, -1, -1)
        bev_pos = (
            self.positional_encoding(bs, self.bev_h, self.bev_w)
            .to(dtype)
            .flatten(2)
            .transpose(1, 2)
        )

        needs_shift = self.use_shift and (
            prev_bev is not None or self.encoder.reproduce_shift_ref_2d_bug
        )
        needs_can_bus = (
            self.use_can_bus or needs_shift or (prev_bev is not None and self.rotate_prev_bev)
        )
        can_bus = can_bus_from_metas(img_metas) if needs_can_bus else None  # float64, CPU

        shift = None
        if prev_bev is not None:
            prev_bev, shift = self.align_prev_bev(prev_bev, can_bus)
        elif needs_shift:
            shift = self.ego_shift(can_bus)
        if self.use_can_bus:
            can_bus_features = self.can_bus_mlp(can_bus.to(device=device, dtype=dtype))
            bev_queries = bev_queries + can_bus_features[:, None, :]

        return self.encoder(
            bev_queries,
            features,
            bev_h=self.bev_h,
            bev_w=self.bev_w,
            bev_pos=bev_pos,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
            img_metas=img_metas,
            prev_bev=prev_bev,
            shift=shift,
        )

    def bev_to_image(self, bev: Tensor) -> Tensor:
        """`(B, bev_h * bev_w, C)` -> `(B, C, bev_h, bev_w)` (row `i` is `y_min + (i + 0.5) * cell`)."""
        return bev.transpose(1, 2).reshape(bev.shape[0], bev.shape[2], self.bev_h, self.bev_w)
