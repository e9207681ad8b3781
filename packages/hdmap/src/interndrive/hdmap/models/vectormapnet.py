"""VectorMapNet (IPM encoder → BEV neck → DGHead = MapElementDetector + PolylineGenerator), mmengine model.

Inputs come from `HDMapPackInputs`: `inputs['img']` is a list of (7, 3, H, W) tensors and every data
sample carries `token`, `ego2img` (7, 4, 4) in its metainfo and, for training, `gt_polys`
(`data.map_targets.map_targets` output, None for a frame without lines). `predict` adds
`pred_vectors` (list of (n, 2) normalised polylines), `pred_scores` and `pred_labels` to each sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModel, BaseModule
from torch import Tensor

from .map_element_detector import MapElementDetector
from .polyline_generator import STOP_TOKEN, PolylineGenerator


@MODELS.register_module()
class DGHead(BaseModule):
    """Detector + generator head (upstream `DGHead`, `joint_training=False`).

    Training: the generator is conditioned on the (noise-augmented) GT boxes; test: on the detections.

    Args:
        det_net_cfg: `MapElementDetector` arguments.
        gen_net_cfg: `PolylineGenerator` arguments.
        max_num_vertices: GT lines longer than this are truncated (their first vertices kept) in training.
        top_p_gen_model: Nucleus probability of the generator at inference.
        greedy_decoding: Greedy instead of nucleus decoding (reproducible evaluation).
        augmentation: Noise augmentation of the generator inputs in training.
        augmentation_kwargs: `p`, `scale` (and upstream's `bbox_type`, ignored: always xyxy).
        sync_cls_avg_factor: Average the detector's positive count across ranks.
        upstream_bbox_tokens: Condition the generator on bbox tokens as upstream does — GT corners
            `int(norm·(canvas−1))` *without* the +1 that vertex tokens carry, detections `round(box)` in
            canvas units. Only to run weights converted from upstream (`interndrive hdmap
            convert-checkpoint`), whose `vertex_embed` rows were trained on those tokens. False: bbox
            tokens follow the vertex-token convention (cell + 1) in training and at test alike.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        det_net_cfg: dict,
        gen_net_cfg: dict,
        max_num_vertices: int = 80,
        top_p_gen_model: float = 0.9,
        greedy_decoding: bool = False,
        augmentation: bool = True,
        augmentation_kwargs: dict | None = None,
        sync_cls_avg_factor: bool = True,
        upstream_bbox_tokens: bool = False,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.upstream_bbox_tokens = upstream_bbox_tokens
        det = {k: v for k, v in det_net_cfg.items() if k != 'type'}
        gen = {k: v for k, v in gen_net_cfg.items() if k != 'type'}
        aug = dict(augmentation_kwargs or {})
        self.det_net = MapElementDetector(sync_cls_avg_factor=sync_cls_avg_factor, **det)
        self.gen_net = PolylineGenerator(
            top_p=top_p_gen_model, greedy=greedy_decoding, augmentation=augmentation,
            aug_p=aug.get('p', 0.3), aug_scale=aug.get('scale', 0.01), **gen,
        )  # fmt: skip
        self.max_num_vertices = max_num_vertices
        self.canvas_size = self.gen_net.canvas_size

    def _gen_targets(self, polys: Sequence[Mapping[str, Any]], device: torch.device):
        index, labels, bboxes, seqs, weights = [], [], [], [], []
        limit = 2 * self.max_num_vertices
        for b, p in enumerate(polys):
            for label, qbox, seq, w in zip(p['gen_label'], p['qkeypoint'], p['polylines'], p['polyline_weights'],
                                           strict=True):  # fmt: skip
                if len(seq) > limit + 1:
                    seq = np.concatenate([seq[:limit], [STOP_TOKEN]])
                    w = np.concatenate([w[:limit], w[-1:]])
                index.append(b)
                labels.append(int(label))
                offset = 0 if self.upstream_bbox_tokens else 1
                bboxes.append(np.asarray(qbox, dtype=np.int64) + offset)
                seqs.append(np.asarray(seq, dtype=np.int64))
                weights.append(np.asarray(w, dtype=np.float32))
        length = max(len(s) for s in seqs)
        tokens = np.full((len(seqs), length), STOP_TOKEN, dtype=np.int64)
        wts = np.zeros((len(seqs), length), dtype=np.float32)
        for i, (s, w) in enumerate(zip(seqs, weights, strict=True)):
            tokens[i, : len(s)], wts[i, : len(w)] = s, w
        t = lambda a, dt=torch.long: torch.as_tensor(np.asarray(a), dtype=dt, device=device)  # noqa: E731
        return t(index), t(labels), t(np.stack(bboxes)), t(tokens), t(wts, torch.float32)

    def loss(self, bev: Tensor, polys: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        logits, boxes = self.det_net(bev)
        gt_labels = [
            torch.as_tensor(p['det_label'], dtype=torch.long, device=bev.device) for p in polys
        ]
        gt_boxes = [
            torch.as_tensor(p['keypoint'], dtype=torch.float32, device=bev.device) for p in polys
        ]
        losses = self.det_net.loss(logits, boxes, gt_labels, gt_boxes)
        losses['loss_gen'] = self.gen_net.loss(bev, *self._gen_targets(polys, bev.device))
        return losses

    def quantize_boxes(self, boxes: Tensor) -> Tensor:
        """Detected xyxy boxes (canvas units) → bbox tokens, quantised as the GT (`int(norm·(canvas−1))+1`),
        or as upstream's inference (`round(box)`) with `upstream_bbox_tokens`."""
        canvas = boxes.new_tensor(self.canvas_size).repeat(2)
        if self.upstream_bbox_tokens:
            return torch.minimum(boxes.round().clamp(min=0), canvas).long()
        cells = (boxes / canvas * (canvas - 1)).floor().clamp(min=0)
        return torch.minimum(cells, canvas - 1).long() + 1

    @torch.no_grad()
    def predict(self, bev: Tensor, greedy: bool | None = None) -> list[dict[str, Any]]:
        logits, boxes = self.det_net(bev)
        dets = self.det_net.post_process(logits[-1], boxes[-1])
        index = torch.cat([torch.full_like(d['labels'], b) for b, d in enumerate(dets)])
        labels = torch.cat([d['labels'] for d in dets])
        bbox_tokens = self.quantize_boxes(torch.cat([d['boxes'] for d in dets]))
        lines = self.gen_net.generate(bev, index, labels, bbox_tokens, greedy=greedy)
        out, start = [], 0
        for d in dets:
            n = len(d['labels'])
            out.append({'vectors': lines[start : start + n], 'scores': d['scores'].cpu().numpy(),
                        'labels': d['labels'].cpu().numpy(), 'boxes': d['boxes'].cpu().numpy()})  # fmt: skip
            start += n
        return out


@MODELS.register_module()
class VectorMapNet(BaseModel):
    """Camera-only VectorMapNet of the CVPR 2023 Argoverse 2 online HD map challenge.

    Args:
        backbone_cfg: `IPMEncoder` config (images → (B, C, 100, 200) BEV).
        head_cfg: `DGHead` config.
        neck_cfg: BEV neck config (default: `BEVResNetNeck` 128 → 128, as upstream's `neck_cfg=None`).
        with_auxiliary_head: Must be False (upstream's auxiliary segmentation head is not part of the
            released configs).
        data_preprocessor: mmengine data preprocessor config (moves tensors to the device).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        backbone_cfg: dict,
        head_cfg: dict,
        neck_cfg: dict | None = None,
        with_auxiliary_head: bool = False,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
        **unused: Any,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='BaseDataPreprocessor'),
                         init_cfg=init_cfg)  # fmt: skip
        if with_auxiliary_head:
            raise ValueError(
                'VectorMapNet: with_auxiliary_head=True is not implemented (upstream configs use False)'
            )
        if unused:
            raise TypeError(f'VectorMapNet: unexpected arguments {sorted(unused)}')
        self.backbone = MODELS.build(backbone_cfg)
        self.neck = MODELS.build(neck_cfg or dict(type='BEVResNetNeck'))
        self.head = MODELS.build(head_cfg)

    def extract_bev(self, inputs: Mapping[str, Any], data_samples: Sequence[Any]) -> Tensor:
        imgs = inputs['img']
        imgs = torch.stack(list(imgs)) if isinstance(imgs, (list, tuple)) else imgs
        param = next(self.parameters())
        ego2img = torch.stack([torch.as_tensor(np.asarray(s.metainfo['ego2img']), dtype=torch.float32)
                               for s in data_samples]).to(param.device)  # fmt: skip
        bev = self.backbone(imgs.to(device=param.device, dtype=param.dtype), ego2img)
        return self.neck(bev)

    def forward(self, inputs: Mapping[str, Any], data_samples: Sequence[Any] | None = None,
                mode: str = 'tensor') -> Any:  # fmt: skip
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_bev(inputs, data_samples)
        raise ValueError(f'VectorMapNet: mode must be loss, predict or tensor, got {mode!r}')

    def loss(self, inputs: Mapping[str, Any], data_samples: Sequence[Any]) -> dict[str, Tensor]:
        """Detector + generator losses. Frames without any GT line are left out of the batch; a batch of
        only such frames returns zero losses connected to every parameter (upstream instead replays the
        previous batch, which a resumed run could not reproduce)."""
        keep = [i for i, s in enumerate(data_samples) if s.get('gt_polys') is not None]
        if not keep:
            zero = sum(p.sum() * 0 for p in self.parameters() if p.requires_grad)
            return {'loss_det_cls': zero, 'loss_det_reg': zero, 'loss_gen': zero}
        imgs = inputs['img']
        imgs = [imgs[i] for i in keep] if isinstance(imgs, (list, tuple)) else imgs[keep]
        samples = [data_samples[i] for i in keep]
        bev = self.extract_bev({'img': imgs}, samples)
        return self.head.loss(bev, [s.gt_polys for s in samples])

    def predict(self, inputs: Mapping[str, Any], data_samples: Sequence[Any]) -> list[Any]:
        preds = self.head.predict(self.extract_bev(inputs, data_samples))
        for sample, pred in zip(data_samples, preds, strict=True):
            sample.pred_vectors = pred['vectors']
            sample.pred_scores = pred['scores']
            sample.pred_labels = pred['labels']
        return list(data_samples)
