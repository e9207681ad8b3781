"""Match cost of the lane head (registered in mmdet's TASK_UTILS next to its Hungarian assigner).

Upstream `LaneHungarianAssigner` = FocalLossCost (weight 1.5) + `LaneL1Cost` (L1 `cdist` of the
15-vectors in metres, weight 0.0075); mmdet 3's `HungarianAssigner` with a list of costs is the same
algorithm, so only the lane cost is new. The lane head keeps its loss weights equal to these cost
weights, as upstream asserts.
"""

from __future__ import annotations

import torch
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor


@TASK_UTILS.register_module()
class LaneL1Cost(BaseMatchCost):
    """L1 distance between predicted and GT lane vectors (`pred_instances.lanes` (P, D),
    `gt_instances.lanes` (G, D), metres) times `weight`."""

    def __call__(
        self,
        pred_instances: InstanceData,
        gt_instances: InstanceData,
        img_meta: dict | None = None,
        **kwargs: object,
    ) -> Tensor:
        return torch.cdist(pred_instances.lanes, gt_instances.lanes, p=1) * self.weight
