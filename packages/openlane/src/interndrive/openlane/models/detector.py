"""ROAD_BEVFormer: the OpenLane-V2 baseline detector on mmengine / mmdet3d 1.4 (REFERENCE §5.2).

7 images → backbone (InternImage-S or ResNet-50) → FPN (4 levels, 256 ch) →
`BEVFormerConstructer` (interndrive.common.bev; 100×200 BEV, 3 layers, **no temporal history**:
train and test pass `prev_bev=None`, as upstream) → `LaneDETRHead` on the BEV (Bézier lanes);
the front camera's FPN levels → `TEDeformableDETRHead` (traffic elements); last-layer query
features of both → `RelationshipHead` ×2 (lane→lane, lane→TE).

Inputs (`PackOpenLaneV2Inputs`): `inputs['img']` (B, 7, 3, H, W) (or a list of (7, 3, H, W)),
data samples with the metainfo (`lidar2img`, `img_shape`, `pad_shape`, `can_bus`, `token`,
`scale_factor`) and, for training, `gt_lc` (L, 15), `gt_te` (T, 4), `gt_te_labels` (T,),
`gt_topology_lclc` (L, L), `gt_topology_lcte` (L, T).

`mode='predict'` adds to every data sample what `OpenLaneV2Metric` reads: `pred_lc` (Q, 15),
`pred_lc_scores`, `pred_te` (Q, 4) xyxy network pixels, `pred_te_labels`, `pred_te_scores`,
`pred_topology_lclc` (Q, Q), `pred_topology_lcte` (Q, Q_te), on the CPU.
Device-agnostic: nothing calls `.cuda()`; ground truth follows the parameters' device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModel
from torch import Tensor

from interndrive.common.multiview_detector import (
    count_parameters_per_part,
    multiview_features,
    sample_metainfo,
    stack_images,
)


@MODELS.register_module()
class RoadBEVFormer(BaseModel):
    """Lane centerlines, traffic elements and their topology from 7 ring cameras.

    Args:
        img_backbone: Backbone config (`type='InternImage'` or `type='mmdet.ResNet'`).
        img_neck: Neck config (`type='mmdet.FPN'`, 4 outputs of `embed_dims` channels).
        bev_constructor: `BEVFormerConstructer` config.
        lane_head: `LaneDETRHead` config.
        te_head: `TEDeformableDETRHead` config.
        lclc_head, lcte_head: `RelationshipHead` configs.
        front_camera_index: Index of the front camera in the image stack (dataset: 0).
        data_preprocessor: mmengine data preprocessor config (default: move to device only).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        img_backbone: dict,
        img_neck: dict,
        bev_constructor: dict,
        lane_head: dict,
        te_head: dict,
        lclc_head: dict,
        lcte_head: dict,
        front_camera_index: int = 0,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck)
        self.bev_constructor = MODELS.build(bev_constructor)
        self.lane_head = MODELS.build(lane_head)
        self.te_head = MODELS.build(te_head)
        self.lclc_head = MODELS.build(lclc_head)
        self.lcte_head = MODELS.build(lcte_head)
        self.front_camera_index = front_camera_index

    # ----------------------------------------------------------------------------------- features
    def extract_img_feat(self, images: Tensor) -> list[Tensor]:
        """(B, N, 3, H, W) → FPN levels, each (B, N, C, h, w)."""
        return multiview_features(images, self.img_backbone, self.img_neck)

    @staticmethod
    def _stack_images(inputs: Mapping[str, Any]) -> Tensor:
        images = stack_images(inputs, 'RoadBEVFormer')
        if images.dim() != 5:
            raise ValueError(
                f'RoadBEVFormer: img must be (B, N, 3, H, W), got {tuple(images.shape)}'
            )
        return images

    def run_heads(
        self, inputs: Mapping[str, Any], data_samples: Sequence[Any]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor, Tensor, list[Mapping[str, Any]]]:
        """Forward of every head: (lane outputs, TE outputs, lclc logits, lcte logits, metas)."""
        images = self._stack_images(inputs)
        metas = [sample_metainfo(s) for s in data_samples]
        feats = self.extract_img_feat(images)
        bev = self.bev_constructor(feats, metas, prev_bev=None)  # no temporal history upstream
        lane_out = self.lane_head(bev)
        te_out = self.te_head([f[:, self.front_camera_index] for f in feats], metas)
        lclc = self.lclc_head(lane_out['feats'], lane_out['feats'])
        lcte = self.lcte_head(lane_out['feats'], te_out['feats'])
        return lane_out, te_out, lclc, lcte, metas

    # ----------------------------------------------------------------------------------- modes
    def forward(
        self,
        inputs: Mapping[str, Any],
        data_samples: Sequence[Any] | None = None,
        mode: str = 'tensor',
    ) -> Any:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.run_heads(inputs, data_samples)[:4]
        raise ValueError(f"RoadBEVFormer: mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def _gt(self, samples: Sequence[Any], key: str, device: torch.device) -> list[Tensor]:
        out = []
        for index, sample in enumerate(samples):
            value = getattr(sample, key, None)
            if value is None:
                raise KeyError(
                    f'RoadBEVFormer: data sample {index} has no {key!r} (training needs '
                    'OLV2ParameterizeLane and the annotations in the pipeline)'
                )
            out.append(torch.as_tensor(value).to(device))
        return out

    def loss(self, inputs: Mapping[str, Any], data_samples: Sequence[Any]) -> dict[str, Tensor]:
        """Lane (all layers), TE (all layers), lane–lane and lane–TE topology losses."""
        lane_out, te_out, lclc, lcte, metas = self.run_heads(inputs, data_samples)
        device = lclc.device
        gt_lc = [g.float() for g in self._gt(data_samples, 'gt_lc', device)]
        gt_te = [g.float().reshape(-1, 4) for g in self._gt(data_samples, 'gt_te', device)]
        gt_te_labels = [
            g.long().reshape(-1) for g in self._gt(data_samples, 'gt_te_labels', device)
        ]
        lclc_gt = self._gt(data_samples, 'gt_topology_lclc', device)
        lcte_gt = self._gt(data_samples, 'gt_topology_lcte', device)
        for index, (lanes, boxes, labels) in enumerate(
            zip(gt_lc, gt_te, gt_te_labels, strict=True)
        ):
            if lanes.dim() != 2 or lanes.shape[1] != self.lane_head.code_size:
                raise ValueError(
                    f'RoadBEVFormer: sample {index} gt_lc has shape {tuple(lanes.shape)}, expected '
                    f'(L, {self.lane_head.code_size}) (OLV2ParameterizeLane n_control='
                    f'{self.lane_head.num_control})'
                )
            if len(labels) and (labels.min() < 0 or labels.max() >= self.te_head.num_classes):
                raise ValueError(
                    f'RoadBEVFormer: sample {index} gt_te_labels outside 0..{self.te_head.num_classes - 1}'
                )
            if len(boxes) != len(labels):
                raise ValueError(
                    f'RoadBEVFormer: sample {index} has {len(boxes)} TE boxes, {len(labels)} labels'
                )
        losses, lane_matches = self.lane_head.loss(lane_out, gt_lc)
        te_losses, te_matches = self.te_head.loss(te_out, gt_te, gt_te_labels, metas)
        losses.update(te_losses)
        losses['loss_lclc'] = self.lclc_head.loss(lclc, lclc_gt, lane_matches, lane_matches)
        has_te = float(sum(len(b) for b in gt_te) > 0)
        lcte_gt = [g.reshape(len(lanes), -1) for g, lanes in zip(lcte_gt, gt_lc, strict=True)]
        losses['loss_lcte'] = self.lcte_head.loss(lcte, lcte_gt, lane_matches, te_matches) * has_te
        return losses

    @torch.no_grad()
    def predict(self, inputs: Mapping[str, Any], data_samples: Sequence[Any]) -> list[Any]:
        lane_out, te_out, lclc, lcte, metas = self.run_heads(inputs, data_samples)
        lanes, lane_scores = self.lane_head.predict(lane_out)
        boxes, labels, scores = self.te_head.predict(te_out, metas)
        lclc_scores = self.lclc_head.predict(lclc)
        lcte_scores = self.lcte_head.predict(lcte)
        for b, sample in enumerate(data_samples):
            sample.pred_lc = lanes[b].float().cpu()
            sample.pred_lc_scores = lane_scores[b].float().cpu()
            sample.pred_te = boxes[b].float().cpu()
            sample.pred_te_labels = labels[b].cpu()
            sample.pred_te_scores = scores[b].float().cpu()
            sample.pred_topology_lclc = lclc_scores[b].float().cpu()
            sample.pred_topology_lcte = lcte_scores[b].float().cpu()
        return list(data_samples)


#: Parameters per top-level part of a RoadBEVFormer (and `total`).
count_parameters = count_parameters_per_part


__all__ = ['RoadBEVFormer', 'count_parameters']
