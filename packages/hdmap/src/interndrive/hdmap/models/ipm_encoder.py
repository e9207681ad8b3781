"""IPM encoder of VectorMapNet: 7 camera images → one 100 × 200 BEV feature map.

Backbone (InternImage-S or ResNet-50) → FPN (4 levels, strides 4..32) → upsample every level to stride 4
and sum → inverse perspective mapping onto horizontal planes at fixed heights → Conv3×3 fusion.
Device-agnostic: every grid is built on the features' device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


class UpsampleBlock(nn.Module):
    """Conv3×3 → GroupNorm → ReLU → bilinear ×2 (align_corners=True, as upstream)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # The conv keeps its bias, as upstream's: GroupNorm with several channels per group does not
        # cancel a per-channel bias, so dropping it would make released checkpoints unloadable.
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.GroupNorm(min(32, out_channels), out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.norm(self.conv(x)))
        return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=True)


class MultiLevelUpsample(nn.Module):
    """Brings FPN level i (stride 4·zoom_size[i]) to stride 4 with log2(zoom) blocks; sums the levels."""

    def __init__(
        self,
        zoom_size: Sequence[int] = (1, 2, 4, 8),
        in_channels: int = 128,
        out_channels: int = 128,
    ) -> None:
        super().__init__()
        self.levels = nn.ModuleList()
        for zoom in zoom_size:
            steps = round(math.log2(zoom))
            if 2**steps != zoom:
                raise ValueError(
                    f'MultiLevelUpsample: zoom_size entries must be powers of 2, got {zoom}'
                )
            if steps == 0 and in_channels == out_channels:
                self.levels.append(nn.Identity())
                continue
            blocks = [UpsampleBlock(in_channels if i == 0 else out_channels, out_channels)
                      for i in range(steps)]  # fmt: skip
            self.levels.append(
                nn.Sequential(*blocks) if blocks else nn.Conv2d(in_channels, out_channels, 1)
            )

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        if len(feats) != len(self.levels):
            raise ValueError(
                f'MultiLevelUpsample: {len(feats)} levels given, {len(self.levels)} expected'
            )
        out = self.levels[0](feats[0])
        for level, feat in zip(self.levels[1:], feats[1:], strict=True):
            out = out + level(feat)
        return out


def plane_grid(
    xbound: Sequence[float], ybound: Sequence[float], heights: Sequence[float]
) -> Tensor:
    """(P, ny, nx, 3) ego points of the IPM planes: rows follow y, columns x.

    Upstream uses inclusive `linspace` endpoints (§7.24: not cell centres); kept, the BEV layout is then
    identical to the released models'.
    """
    nx = round((xbound[1] - xbound[0]) / xbound[2])
    ny = round((ybound[1] - ybound[0]) / ybound[2])
    xs = torch.linspace(xbound[0], xbound[1], nx, dtype=torch.float64)
    ys = torch.linspace(ybound[0], ybound[1], ny, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    planes = [torch.stack([xx, yy, torch.full_like(xx, float(h))], dim=-1) for h in heights]
    return torch.stack(planes).float()


def ipm_sample(
    feats: Tensor, ego2img: Tensor, points: Tensor, pad_hw: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """Samples camera features at ego points and averages over the cameras that see them.

    Args:
        feats: (B, N, C, h, w) image features covering the padded image (stride pad/h).
        ego2img: (B, N, 4, 4) ego → pixel projection of the padded images.
        points: (P, ny, nx, 3) ego points.
        pad_hw: (H, W) of the padded image in pixels.

    Returns:
        (B, C, P, ny, nx) features (0 where no camera sees the point) and the (B, P, ny, nx) camera count.
    """
    b, n, c, h, w = feats.shape
    p, ny, nx, _ = points.shape
    pts = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1).reshape(1, 1, -1, 4)
    cam = torch.einsum('bnij,bnkj->bnki', ego2img.to(feats.dtype), pts.to(feats.dtype))
    depth = cam[..., 2]
    uv = cam[..., :2] / depth.clamp(min=1e-5).unsqueeze(-1)
    size = torch.tensor([pad_hw[1], pad_hw[0]], dtype=feats.dtype, device=feats.device)
    grid = uv / size * 2 - 1  # align_corners=False: -1/1 are the padded image's outer pixel edges
    valid = (depth > 1e-9) & (grid.abs() < 1).all(dim=-1)
    sampled = F.grid_sample(
        feats.reshape(b * n, c, h, w), grid.reshape(b * n, 1, -1, 2), align_corners=False
    ).reshape(b, n, c, -1)
    weight = valid.to(feats.dtype).unsqueeze(2)
    count = weight.sum(dim=1)
    out = (sampled * weight).sum(dim=1) / count.clamp(min=1.0)
    return out.reshape(b, c, p, ny, nx), count.reshape(b, p, ny, nx)


@MODELS.register_module()
class IPMEncoder(BaseModule):
    """Camera images → BEV features by inverse perspective mapping onto `heights` planes.

    Args:
        img_backbone: Config of the image backbone (e.g. `type='InternImage'`, mmdet `ResNet`).
        img_neck: Config of the FPN (mmdet `FPN`).
        upsample: `MultiLevelUpsample` arguments (zoom_size, in_channels, out_channels).
        xbound: (min, max, step) of the BEV x axis in metres (forward).
        ybound: (min, max, step) of the BEV y axis in metres (left).
        heights: Plane heights in metres (ego frame).
        out_channels: BEV channels.
        num_cam: Cameras per sample.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        img_backbone: dict,
        img_neck: dict,
        upsample: dict | None = None,
        xbound: Sequence[float] = (-30.0, 30.0, 0.3),
        ybound: Sequence[float] = (-15.0, 15.0, 0.3),
        heights: Sequence[float] = (-1.1, 0.0, 0.5, 1.1),
        out_channels: int = 128,
        num_cam: int = 7,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck)
        upsample = dict(upsample or {})
        self.upsample = MultiLevelUpsample(**upsample)
        feat_ch = upsample.get('out_channels', 128)
        self.num_cam = num_cam
        self.heights = tuple(float(h) for h in heights)
        self.register_buffer('planes', plane_grid(xbound, ybound, heights), persistent=False)
        # per plane: sampled features + the plane's xyz coordinates, (C + 3) x planes channels
        self.outconv = nn.Conv2d((feat_ch + 3) * len(self.heights), out_channels, 3, padding=1)

    @property
    def bev_shape(self) -> tuple[int, int]:
        return int(self.planes.shape[1]), int(self.planes.shape[2])

    def image_features(self, imgs: Tensor) -> Tensor:
        """(B, N, 3, H, W) → (B, N, C, H/4, W/4)."""
        b, n = imgs.shape[:2]
        feats = self.img_neck(self.img_backbone(imgs.flatten(0, 1)))
        fused = self.upsample(list(feats))
        return fused.reshape(b, n, *fused.shape[1:])

    def forward(self, imgs: Tensor, ego2img: Tensor) -> Tensor:
        """(B, N, 3, H, W) padded images and (B, N, 4, 4) projections → (B, out_channels, ny, nx)."""
        if imgs.dim() != 5 or imgs.shape[1] != self.num_cam:
            raise ValueError(
                f'IPMEncoder: images must be (B, {self.num_cam}, 3, H, W), got {tuple(imgs.shape)}'
            )
        feats = self.image_features(imgs)
        sampled, _ = ipm_sample(feats, ego2img, self.planes, imgs.shape[-2:])
        b, _, _p, ny, nx = sampled.shape
        coords = self.planes.permute(3, 0, 1, 2).unsqueeze(0).expand(b, -1, -1, -1, -1)
        x = torch.cat([sampled, coords.to(sampled.dtype)], dim=1)  # (B, C+3, P, ny, nx)
        # channel c·P + p = feature c of plane p (channel-major), upstream's `flatten(1, 2)` order:
        # outconv's input channels then line up with released checkpoints
        return self.outconv(x.reshape(b, -1, ny, nx))
