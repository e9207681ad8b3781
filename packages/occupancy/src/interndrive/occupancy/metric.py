"""Occ3D-nuScenes occupancy metrics: camera-mask mIoU (the challenge metric) and the optional F-score.

Definition (CVPR 2023 occupancy challenge, `Metric_mIoU(num_classes=18, use_image_mask=True)`):
for every frame keep only the voxels where `mask_camera` is set, accumulate one 18×18 confusion matrix
(rows = ground truth, columns = prediction; ground-truth labels outside [0, 18) are left out) over **all**
frames, per-class IoU = diag / (row_sum + col_sum − diag), and mIoU = nanmean of the IoU of classes
0..16 — `free` (17) is in the matrix but not in the mean; a class that is absent from both ground truth
and prediction has IoU NaN and is skipped by the mean.

This module is the fast, streaming implementation (numpy, no torch): frames are reduced to their
18×18 confusion matrix as they arrive, so nothing but the matrix is kept. `metric_reference.py` holds a
line-by-line naive implementation of the official code path that the tests compare against. When
numba is importable, masked frames are counted by the one-pass kernel of `metric_numba.py` (same
counts, about 2× faster than the numpy path); `BACKEND` / `INTERNDRIVE_OCC_METRIC_BACKEND` choose
('auto', 'numpy', 'numba').
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from interndrive.occupancy.constants import (
    CLASS_NAMES,
    FREE_LABEL,
    IGNORE_LABEL,
    NUM_CLASSES,
    NUM_SEMANTIC_CLASSES,
    POINT_CLOUD_RANGE,
    VOXEL_SIZE,
)

_IGNORED_CODE = NUM_CLASSES * NUM_CLASSES  # bin that collects masked-out / ignored voxels
MASK_MODES = ('camera', 'lidar', 'none')
BACKENDS = ('auto', 'numpy', 'numba')
# 'auto': the numba kernel when numba is importable, else numpy. Read at every call (tests switch it).
BACKEND = os.environ.get('INTERNDRIVE_OCC_METRIC_BACKEND', 'auto')


def _numba_kernel() -> Callable[..., int] | None:
    """The compiled masked-count kernel for the selected `BACKEND`, or None for the numpy path."""
    if BACKEND not in BACKENDS:
        raise ValueError(
            f'INTERNDRIVE_OCC_METRIC_BACKEND / metric.BACKEND: expected one of {BACKENDS}, got {BACKEND!r}'
        )
    if BACKEND == 'numpy':
        return None
    try:
        from interndrive.occupancy.metric_numba import masked_confusion_counts
    except Exception as error:  # not installed, incompatible with this numpy, no writable cache dir
        if BACKEND == 'numba':
            raise ImportError(f'metric backend numba: numba is not usable ({error})') from error
        return None
    return masked_confusion_counts


def active_backend() -> str:
    """'numba' or 'numpy': what `confusion_matrix` uses for masked frames right now."""
    return 'numpy' if _numba_kernel() is None else 'numba'


def _as_label_array(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f'{name}: expected an integer label array (uint8), got dtype {array.dtype}')
    return array


def _check_pred_range(pred: np.ndarray) -> None:
    if pred.size and int(pred.max()) >= NUM_CLASSES:
        raise ValueError(
            f'pred: class ids must lie in [0, {NUM_CLASSES - 1}], found {int(pred.max())}'
        )


def _prepare(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validates shapes/dtypes and flattens to contiguous uint8 vectors (mask: uint8 bytes, nonzero =
    visible). Never index with a uint8 0/1 mask itself: that would be integer (gather) indexing, a
    classic pitfall of the official masks."""
    pred = _as_label_array('pred', pred)
    gt = _as_label_array('gt', gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f'pred has shape {pred.shape} but gt has shape {gt.shape}; they must match'
        )
    if pred.dtype != np.uint8:
        if pred.size and int(pred.min()) < 0:
            raise ValueError(
                f'pred: class ids must lie in [0, {NUM_CLASSES - 1}], found {int(pred.min())}'
            )
        _check_pred_range(pred)  # before the uint8 cast could wrap values around
    if gt.dtype != np.uint8:
        # Official rule: ground truth outside [0, num_classes) is not counted.
        gt = np.where((gt >= 0) & (gt < NUM_CLASSES), gt, IGNORE_LABEL).astype(np.uint8)
    shape = gt.shape
    pred = np.ascontiguousarray(pred, dtype=np.uint8).reshape(-1)
    gt = np.ascontiguousarray(gt).reshape(-1)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != shape:
            raise ValueError(f'mask has shape {mask.shape}, expected the shape of gt {shape}')
        if mask.dtype in (np.bool_, np.uint8):
            mask = np.ascontiguousarray(mask).reshape(-1).view(np.uint8)  # free view
        else:
            mask = (mask.reshape(-1) != 0).view(np.uint8)
    return pred, gt, mask


def _codes_in_mask(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Returns gt·18 + pred (uint16) for the voxels inside `mask`; checks the scored predictions.

    Camera masks are sparse (≈7 % of the 640k voxels) and clustered along z, so the mask is first scanned
    as 64-bit words: only the words holding a visible voxel are gathered (≈20 % of the bytes), which is
    several times cheaper than boolean indexing over all voxels, the cost that dominates the official
    per-frame code. The visible bytes are then picked with `flatnonzero` + `take` on a bool view
    (about half the cost of `compress`, which goes through a slower generic path for 2-byte items),
    and the codes are formed for the visible voxels only. Where the time goes, per stage:
    `benchmarks/bench_metric_throughput.py` (last table) and the package README.
    """
    if mask is None:
        _check_pred_range(pred)
        codes = np.multiply(gt, NUM_CLASSES, dtype=np.uint16)
        codes += pred
        return codes
    if mask.size % 8 == 0:
        words = np.flatnonzero(mask.view(np.uint64) != 0)  # nonzero() is fastest on bool
        mask = mask.view(np.uint64).take(words).view(np.uint8)  # take: ~20 % faster than [words]
        gt = gt.view(np.uint64).take(words).view(np.uint8)
        pred = pred.view(np.uint64).take(words).view(np.uint8)
    # A bool view is only valid for 0/1 bytes (numpy counts bool nonzeros by summing bytes).
    visible = mask.view(np.bool_) if mask.size == 0 or mask.max() <= 1 else mask != 0
    index = np.flatnonzero(visible)
    pred = pred.take(index)
    _check_pred_range(pred)  # every scored voxel is checked
    codes = np.multiply(gt.take(index), NUM_CLASSES, dtype=np.uint16)
    codes += pred
    return codes


def confusion_matrix(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """18×18 confusion matrix (rows = ground truth, columns = prediction) of one frame or a batch.

    Args:
        pred: Predicted class ids, integer array of any shape (e.g. (200,200,16) or (B,200,200,16)),
            values in [0, 17].
        gt: Ground-truth class ids of the same shape; values outside [0, 17] (e.g. 255) are ignored.
        mask: Optional visibility mask of the same shape (bool or uint8 0/1); only voxels where it is
            set are counted.

    Returns:
        int64 array of shape (18, 18).
    """
    pred, gt, mask = _prepare(pred, gt, mask)
    kernel = _numba_kernel() if mask is not None else None
    if kernel is not None:
        counts = np.zeros(256 * NUM_CLASSES, dtype=np.int64)  # gt up to 255
        words = mask[: mask.size // 8 * 8].view(np.uint64)
        bad = kernel(words, mask, gt, pred, counts)
        if bad >= 0:
            _check_pred_range(pred[bad : bad + 1])
        return counts[:_IGNORED_CODE].reshape(NUM_CLASSES, NUM_CLASSES)
    codes = _codes_in_mask(pred, gt, mask)
    counts = np.bincount(codes, minlength=_IGNORED_CODE + 1)
    # gt ≥ 18 (255) lands beyond the 18×18 block and is dropped here, exactly like the official `k` mask.
    return counts[:_IGNORED_CODE].reshape(NUM_CLASSES, NUM_CLASSES).astype(np.int64)


def per_class_iou(confusion: np.ndarray) -> np.ndarray:
    """IoU per class = diag / (row_sum + col_sum − diag); NaN where a class never occurs."""
    confusion = np.asarray(confusion, dtype=np.float64)
    diag = np.diag(confusion)
    with np.errstate(divide='ignore', invalid='ignore'):
        return diag / (confusion.sum(1) + confusion.sum(0) - diag)


def mean_iou(confusion: np.ndarray) -> float:
    """Challenge mIoU as a fraction: nanmean of the IoU of classes 0..16 (`free` excluded)."""
    iou = per_class_iou(confusion)[:NUM_SEMANTIC_CLASSES]
    if np.all(np.isnan(iou)):
        return float('nan')
    return float(np.nanmean(iou))


def geometry_iou(confusion: np.ndarray) -> float:
    """Occupied-vs-free IoU (fraction) from the confusion matrix: any class 0..16 counts as occupied.

    Not part of the challenge score; later works report it next to mIoU as "IoU".
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    occupied = slice(0, NUM_SEMANTIC_CLASSES)
    tp = confusion[occupied, occupied].sum()
    union = tp + confusion[FREE_LABEL, occupied].sum() + confusion[occupied, FREE_LABEL].sum()
    return float(tp / union) if union else float('nan')


def _check_mask_mode(mask: str) -> None:
    if mask not in MASK_MODES:
        raise ValueError(f'mask: expected one of {MASK_MODES}, got {mask!r}')


def _select_mask(
    mode: str, mask_camera: np.ndarray | None, mask_lidar: np.ndarray | None
) -> np.ndarray | None:
    """The visibility mask that `mode` evaluates; an error when that mask was not given."""
    selected = {'camera': mask_camera, 'lidar': mask_lidar, 'none': None}[mode]
    if mode != 'none' and selected is None:
        raise ValueError(f'mask_{mode}: required because this metric uses mask={mode!r}')
    return selected


class OccupancyMIoU:
    """Streaming challenge mIoU: feed frames (or batches) with `update`, read `compute()`.

    Args:
        mask: Which visibility mask selects the evaluated voxels: 'camera' (the challenge protocol),
            'lidar', or 'none' (all voxels).
    """

    def __init__(self, mask: str = 'camera') -> None:
        _check_mask_mode(mask)
        self.mask = mask
        self.confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        self.num_frames = 0

    def update(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        mask_camera: np.ndarray | None = None,
        mask_lidar: np.ndarray | None = None,
    ) -> None:
        """Adds one frame (X,Y,Z) or a batch (B,X,Y,Z) of predictions and ground truth."""
        selected = _select_mask(self.mask, mask_camera, mask_lidar)
        self.confusion += confusion_matrix(pred, gt, selected)
        self.num_frames += 1 if np.ndim(pred) <= 3 else int(np.shape(pred)[0])

    def merge(self, other: OccupancyMIoU) -> None:
        """Adds the state of another instance (e.g. from another rank)."""
        self.confusion += other.confusion
        self.num_frames += other.num_frames

    def compute(self) -> dict[str, float]:
        """Returns {'mIoU': %, '<class name>': IoU % for classes 0..16 and free, 'IoU_geometry': %
        (occupied vs free), 'num_frames': n}."""
        iou = per_class_iou(self.confusion)
        result = {'mIoU': mean_iou(self.confusion) * 100.0}
        for index in range(NUM_SEMANTIC_CLASSES):
            result[CLASS_NAMES[index]] = float(iou[index]) * 100.0
        result['free'] = float(iou[FREE_LABEL]) * 100.0
        result['IoU_geometry'] = geometry_iou(self.confusion) * 100.0
        result['num_frames'] = float(self.num_frames)
        return result


def voxel_centers(occupied: np.ndarray) -> np.ndarray:
    """Metric centres (N,3) of the set voxels of a (X,Y,Z) boolean grid, computed with the same float
    operations as the official `voxel2points` so that distance thresholds tie-break identically."""
    ix, iy, iz = np.nonzero(occupied)
    return np.stack(
        (
            ix * VOXEL_SIZE[0] + VOXEL_SIZE[0] / 2 + POINT_CLOUD_RANGE[0],
            iy * VOXEL_SIZE[1] + VOXEL_SIZE[1] / 2 + POINT_CLOUD_RANGE[1],
            iz * VOXEL_SIZE[2] + VOXEL_SIZE[2] / 2 + POINT_CLOUD_RANGE[2],
        ),
        axis=1,
    )


def frame_fscore(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None,
    threshold_acc: float = 0.4,
    threshold_complete: float = 0.4,
    eps: float = 1e-8,
) -> tuple[float, float, float]:
    """(accuracy, completeness, F) of one frame, as the challenge's `Metric_FScore` defines them.

    Occupied = not free (17) and inside the mask; accuracy = share of predicted occupied voxel centres
    whose nearest ground-truth centre is closer than `threshold_acc`, completeness = share of ground-truth
    centres with a prediction closer than `threshold_complete`, F = harmonic mean (with `eps`). A frame
    without predicted occupied voxels scores 0; so does one without occupied ground truth (the official
    code crashes there). The inputs are not modified (the official code overwrites them in place).
    """
    from scipy.spatial import cKDTree  # scipy only for the optional F-score

    pred = _as_label_array('pred', pred)
    gt = _as_label_array('gt', gt)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f'pred {pred.shape} and gt {gt.shape} must be the same (X,Y,Z) shape')
    visible = np.ones(gt.shape, bool) if mask is None else np.asarray(mask) != 0
    pred_points = voxel_centers(visible & (pred != FREE_LABEL) & (pred != 255))
    gt_points = voxel_centers(visible & (gt != FREE_LABEL) & (gt != 255))
    if len(pred_points) == 0 or len(gt_points) == 0:
        return 0.0, 0.0, 0.0
    complete_distance, _ = cKDTree(pred_points).query(gt_points, k=1)
    accuracy_distance, _ = cKDTree(gt_points).query(pred_points, k=1)
    completeness = float(np.mean(complete_distance < threshold_complete))
    accuracy = float(np.mean(accuracy_distance < threshold_acc))
    fscore = 2.0 / (1 / (accuracy + eps) + 1 / (completeness + eps))
    return accuracy, completeness, fscore


class OccupancyFScore:
    """Streaming mean over frames of the challenge F-score (thresholds 0.4 m as the dataset calls it).

    Args:
        threshold_acc: Distance (m) below which a predicted voxel counts as accurate.
        threshold_complete: Distance (m) below which a ground-truth voxel counts as completed.
        mask: 'camera', 'lidar' or 'none', as for `OccupancyMIoU`.
    """

    def __init__(
        self, threshold_acc: float = 0.4, threshold_complete: float = 0.4, mask: str = 'camera'
    ) -> None:
        _check_mask_mode(mask)
        self.threshold_acc = threshold_acc
        self.threshold_complete = threshold_complete
        self.mask = mask
        self.totals = np.zeros(3, dtype=np.float64)  # accuracy, completeness, F
        self.num_frames = 0

    def update(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        mask_camera: np.ndarray | None = None,
        mask_lidar: np.ndarray | None = None,
    ) -> None:
        """Adds one frame (X,Y,Z) or a batch (B,X,Y,Z)."""
        selected = _select_mask(self.mask, mask_camera, mask_lidar)
        if np.ndim(pred) == 4:
            for index in range(np.shape(pred)[0]):
                frame_mask = None if selected is None else selected[index]
                self.update_frame(pred[index], gt[index], frame_mask)
        else:
            self.update_frame(pred, gt, selected)

    def update_frame(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> None:
        self.totals += frame_fscore(pred, gt, mask, self.threshold_acc, self.threshold_complete)
        self.num_frames += 1

    def compute(self) -> dict[str, float]:
        """Returns {'F-score', 'accuracy', 'completeness'} averaged over frames (fractions)."""
        if self.num_frames == 0:
            raise ValueError('OccupancyFScore.compute: no frame was added')
        accuracy, completeness, fscore = self.totals / self.num_frames
        return {'F-score': fscore, 'accuracy': accuracy, 'completeness': completeness}


def format_metrics(metrics: Mapping[str, float]) -> str:
    """Markdown table in the seed README's column order (values in %, 2 decimals)."""
    names = ['mIoU', *CLASS_NAMES[:NUM_SEMANTIC_CLASSES]]
    missing = [name for name in names if name not in metrics]
    if missing:
        raise KeyError(f'format_metrics: missing keys {missing}')
    header = '| ' + ' | '.join(names) + ' |'
    rule = '|' + '---|' * len(names)
    row = '| ' + ' | '.join(f'{float(metrics[name]):.2f}' for name in names) + ' |'
    lines = [header, rule, row]
    if 'F-score' in metrics:
        lines.append(f'\nF-score: {float(metrics["F-score"]):.4f}')
    if 'num_frames' in metrics:
        lines.append(f'\nframes: {int(metrics["num_frames"])}')
    return '\n'.join(lines)
