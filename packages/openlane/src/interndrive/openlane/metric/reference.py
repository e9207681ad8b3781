"""Naive reference implementation of the official OpenLane-V2 OLS and 3D-lane F-score.

A plain, loop-by-loop transcription of the algorithm of the official `openlanev2` devkit
(`evaluation/{evaluate,distance,f_score}.py`; v1.0 = devkit 0.1.0/1.0.0, v1.1 = devkit 1.1.0/2.1.0),
written from its definition: per-pair Python loops, one dynamic-programming cell at a time. It
exists to check the vectorised implementation in `ols.py` (pytorch3d style: the slow obvious
version next to the fast one) and is never used for scoring. It does not import the devkit.

Dtypes follow the devkit on purpose (float32 counters, per-frame confidence arrays built from the
same lists): the metric is a chain of thresholds and sorts, and the same dtype gives the same
order of tied confidences and therefore the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..constants import (
    FAR_DISTANCE,
    NUM_ATTRIBUTES,
    THRESHOLD_RELATIONSHIP_CONFIDENCE,
    THRESHOLDS_FRECHET,
    THRESHOLDS_IOU,
)
from .f_score_solver import solve_min_cost_assignment

EPS32 = np.finfo(np.float32).eps


def point_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two points in float64."""
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))


def chamfer_naive(gt: np.ndarray, pred: np.ndarray) -> float:
    """Symmetric mean nearest-point distance: (mean over pred + mean over gt) / 2."""
    d = [[point_distance(p, g) for g in gt] for p in pred]
    pred_side = np.mean([min(row) for row in d])
    gt_side = np.mean([min(d[i][j] for i in range(len(pred))) for j in range(len(gt))])
    return (pred_side + gt_side) / 2


def frechet_naive(a: np.ndarray, b: np.ndarray) -> float:
    """Discrete Fréchet distance (Eiter & Mannila), one DP cell at a time."""
    n, m = len(a), len(b)
    ca = [[-1.0] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            d = point_distance(a[i], b[j])
            if i == 0 and j == 0:
                ca[i][j] = d
            elif i == 0:
                ca[i][j] = max(ca[0][j - 1], d)
            elif j == 0:
                ca[i][j] = max(ca[i - 1][0], d)
            else:
                ca[i][j] = max(min(ca[i - 1][j], ca[i][j - 1], ca[i - 1][j - 1]), d)
    return ca[n - 1][m - 1]


def iou_distance_naive(gt: np.ndarray, pred: np.ndarray) -> float:
    """1 - IoU of two axis-aligned boxes [[x1, y1], [x2, y2]] (computed in the boxes' dtype)."""
    ix = max(min(pred[1][0], gt[1][0]) - max(pred[0][0], gt[0][0]), 0)
    iy = max(min(pred[1][1], gt[1][1]) - max(pred[0][1], gt[0][1]), 0)
    inter = ix * iy
    area_p = (pred[1][0] - pred[0][0]) * (pred[1][1] - pred[0][1])
    area_g = (gt[1][0] - gt[0][0]) * (gt[1][1] - gt[0][1])
    return 1 - inter / (area_p + area_g - inter)


def relaxation_factor(gt: np.ndarray) -> float:
    """max(0.5, 1 - 0.005 · distance of the GT lane's closest point to the ego origin)."""
    ego = min(float(np.sqrt(np.dot(p, p))) for p in gt)
    return max(0.5, 1 - 5e-3 * ego)


def lane_distance_matrix(
    gts: list[np.ndarray], preds: list[np.ndarray], version: str
) -> np.ndarray:
    """(G, P) relaxed Fréchet distances; pairs whose relaxed Chamfer distance is ≥ 3 m stay 1024."""
    out = np.full((len(gts), len(preds)), FAR_DISTANCE)
    for i, gt in enumerate(gts):
        relax = relaxation_factor(gt)
        frechet_gt = gt
        # v1.1 drops the repeated last point of closed GT lanes before the Fréchet distance.
        if version != '1.0' and (gt[0] == gt[-1]).all():
            frechet_gt = gt[:-1]
        for j, pred in enumerate(preds):
            if chamfer_naive(gt, pred) * relax < THRESHOLDS_FRECHET[-1]:
                out[i, j] = frechet_naive(pred, frechet_gt) * relax
    return out


def te_distance_matrix(gts: list[np.ndarray], preds: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(gts), len(preds)), FAR_DISTANCE)
    for i, gt in enumerate(gts):
        for j, pred in enumerate(preds):
            out[i, j] = iou_distance_naive(gt, pred)
    return out


def greedy_match(
    num_gts: int, confidences: list, distances: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each prediction, by descending confidence, takes its nearest GT if closer than `threshold`
    and still free; returns (tp, fp, matched GT index or nan) per prediction."""
    num_preds = len(confidences)
    tp = np.zeros(num_preds, dtype=np.float32)
    fp = np.zeros(num_preds, dtype=np.float32)
    match = np.full(num_preds, np.nan)
    if num_gts == 0:
        fp[:] = 1
        return tp, fp, match
    if num_preds == 0:
        return tp, fp, match
    taken = [False] * num_gts
    for j in np.argsort(-np.asarray(confidences)):
        nearest = int(np.argmin(distances[:, j]))
        if distances[nearest, j] < threshold and not taken[nearest]:
            taken[nearest] = True
            tp[j] = 1
            match[j] = nearest
        else:
            fp[j] = 1
    return tp, fp, match


def eleven_point_ap(recalls: np.ndarray, precisions: np.ndarray) -> np.float32:
    """Mean over recall thresholds 0, 0.1, …, 1 of the best precision at recall ≥ threshold."""
    ap = np.float32(0)
    for thr in np.arange(0, 1 + 1e-3, 0.1):
        reached = precisions[recalls >= thr]
        ap += reached.max() if reached.size > 0 else 0
    return ap / 11


def confidence_thresholds(num_gts: int, tp: np.ndarray, confidences: list) -> np.ndarray:
    """Confidences at which the frame's recall reaches its 10th, 20th, …, 100th percentile."""
    conf = np.asarray(confidences)
    order = np.argsort(-conf)
    recalls = np.cumsum(tp[order]) / np.maximum(num_gts, EPS32)
    taken = np.percentile(recalls, np.arange(10, 101, 10), method='closest_observation')
    last_index = {r: i for i, r in enumerate(recalls)}
    return conf[order][[last_index[t] for t in taken]]


def average_precision(
    gts: Mapping[Any, Mapping],
    preds: Mapping[Any, Mapping],
    distances: Mapping[Any, np.ndarray],
    threshold: float,
    kind: str,
    keep: Callable[[Mapping], bool],
    matches: dict | None = None,
) -> np.float32:
    """AP over all frames; stores per-frame matches into `matches` when given (for TOP)."""
    tps, fps, confs = [], [], []
    num_gts = 0
    for token in gts:
        gt_keep = [keep(x) for x in gts[token][kind]]
        pred_keep = [keep(x) for x in preds[token][kind]]
        conf = [x['confidence'] for x, k in zip(preds[token][kind], pred_keep) if k]
        dist = distances[token][gt_keep, :][:, pred_keep]
        n_gt = sum(gt_keep)
        tp, fp, match = greedy_match(n_gt, conf, dist, threshold)
        tps.append(tp)
        fps.append(fp)
        confs.append(conf)
        num_gts += n_gt
        if matches is not None:
            thresholds = confidence_thresholds(n_gt, tp, conf) if len(conf) else []
            matches[token] = (match, np.asarray(conf), thresholds)
    order = np.argsort(-np.hstack(confs))
    tp = np.hstack(tps)[order]
    fp = np.hstack(fps)[order]
    if len(tp) == num_gts == 0:
        return np.float32(1)
    tp = np.cumsum(tp)
    fp = np.cumsum(fp)
    recalls = tp / np.maximum(num_gts, EPS32)
    precisions = tp / np.maximum(tp + fp, EPS32)
    return eleven_point_ap(recalls, precisions)


def vertex_ap(gt_row: np.ndarray, pred_row: np.ndarray) -> np.float32:
    """AP of one vertex's neighbour ranking: candidates are entries > 0.5, ranked by confidence."""
    gt_neighbours = {i for i in range(len(gt_row)) if gt_row[i]}
    candidates = np.array([i for i in range(len(pred_row)) if pred_row[i] > 0.5], dtype=int)
    conf = pred_row[pred_row > THRESHOLD_RELATIONSHIP_CONFIDENCE]
    if not gt_neighbours and len(candidates) == 0:
        return np.float32(1)
    if not gt_neighbours or len(candidates) == 0:
        return np.float32(0)
    hits = np.array([1 if c in gt_neighbours else 0 for c in candidates[np.argsort(-conf)]])
    rel = hits.astype(np.float32)
    tp = np.cumsum(rel)
    fp = np.cumsum(1 - rel)
    precision = tp / np.maximum(tp + fp, EPS32)
    return np.dot(precision, rel) / len(gt_neighbours)


def graph_aps(gt: np.ndarray, pred: np.ndarray) -> list:
    """Vertex APs over rows (out-edges / lane side) then columns (in-edges / TE side)."""
    return [vertex_ap(g, p) for g, p in zip(gt, pred)] + [
        vertex_ap(g, p) for g, p in zip(gt.T, pred.T)
    ]


def matched_pairs(match, conf, thresholds, level: int | None) -> dict:
    """{GT index: prediction index} of matched predictions, above the level's confidence (v1.0)."""
    out = {}
    for i, (m, c) in enumerate(zip(match, conf)):
        if not np.isnan(m) and (level is None or c >= thresholds[level]):
            out[m] = i
    return out


def topology_score(
    gts: Mapping, preds: Mapping, key: str, match_pairs: list[tuple[dict, dict]], version: str
) -> float:
    """TOP_ll (`key='topology_lclc'`) or TOP_lt (`key='topology_lcte'`): mean vertex AP over
    frames, threshold pairs (row matches, column matches) and (v1.0 only) 10 confidence levels."""
    levels = list(range(10)) if version == '1.0' else [None]
    acc = []
    for level in levels:
        for ma, mb in match_pairs:
            for token in gts:
                gt = gts[token][key]
                if 0 in gt.shape:
                    continue
                rows = matched_pairs(*ma[token], level)
                cols = matched_pairs(*mb[token], level)
                pred = np.full(gt.shape, np.nan)
                for i in range(gt.shape[0]):
                    for j in range(gt.shape[1]):
                        if i in rows and j in cols:
                            pred[i, j] = preds[token][key][rows[i]][cols[j]]
                unmatched = np.isnan(pred)
                fill = 1 - gt[unmatched]
                # v1.1 gives unmatched true edges 0 and unmatched non-edges 0.5 + eps (a
                # confident-but-wrong guess), instead of v1.0's 1 (which over-penalises).
                pred[unmatched] = fill if version == '1.0' else fill * (0.5 + EPS32)
                acc.append(graph_aps(gt, pred))
    if not acc:
        return 0.0
    return float(np.hstack(acc).mean())


X_SAMPLES = np.linspace(-50, 50, num=100, endpoint=False)


def resample_in_x(lane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, z, visible) at the 100 x samples, linear interpolation with linear extrapolation."""
    order = np.argsort(lane[:, 0], kind='mergesort')
    x, y, z = lane[order, 0], lane[order, 1], lane[order, 2]
    ys, zs = np.empty(100), np.empty(100)
    for k, xs in enumerate(X_SAMPLES):
        hi = min(max(int(np.searchsorted(x, xs)), 1), len(x) - 1)
        lo = hi - 1
        with np.errstate(divide='ignore', invalid='ignore'):
            ys[k] = (y[hi] - y[lo]) / (x[hi] - x[lo]) * (xs - x[lo]) + y[lo]
            zs[k] = (z[hi] - z[lo]) / (x[hi] - x[lo]) * (xs - x[lo]) + z[lo]
    visible = (X_SAMPLES >= np.min(lane[:, 0])) & (X_SAMPLES <= np.max(lane[:, 0]))
    return ys, zs, visible


def f_score_counts(gt_lanes: list[np.ndarray], pred_lanes: list[np.ndarray]) -> tuple[int, ...]:
    """(recalled GT, precise preds, #GT, #preds) of one frame (OpenLane-V1 3D-lane F-score)."""

    def usable(lanes):
        lanes = [x for x in lanes if x.shape[0] > 1]
        return [x for x in lanes if x[0, 0] < X_SAMPLES[-1] and x[-1, 0] > X_SAMPLES[0]]

    def resampled(lanes):
        out = [resample_in_x(x) for x in usable(lanes)]
        return [r for r in out if r[2].sum() > 1]

    gts, preds = resampled(gt_lanes), resampled(pred_lanes)
    cost = np.zeros((len(gts), len(preds)), dtype=int)
    num_match = np.zeros((len(gts), len(preds)))
    for i, (gy, gz, gv) in enumerate(gts):
        for j, (py, pz, pv) in enumerate(preds):
            dist = np.sqrt((gy - py) ** 2 + (gz - pz) ** 2)
            both_invisible = ~gv & ~pv
            dist[both_invisible] = 0
            dist[gv != pv] = 1.5
            num_match[i, j] = np.sum(dist < 1.5) - np.sum(both_invisible)
            total = np.sum(dist)
            cost[i, j] = 1 if 0 < total < 1 else total.astype(int)
    recalled = precise = 0
    for i, j, c in solve_min_cost_assignment(cost):
        if c < 1.5 * 100:
            recalled += num_match[i, j] / gts[i][2].sum() >= 0.75
            precise += num_match[i, j] / preds[j][2].sum() >= 0.75
    return recalled, precise, len(gts), len(preds)


def f_score(gts: Mapping, preds: Mapping) -> float:
    totals = np.zeros(4)
    for token in preds:
        totals += f_score_counts(
            [x['points'] for x in gts[token]['lane_centerline']],
            [x['points'] for x in preds[token]['lane_centerline']],
        )
    recall = totals[0] / (totals[2] if totals[2] else 1e-6)
    precision = totals[1] / (totals[3] if totals[3] else 1e-6)
    if recall + precision == 0:
        return 0.0
    return float(2 * recall * precision / (recall + precision))


def evaluate_reference(
    gts: Mapping[Any, Mapping], preds: Mapping[Any, Mapping], version: str = '1.0'
) -> dict[str, float]:
    """Scores per-frame predictions against per-frame annotations, the slow obvious way.

    Args:
        gts: {frame token: annotation dict} (`lane_centerline`, `traffic_element`,
            `topology_lclc`, `topology_lcte`), e.g. `collection[token]['annotation']`.
        preds: {frame token: predictions dict} in the same layout plus `confidence` per instance.
        version: '1.0' (challenge-era, seed numbers) or '1.1' (maintainers' current metric).

    Returns:
        {'DET_l', 'DET_t', 'TOP_ll', 'TOP_lt', 'OLS', 'F-Score'}.
    """
    lane_dist = {
        t: lane_distance_matrix(
            [x['points'] for x in gts[t]['lane_centerline']],
            [x['points'] for x in preds[t]['lane_centerline']],
            version,
        )
        for t in gts
    }
    te_dist = {
        t: te_distance_matrix(
            [x['points'] for x in gts[t]['traffic_element']],
            [x['points'] for x in preds[t]['traffic_element']],
        )
        for t in gts
    }
    lane_matches = [{} for _ in THRESHOLDS_FRECHET]
    det_l = np.asarray(
        [
            average_precision(gts, preds, lane_dist, thr, 'lane_centerline', lambda _: True, m)
            for thr, m in zip(THRESHOLDS_FRECHET, lane_matches)
        ]
    ).mean()
    det_t = np.hstack(
        [
            average_precision(
                gts, preds, te_dist, THRESHOLDS_IOU[0], 'traffic_element',
                lambda x, a=attr: x['attribute'] == a,
            )
            for attr in range(NUM_ATTRIBUTES)
        ]
    ).mean()  # fmt: skip
    te_matches = [{}]
    average_precision(
        gts, preds, te_dist, THRESHOLDS_IOU[0], 'traffic_element', lambda _: True, te_matches[0]
    )
    # TOP_ll pairs each lane threshold with itself; TOP_lt pairs every lane threshold with the TE one.
    ll_pairs = [(m, m) for m in lane_matches]
    lt_pairs = [(m, te_matches[0]) for m in lane_matches]
    top_ll = topology_score(gts, preds, 'topology_lclc', ll_pairs, version)
    top_lt = topology_score(gts, preds, 'topology_lcte', lt_pairs, version)
    ols = np.mean([det_l, det_t, np.sqrt(top_ll), np.sqrt(top_lt)])
    return {
        'DET_l': float(det_l),
        'DET_t': float(det_t),
        'TOP_ll': top_ll,
        'TOP_lt': top_lt,
        'OLS': float(ols),
        'F-Score': f_score(gts, preds),
    }
