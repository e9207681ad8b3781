"""Voxel decoder of BEVFormer-Occ: BEV features → (x, y, z, class) logits, and the occupancy loss.

Upstream `TransformerOcc` with `use_3d=True`: the BEV map `(B, C, H, W)` is read as a volume of
`C / pillar_h` channels × `pillar_h` heights (channel c is feature c // pillar_h at height
c % pillar_h), two Conv3d(3)-BN3d-ReLU blocks make 32 channels, and a
per-voxel MLP (Linear 32→64, Softplus, Linear 64→num_classes) gives the logits. The output is
permuted to `(B, X, Y, Z, classes)`, the `semantics[x, y, z]` order of Occ3D.

When the BEV grid is coarser than the ground-truth grid (the tiny CPU config), the logits are
upsampled trilinearly to `occ_size`; at the reference size this is skipped.

Pure PyTorch (no mmcv): module names follow mmcv's ConvModule (`conv`, `bn`) so upstream decoder
weights map one to one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Conv3dBlock(nn.Module):
    """Conv3d(k3, p1, no bias) → BatchNorm3d → ReLU (mmcv `ConvModule` with `norm_cfg=BN3d`)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.bn(self.conv(x)))


class OccupancyDecoder(nn.Module):
    """BEV features → per-voxel class logits.

    Args:
        embed_dims: Channels of the BEV features (must be divisible by `pillar_h`).
        pillar_h: Voxel layers along z read out of the channels (Occ3D: 16).
        num_classes: Output classes (Occ3D: 18, 17 = free).
        out_dim: Channels after the Conv3d blocks (upstream: 32).
        occ_size: `(X, Y, Z)` of the ground-truth grid; logits are upsampled to it when the BEV is
            coarser. None keeps the BEV resolution.
    """

    def __init__(
        self,
        embed_dims: int = 256,
        pillar_h: int = 16,
        num_classes: int = 18,
        out_dim: int = 32,
        occ_size: Sequence[int] | None = (200, 200, 16),
    ) -> None:
        super().__init__()
        if embed_dims % pillar_h != 0:
            raise ValueError(
                f'OccupancyDecoder: embed_dims ({embed_dims}) must be divisible by pillar_h ({pillar_h})'
            )
        if occ_size is not None and (len(occ_size) != 3 or occ_size[2] != pillar_h):
            raise ValueError(
                f'OccupancyDecoder: occ_size must be (X, Y, Z={pillar_h}), got {tuple(occ_size)}'
            )
        self.embed_dims = embed_dims
        self.pillar_h = pillar_h
        self.num_classes = num_classes
        self.occ_size = tuple(occ_size) if occ_size is not None else None
        in_channels = embed_dims // pillar_h
        self.decoder = nn.Sequential(
            Conv3dBlock(in_channels, out_dim), Conv3dBlock(out_dim, out_dim)
        )
        self.predicter = nn.Sequential(
            nn.Linear(out_dim, out_dim * 2), nn.Softplus(), nn.Linear(out_dim * 2, num_classes)
        )

    def forward(self, bev_image: Tensor) -> Tensor:
        """`(B, C, bev_h, bev_w)` (rows = y, columns = x) → `(B, X, Y, Z, num_classes)` logits."""
        bs, channels, bev_h, bev_w = bev_image.shape
        if channels != self.embed_dims:
            raise ValueError(
                f'OccupancyDecoder: expected {self.embed_dims} BEV channels, got {channels}'
            )
        volume = bev_image.reshape(bs, channels // self.pillar_h, self.pillar_h, bev_h, bev_w)
        volume = self.decoder(volume)  # (B, out_dim, Z, Y, X)
        logits = self.predicter(volume.permute(0, 4, 3, 2, 1))  # (B, X, Y, Z, classes)
        if self.occ_size is not None and tuple(logits.shape[1:4]) != self.occ_size:
            logits = F.interpolate(
                logits.permute(0, 4, 1, 2, 3), size=self.occ_size, mode='trilinear',
                align_corners=False,
            ).permute(0, 2, 3, 4, 1)  # fmt: skip
        return logits


def occupancy_loss(
    logits: Tensor,
    voxel_semantics: Tensor,
    mask_camera: Tensor | None = None,
    num_classes: int = 18,
    class_weight: Tensor | None = None,
) -> Tensor:
    """Cross entropy over voxels: plain mean (upstream `use_mask=False`) or camera-mask weighted.

    With `mask_camera`, each voxel is weighted by its 0/1 visibility and the sum is divided by the
    number of visible voxels (upstream `use_mask=True`, avg_factor = mask sum): invisible voxels,
    which the metric ignores, no longer pull the model towards `free`.

    Args:
        logits: `(..., num_classes)` raw scores.
        voxel_semantics: `(...)` class ids in `[0, num_classes)`.
        mask_camera: Optional `(...)` 0/1 weights.
        num_classes: Number of classes (labels are checked against it).
        class_weight: Optional `(num_classes,)` per-class weights (mmdet semantics: they scale the
            per-voxel loss; the average is still over voxels).

    Returns:
        Scalar loss.
    """
    labels = voxel_semantics.reshape(-1).long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f'occupancy_loss: labels must be in [0, {num_classes}), got [{int(labels.min())}, '
            f'{int(labels.max())}]'
        )
    flat = logits.reshape(-1, num_classes).float()
    per_voxel = F.cross_entropy(flat, labels, weight=None, reduction='none')
    if class_weight is not None:
        per_voxel = per_voxel * class_weight.to(per_voxel)[labels]
    if mask_camera is None:
        return per_voxel.mean()
    weight = mask_camera.reshape(-1).to(per_voxel.dtype)
    # Like mmdet's avg_factor: a batch without any visible voxel gives 0, not NaN.
    return (per_voxel * weight).sum() / weight.sum().clamp(min=torch.finfo(per_voxel.dtype).eps)
