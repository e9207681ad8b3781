"""Losses and Hungarian matching of the map element detector (pure torch + scipy, no OpenMMLab).

- `sigmoid_focal_loss`: RetinaNet focal loss (γ=2, α=0.25) summed; the caller divides by #positives.
- `lines_loss`: smooth-L1 with beta 0.5 on canvas-unit keypoints (upstream `LinesLoss`).
- `hungarian_match`: cost = focal class cost · w_cls + L1(cdist) · w_reg − GIoU · w_iou, solved with
  scipy's `linear_sum_assignment` on the CPU (as upstream).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, gamma: float = 2.0, alpha: float = 0.25
) -> Tensor:
    """Sum over all elements of the focal loss; `targets` is a 0/1 tensor shaped like `logits`."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    p_t = prob * targets + (1 - prob) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * (1 - p_t) ** gamma * ce).sum()


def lines_loss(pred: Tensor, target: Tensor, beta: float = 0.5) -> Tensor:
    """Smooth-L1 summed over coordinates with weights normalised so every line sums to 1."""
    if pred.numel() == 0:
        return pred.sum()
    loss = F.smooth_l1_loss(pred, target, reduction='none', beta=beta)
    return (loss / pred.shape[-1]).sum()


def generalized_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """(N, M) GIoU of xyxy boxes."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]).clamp(min=0) * (boxes1[:, 3] - boxes1[:, 1]).clamp(min=0)
    area2 = (boxes2[:, 2] - boxes2[:, 0]).clamp(min=0) * (boxes2[:, 3] - boxes2[:, 1]).clamp(min=0)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area1[:, None] + area2[None, :] - inter
    iou = inter / union.clamp(min=1e-6)
    lt_c = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    rb_c = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    enclose = (rb_c - lt_c).clamp(min=0).prod(-1)
    return iou - (enclose - union) / enclose.clamp(min=1e-6)


def focal_class_cost(
    logits: Tensor, labels: Tensor, gamma: float = 2.0, alpha: float = 0.25
) -> Tensor:
    """(Q, M) mmdet `FocalLossCost`: positive minus negative focal term of each GT's class."""
    prob = logits.sigmoid()
    neg = -(1 - prob + 1e-12).log() * (1 - alpha) * prob.pow(gamma)
    pos = -(prob + 1e-12).log() * alpha * (1 - prob).pow(gamma)
    return pos[:, labels] - neg[:, labels]


@torch.no_grad()
def hungarian_match(
    logits: Tensor,
    boxes: Tensor,
    gt_labels: Tensor,
    gt_boxes: Tensor,
    cls_weight: float = 2.0,
    reg_weight: float = 0.1,
    iou_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """One-to-one assignment of queries to GT lines.

    Args:
        logits: (Q, num_classes) class logits.
        boxes: (Q, 4) predicted xyxy keypoints (canvas units).
        gt_labels: (M,) GT classes.
        gt_boxes: (M, 4) GT keypoints.

    Returns:
        Query indices and GT indices (both (min(Q, M),) int64 on the inputs' device).
    """
    if gt_labels.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=logits.device)
        return empty, empty
    cost = (
        cls_weight * focal_class_cost(logits.float(), gt_labels)
        + reg_weight * torch.cdist(boxes.float(), gt_boxes.float(), p=1)
        - iou_weight * generalized_iou(boxes.float(), gt_boxes.float())
    )
    cost = torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6).cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    device = logits.device
    return (torch.as_tensor(np.asarray(rows), dtype=torch.long, device=device),
            torch.as_tensor(np.asarray(cols), dtype=torch.long, device=device))  # fmt: skip
