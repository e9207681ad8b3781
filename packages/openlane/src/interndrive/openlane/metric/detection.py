"""Detection AP of the OpenLane-V2 metric: greedy matching, 11-point AP, recall-decile levels.

These steps are cheap (linear in the number of predictions); they follow the devkit's dtypes and
its exact ranking calls (`np.argsort(-np.asarray(confidences))` per frame, `np.hstack` of the
per-frame confidence lists for the dataset ranking) so that tied confidences are ordered the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

EPS32 = np.finfo(np.float32).eps
RECALL_THRESHOLDS = np.arange(0, 1 + 1e-3, 0.1)


@dataclass
class FrameMatch:
    """The predictions-to-GT matching of one frame at one threshold (input of TOP)."""

    gt_of_pred: np.ndarray  # (P,) matched GT index, nan if unmatched
    confidence: np.ndarray  # (P,) np.asarray of the confidences
    levels: np.ndarray  # (10,) confidence reaching the 10th..100th recall percentile ([] if P == 0)
    _cache: dict = field(default_factory=dict, repr=False)

    def pred_of_gt(self, num_gts: int, level: int | None) -> np.ndarray:
        """(num_gts,) index of the prediction matched to each GT (-1: none); with `level` (v1.0),
        only predictions whose confidence reaches that recall decile's threshold count."""
        key = (num_gts, level is None)
        if key not in self._cache:
            # All 10 levels at once (rows), computed on first use and shared by TOP_ll and TOP_lt.
            num_levels = 1 if level is None else max(len(self.levels), 1)
            ok = np.broadcast_to(
                ~np.isnan(self.gt_of_pred), (num_levels, len(self.gt_of_pred))
            ).copy()
            if level is not None and len(self.levels):
                ok &= self.confidence[None, :] >= self.levels[:, None]
            out = np.full((num_levels, num_gts), -1, dtype=np.int64)
            lv, idx = np.nonzero(ok)
            out[lv, self.gt_of_pred[idx].astype(np.int64)] = idx
            self._cache[key] = out
        table = self._cache[key]
        return table[0 if level is None or len(table) == 1 else level]


def greedy_match(
    num_gts: int, confidences: Sequence, distances: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """(tp, matched GT or nan) per prediction: by descending confidence, each prediction takes its
    nearest GT if it is closer than `threshold` and not taken yet."""
    num_preds = len(confidences)
    tp = np.zeros(num_preds, dtype=np.float32)
    match = np.full(num_preds, np.nan)
    if num_gts == 0 or num_preds == 0:
        return tp, match
    nearest = distances.argmin(0)
    close = distances[nearest, np.arange(num_preds)] < threshold
    order = np.argsort(-np.asarray(confidences))
    taken = np.zeros(num_gts, dtype=bool)
    for j in order[close[order]].tolist():
        g = nearest[j]
        if not taken[g]:
            taken[g] = True
            tp[j] = 1
            match[j] = g
    return tp, match


_DECILES = np.arange(10, 101, 10) / 100  # np.percentile's q / 100, bit for bit


def recall_levels(num_gts: int, tp: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Confidence at which the frame's recall curve reaches its 10th, …, 100th percentile.

    The devkit's `np.percentile(recalls, 10..100, method='closest_observation')` followed by a
    {recall: last index} lookup, computed directly: the recall curve is already sorted, so the
    percentile is the observation at numpy's closest-observation index (n·q − 1.5, rounded to the
    next index unless it falls exactly on an even one), and the lookup is a right-sided search.
    """
    if len(tp) == 0:
        return np.zeros(0)
    order = np.argsort(-confidence)
    recalls = np.cumsum(tp[order], axis=0) / np.maximum(num_gts, EPS32)
    index = len(recalls) * _DECILES - 1 - 0.5
    below = np.floor(index)
    pick = np.where((index - below == 0) & (below % 2 == 0), below, below + 1).astype(np.intp)
    taken = recalls[np.maximum(pick, 0)]
    last = np.searchsorted(recalls, taken, side='right') - 1
    return confidence[order][last]


def eleven_point_ap(tp: np.ndarray, num_gts: int) -> np.float32:
    """11-point interpolated AP of ranked TP flags (FP = not TP)."""
    tps = np.cumsum(tp, axis=0)
    fps = np.cumsum(1 - tp, axis=0)
    recalls = tps / np.maximum(num_gts, EPS32)
    precisions = tps / np.maximum(tps + fps, EPS32)
    ap = np.float32(0)
    for thr in RECALL_THRESHOLDS:
        reached = precisions[recalls >= thr]
        ap += reached.max() if reached.size > 0 else 0
    return ap / 11


def average_precision(
    num_gts: Sequence[int],
    confidences: Sequence[list],
    distances: Sequence[np.ndarray],
    threshold: float,
    keep_matches: bool = False,
    with_levels: bool = True,
) -> tuple[np.float32, list[FrameMatch]]:
    """Dataset AP over frames (each already filtered to one attribute or all).

    Args:
        num_gts: Per frame, number of GT instances.
        confidences: Per frame, the list of prediction confidences (as given).
        distances: Per frame, the (G, P) distance matrix.
        threshold: Match when distance < threshold.
        keep_matches: Also return each frame's `FrameMatch` (for TOP).
        with_levels: Compute the recall-decile confidence levels (only metric v1.0 uses them).
    """
    tps, matches = [], []
    for n_gt, conf, dist in zip(num_gts, confidences, distances):
        tp, match = greedy_match(n_gt, conf, dist, threshold)
        tps.append(tp)
        if keep_matches:
            conf_arr = np.asarray(conf)
            levels = recall_levels(n_gt, tp, conf_arr) if with_levels else np.zeros(0)
            matches.append(FrameMatch(match, conf_arr, levels))
    total_gts = int(sum(num_gts))
    order = np.argsort(-np.hstack(confidences)) if confidences else np.zeros(0, int)
    tp = np.hstack(tps)[order] if tps else np.zeros(0, np.float32)
    if len(tp) == total_gts == 0:
        return np.float32(1), matches
    return eleven_point_ap(tp, total_gts), matches
