"""Pure-torch geometry of the lane head (no OpenMMLab): Bézier control points ↔ normalised BEV.

Upstream `LCDeformableDETRHead` regresses, for each of the 5 control points, an xyz offset added to
the inverse sigmoid of the query's 3D reference point; the sigmoid of the sum is scaled to the point
cloud range. The 15-vector is (x0, y0, z0, x1, …, z4) in ego metres, the same layout as the
`gt_lc` targets of `OLV2ParameterizeLane`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """log(x / (1 - x)) with x clamped to [eps, 1 - eps] (Deformable DETR's helper)."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def decode_control_points(
    reg: Tensor, reference: Tensor, pc_range: Sequence[float], num_control: int
) -> Tensor:
    """Regression output + 3D reference → control points in metres.

    Args:
        reg: (..., 3·num_control) raw regression.
        reference: (..., 3) sigmoid-space reference point of each query.
        pc_range: (x_min, y_min, z_min, x_max, y_max, z_max).
        num_control: Control points per lane.

    Returns:
        (..., 3·num_control) control points (x, y, z per point) in ego metres.
    """
    shape = reg.shape
    reg = reg.reshape(*shape[:-1], num_control, 3)
    points = (reg + inverse_sigmoid(reference)[..., None, :]).sigmoid()
    low = reg.new_tensor(pc_range[:3])
    high = reg.new_tensor(pc_range[3:])
    return (points * (high - low) + low).reshape(shape)
