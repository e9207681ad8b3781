"""The mmengine OccupancyMetric (runner glue) against the plain streaming metric."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('mmdet3d.registry', reason='mmdet3d 1.4 (with mmcv ops) is not installed')
torch = pytest.importorskip('torch')

from interndrive.occupancy.constants import GRID_SHAPE  # noqa: E402
from interndrive.occupancy.errors import OccupancyDataError  # noqa: E402
from interndrive.occupancy.evaluation import OccupancyMetric  # noqa: E402
from interndrive.occupancy.formats import OccupancyLabels, save_labels  # noqa: E402
from interndrive.occupancy.metric import OccupancyFScore, OccupancyMIoU  # noqa: E402
from interndrive.occupancy.submission import validate_submission  # noqa: E402


def _frames(n: int):
    rng = np.random.default_rng(5)
    for i in range(n):
        gt = np.where(rng.random(GRID_SHAPE) < 0.7, 17, rng.integers(0, 17, GRID_SHAPE)).astype(
            np.uint8
        )
        pred = np.where(rng.random(GRID_SHAPE) < 0.5, gt, rng.integers(0, 18, GRID_SHAPE)).astype(
            np.uint8
        )
        masks = (
            (rng.random(GRID_SHAPE) < 0.1).astype(np.uint8),
            (rng.random(GRID_SHAPE) < 0.1).astype(np.uint8),
        )
        yield f'{i:032x}', pred, OccupancyLabels(gt, masks[0], masks[1])


def test_runner_metric_equals_streaming_metric(tmp_path) -> None:
    metric = OccupancyMetric(fscore=True)
    expected, expected_f = OccupancyMIoU(), OccupancyFScore()
    for index, (token, pred, labels) in enumerate(_frames(3)):
        sample = {'token': token, 'pred_occ': torch.from_numpy(pred)}
        if index == 0:  # ground truth attached by the pipeline
            sample.update(
                voxel_semantics=torch.from_numpy(labels.semantics),
                mask_camera=torch.from_numpy(labels.mask_camera),
                mask_lidar=torch.from_numpy(labels.mask_lidar),
            )
        else:  # ground truth read from occ_gt_path
            sample['occ_gt_path'] = str(save_labels(tmp_path / token / 'labels.npz', labels))
        metric.process(None, [sample])
        expected.update(pred, labels.semantics, labels.mask_camera)
        expected_f.update(pred, labels.semantics, labels.mask_camera)
    result = metric.evaluate(3)
    assert result['mIoU'] == expected.compute()['mIoU']
    assert result['F-score'] == pytest.approx(expected_f.compute()['F-score'], abs=1e-12)


def test_format_only_writes_a_valid_zip(tmp_path) -> None:
    metric = OccupancyMetric(format_only=True, submission_path=str(tmp_path / 'occ_submission.zip'))
    tokens = []
    for token, pred, _ in _frames(2):
        metric.process(None, [{'token': token, 'pred_occ': torch.from_numpy(pred).long()}])
        tokens.append(token)
    assert metric.evaluate(2) == {}
    assert validate_submission(tmp_path / 'occ_submission.zip', tokens).ok


def test_configuration_errors() -> None:
    with pytest.raises(OccupancyDataError, match='submission_path'):
        OccupancyMetric(format_only=True)
    with pytest.raises(ValueError, match='mask'):
        OccupancyMetric(mask='radar')
    with pytest.raises(OccupancyDataError, match='no pred_occ'):
        OccupancyMetric().process(None, [{'token': 'a' * 32}])
