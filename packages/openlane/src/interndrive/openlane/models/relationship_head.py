"""Pairwise topology head (upstream `RelationshipHead`, used twice: lane→lane and lane→TE).

Both sets of query features (the **last decoder layer** of each DETR head) go through their own MLP
(C → C → C → 128, ReLU), every (o1, o2) pair is concatenated and classified by an MLP
(256 → C → C → 1). Training targets come from the heads' last-layer Hungarian matches: the pair
of queries matched to GT elements (i, j) takes the GT adjacency (i, j), every other pair is 0.
Loss: sigmoid FocalLoss (γ 2, α 0.25, weight 5) with mmdet's label convention (class 0 = edge,
label 1 = no edge), averaged over all pairs (mmdet's default normalisation). Inference: sigmoid.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from .detr_utils import build_mmdet_loss


def mlp(dims: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def relationship_targets(
    gt_adjacency: Tensor,
    matches_o1: tuple[Tensor, Tensor],
    matches_o2: tuple[Tensor, Tensor],
    num_o1: int,
    num_o2: int,
) -> Tensor:
    """(num_o1, num_o2) 0/1 targets of one sample from the GT adjacency (G1, G2) and the
    (query, GT) matches of both sides; unmatched queries get 0 everywhere."""
    target = gt_adjacency.new_zeros(num_o1, num_o2)
    q1, g1 = matches_o1
    q2, g2 = matches_o2
    if len(q1) and len(q2):
        target[q1[:, None], q2[None, :]] = gt_adjacency[g1[:, None], g2[None, :]].to(target.dtype)
    return target


@MODELS.register_module()
class RelationshipHead(BaseModule):
    """Scores every (o1, o2) query pair.

    Args:
        in_channels_o1, in_channels_o2: Query feature channels of the two sets (256).
        hidden_dims: Hidden width of the MLPs (reference: the embedding width, 256).
        shared_param: One MLP for both sets (reference: False).
        loss_rel: mmdet loss config (FocalLoss, weight 5).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        in_channels_o1: int = 256,
        in_channels_o2: int = 256,
        hidden_dims: int | None = None,
        shared_param: bool = False,
        loss_rel: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg)
        hidden = hidden_dims or in_channels_o1
        self.mlp_o1 = mlp([in_channels_o1, hidden, hidden, 128])
        self.mlp_o2 = self.mlp_o1 if shared_param else mlp([in_channels_o2, hidden, hidden, 128])
        self.classifier = mlp([256, hidden, hidden, 1])
        self.loss_rel = build_mmdet_loss(
            loss_rel
            or dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=5.0)
        )

    def forward(self, o1: Tensor, o2: Tensor) -> Tensor:
        """(B, N1, C1), (B, N2, C2) → pair logits (B, N1, N2)."""
        a = self.mlp_o1(o1)
        b = self.mlp_o2(o2)
        pairs = torch.cat(
            [
                a[:, :, None].expand(-1, -1, b.shape[1], -1),
                b[:, None].expand(-1, a.shape[1], -1, -1),
            ],
            dim=-1,
        )
        return self.classifier(pairs)[..., 0]

    def loss(
        self,
        logits: Tensor,
        gt_adjacency: Sequence[Tensor],
        matches_o1: Sequence[tuple[Tensor, Tensor]],
        matches_o2: Sequence[tuple[Tensor, Tensor]],
    ) -> Tensor:
        """Focal loss over all pairs of the batch."""
        bs, n1, n2 = logits.shape
        targets = torch.stack(
            [
                relationship_targets(gt_adjacency[b], matches_o1[b], matches_o2[b], n1, n2)
                for b in range(bs)
            ]
        )
        labels = (1 - targets).round().long().reshape(-1)  # mmdet: class 0 = edge, 1 = background
        loss = self.loss_rel(logits.reshape(-1, 1), labels)
        return torch.nan_to_num(loss)

    @torch.no_grad()
    def predict(self, logits: Tensor) -> Tensor:
        return logits.sigmoid()
