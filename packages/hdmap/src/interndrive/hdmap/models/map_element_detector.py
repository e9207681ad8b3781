"""MapElementDetector: DETR-style detector of map elements as keypoint bboxes (VectorMapNet stage 1).

Each of the `num_query` queries owns `bbox_size` (2) decoder tokens, the two bbox corners; a token
regresses its corner relative to its reference point, the query's class comes from its concatenated
tokens. Decoder: pre-norm layers (norm → self-attn → norm → deformable cross-attn → norm → FFN) over the
BEV neck features (one level; upstream's encoder is an identity placeholder). Prediction branches are
shared across layers (upstream's `iterative=False`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from mmcv.ops import MultiScaleDeformableAttention
from mmengine.model import BaseModule
from torch import Tensor, nn

from .det_losses import hungarian_match, lines_loss, sigmoid_focal_loss


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def coord_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(h·w, 2) [-1, 1]² coordinates (x, y) of a feature map, row-major."""
    ys = torch.linspace(-1, 1, h, device=device, dtype=dtype)
    xs = torch.linspace(-1, 1, w, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([xx, yy], dim=-1).reshape(-1, 2)


class PreNormDecoderLayer(nn.Module):
    """norm → self-attn → norm → multi-scale deformable cross-attn → norm → FFN, residual each."""

    def __init__(
        self, embed_dims: int = 256, num_heads: int = 8, ffn_dims: int = 512, dropout: float = 0.1,
        num_points: int = 4,
    ) -> None:  # fmt: skip
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True
        )
        self.cross_attn = MultiScaleDeformableAttention(
            embed_dims=embed_dims, num_heads=num_heads, num_levels=1, num_points=num_points,
            dropout=dropout, batch_first=True,
        )  # fmt: skip
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, ffn_dims), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(ffn_dims, embed_dims), nn.Dropout(dropout),
        )  # fmt: skip
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(
        self, query: Tensor, query_pos: Tensor, memory: Tensor, reference: Tensor, shape: Tensor
    ) -> Tensor:
        q = self.norms[0](query)
        query = query + self.drop(
            self.self_attn(q + query_pos, q + query_pos, q, need_weights=False)[0]
        )
        q = self.norms[1](query)
        query = self.cross_attn(
            q, value=memory, identity=query, query_pos=query_pos, reference_points=reference[:, :, None],
            spatial_shapes=shape, level_start_index=shape.new_zeros(1),
        )  # fmt: skip
        return query + self.ffn(self.norms[2](query))


class MapElementDetector(BaseModule):
    """Keypoint-bbox detector.

    Args:
        num_query: Queries (120).
        max_lines: Detections kept per sample at test time (global top-k over query × class, 35).
        bbox_size: Decoder tokens per query (2 bbox corners).
        canvas_size: (W, H) canvas the boxes live in.
        num_classes: Map classes.
        in_channels: BEV neck channels.
        embed_dims: Decoder width.
        num_layers: Decoder layers.
        num_heads: Attention heads.
        ffn_dims: FFN hidden width.
        dropout: Dropout in attention and FFN.
        num_points: Deformable sampling points per head.
        num_reg_fcs: Hidden Linear+LN+ReLU blocks of the regression branch.
        loss_cls_weight: Focal loss weight (2.0).
        loss_reg_weight: Lines loss weight (0.1).
        cost_weights: Hungarian (class, L1, GIoU) weights.
        sync_cls_avg_factor: Average the positive count across ranks.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        num_query: int = 120,
        max_lines: int = 35,
        bbox_size: int = 2,
        canvas_size: Sequence[int] = (200, 100),
        num_classes: int = 3,
        in_channels: int = 128,
        embed_dims: int = 256,
        num_layers: int = 6,
        num_heads: int = 8,
        ffn_dims: int = 512,
        dropout: float = 0.1,
        num_points: int = 4,
        num_reg_fcs: int = 2,
        loss_cls_weight: float = 2.0,
        loss_reg_weight: float = 0.1,
        cost_weights: Sequence[float] = (2.0, 0.1, 1.0),
        sync_cls_avg_factor: bool = True,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if bbox_size != 2:
            raise ValueError(
                f'MapElementDetector: only bbox_size=2 (xyxy corners) is supported, got {bbox_size}'
            )
        self.num_query, self.max_lines, self.bbox_size = num_query, max_lines, bbox_size
        self.num_classes, self.embed_dims = num_classes, embed_dims
        self.register_buffer(
            'canvas', torch.tensor(canvas_size, dtype=torch.float32), persistent=False
        )
        self.loss_cls_weight, self.loss_reg_weight = loss_cls_weight, loss_reg_weight
        self.cost_weights = tuple(cost_weights)
        self.sync_cls_avg_factor = sync_cls_avg_factor

        self.input_proj = nn.Conv2d(in_channels, embed_dims, 1)
        self.img_coord_embed = nn.Linear(2, embed_dims)
        # Upstream also builds a SinePositionalEncoding for the memory; its encoder is an identity
        # placeholder and deformable cross-attention only uses the query positions, so it never affects
        # the output and is left out.
        self.query_embedding = nn.Embedding(num_query, embed_dims * 2)
        self.bbox_embedding = nn.Embedding(bbox_size, embed_dims * 2)
        self.reference_points_embed = nn.Linear(embed_dims, 2)
        self.layers = nn.ModuleList(
            PreNormDecoderLayer(embed_dims, num_heads, ffn_dims, dropout, num_points)
            for _ in range(num_layers)
        )
        self.cls_branch = nn.Linear(embed_dims * bbox_size, num_classes)
        reg: list[nn.Module] = []
        for _ in range(num_reg_fcs):
            reg += [
                nn.Linear(embed_dims, embed_dims),
                nn.LayerNorm(embed_dims),
                nn.ReLU(inplace=True),
            ]
        self.reg_branch = nn.Sequential(*reg, nn.Linear(embed_dims, 2))

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.cls_branch.bias, -4.59511985013459)  # prior probability 0.01
        for layer in self.layers:
            layer.cross_attn.init_weights()

    def memory(self, bev: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) BEV → flattened memory (B, HW, D) with coordinate embedding, and its shape."""
        _, _, h, w = bev.shape
        x = self.input_proj(bev)
        grid = coord_grid(h, w, x.device, x.dtype)
        memory = x.flatten(2).transpose(1, 2) + self.img_coord_embed(grid)
        return memory, torch.tensor([[h, w]], dtype=torch.long, device=x.device)

    def forward(self, bev: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Class logits (B, Q, num_classes) and boxes (B, Q, 4, canvas units) of every decoder layer."""
        b = bev.shape[0]
        memory, shape = self.memory(bev)
        tokens = (
            self.query_embedding.weight[:, None] + self.bbox_embedding.weight[None]
        )  # (Q, 2, 2D)
        tokens = tokens.reshape(1, -1, 2 * self.embed_dims).expand(b, -1, -1)
        query_pos, query = tokens.split(self.embed_dims, dim=-1)
        reference = self.reference_points_embed(query_pos).sigmoid()  # (B, 2Q, 2)
        logits, boxes = [], []
        for layer in self.layers:
            # no final LayerNorm: upstream's decoder (an mmcv TransformerLayerSequence) has none and
            # its prediction branches read the pre-norm residual stream directly
            query = layer(query, query_pos, memory, reference, shape)
            corners = (self.reg_branch(query) + inverse_sigmoid(reference)).sigmoid() * self.canvas
            boxes.append(corners.reshape(b, self.num_query, 2 * self.bbox_size))
            logits.append(self.cls_branch(query.reshape(b, self.num_query, -1)))
        return logits, boxes

    def _num_positives(self, count: int, device: torch.device) -> float:
        total = torch.tensor(float(count), device=device)
        if self.sync_cls_avg_factor and dist.is_available() and dist.is_initialized():
            dist.all_reduce(total)
            total = total / dist.get_world_size()
        return max(float(total), 1.0)

    def loss(
        self,
        logits: list[Tensor],
        boxes: list[Tensor],
        gt_labels: list[Tensor],
        gt_boxes: list[Tensor],
    ) -> dict[str, Tensor]:
        """Focal + lines losses of every decoder layer (keys `loss_det_cls`, `d0.loss_det_cls`, ...)."""
        losses: dict[str, Tensor] = {}
        num_layers = len(logits)
        for i, (layer_logits, layer_boxes) in enumerate(zip(logits, boxes, strict=True)):
            targets = torch.zeros_like(layer_logits)
            pred_pos, gt_pos = [], []
            for b, (labels, gtb) in enumerate(zip(gt_labels, gt_boxes, strict=True)):
                q_idx, g_idx = hungarian_match(layer_logits[b].detach(), layer_boxes[b].detach(), labels, gtb,
                                               *self.cost_weights)  # fmt: skip
                targets[b, q_idx, labels[g_idx]] = 1.0
                pred_pos.append(layer_boxes[b, q_idx])
                gt_pos.append(gtb[g_idx])
            num_pos = self._num_positives(sum(len(p) for p in pred_pos), layer_logits.device)
            prefix = '' if i == num_layers - 1 else f'd{i}.'
            losses[f'{prefix}loss_det_cls'] = (
                self.loss_cls_weight * sigmoid_focal_loss(layer_logits, targets) / num_pos
            )
            losses[f'{prefix}loss_det_reg'] = (
                self.loss_reg_weight * lines_loss(torch.cat(pred_pos), torch.cat(gt_pos)) / num_pos
            )
        return losses

    @torch.no_grad()
    def post_process(self, logits: Tensor, boxes: Tensor) -> list[dict[str, Tensor]]:
        """Global top-`max_lines` over (query, class) per sample, no score threshold (as upstream)."""
        out = []
        for lg, bx in zip(logits, boxes, strict=True):
            scores, idx = lg.sigmoid().flatten().topk(min(self.max_lines, lg.numel()))
            out.append({'scores': scores, 'labels': idx % self.num_classes,
                        'boxes': bx[idx // self.num_classes]})  # fmt: skip
        return out
