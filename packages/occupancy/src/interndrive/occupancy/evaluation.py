"""mmengine metric for `runner.test()` / validation (OpenMMLab glue over `metric.py` and `submission.py`).

`process` reduces every sample to its 18×18 confusion matrix right away (one small entry per sample in
`self.results`, as `SceneContiguousSampler` / the ordered evaluation loop expect), so memory does not
grow with predictions. With `format_only=True` it writes `<submission_path>/<token>.npz` instead (and
zips the folder at the end when `submission_path` ends with `.zip`).

Each data sample must carry `pred_occ` ((200, 200, 16) class ids, tensor or array) and the metainfo
`token`; the ground truth is taken from the sample (`voxel_semantics`, `mask_camera`, `mask_lidar`,
attached by `LoadOccupancyGT` + `PackOccInputs`) or else loaded from its metainfo `occ_gt_path`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mmdet3d.registry import METRICS
from mmengine.evaluator import BaseMetric

from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.formats import load_labels
from interndrive.occupancy.metric import OccupancyMIoU, confusion_matrix, frame_fscore
from interndrive.occupancy.submission import pack_submission, save_prediction


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, 'detach') else np.asarray(value)


@METRICS.register_module()
class OccupancyMetric(BaseMetric):
    """Challenge mIoU (camera mask) and optional F-score over the test / val set.

    Args:
        mask: 'camera' (challenge protocol), 'lidar' or 'none'.
        fscore: Also compute the F-score (KD-tree per frame; slower).
        format_only: Write the submission instead of scoring.
        submission_path: Folder (or `.zip`) for `format_only`.
        collect_device: As mmengine's BaseMetric.
        prefix: Metric name prefix (default none: keys are 'mIoU', class names, 'F-score').
    """

    default_prefix = None

    def __init__(
        self,
        mask: str = 'camera',
        fscore: bool = False,
        format_only: bool = False,
        submission_path: str | None = None,
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        OccupancyMIoU(mask)  # validates `mask`
        if format_only and not submission_path:
            raise OccupancyDataError('OccupancyMetric: format_only=True needs submission_path')
        self.mask = mask
        self.fscore = fscore
        self.format_only = format_only
        self.submission_path = submission_path

    @property
    def _submission_folder(self) -> Path:
        path = Path(self.submission_path)
        return path.with_suffix('') if path.suffix == '.zip' else path

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            token = sample.get('token') or sample.get('metainfo', {}).get('token')
            if 'pred_occ' not in sample:
                raise OccupancyDataError(f'OccupancyMetric: sample {token} has no pred_occ output')
            pred = _numpy(sample['pred_occ']).astype(np.uint8)
            if self.format_only:
                save_prediction(self._submission_folder, token, pred)
                self.results.append({'token': token})
                continue
            if 'voxel_semantics' in sample:
                gt = _numpy(sample['voxel_semantics'])
                masks = {
                    'camera': _numpy(sample['mask_camera']),
                    'lidar': _numpy(sample['mask_lidar']),
                }
            else:
                labels = load_labels(sample['occ_gt_path'])
                gt, masks = (
                    labels.semantics,
                    {'camera': labels.mask_camera, 'lidar': labels.mask_lidar},
                )
            mask = masks.get(self.mask)
            entry = {'token': token, 'confusion': confusion_matrix(pred, gt, mask)}
            if self.fscore:
                entry['fscore'] = np.asarray(frame_fscore(pred, gt, mask))
            self.results.append(entry)

    def compute_metrics(self, results: list) -> dict[str, float]:
        if self.format_only:
            if Path(self.submission_path).suffix == '.zip':
                pack_submission(self._submission_folder, self.submission_path)
            return {}
        metric = OccupancyMIoU(self.mask)
        for entry in results:
            metric.confusion += entry['confusion']
            metric.num_frames += 1
        metrics = metric.compute()
        if self.fscore and results:
            accuracy, completeness, fscore = np.mean([entry['fscore'] for entry in results], axis=0)
            metrics.update({'F-score': fscore, 'accuracy': accuracy, 'completeness': completeness})
        return metrics
