"""Occ3D-nuScenes dataset on mmengine / mmdet3d 1.4 (OpenMMLab glue over the converter's info files).

Training samples are temporal queues like upstream `NuSceneOcc.prepare_train_data`: the current frame
plus 3 frames drawn from the 4 before it (random order, one dropped, sorted), each run through the
pipeline and stacked to `inputs['img']` of shape (T, N_cam, 3, H, W). The returned data sample is the
current frame's (with its ground truth) and carries `metainfo['queue_metas']`, one dict per frame with
`prev_bev_exists` (False at the first frame and at every scene change) and `can_bus` whose position and
yaw angle are deltas to the previous frame of the queue (0 when there is no history).

Test samples are single frames with absolute `can_bus`; temporal state is the model's business, in
dataset order. `get_scene_ids()` lets `SceneContiguousSampler` keep every scene on one rank.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from mmdet3d.registry import DATASETS
from mmengine.dataset import BaseDataset

from interndrive.occupancy.constants import CAMERA_NAMES, CLASS_NAMES
from interndrive.occupancy.formats import load_infos


def _transform(translation: Any, rotation: Any) -> np.ndarray:
    from pyquaternion import Quaternion

    matrix = np.eye(4)
    matrix[:3, :3] = Quaternion(rotation).rotation_matrix
    matrix[:3, 3] = translation
    return matrix


def ego_yaw_degrees(rotation_wxyz: Any) -> float:
    """Heading of the ego car in [0, 360): angle of its x axis in the global frame (upstream
    `quaternion_yaw`, wrapped to positive like `NuSceneOcc.get_data_info`)."""
    from pyquaternion import Quaternion

    forward = Quaternion(rotation_wxyz).rotate(np.array([1.0, 0.0, 0.0]))
    angle = float(np.degrees(np.arctan2(forward[1], forward[0])))
    return angle + 360.0 if angle < 0 else angle


@DATASETS.register_module()
class OccupancyDataset(BaseDataset):
    """Per-sample infos of `interndrive occupancy convert` → pipeline inputs.

    Args:
        ann_file: Info pickle (relative paths are joined with `data_root`).
        data_root: nuScenes data root that the info's image paths are relative to.
        occ_root: Root of the `occ_gt_path` entries (default: `data_root`, as in the Occ3D release).
        queue_length: Frames per training sample (4 in the reference config; 1 = the current frame only,
            still packed with `queue_metas` so the model sees one format).
        load_interval: Keep every n-th sample (upstream option, for quick runs).
        pipeline: Transforms applied to every frame.
        test_mode: Single frames, no queue.
        **kwargs: Forwarded to mmengine's BaseDataset (e.g. `indices`, `serialize_data`).
    """

    METAINFO: ClassVar[dict[str, Any]] = {'classes': CLASS_NAMES}

    def __init__(
        self,
        ann_file: str,
        data_root: str,
        occ_root: str | None = None,
        queue_length: int = 4,
        load_interval: int = 1,
        pipeline: list | None = None,
        test_mode: bool = False,
        **kwargs: Any,
    ) -> None:
        if queue_length < 1:
            raise ValueError(f'queue_length must be at least 1, got {queue_length}')
        self.queue_length = queue_length
        self.load_interval = load_interval
        self.occ_root = occ_root
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            pipeline=pipeline or [],
            test_mode=test_mode,
            **kwargs,
        )

    def load_data_list(self) -> list[dict[str, Any]]:
        infos = load_infos(self.ann_file)['infos'][:: self.load_interval]
        return [self.parse_info(info) for info in infos]

    def parse_info(self, info: dict[str, Any]) -> dict[str, Any]:
        """Converts one converter info to the pipeline's input dict (paths absolute, matrices 4×4)."""
        root = Path(self.data_root)
        occ_root = Path(self.occ_root) if self.occ_root else root
        lidar2ego = _transform(info['lidar2ego_translation'], info['lidar2ego_rotation'])
        lidar2img, cam2img, lidar2cam, filenames = [], [], [], []
        for camera in CAMERA_NAMES:
            cam = info['cams'][camera]
            cam2lidar = np.eye(4)
            cam2lidar[:3, :3] = cam['sensor2lidar_rotation']
            cam2lidar[:3, 3] = cam['sensor2lidar_translation']
            to_cam = np.linalg.inv(cam2lidar)
            intrinsic = np.eye(4)
            intrinsic[:3, :3] = cam['cam_intrinsic']
            lidar2cam.append(to_cam)
            cam2img.append(intrinsic)
            lidar2img.append(intrinsic @ to_cam)
            filenames.append(str(root / cam['data_path']))
        can_bus = np.array(info['can_bus'], dtype=np.float64)
        can_bus[:3] = info['ego2global_translation']
        can_bus[3:7] = info['ego2global_rotation']
        yaw = ego_yaw_degrees(info['ego2global_rotation'])
        can_bus[-2] = np.radians(yaw)
        can_bus[-1] = yaw
        return {
            'token': info['token'],  # mmengine sets 'sample_idx' to the dataset index
            'scene_token': info['scene_token'],
            'frame_idx': info['frame_idx'],
            'timestamp': info['timestamp'] / 1e6,
            'img_filename': filenames,
            'lidar2img': lidar2img,
            'cam2img': cam2img,
            'lidar2cam': lidar2cam,
            'lidar2ego': lidar2ego,
            'ego2lidar': np.linalg.inv(lidar2ego),
            'can_bus': can_bus,
            'occ_gt_path': str(occ_root / info['occ_gt_path']) if info.get('occ_gt_path') else None,
        }

    def get_scene_ids(self) -> list[str]:
        return [self.get_data_info(i)['scene_token'] for i in range(len(self))]

    def queue_indices(self, index: int) -> list[int]:
        """Upstream's queue: 3 of the 4 previous indices (random, sorted) + `index`, clamped at 0."""
        candidates = list(range(index - self.queue_length, index))
        random.shuffle(candidates)
        chosen = [*sorted(candidates[1:]), index]
        return [max(0, i) for i in chosen]

    def prepare_data(self, index: int) -> Any:
        if self.test_mode:
            return self.pipeline(self.get_data_info(index))
        frames = []
        for i in self.queue_indices(index):
            packed = self.pipeline(self.get_data_info(i))
            if packed is None:
                return None  # mmengine refetches another index
            frames.append(packed)
        return self.union_queue(frames)

    @staticmethod
    def union_queue(frames: list[dict[str, Any]]) -> dict[str, Any]:
        """Stacks a queue of packed frames; makes `prev_bev_exists` and the can_bus deltas."""
        import torch

        queue_metas = []
        prev_scene, prev_pos, prev_angle = None, None, None
        for frame in frames:
            meta = copy.deepcopy(frame['data_samples'].metainfo)
            can_bus = np.array(meta['can_bus'], dtype=np.float64)
            position, angle = can_bus[:3].copy(), float(can_bus[-1])
            if meta['scene_token'] != prev_scene:
                meta['prev_bev_exists'] = False
                can_bus[:3] = 0.0
                can_bus[-1] = 0.0
            else:
                meta['prev_bev_exists'] = True
                can_bus[:3] -= prev_pos
                can_bus[-1] -= prev_angle
            prev_scene, prev_pos, prev_angle = meta['scene_token'], position, angle
            meta['can_bus'] = can_bus
            queue_metas.append(meta)
        sample = frames[-1]['data_samples']
        sample.set_metainfo({'queue_metas': queue_metas})
        images = torch.stack([frame['inputs']['img'] for frame in frames])
        return {'inputs': {'img': images}, 'data_samples': sample}
