"""Small pieces shared by the lane and traffic-element DETR heads (OpenMMLab glue)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch import Tensor, nn


def build_mmdet_loss(cfg: dict) -> nn.Module:
    """Losses are mmdet's (FocalLoss, L1Loss, GIoULoss): built in mmdet's scope whatever the
    config's default scope (mmdet3d's registry does not see them unprefixed)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg)


def build_assigner(cfg: dict) -> object:
    """mmdet's HungarianAssigner and its match costs (incl. our LaneL1Cost), in mmdet's scope:
    the assigner builds its costs itself, by unprefixed names."""
    from . import assigners  # noqa: F401  registers LaneL1Cost

    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_TASK_UTILS.build(cfg)


def clones(module: nn.Module, num: int, shared: bool) -> nn.ModuleList:
    """`num` branches: the same module repeated (shared) or independent deep copies."""
    return nn.ModuleList([module if shared else copy.deepcopy(module) for _ in range(num)])


def mlp_branch(
    in_dims: int, out_dims: int, num_hidden: int, norm: bool, final_init: Callable | None = None
) -> nn.Sequential:
    """`num_hidden` × [Linear, (LayerNorm), ReLU] + Linear (upstream's cls / reg branches)."""
    layers: list[nn.Module] = []
    for _ in range(num_hidden):
        layers.append(nn.Linear(in_dims, in_dims))
        if norm:
            layers.append(nn.LayerNorm(in_dims))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.Linear(in_dims, out_dims))
    branch = nn.Sequential(*layers)
    if final_init is not None:
        final_init(branch[-1])
    return branch


def focal_bias_init(linear: nn.Linear, prior_prob: float = 0.01) -> None:
    """Classification bias so that the initial sigmoid is `prior_prob` (focal-loss convention)."""
    # computed on the CPU so that models can also be built on the meta device (key/shape checks)
    odds = torch.tensor((1 - prior_prob) / prior_prob, device='cpu')
    nn.init.constant_(linear.bias, -float(torch.log(odds)))


def assign(
    assigner: object, pred: InstanceData, gt: InstanceData, img_meta: dict | None = None
) -> tuple[Tensor, Tensor]:
    """Hungarian match → (matched query indices, their GT indices), both long tensors."""
    result = assigner.assign(pred, gt, img_meta=img_meta)
    pos = torch.nonzero(result.gt_inds > 0, as_tuple=False).squeeze(-1)
    return pos, result.gt_inds[pos] - 1


def avg_factor(num: float, device: torch.device) -> float:
    """Loss normaliser: at least 1 (as mmdet's DETR heads clamp it)."""
    return max(float(num), 1.0)
