"""BEV grid geometry: reference points, camera projection, ego-motion alignment of the previous BEV.

Pure PyTorch (no mmcv/mmdet): everything here is plain tensor maths that the attention modules and
the constructor call.

Conventions (identical to upstream BEVFormer, so released checkpoints keep working):

* The BEV grid has `bev_h` rows and `bev_w` columns over `pc_range = [x_min, y_min, z_min, x_max,
  y_max, z_max]` (metres, in the frame that `lidar2img` maps from). Column `j` is metric
  `x = x_min + (j + 0.5) * (x_max - x_min) / bev_w`, row `i` is `y = y_min + (i + 0.5) * ...`.
  Flattened BEV queries are ordered row-major: query `i * bev_w + j`.
* Normalised 2-D reference points are `(x, y) = ((j + 0.5) / bev_w, (i + 0.5) / bev_h)`, the
  convention of mmcv's deformable attention (`grid_sample` with `align_corners=False`).
* Pixel coordinates of a BEV image (used by the rotation) put the centre of pixel `(i, j)` at
  `(x, y) = (j + 0.5, i + 0.5)`; `(bev_w / 2, bev_h / 2)` is the geometric centre of the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

# Which way the BEV grid's axes point in the ego vehicle frame (x forward, y left, z up):
# - 'forward_left': grid +x = ego forward, grid +y = ego left. This is the frame of both
#   interndrive tasks (Occ3D ego frame through `ego2lidar`; AV2/OpenLane-V2 ego frame).
# - 'right_forward': grid +x = ego right, grid +y = ego forward (nuScenes LIDAR_TOP). Upstream
#   BEVFormer's shift formula assumes this frame; upstream OCC uses it although its grid is in the
#   ego frame, so reproducing the released occupancy checkpoint needs 'right_forward'.
BevAxes = Literal['forward_left', 'right_forward']
BEV_AXES: tuple[str, ...] = ('forward_left', 'right_forward')


def check_pc_range(pc_range: Sequence[float], name: str = 'pc_range') -> tuple[float, ...]:
    """Validates `[x_min, y_min, z_min, x_max, y_max, z_max]` and returns it as a tuple of floats."""
    values = tuple(float(v) for v in pc_range)
    if len(values) != 6:
        raise ValueError(
            f'{name} must have 6 values [x_min, y_min, z_min, x_max, y_max, z_max], got {list(pc_range)}'
        )
    if not (values[3] > values[0] and values[4] > values[1] and values[5] > values[2]):
        raise ValueError(f'{name} must have max > min on every axis, got {list(pc_range)}')
    return values


def bev_reference_points_2d(
    bev_h: int,
    bev_w: int,
    batch_size: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Normalised BEV cell centres for temporal self-attention.

    Args:
        bev_h: Number of BEV rows (y).
        bev_w: Number of BEV columns (x).
        batch_size: Leading batch dimension of the result.
        device: Device of the result.
        dtype: Dtype of the result.

    Returns:
        `(batch_size, bev_h * bev_w, 1, 2)` tensor of `(x, y)` in `(0, 1)`; the singleton axis is the
        number of BEV levels expected by the deformable attention.
    """
    ys = (torch.arange(bev_h, device=device, dtype=dtype) + 0.5) / bev_h
    xs = (torch.arange(bev_w, device=device, dtype=dtype) + 0.5) / bev_w
    ref_y, ref_x = torch.meshgrid(ys, xs, indexing='ij')
    ref = torch.stack((ref_x.reshape(-1), ref_y.reshape(-1)), dim=-1)
    return ref[None, :, None, :].expand(batch_size, -1, -1, -1).contiguous()


def bev_reference_points_3d(
    bev_h: int,
    bev_w: int,
    z_extent: float,
    num_points_in_pillar: int,
    batch_size: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Normalised 3-D anchors of every BEV pillar for spatial cross-attention.

    The heights follow upstream: `linspace(0.5, Z - 0.5, D) / Z` with `Z = z_max - z_min` in metres
    (so anchors keep 0.5 m from the top and bottom of the range, e.g. -1.8, -0.8, 0.2, 1.2 m for
    OpenLane-V2's [-2.3, 1.7] m and 4 anchors).

    Args:
        bev_h: Number of BEV rows (y).
        bev_w: Number of BEV columns (x).
        z_extent: Height of the range in metres (`pc_range[5] - pc_range[2]`); must exceed 1 m.
        num_points_in_pillar: Number of height anchors D per pillar.
        batch_size: Leading batch dimension of the result.
        device: Device of the result.
        dtype: Dtype of the result.

    Returns:
        `(batch_size, D, bev_h * bev_w, 3)` tensor of normalised `(x, y, z)` in `(0, 1)`.
    """
    if num_points_in_pillar < 1:
        raise ValueError(f'num_points_in_pillar must be >= 1, got {num_points_in_pillar}')
    if z_extent <= 1.0:
        raise ValueError(
            f'the z extent of pc_range must exceed 1 m (anchors are placed 0.5 m inside it), got {z_extent}'
        )
    zs = (
        torch.linspace(0.5, z_extent - 0.5, num_points_in_pillar, device=device, dtype=dtype)
        / z_extent
    )
    ys = (torch.arange(bev_h, device=device, dtype=dtype) + 0.5) / bev_h
    xs = (torch.arange(bev_w, device=device, dtype=dtype) + 0.5) / bev_w
    z, y, x = torch.meshgrid(zs, ys, xs, indexing='ij')
    ref = torch.stack((x, y, z), dim=-1).reshape(num_points_in_pillar, bev_h * bev_w, 3)
    return ref[None].expand(batch_size, -1, -1, -1).contiguous()


def denormalize_points(points: Tensor, pc_range: Sequence[float]) -> Tensor:
    """Maps normalised `(x, y, z)` in `[0, 1]` to metres inside `pc_range`."""
    lo = points.new_tensor(pc_range[:3])
    hi = points.new_tensor(pc_range[3:])
    return points * (hi - lo) + lo


def project_to_cameras(
    reference_points_3d: Tensor,
    pc_range: Sequence[float],
    lidar2img: Tensor,
    image_hw: Tensor,
    eps: float = 1e-5,
) -> tuple[Tensor, Tensor]:
    """Projects the normalised pillar anchors into every camera (upstream `point_sampling`).

    Always computed in float32 with autocast off: pixel coordinates of a 2048-wide image do not fit
    in half precision.

    Args:
        reference_points_3d: `(B, D, Q, 3)` normalised anchors from `bev_reference_points_3d`.
        pc_range: `[x_min, y_min, z_min, x_max, y_max, z_max]` in metres.
        lidar2img: `(B, N, 4, 4)` projection from the BEV frame to homogeneous pixels per camera.
        image_hw: `(B, N, 2)` image `(height, width)` in pixels that normalises the projection
            (the padded size when the features were computed on the padded image).
        eps: Minimum depth in front of the camera.

    Returns:
        `reference_points_cam`: `(N, B, Q, D, 2)` normalised `(u, v)`; meaningful where the mask is
        set. `bev_mask`: `(N, B, Q, D)` bool, True where the anchor lies in front of the camera and
        strictly inside the image.
    """
    with torch.autocast(device_type=reference_points_3d.device.type, enabled=False):
        points = denormalize_points(reference_points_3d.float(), pc_range)
        points = torch.cat((points, torch.ones_like(points[..., :1])), dim=-1)
        # (B, N, 4, 4) x (B, D, Q, 4) -> (N, B, Q, D, 4) without materialising repeated matrices.
        cam = torch.einsum('bnij,bdqj->nbqdi', lidar2img.float(), points)
        depth = cam[..., 2:3]
        in_front = depth > eps
        uv = cam[..., 0:2] / torch.clamp(depth, min=eps)
        hw = image_hw.float().permute(1, 0, 2)[:, :, None, None, :]  # (N, B, 1, 1, 2) as (h, w)
        uv = uv / hw.flip(-1)
        inside = (uv > 0.0).all(-1, keepdim=True) & (uv < 1.0).all(-1, keepdim=True)
        bev_mask = (in_front & inside).squeeze(-1)
        uv = torch.nan_to_num(uv)
    return uv, bev_mask


def ego_motion_bev_shift(
    delta_xy: Tensor,
    ego_yaw: Tensor,
    pc_range: Sequence[float],
    bev_axes: BevAxes = 'forward_left',
) -> Tensor:
    """Ego translation since the previous frame, in normalised BEV units of the current grid.

    A BEV cell at normalised position `p` in the current frame saw the same ground at `p + shift`
    of the (already rotated, see `rotate_bev`) previous BEV. For `bev_axes='right_forward'` this is
    numerically upstream BEVFormer's `shift_x, shift_y`.

    Args:
        delta_xy: `(B, 2)` translation of the ego vehicle in the global frame (CAN bus `[0:2]`).
        ego_yaw: `(B,)` current global yaw of the ego vehicle in radians (CAN bus `[-2]`).
        pc_range: `[x_min, y_min, z_min, x_max, y_max, z_max]` in metres.
        bev_axes: How the grid axes sit in the ego frame, see `BevAxes`.

    Returns:
        `(B, 2)` float64 CPU tensor: shift `(dx, dy)` in normalised grid units.
    """
    if bev_axes not in BEV_AXES:
        raise ValueError(f'bev_axes must be one of {BEV_AXES}, got {bev_axes!r}')
    delta_xy = delta_xy.detach().to('cpu', torch.float64)  # float64 on CPU: MPS has none
    yaw = ego_yaw.detach().to('cpu', torch.float64)
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    # Rotate the global displacement into the current ego frame (x forward, y left).
    forward = cos * delta_xy[:, 0] + sin * delta_xy[:, 1]
    left = -sin * delta_xy[:, 0] + cos * delta_xy[:, 1]
    if bev_axes == 'forward_left':
        grid_x, grid_y = forward, left
    else:
        grid_x, grid_y = -left, forward
    extent_x = pc_range[3] - pc_range[0]
    extent_y = pc_range[4] - pc_range[1]
    return torch.stack((grid_x / extent_x, grid_y / extent_y), dim=-1)


def ego_pixel_center(bev_h: int, bev_w: int, pc_range: Sequence[float]) -> tuple[float, float]:
    """Pixel coordinates `(x, y)` of the ego origin in the BEV image (the rotation centre)."""
    cx = (0.0 - pc_range[0]) / (pc_range[3] - pc_range[0]) * bev_w
    cy = (0.0 - pc_range[1]) / (pc_range[4] - pc_range[1]) * bev_h
    return cx, cy


def rotate_bev(
    bev: Tensor,
    angle_deg: Tensor,
    center: Sequence[float] | None = None,
    mode: Literal['nearest', 'bilinear'] = 'nearest',
) -> Tensor:
    """Rotates BEV images counter-clockwise (in grid axes) about `center`, zero-filling the corners.

    Output pixel `p` takes the input at `R(angle) (p - center) + center` in pixel coordinates, which
    is exactly `torchvision.transforms.functional.rotate(img, angle, center=center)` (the op upstream
    uses; torchvision is not usable here). For a yaw change of `angle` (positive = turned left) this
    brings the previous BEV into the current frame's orientation.

    Args:
        bev: `(B, C, H, W)` BEV images.
        angle_deg: `(B,)` rotation angles in degrees, one per sample (CAN bus `[-1]` as a delta).
        center: `(x, y)` pixel coordinates of the centre; None means the image centre `(W/2, H/2)`.
        mode: `'nearest'` (upstream/torchvision default) or `'bilinear'`.

    Returns:
        `(B, C, H, W)` rotated images, same dtype as `bev`.
    """
    if bev.dim() != 4:
        raise ValueError(f'rotate_bev expects a (B, C, H, W) tensor, got shape {tuple(bev.shape)}')
    batch, _, height, width = bev.shape
    # The sampling grid is built in float64 on the CPU (devices such as MPS have no float64) and
    # moved over once; it is only H·W·2 numbers.
    angle = torch.as_tensor(angle_deg).detach().reshape(-1).to('cpu', torch.float64)
    if angle.numel() != batch:
        raise ValueError(f'rotate_bev needs one angle per sample ({batch}), got {angle.numel()}')
    cx, cy = (width / 2.0, height / 2.0) if center is None else (float(center[0]), float(center[1]))
    rad = angle * (math.pi / 180.0)
    cos, sin = torch.cos(rad)[:, None, None], torch.sin(rad)[:, None, None]
    ys = torch.arange(height, dtype=torch.float64) + 0.5 - cy
    xs = torch.arange(width, dtype=torch.float64) + 0.5 - cx
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    src_x = cos * gx - sin * gy + cx
    src_y = sin * gx + cos * gy + cy
    # Pixel coordinates -> grid_sample's [-1, 1] with align_corners=False.
    grid = torch.stack((src_x / width * 2.0 - 1.0, src_y / height * 2.0 - 1.0), dim=-1)
    grid = grid.to(device=bev.device, dtype=torch.float32)
    with torch.autocast(device_type=bev.device.type, enabled=False):
        out = F.grid_sample(bev.float(), grid, mode=mode, padding_mode='zeros', align_corners=False)
    return out.to(bev.dtype)
