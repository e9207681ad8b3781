"""Naive reference implementation of the official Occ3D / CVPR 2023 occupancy metric code path.

Written to follow the challenge's `occ_metrics.py` step by step (per-frame boolean mask indexing,
`hist_info` with the `0 <= gt < n` filter, a float64 per-frame histogram with its per-frame mIoU, one
accumulated histogram, `per_class_iu`, nanmean over the first 17 classes; F-score with sklearn's KDTree
over voxel centres). It is deliberately simple and slow: tests check that `metric.py` gives identical
numbers, and `benchmarks/bench_metric_throughput.py` uses it as the speed baseline. Not for production use.
"""

from __future__ import annotations

import numpy as np

from interndrive.occupancy.constants import NUM_CLASSES


class ReferenceMIoU:
    """Per-frame implementation of `Metric_mIoU(num_classes=18, use_image_mask=True)`."""

    def __init__(self, num_classes: int = NUM_CLASSES, use_image_mask: bool = True) -> None:
        self.num_classes = num_classes
        self.use_image_mask = use_image_mask
        self.hist = np.zeros((num_classes, num_classes))
        self.cnt = 0

    @staticmethod
    def hist_info(n_cl: int, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, int, int]:
        assert pred.shape == gt.shape
        k = (gt >= 0) & (gt < n_cl)  # ground truth 255 is excluded
        labeled = int(np.sum(k))
        correct = int(np.sum(pred[k] == gt[k]))
        hist = np.bincount(
            n_cl * gt[k].astype(int) + pred[k].astype(int), minlength=n_cl**2
        ).reshape(n_cl, n_cl)
        return hist, correct, labeled

    @staticmethod
    def per_class_iu(hist: np.ndarray) -> np.ndarray:
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))

    def compute_miou(self, pred: np.ndarray, label: np.ndarray) -> tuple[float, np.ndarray]:
        hist = np.zeros((self.num_classes, self.num_classes))
        new_hist, _, _ = self.hist_info(self.num_classes, pred.flatten(), label.flatten())
        hist += new_hist
        ious = self.per_class_iu(hist)
        with np.errstate(all='ignore'), _quiet_nanmean():
            frame_miou = round(float(np.nanmean(ious)) * 100, 2)
        return frame_miou, hist

    def add_batch(
        self, semantics_pred: np.ndarray, semantics_gt: np.ndarray, mask_camera: np.ndarray
    ) -> None:
        self.cnt += 1
        if self.use_image_mask:
            mask = mask_camera.astype(bool)  # what NuSceneOcc.evaluate_miou does before calling
            masked_gt = semantics_gt[mask]
            masked_pred = semantics_pred[mask]
        else:
            masked_gt, masked_pred = semantics_gt, semantics_pred
        _, hist = self.compute_miou(masked_pred, masked_gt)
        self.hist += hist

    def count_miou(self) -> tuple[np.ndarray, float]:
        """Returns (per-class IoU fractions for all 18 classes, mIoU fraction over the first 17)."""
        ious = self.per_class_iu(self.hist)
        with _quiet_nanmean():
            miou = float(np.nanmean(ious[: self.num_classes - 1]))
        return ious, miou


def reference_fscore_frame(
    pred: np.ndarray,
    gt: np.ndarray,
    mask_camera: np.ndarray,
    threshold_acc: float = 0.4,
    threshold_complete: float = 0.4,
    leaf_size: int = 10,
) -> tuple[float, float, float]:
    """One frame of `Metric_FScore(use_image_mask=True)` with sklearn's KDTree (needs scikit-learn)."""
    from sklearn.neighbors import KDTree

    voxel_size = [0.4, 0.4, 0.4]
    lower = [-40, -40, -1, 40, 40, 5.4]
    void = [17, 255]
    gt = gt.copy()
    pred = pred.copy()
    gt[mask_camera == False] = 255  # noqa: E712  (mirrors the official code)
    pred[mask_camera == False] = 255  # noqa: E712

    def voxel2points(voxel: np.ndarray) -> np.ndarray:
        mask = np.logical_not(np.logical_or(voxel == void[0], voxel == void[1]))
        occ = np.where(mask)
        return np.concatenate(
            [occ[i][:, None] * voxel_size[i] + voxel_size[i] / 2 + lower[i] for i in range(3)],
            axis=1,
        )

    ground_truth = voxel2points(gt)
    prediction = voxel2points(pred)
    if prediction.shape[0] == 0:
        return 0.0, 0.0, 0.0
    complete_distance, _ = KDTree(prediction, leaf_size=leaf_size).query(ground_truth)
    accuracy_distance, _ = KDTree(ground_truth, leaf_size=leaf_size).query(prediction)
    completeness = float((complete_distance.flatten() < threshold_complete).mean())
    accuracy = float((accuracy_distance.flatten() < threshold_acc).mean())
    eps = 1e-8
    return accuracy, completeness, 2.0 / (1 / (accuracy + eps) + 1 / (completeness + eps))


class _quiet_nanmean:
    """Silences numpy's 'Mean of empty slice' warning (all-NaN frames are legitimate here)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter('ignore', RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
