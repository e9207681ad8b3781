"""Synthetic model inputs for the openlane model tests (small images, the real camera rig)."""

from __future__ import annotations

import numpy as np
import torch

from interndrive.openlane.constants import CAMERAS
from interndrive.openlane.image_ops import lidar2img
from interndrive.openlane.synthetic import camera_calibration


def make_batch(
    batch: int = 1,
    height: int = 64,
    width: int = 96,
    num_lanes: int = 5,
    num_tes: int = 2,
    seed: int = 0,
) -> tuple[dict, list]:
    """(inputs, data_samples) like `PackOpenLaneV2Inputs` output after collation: 7 views padded to
    (height, width), a portrait front view of width ≈ 0.75·height, random GT in the real ranges."""
    from mmdet3d.structures import Det3DDataSample

    gen = torch.Generator().manual_seed(seed)
    scale = height / 1550
    to_img = []
    for camera in CAMERAS:
        calib = camera_calibration(camera, scale)
        to_img.append(
            lidar2img(
                np.asarray(calib['intrinsic']['K']),
                np.asarray(calib['extrinsic']['rotation']),
                np.asarray(calib['extrinsic']['translation']),
            )
        )
    front = (height, round(height * 1550 / 2048))
    samples = []
    for b in range(batch):
        sample = Det3DDataSample()
        sample.set_metainfo(
            dict(
                token=('val', f'{b:05d}', str(315967376859506000 + b)),
                lidar2img=np.stack(to_img),
                img_shape=[front] + [(round(width * 1550 / 2048), width)] * 6,
                pad_shape=[(height, width)] * 7,
                can_bus=np.zeros(18),
                scale_factor=(1.0, 1.0),
            )
        )
        start = torch.rand(num_lanes, 1, 3, generator=gen) * torch.tensor(
            [60.0, 40.0, 1.0]
        ) - torch.tensor([45.0, 20.0, 0.5])
        steps = torch.linspace(0, 1, 5)[:, None] * torch.tensor([20.0, 2.0, 0.0])
        sample.gt_lc = (start + steps).reshape(num_lanes, 15)
        xy = torch.rand(num_tes, 2, generator=gen) * torch.tensor([front[1] * 0.6, front[0] * 0.4])
        sample.gt_te = torch.cat([xy, xy + 6.0], 1)
        sample.gt_te_labels = torch.randint(0, 13, (num_tes,), generator=gen)
        sample.gt_topology_lclc = torch.diag(torch.ones(num_lanes - 1), 1)
        lcte = torch.zeros(num_lanes, num_tes)
        lcte[0, :] = 1
        sample.gt_topology_lcte = lcte
        samples.append(sample)
    images = torch.randn(batch, 7, 3, height, width, generator=gen)
    return {'img': images}, samples
