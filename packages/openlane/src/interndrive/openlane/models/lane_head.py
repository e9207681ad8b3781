"""Lane-centerline DETR head on the BEV (upstream `LCDeformableDETRHead`, REFERENCE §5.2).

100 queries (Embedding(100, 2·C) split into positional and content parts), 3D reference points
Linear(C → 3) + sigmoid from the positional part, a 6-layer decoder (self-attention, deformable
attention on the single-level BEV at the reference xy, FFN, post-norm; mmdet 3's
`DeformableDetrTransformerDecoder`, which is upstream's `CustomDetrTransformerDecoderLayer` stack
without box refinement), and per-layer branches: cls 2×[Linear, LN, ReLU] + Linear(C → 1), reg
2×[Linear, ReLU] + Linear(C → 15). Control points decode as sigmoid(reg + logit(ref)) scaled to
the point-cloud range (`lane_geometry.decode_control_points`).

Losses on every decoder layer (`loss_lane_cls`, `loss_lane_reg`, `d{i}.…` for the intermediate ones):
FocalLoss (weight 1.5) and L1 on the metric 15-vectors (weight 0.0075), averaged over the number
of matched GT lanes (`sync_cls_avg_factor=False`), Hungarian matching with the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmdet.models.layers import DeformableDetrTransformerDecoder
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
from .lane_geometry import decode_control_points


def default_decoder(embed_dims: int = 256, ffn_dims: int = 512, num_layers: int = 6) -> dict:
    """Decoder config of the reference (8 heads, dropout 0.1, one BEV level, 4 points)."""
    return dict(
        num_layers=num_layers,
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
            cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=1, batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.1),
        ),
    )


@MODELS.register_module()
class LaneDETRHead(BaseModule):
    """Bézier lane centerlines from BEV features.

    Args:
        bev_h, bev_w: BEV grid (rows ↔ y, columns ↔ x, as `BEVFormerConstructer`).
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max) the control points are scaled to.
        num_query: Lane queries (reference: 100).
        embed_dims: Channels (reference: 256).
        num_control: Bézier control points (reference: 5 → code size 15).
        decoder: mmdet `DeformableDetrTransformerDecoder` arguments (`default_decoder()`).
        with_shared_param: One cls/reg branch for all layers instead of one per layer.
        loss_cls, loss_reg: mmdet loss configs (FocalLoss 1.5, L1Loss 0.0075).
        assigner: mmdet `HungarianAssigner` config (FocalLossCost 1.5 + LaneL1Cost 0.0075).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        bev_h: int,
        bev_w: int,
        pc_range: Sequence[float],
        num_query: int = 100,
        embed_dims: int = 256,
        num_control: int = 5,
        decoder: dict | None = None,
        with_shared_param: bool = False,
        loss_cls: dict | None = None,
        loss_reg: dict | None = None,
        assigner: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        if len(pc_range) != 6:
            raise ValueError(f'LaneDETRHead: pc_range must have 6 numbers, got {pc_range}')
        self.bev_h, self.bev_w = bev_h, bev_w
        self.pc_range = [float(v) for v in pc_range]
        self.num_query = num_query
        self.embed_dims = embed_dims
        self.num_control = num_control
        self.code_size = 3 * num_control
        self.decoder = DeformableDetrTransformerDecoder(**(decoder or default_decoder(embed_dims)))
        if self.decoder.embed_dims != embed_dims:
            raise ValueError(
                f'LaneDETRHead: decoder has {self.decoder.embed_dims} channels, expected {embed_dims}'
            )
        num_layers = self.decoder.num_layers
        self.query_embedding = nn.Embedding(num_query, 2 * embed_dims)
        self.reference_points = nn.Linear(embed_dims, 3)
        cls = mlp_branch(embed_dims, 1, 2, norm=True, final_init=focal_bias_init)
        reg = mlp_branch(embed_dims, self.code_size, 2, norm=False)
        self.cls_branches = clones(cls, num_layers, with_shared_param)
        self.reg_branches = clones(reg, num_layers, with_shared_param)
        loss_cls = loss_cls or dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.5
        )
        loss_reg = loss_reg or dict(type='L1Loss', loss_weight=0.0075)
        assigner = assigner or dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=1.5),
                dict(type='LaneL1Cost', weight=0.0075),
            ],
        )
        costs = {c['type']: c.get('weight', 1.0) for c in assigner['match_costs']}
        # Upstream asserts that the matching and the loss weigh classification and regression alike.
        if costs.get('FocalLossCost') != loss_cls.get('loss_weight') or costs.get(
            'LaneL1Cost'
        ) != loss_reg.get('loss_weight'):
            raise ValueError(
                'LaneDETRHead: assigner cost weights must equal the loss weights '
                f'(costs {costs}, loss_cls {loss_cls.get("loss_weight")}, '
                f'loss_reg {loss_reg.get("loss_weight")})'
            )
        self.loss_cls = build_mmdet_loss(loss_cls)
        self.loss_reg = build_mmdet_loss(loss_reg)
        self.assigner = build_assigner(assigner)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.xavier_uniform_(self.reference_points.weight)
        nn.init.zeros_(self.reference_points.bias)
        for branch in self.cls_branches:
            focal_bias_init(branch[-1])

    def forward(self, bev: Tensor) -> dict[str, Tensor]:
        """BEV (B, bev_h·bev_w, C) → per-layer `cls` (L, B, Q, 1), `lanes` (L, B, Q, 15) in
        metres, and the last layer's query features `feats` (B, Q, C)."""
        bs = bev.shape[0]
        if bev.shape[1] != self.bev_h * self.bev_w:
            raise ValueError(
                f'LaneDETRHead: BEV has {bev.shape[1]} cells, expected {self.bev_h}×{self.bev_w}'
            )
        query_pos, query = self.query_embedding.weight.split(self.embed_dims, dim=1)
        query_pos = query_pos[None].expand(bs, -1, -1)
        query = query[None].expand(bs, -1, -1)
        reference = self.reference_points(query_pos).sigmoid()  # (B, Q, 3)
        device = bev.device
        hs, _ = self.decoder(
            query=query,
            query_pos=query_pos,
            value=bev,
            key_padding_mask=None,
            reference_points=reference[..., :2],  # attention samples the BEV at the xy reference
            spatial_shapes=torch.tensor([[self.bev_h, self.bev_w]], device=device),
            level_start_index=torch.zeros(1, dtype=torch.long, device=device),
            valid_ratios=bev.new_ones(bs, 1, 2),
        )
        cls = torch.stack([branch(h) for branch, h in zip(self.cls_branches, hs, strict=True)])
        lanes = torch.stack(
            [
                decode_control_points(branch(h), reference, self.pc_range, self.num_control)
                for branch, h in zip(self.reg_branches, hs, strict=True)
            ]
        )
        return {'cls': cls, 'lanes': lanes, 'feats': hs[-1]}

    def match(
        self, cls: Tensor, lanes: Tensor, gt_lanes: Sequence[Tensor]
    ) -> list[tuple[Tensor, Tensor]]:
        """Hungarian matches of one layer: per sample (query indices, GT indices)."""
        out = []
        for b, gt in enumerate(gt_lanes):
            pred = InstanceData(scores=cls[b].detach(), lanes=lanes[b].detach())
            gt_inst = InstanceData(
                labels=torch.zeros(len(gt), dtype=torch.long, device=cls.device), lanes=gt
            )
            out.append(assign(self.assigner, pred, gt_inst))
        return out

    def layer_loss(
        self, cls: Tensor, lanes: Tensor, gt_lanes: Sequence[Tensor]
    ) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
        """Focal + L1 losses of one decoder layer and its matches."""
        matches = self.match(cls, lanes, gt_lanes)
        bs, nq = cls.shape[:2]
        labels = cls.new_full((bs, nq), 1, dtype=torch.long)  # 1 = background (one class)
        pred_reg, gt_reg = [], []
        for b, (q, g) in enumerate(matches):
            labels[b, q] = 0
            pred_reg.append(lanes[b, q])
            gt_reg.append(gt_lanes[b][g])
        num_pos = avg_factor(sum(len(q) for q, _ in matches), cls.device)
        loss_cls = self.loss_cls(cls.reshape(bs * nq, -1), labels.reshape(-1), avg_factor=num_pos)
        pred_reg_t, gt_reg_t = torch.cat(pred_reg), torch.cat(gt_reg)
        if len(pred_reg_t):
            loss_reg = self.loss_reg(pred_reg_t, gt_reg_t, avg_factor=num_pos)
        else:
            loss_reg = lanes.sum() * 0
        return loss_cls, loss_reg, matches

    def loss(
        self, outputs: dict[str, Tensor], gt_lanes: Sequence[Tensor]
    ) -> tuple[dict[str, Tensor], list[tuple[Tensor, Tensor]]]:
        """Losses of all layers and the last layer's matches (for the topology heads)."""
        losses: dict[str, Tensor] = {}
        num_layers = outputs['cls'].shape[0]
        matches: list[tuple[Tensor, Tensor]] = []
        for layer in range(num_layers):
            loss_cls, loss_reg, matches = self.layer_loss(
                outputs['cls'][layer], outputs['lanes'][layer], gt_lanes
            )
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            losses[f'{prefix}loss_lane_cls'] = loss_cls
            losses[f'{prefix}loss_lane_reg'] = loss_reg
        return losses, matches

    @torch.no_grad()
    def predict(self, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Last layer: (B, Q, 15) control points and (B, Q) sigmoid scores."""
        return outputs['lanes'][-1], outputs['cls'][-1, ..., 0].sigmoid()
