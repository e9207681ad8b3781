"""`AV2MapDataset`: the challenge annotation file as an mmengine dataset (OpenMMLab adapter)."""

from __future__ import annotations

import os.path as osp
from typing import Any, ClassVar

import numpy as np
from mmdet3d.registry import DATASETS
from mmengine.dataset import BaseDataset

from ..annotations import iter_frames, load_annotations
from ..constants import CAMERAS, CAT2ID, CLASSES
from .multiview import ego2img


@DATASETS.register_module()
class AV2MapDataset(BaseDataset):
    """Frames of a `{segment: [frame]}` annotation file.

    Args:
        ann_file: Annotation .json (validated on load; errors name the file and the frame).
        data_root: Folder the frames' `image_path`s are relative to.
        pipeline: Transforms.
        test_mode: Without map ground truth (the test split has none).
        interval: Keep every `interval`-th frame.
        **kwargs: Passed to `mmengine.dataset.BaseDataset`.
    """

    METAINFO: ClassVar[dict[str, Any]] = {'classes': CLASSES, 'cameras': CAMERAS}

    def __init__(
        self, ann_file: str, data_root: str = '', interval: int = 1, **kwargs: Any
    ) -> None:
        self.interval = interval
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict[str, Any]]:
        # the test split may have no map annotations: only required when they are used
        ann = load_annotations(self.ann_file, require_map=not self.test_mode)
        frames = list(iter_frames(ann))[:: self.interval]
        out = []
        for frame in frames:
            cams = [frame['sensor'][c] for c in CAMERAS]
            info: dict[str, Any] = {
                'token': frame['timestamp'],
                'segment_id': frame['segment_id'],
                'img_filenames': [osp.join(self.data_root, c['image_path']) for c in cams],
                'cam_intrinsics': [np.asarray(c['intrinsic'], dtype=np.float64) for c in cams],
                'cam_extrinsics': [np.asarray(c['extrinsic'], dtype=np.float64) for c in cams],
                'ego2img': [ego2img(c['intrinsic'], c['extrinsic']) for c in cams],
                'ego2global_translation': np.asarray(frame['pose']['ego2global_translation']),
                'ego2global_rotation': np.asarray(frame['pose']['ego2global_rotation']),
            }
            if not self.test_mode:
                info['map_geoms'] = {
                    CAT2ID[c]: [
                        np.asarray(v, dtype=np.float64)[:, :3] for v in frame['annotation'][c]
                    ]
                    for c in CLASSES
                }
            out.append(info)
        return out
