"""Traffic-element Deformable-DETR head on the front camera (upstream `TEDeformableDETRHead`).

The front view's 4 FPN levels (portrait image, resized uniformly and padded: the padded region is
masked) go through a 6-layer deformable encoder (MSDeformAttn over the 4 levels, FFN) and a 6-layer
decoder with iterative box refinement (`with_box_refine=True`); 100 queries, 13 classes (the
attributes), boxes regressed as normalised cxcywh of the unpadded front image. Losses per layer:
FocalLoss 1.0, L1 2.5 (normalised cxcywh), GIoU 1.0 (pixels), averaged over the matched boxes;
Hungarian matching with FocalLossCost 1.0, BBoxL1Cost 2.5 (xywh), IoUCost giou 1.0. All losses are
multiplied by 0 when the batch has no traffic element (as upstream), so the graph stays whole.

Outputs are xyxy pixels of the network's front image; `OpenLaneV2Metric` divides by `scale_factor`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmdet.models.layers import (
    DeformableDetrTransformerDecoder,
    DeformableDetrTransformerEncoder,
    SinePositionalEncoding,
)
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from .detr_utils import (
    assign,
    avg_factor,
    build_assigner,
    build_mmdet_loss,
    clones,
    focal_bias_init,
    mlp_branch,
)
from .lane_geometry import inverse_sigmoid


def default_encoder(embed_dims: int = 256, ffn_dims: int = 512, num_levels: int = 4) -> dict:
    return dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.1),
        ),
    )


def default_decoder(embed_dims: int = 256, ffn_dims: int = 512, num_levels: int = 4) -> dict:
    return dict(
        num_layers=6,
        return_intermediate=True,
        post_norm_cfg=None,  # post-norm layers: no extra norm after the stack
        layer_cfg=dict(
            self_attn_cfg=dict(
                embed_dims=embed_dims,
                num_heads=8,
                attn_drop=0.1,
                dropout_layer=dict(type='Dropout', drop_prob=0.1),
                batch_first=True,
            ),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.1),
        ),
    )


def front_image_size(meta: Mapping[str, Any], key: str = 'img_shape') -> tuple[int, int]:
    """(h, w) of the front image (camera 0) from `img_shape` or `pad_shape` (one per camera or
    one for all; `pad_shape` falls back to `img_shape`)."""
    shape = meta.get(key, meta['img_shape'])
    first = shape[0]
    if isinstance(first, (list, tuple)):
        return int(first[0]), int(first[1])
    return int(shape[0]), int(shape[1])


@MODELS.register_module()
class TEDeformableDETRHead(BaseModule):
    """Traffic-element boxes and attributes from the front camera's multi-level features.

    Args:
        num_classes: Attributes (13).
        num_query: Queries (reference: 100).
        embed_dims: Channels (256).
        num_feature_levels: FPN levels used (4).
        encoder, decoder: mmdet `DeformableDetrTransformer{Encoder,Decoder}` arguments.
        with_box_refine: Iterative box refinement (reference: True).
        loss_cls, loss_bbox, loss_iou: mmdet loss configs (Focal 1.0, L1 2.5, GIoU 1.0).
        assigner: mmdet `HungarianAssigner` config.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        num_classes: int = 13,
        num_query: int = 100,
        embed_dims: int = 256,
        num_feature_levels: int = 4,
        encoder: dict | None = None,
        decoder: dict | None = None,
        with_box_refine: bool = True,
        loss_cls: dict | None = None,
        loss_bbox: dict | None = None,
        loss_iou: dict | None = None,
        assigner: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        self.num_classes = num_classes
        self.num_query = num_query
        self.embed_dims = embed_dims
        self.num_feature_levels = num_feature_levels
        self.with_box_refine = with_box_refine
        self.encoder = DeformableDetrTransformerEncoder(
            **(encoder or default_encoder(embed_dims, num_levels=num_feature_levels))
        )
        self.decoder = DeformableDetrTransformerDecoder(
            **(decoder or default_decoder(embed_dims, num_levels=num_feature_levels))
        )
        self.positional_encoding = SinePositionalEncoding(
            num_feats=embed_dims // 2, normalize=True, offset=-0.5
        )
        self.level_embeds = nn.Parameter(torch.zeros(num_feature_levels, embed_dims))
        self.query_embedding = nn.Embedding(num_query, 2 * embed_dims)
        self.reference_points = nn.Linear(embed_dims, 2)
        num_layers = self.decoder.num_layers
        cls = mlp_branch(embed_dims, num_classes, 0, norm=False, final_init=focal_bias_init)
        reg = mlp_branch(embed_dims, 4, 2, norm=False)
        self.cls_branches = clones(cls, num_layers, shared=not with_box_refine)
        self.reg_branches = clones(reg, num_layers, shared=not with_box_refine)
        self.loss_cls = build_mmdet_loss(
            loss_cls
            or dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
        )
        self.loss_bbox = build_mmdet_loss(loss_bbox or dict(type='L1Loss', loss_weight=2.5))
        self.loss_iou = build_mmdet_loss(loss_iou or dict(type='GIoULoss', loss_weight=1.0))
        self.assigner = build_assigner(
            assigner
            or dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='FocalLossCost', weight=1.0),
                    dict(type='BBoxL1Cost', weight=2.5, box_format='xywh'),
                    dict(type='IoUCost', iou_mode='giou', weight=1.0),
                ],
            )
        )

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.normal_(self.level_embeds)
        nn.init.xavier_uniform_(self.reference_points.weight)
        nn.init.zeros_(self.reference_points.bias)
        for branch in self.cls_branches:
            focal_bias_init(branch[-1])
        for branch in self.reg_branches:
            nn.init.zeros_(branch[-1].weight)
            nn.init.zeros_(branch[-1].bias)
            nn.init.constant_(branch[-1].bias[2:], -2.0)  # Deformable DETR: small initial boxes

    def forward(
        self, feats: Sequence[Tensor], metas: Sequence[Mapping[str, Any]]
    ) -> dict[str, Tensor]:
        """Front-view levels, each (B, C, h, w) → `cls` (L, B, Q, classes) logits, `boxes`
        (L, B, Q, 4) normalised cxcywh, and the last layer's query features `feats` (B, Q, C)."""
        feats = list(feats)[: self.num_feature_levels]
        bs = feats[0].shape[0]
        pad_h = max(front_image_size(m, 'pad_shape')[0] for m in metas)
        pad_w = max(front_image_size(m, 'pad_shape')[1] for m in metas)
        mask = feats[0].new_ones(bs, pad_h, pad_w)
        for b, meta in enumerate(metas):
            h, w = front_image_size(meta)
            mask[b, :h, :w] = 0
        values, masks, positions, shapes = [], [], [], []
        for lvl, feat in enumerate(feats):
            lvl_mask = F.interpolate(mask[None], size=feat.shape[-2:])[0].bool()
            pos = self.positional_encoding(lvl_mask) + self.level_embeds[lvl].view(1, -1, 1, 1)
            shapes.append(feat.shape[-2:])
            values.append(feat.flatten(2).transpose(1, 2))
            masks.append(lvl_mask.flatten(1))
            positions.append(pos.flatten(2).transpose(1, 2))
        device = feats[0].device
        spatial_shapes = torch.tensor([list(s) for s in shapes], dtype=torch.long, device=device)
        level_start = torch.cat(
            [
                spatial_shapes.new_zeros(1),
                (spatial_shapes[:, 0] * spatial_shapes[:, 1]).cumsum(0)[:-1],
            ]
        )
        value, key_mask, pos = torch.cat(values, 1), torch.cat(masks, 1), torch.cat(positions, 1)
        level_masks = [m.view(bs, *s) for m, s in zip(masks, shapes, strict=True)]
        valid_ratios = torch.stack(
            [
                torch.stack(
                    [
                        (~m[:, 0, :]).sum(1).float() / m.shape[2],
                        (~m[:, :, 0]).sum(1).float() / m.shape[1],
                    ],
                    -1,
                )
                for m in level_masks
            ],
            1,
        )  # (B, levels, 2) as (w ratio, h ratio)
        memory = self.encoder(
            query=value,
            query_pos=pos,
            key_padding_mask=key_mask,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start,
            valid_ratios=valid_ratios,
        )
        query_pos, query = self.query_embedding.weight.split(self.embed_dims, dim=1)
        query_pos = query_pos[None].expand(bs, -1, -1)
        query = query[None].expand(bs, -1, -1)
        reference = self.reference_points(query_pos).sigmoid()
        hs, references = self.decoder(
            query=query,
            query_pos=query_pos,
            value=memory,
            key_padding_mask=key_mask,
            reference_points=reference,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start,
            valid_ratios=valid_ratios,
            reg_branches=self.reg_branches if self.with_box_refine else None,
        )
        cls, boxes = [], []
        for layer, h in enumerate(hs):
            ref = reference if layer == 0 else references[layer - 1]
            delta = self.reg_branches[layer](h)
            if ref.shape[-1] == 4:  # refined (cx, cy, w, h) references from layer 1 on
                delta = delta + inverse_sigmoid(ref)
            else:  # initial (cx, cy) references
                delta = torch.cat([delta[..., :2] + inverse_sigmoid(ref), delta[..., 2:]], -1)
            cls.append(self.cls_branches[layer](h))
            boxes.append(delta.sigmoid())
        return {'cls': torch.stack(cls), 'boxes': torch.stack(boxes), 'feats': hs[-1]}

    @staticmethod
    def _factor(meta: Mapping[str, Any], like: Tensor) -> Tensor:
        h, w = front_image_size(meta)
        return like.new_tensor([w, h, w, h])

    def layer_loss(
        self,
        cls: Tensor,
        boxes: Tensor,
        gt_boxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        metas: Sequence[Mapping[str, Any]],
    ) -> tuple[Tensor, Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
        bs, nq = cls.shape[:2]
        matches = []
        labels = cls.new_full((bs, nq), self.num_classes, dtype=torch.long)
        pred_n, gt_n, pred_px, gt_px = [], [], [], []
        for b in range(bs):
            factor = self._factor(metas[b], boxes)
            pred_xyxy = bbox_cxcywh_to_xyxy(boxes[b]) * factor
            pred = InstanceData(scores=cls[b].detach(), bboxes=pred_xyxy.detach())
            gt = InstanceData(labels=gt_labels[b], bboxes=gt_boxes[b])
            h, w = front_image_size(metas[b])
            q, g = assign(self.assigner, pred, gt, {'img_shape': (h, w)})
            matches.append((q, g))
            labels[b, q] = gt_labels[b][g]
            pred_n.append(boxes[b, q])
            gt_n.append(bbox_xyxy_to_cxcywh(gt_boxes[b][g]) / factor)
            pred_px.append(pred_xyxy[q])
            gt_px.append(gt_boxes[b][g])
        num_pos = avg_factor(sum(len(q) for q, _ in matches), cls.device)
        loss_cls = self.loss_cls(cls.reshape(bs * nq, -1), labels.reshape(-1), avg_factor=num_pos)
        if sum(len(q) for q, _ in matches):
            loss_bbox = self.loss_bbox(torch.cat(pred_n), torch.cat(gt_n), avg_factor=num_pos)
            loss_iou = self.loss_iou(torch.cat(pred_px), torch.cat(gt_px), avg_factor=num_pos)
        else:
            loss_bbox = loss_iou = boxes.sum() * 0
        return loss_cls, loss_bbox, loss_iou, matches

    def loss(
        self,
        outputs: dict[str, Tensor],
        gt_boxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        metas: Sequence[Mapping[str, Any]],
    ) -> tuple[dict[str, Tensor], list[tuple[Tensor, Tensor]]]:
        """Losses of all layers (zeroed without any GT box in the batch) and last-layer matches."""
        has_gt = float(sum(len(g) for g in gt_boxes) > 0)
        losses: dict[str, Tensor] = {}
        num_layers = outputs['cls'].shape[0]
        matches: list[tuple[Tensor, Tensor]] = []
        for layer in range(num_layers):
            l_cls, l_box, l_iou, matches = self.layer_loss(
                outputs['cls'][layer], outputs['boxes'][layer], gt_boxes, gt_labels, metas
            )
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            losses[f'{prefix}loss_te_cls'] = l_cls * has_gt
            losses[f'{prefix}loss_te_bbox'] = l_box * has_gt
            losses[f'{prefix}loss_te_iou'] = l_iou * has_gt
        return losses, matches

    @torch.no_grad()
    def predict(
        self, outputs: dict[str, Tensor], metas: Sequence[Mapping[str, Any]]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Last layer: xyxy boxes in network front-image pixels (clamped) (B, Q, 4), labels and
        scores (B, Q) (max sigmoid over the attributes; all queries are returned, as upstream)."""
        scores, labels = outputs['cls'][-1].sigmoid().max(-1)
        boxes = []
        for b, meta in enumerate(metas):
            h, w = front_image_size(meta)
            xyxy = bbox_cxcywh_to_xyxy(outputs['boxes'][-1, b]) * self._factor(
                meta, outputs['boxes']
            )
            xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w)
            xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h)
            boxes.append(xyxy)
        return torch.stack(boxes), labels, scores
