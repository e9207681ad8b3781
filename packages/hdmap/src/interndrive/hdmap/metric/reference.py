"""Naive reference of the official challenge metric, kept deliberately close to its definition.

One shapely interpolation per line, one `scipy.spatial.distance.cdist` per (prediction, GT) pair, one
Python iteration per prediction in the greedy matching, and the VOC "area" AP with its explicit envelope
loop: exactly the steps of the challenge's `vector_eval.py` / `AP.py` / `distance.py`. It exists to check
`vectorized.py` (tests demand identical numbers) and as the baseline of the benchmark; never use it for
real evaluation, it is an order of magnitude slower.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial.distance import cdist
from shapely.geometry import LineString

from ..constants import CLASSES, SAMPLE_DIST, THRESHOLDS
from .types import GroundTruth, Predictions, as_xy, empty_frame


def resample_polyline_reference(vector: np.ndarray, sample_dist: float = SAMPLE_DIST) -> np.ndarray:
    """Points at 0, d, 2d, ... and at the full length along the line (at least 2 points)."""
    line = LineString(vector)
    distances = [0.0, *np.arange(sample_dist, line.length, sample_dist), line.length]
    return np.array([list(line.interpolate(d).coords) for d in distances]).squeeze()


def chamfer_distance_reference(line1: np.ndarray, line2: np.ndarray) -> float:
    """Mean of the two directed mean-nearest-point distances."""
    dist = cdist(line1, line2, 'euclidean')
    return (dist.min(-1).sum() / len(line1) + dist.min(-2).sum() / len(line2)) / 2


def chamfer_matrix_reference(
    pred_lines: Sequence[np.ndarray], gt_lines: Sequence[np.ndarray]
) -> np.ndarray:
    matrix = np.zeros((len(pred_lines), len(gt_lines)))
    for i, pred in enumerate(pred_lines):
        for j, gt in enumerate(gt_lines):
            matrix[i, j] = chamfer_distance_reference(pred, gt)
    return matrix


def instance_match_reference(
    pred_lines: Sequence[np.ndarray],
    scores: np.ndarray,
    gt_lines: Sequence[np.ndarray],
    thresholds: Sequence[float],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Greedy matching of one frame and class: (tp, fp) flags per prediction for every threshold."""
    num_preds, num_gts = len(pred_lines), len(gt_lines)
    if num_gts == 0 or num_preds == 0:
        fp = np.full(num_preds, 1.0 if num_gts == 0 else 0.0, dtype=np.float32)
        return [(np.zeros(num_preds, dtype=np.float32), fp.copy()) for _ in thresholds]
    matrix = chamfer_matrix_reference(pred_lines, gt_lines)
    matrix_min, matrix_argmin = matrix.min(axis=1), matrix.argmin(axis=1)
    sort_inds = np.argsort(-scores)
    out = []
    for thr in thresholds:
        tp = np.zeros(num_preds, dtype=np.float32)
        fp = np.zeros(num_preds, dtype=np.float32)
        gt_covered = np.zeros(num_gts, dtype=bool)
        for i in sort_inds:
            # A prediction only ever competes for its nearest GT, never for the second nearest.
            if matrix_min[i] <= thr and not gt_covered[matrix_argmin[i]]:
                gt_covered[matrix_argmin[i]] = True
                tp[i] = 1
            else:
                fp[i] = 1
        out.append((tp, fp))
    return out


def average_precision_reference(recalls: np.ndarray, precisions: np.ndarray) -> float:
    """VOC all-point ("area") AP with the monotone precision envelope."""
    mrec = np.concatenate([[0.0], recalls, [1.0]])
    mpre = np.concatenate([[0.0], precisions, [0.0]])
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    ind = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[ind + 1] - mrec[ind]) * mpre[ind + 1]))


def chamfer_ap_reference(
    gts: GroundTruth,
    preds: Predictions,
    thresholds: Sequence[float] = THRESHOLDS,
    sample_dist: float = SAMPLE_DIST,
    resample: Callable[[np.ndarray, float], np.ndarray] = resample_polyline_reference,
) -> dict[str, float]:
    """Chamfer AP of `preds` against `gts` (same keys as `vectorized.chamfer_ap`).

    `resample` replaces the per-line shapely resampling (the benchmark swaps in the vectorised one to
    separate the two costs).
    """
    out: dict[str, float] = {}
    sum_map = 0.0
    for label, cat in enumerate(CLASSES):
        rows, num_gts, num_preds = [], 0, 0
        for token, gt in gts.items():
            pred = preds.get(token, empty_frame())
            idx = [i for i, lab in enumerate(pred['labels']) if lab == label]
            pred_lines = [
                resample_polyline_reference(as_xy(pred['vectors'][i]), sample_dist) for i in idx
            ]
            scores = np.array([pred['scores'][i] for i in idx], dtype=np.float64)
            gt_lines = [resample(as_xy(v), sample_dist) for v in gt.get(cat, [])]
            num_gts += len(gt_lines)
            num_preds += len(idx)
            for tp, fp in instance_match_reference(pred_lines, scores, gt_lines, thresholds):
                rows.append((tp, fp, scores))
        sum_ap = 0.0
        n_thr = len(thresholds)
        for k, thr in enumerate(thresholds):
            per_frame = rows[k::n_thr]
            tp_fp_score = np.vstack(
                [np.hstack([t[:, None], f[:, None], s[:, None]]) for t, f, s in per_frame]
            )
            order = np.argsort(-tp_fp_score[:, -1])
            tp = np.cumsum(tp_fp_score[order, 0])
            fp = np.cumsum(tp_fp_score[order, 1])
            eps = np.finfo(np.float32).eps
            recalls = tp / np.maximum(num_gts, eps)
            precisions = tp / np.maximum(tp + fp, eps)
            ap = average_precision_reference(recalls, precisions)
            out[f'AP_{cat}@{thr}'] = ap
            sum_ap += ap
        out[f'AP_{cat}'] = sum_ap / n_thr
        out[f'num_gts_{cat}'] = float(num_gts)
        out[f'num_preds_{cat}'] = float(num_preds)
        sum_map += out[f'AP_{cat}']
    out['mAP'] = sum_map / len(CLASSES)
    return out
