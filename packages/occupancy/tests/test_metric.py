"""The fast streaming metric against hand-computed cases and the naive official-path reference."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest

import interndrive.occupancy.metric as metric_module
from interndrive.occupancy.constants import CLASS_NAMES, FREE_LABEL, NUM_CLASSES
from interndrive.occupancy.metric import (
    OccupancyFScore,
    OccupancyMIoU,
    confusion_matrix,
    format_metrics,
    frame_fscore,
    mean_iou,
)
from interndrive.occupancy.metric_reference import ReferenceMIoU, reference_fscore_frame

HAS_NUMBA = importlib.util.find_spec('numba') is not None


@pytest.fixture(
    autouse=True,
    params=[
        'numpy',
        pytest.param(
            'numba', marks=pytest.mark.skipif(not HAS_NUMBA, reason='numba is not installed')
        ),
    ],
)
def backend(request, monkeypatch) -> str:
    """Every test here runs on both implementations of the masked counts."""
    monkeypatch.setattr(metric_module, 'BACKEND', request.param)
    assert metric_module.active_backend() == request.param
    return request.param


def _hand_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gt = np.array([0, 0, 4, 4, 17, 17, 11, 255, 3, 3], np.uint8)
    pred = np.array([0, 4, 4, 4, 17, 11, 11, 0, 3, 3], np.uint8)
    mask = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], np.uint8)
    return pred, gt, mask


def test_hand_computed_case() -> None:
    pred, gt, mask = _hand_case()
    metric = OccupancyMIoU()
    metric.update(pred, gt, mask_camera=mask)
    result = metric.compute()
    # (gt, pred) pairs counted: (0,0) (0,4) (4,4)x2 (17,17) (17,11) (11,11); 255 and masked-out skipped.
    assert result['others'] == pytest.approx(50.0)  # 1 / (2 + 1 - 1)
    assert result['car'] == pytest.approx(200 / 3)  # 2 / (2 + 3 - 2)
    assert result['driveable_surface'] == pytest.approx(50.0)  # 1 / (1 + 2 - 1)
    assert result['free'] == pytest.approx(50.0)  # in the matrix, not in the mean
    assert math.isnan(result['bus'])  # only present in masked-out voxels
    assert result['mIoU'] == pytest.approx(100 * 5 / 9)  # mean of 1/2, 2/3, 1/2
    # Occupied vs free: 5 occupied GT voxels all predicted occupied, 1 free voxel predicted occupied.
    assert result['IoU_geometry'] == pytest.approx(100 * 5 / 6)


def test_confusion_is_accumulated_over_frames_not_averaged() -> None:
    # Frame A: car perfect on 1 voxel; frame B: car predicted on 3 voxels of which 1 is right.
    a_gt, a_pred = np.array([4, 17], np.uint8), np.array([4, 17], np.uint8)
    b_gt, b_pred = np.array([4, 17, 17, 17], np.uint8), np.array([4, 4, 4, 17], np.uint8)
    metric = OccupancyMIoU(mask='none')
    metric.update(a_pred, a_gt)
    metric.update(b_pred, b_gt)
    # Accumulated: car tp 2, gt 2, pred 4 -> 2/4. The per-frame mean would be (1 + 1/3) / 2.
    assert metric.compute()['car'] == pytest.approx(50.0)
    assert metric.compute()['mIoU'] == pytest.approx(50.0)
    assert metric.num_frames == 2


def _random_frames(seed: int, n: int, shape=(200, 200, 16)):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        gt = rng.integers(0, NUM_CLASSES, shape, dtype=np.uint8)
        gt[rng.random(shape) < 0.6] = FREE_LABEL
        pred = np.where(rng.random(shape) < 0.5, gt, rng.integers(0, NUM_CLASSES, shape)).astype(
            np.uint8
        )
        mask = (rng.random(shape) < 0.1).astype(np.uint8)
        yield pred, gt, mask


@pytest.mark.parametrize('shape', [(200, 200, 16), (7, 5, 3)])
def test_identical_to_reference_on_random_frames(shape) -> None:
    fast, ref = OccupancyMIoU(), ReferenceMIoU()
    for pred, gt, mask in _random_frames(0, 3, shape):
        fast.update(pred, gt, mask_camera=mask)
        ref.add_batch(pred, gt, mask)
    np.testing.assert_array_equal(fast.confusion, ref.hist)
    ref_iou, ref_miou = ref.count_miou()
    result = fast.compute()
    assert result['mIoU'] == ref_miou * 100  # bit-identical, not approximately equal
    for index in range(17):
        np.testing.assert_equal(result[CLASS_NAMES[index]], ref_iou[index] * 100)


def test_batched_update_equals_per_frame_updates() -> None:
    frames = list(_random_frames(1, 4))
    batched, single = OccupancyMIoU(), OccupancyMIoU()
    batched.update(*(np.stack(x) for x in zip(*frames[:3])))
    batched.update(*frames[3])
    for pred, gt, mask in frames:
        single.update(pred, gt, mask_camera=mask)
    np.testing.assert_array_equal(batched.confusion, single.confusion)
    assert batched.num_frames == 4


def test_ground_truth_255_and_wider_dtypes_are_ignored_like_official() -> None:
    rng = np.random.default_rng(2)
    gt = rng.integers(0, NUM_CLASSES, (6, 6, 8)).astype(np.int64)
    gt[0] = 255
    gt[1] = -1
    pred = rng.integers(0, NUM_CLASSES, gt.shape).astype(np.int32)
    mask = np.ones(gt.shape, np.uint8)
    ref = ReferenceMIoU()
    ref.add_batch(pred, gt, mask)
    np.testing.assert_array_equal(confusion_matrix(pred, gt, mask), ref.hist)


def test_non_contiguous_inputs_and_mask_dtypes() -> None:
    pred, gt, mask = next(_random_frames(6, 1, shape=(24, 16, 8)))
    expected = ReferenceMIoU()
    expected.add_batch(pred, gt, mask)
    for variant in (
        (np.asfortranarray(pred), np.asfortranarray(gt), np.asfortranarray(mask)),
        (pred, gt, mask.astype(bool)),
        (pred, gt, mask.astype(np.float32)),
        (pred, gt, mask * 7),  # any nonzero value counts as visible
    ):
        np.testing.assert_array_equal(confusion_matrix(*variant), expected.hist)


def test_uint8_mask_is_not_used_as_integer_index() -> None:
    pred, gt, mask = _hand_case()
    assert confusion_matrix(pred, gt, mask).sum() == 7  # 8 masked voxels, one has gt 255


def test_real_frame_identical_to_reference(real_labels_path) -> None:
    labels = np.load(real_labels_path)
    gt, mask = labels['semantics'], labels['mask_camera']
    rng = np.random.default_rng(3)
    noisy = np.where(rng.random(gt.shape) < 0.3, rng.integers(0, 18, gt.shape), gt).astype(np.uint8)
    for pred in (gt, noisy):
        fast, ref = OccupancyMIoU(), ReferenceMIoU()
        fast.update(pred, gt, mask_camera=mask)
        ref.add_batch(pred, gt, mask)
        np.testing.assert_array_equal(fast.confusion, ref.hist)
        assert fast.compute()['mIoU'] == ref.count_miou()[1] * 100
    assert confusion_matrix(gt, gt, mask).sum() == 43_355  # mask_camera ones (REFERENCE.md C.2)
    perfect = OccupancyMIoU()
    perfect.update(gt, gt, mask_camera=mask)
    assert perfect.compute()['mIoU'] == 100.0
    if importlib.util.find_spec('sklearn') is not None:  # F-score vs the official KD-tree code
        assert frame_fscore(noisy, gt, mask) == reference_fscore_frame(noisy, gt, mask)
        assert frame_fscore(gt, gt, mask)[2] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ('kwargs', 'error', 'match'),
    [
        (dict(pred=np.zeros((2, 2), np.uint8), gt=np.zeros((2, 3), np.uint8)), ValueError, 'shape'),
        (
            dict(pred=np.full((2, 2), 18, np.uint8), gt=np.zeros((2, 2), np.uint8)),
            ValueError,
            r'\[0, 17\]',
        ),
        (dict(pred=np.zeros((2, 2), np.float32), gt=np.zeros((2, 2), np.uint8)), TypeError, 'pred'),
        (  # out-of-range prediction in a scored voxel, on the masked word-gather path
            dict(
                pred=np.eye(8, dtype=np.uint8) * 18,
                gt=np.zeros((8, 8), np.uint8),
                mask=np.eye(8, dtype=np.uint8),
            ),
            ValueError,
            r'pred: class ids must lie in \[0, 17\], found 18',
        ),
        (
            dict(pred=np.zeros((2, 2), np.uint8), gt=np.zeros((2, 2), np.uint8), mask=np.ones(3)),
            ValueError,
            'mask',
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        confusion_matrix(**kwargs)


def test_missing_camera_mask_is_an_error() -> None:
    with pytest.raises(ValueError, match='mask_camera'):
        OccupancyMIoU().update(np.zeros(4, np.uint8), np.zeros(4, np.uint8))


def test_mean_iou_of_empty_matrix_is_nan() -> None:
    assert math.isnan(mean_iou(np.zeros((18, 18))))


def test_fscore_hand_case() -> None:
    gt = np.full((8, 8, 8), FREE_LABEL, np.uint8)
    pred = gt.copy()
    gt[0, 0, 0] = 4
    pred[0, 0, 0] = 4
    pred[5, 5, 5] = 11  # far from any ground truth: accuracy 1/2, completeness 1
    accuracy, completeness, fscore = frame_fscore(pred, gt, None)
    assert (accuracy, completeness) == (0.5, 1.0)
    assert fscore == pytest.approx(2 / 3)
    assert frame_fscore(gt, gt, np.zeros(gt.shape, np.uint8)) == (0.0, 0.0, 0.0)


def test_fscore_identical_to_sklearn_reference() -> None:
    pytest.importorskip('sklearn')
    metric = OccupancyFScore()
    expected = []
    for pred, gt, mask in _random_frames(4, 2, shape=(24, 20, 16)):
        before = pred.copy()
        metric.update(pred, gt, mask_camera=mask)
        np.testing.assert_array_equal(pred, before)  # inputs are not mutated (official code does)
        expected.append(reference_fscore_frame(pred, gt, mask))
    result = metric.compute()
    mean = np.mean(expected, axis=0)
    assert result['accuracy'] == pytest.approx(mean[0], abs=1e-15)
    assert result['completeness'] == pytest.approx(mean[1], abs=1e-15)
    assert result['F-score'] == pytest.approx(mean[2], abs=1e-15)


def test_format_metrics_uses_readme_column_order() -> None:
    pred, gt, mask = _hand_case()
    metric = OccupancyMIoU()
    metric.update(pred, gt, mask_camera=mask)
    table = format_metrics(metric.compute())
    header = table.splitlines()[0]
    assert header.startswith('| mIoU | others | barrier | bicycle | bus | car |')
    assert header.endswith('| manmade | vegetation |')
    assert '| 55.56 | 50.00 | nan |' in table
    with pytest.raises(KeyError, match='mIoU'):
        format_metrics({'car': 1.0})


def test_invalid_prediction_outside_the_mask_is_ignored_like_official() -> None:
    # The official code indexes with the mask first, so unscored voxels are never looked at.
    pred, gt, mask = next(_random_frames(7, 1, shape=(16, 16, 8)))
    pred[mask == 0] = 200
    expected = ReferenceMIoU()
    expected.add_batch(pred, gt, mask)
    np.testing.assert_array_equal(confusion_matrix(pred, gt, mask), expected.hist)


def test_backend_choice_is_checked(monkeypatch) -> None:
    monkeypatch.setattr(metric_module, 'BACKEND', 'fortran')
    with pytest.raises(ValueError, match=r"INTERNDRIVE_OCC_METRIC_BACKEND.*got 'fortran'"):
        confusion_matrix(*_hand_case())
    monkeypatch.setattr(metric_module, 'BACKEND', 'auto')
    assert metric_module.active_backend() == ('numba' if HAS_NUMBA else 'numpy')


def test_odd_sizes_and_unaligned_views(backend) -> None:
    # Sizes that are not multiples of 8 (tail loop) and views that start at an odd byte offset.
    pred, gt, mask = next(_random_frames(8, 1, shape=(13, 7, 5)))
    for sl in (slice(None), slice(1, None), slice(3, -2)):
        p, g, m = pred.reshape(-1)[sl], gt.reshape(-1)[sl], mask.reshape(-1)[sl]
        expected = ReferenceMIoU()
        expected.add_batch(p, g, m)
        np.testing.assert_array_equal(confusion_matrix(p, g, m), expected.hist)


def test_unusable_numba_falls_back_to_numpy(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, 'interndrive.occupancy.metric_numba', None)  # import fails
    monkeypatch.setattr(metric_module, 'BACKEND', 'auto')
    assert metric_module.active_backend() == 'numpy'
    pred, gt, mask = _hand_case()
    assert confusion_matrix(pred, gt, mask).sum() == 7
    monkeypatch.setattr(metric_module, 'BACKEND', 'numba')
    with pytest.raises(ImportError, match='metric backend numba: numba is not usable'):
        confusion_matrix(pred, gt, mask)
