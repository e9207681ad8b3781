"""Batched lane and traffic-element distances of the OpenLane-V2 metric (numpy, no Python per pair).

All (GT lane, predicted lane) pairs of all frames are processed together: lanes are padded to a
common number of points, the Chamfer pre-filter is one broadcast, and the discrete Fréchet dynamic
program runs once per DP cell over every surviving pair at once (padding cells come after the
real ones in both DP directions, so they never influence the cell that is read out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..constants import FAR_DISTANCE, THRESHOLDS_FRECHET

# Upper bound on float64 elements of one chunk's (pairs, points, points) tables (~160 MB).
_CHUNK_ELEMENTS = 20_000_000


def pad_lanes(
    lanes: Sequence[np.ndarray], dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Stacks (N_i, 3) lanes into (L, N_max, 3) `dtype` (NaN padding) and their lengths (L,)."""
    lengths = np.array([len(x) for x in lanes], dtype=np.int64)
    out = np.full((len(lanes), max(lengths, default=1), 3), np.nan, dtype=dtype)
    if len(lanes):
        flat = np.concatenate(lanes)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[np.repeat(np.arange(len(lanes)), lengths), np.arange(len(flat)) - starts] = flat
    return out, lengths


def relaxation_factors(lanes: Sequence[np.ndarray]) -> np.ndarray:
    """max(0.5, 1 - 0.005 · closest-point distance to ego) per GT lane, computed like the devkit
    (norms in the lanes' own dtype, usually float32)."""
    padded, _ = pad_lanes(lanes, np.result_type(*lanes))
    ego = np.nanmin(np.sqrt((padded * padded).sum(-1)), axis=1).astype(np.float64)
    return np.maximum(0.5, 1 - 5e-3 * ego)


def _pair_distances(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(C, Np, Ng) point distances of paired padded lanes (C, Ng, 3) and (C, Np, 3).

    Summed as ((dx² + dy²) + dz²), the order scipy's `cdist` uses, so the values are bit-identical.
    """
    sq = None
    for k in range(3):
        d = pred[:, :, None, k] - gt[:, None, :, k]
        sq = d * d if sq is None else sq + d * d
    return np.sqrt(sq)


def _mean_point_box_distance(
    points: np.ndarray, lengths: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Mean distance of each lane's (C, N, 3) points to a box (C, 3)-(C, 3); NaN padding ignored."""
    d = np.maximum(np.maximum(lo[:, None] - points, points - hi[:, None]), 0.0)
    dist = np.sqrt((d * d).sum(-1))
    return np.where(np.isnan(dist), 0.0, dist).sum(1) / lengths


def chamfer_batched(
    gt: np.ndarray, gt_len: np.ndarray, pred: np.ndarray, pred_len: np.ndarray
) -> np.ndarray:
    """Chamfer distance of C lane pairs: (mean_pred min_gt d + mean_gt min_pred d) / 2."""
    d = _pair_distances(gt, pred)
    valid_p = np.arange(d.shape[1])[None, :] < pred_len[:, None]
    valid_g = np.arange(d.shape[2])[None, :] < gt_len[:, None]
    d = np.where(valid_p[:, :, None] & valid_g[:, None, :], d, np.inf)
    pred_side = np.where(valid_p, d.min(2), 0.0).sum(1) / pred_len
    gt_side = np.where(valid_g, d.min(1), 0.0).sum(1) / gt_len
    return (pred_side + gt_side) / 2


def frechet_batched(
    gt: np.ndarray, gt_len: np.ndarray, pred: np.ndarray, pred_len: np.ndarray
) -> np.ndarray:
    """Discrete Fréchet distance of C lane pairs, one vectorised step per DP cell."""
    # (Np, Ng, C) layout: every DP step below is one contiguous vector op over all pairs.
    c = np.ascontiguousarray(_pair_distances(gt, pred).transpose(1, 2, 0))
    ca = np.empty_like(c)
    ca[0] = np.maximum.accumulate(c[0], axis=0)
    ca[:, 0] = np.maximum.accumulate(c[:, 0], axis=0)
    for i in range(1, c.shape[0]):
        # min(ca[i-1, j], ca[i-1, j-1]) for all j ≥ 1 at once; only the left neighbour is sequential.
        best_prev = np.minimum(ca[i - 1, 1:], ca[i - 1, :-1])
        for j in range(1, c.shape[1]):
            np.maximum(np.minimum(best_prev[j - 1], ca[i, j - 1]), c[i, j], out=ca[i, j])
    return ca[pred_len - 1, gt_len - 1, np.arange(c.shape[2])]


def lane_distance_matrices(
    gts: Sequence[Sequence[np.ndarray]], preds: Sequence[Sequence[np.ndarray]], version: str
) -> list[np.ndarray]:
    """Per frame, the (G, P) relaxed Fréchet distances; pairs failing the relaxed Chamfer < 3 m
    pre-filter keep 1024 (devkit `pairwise(..., frechet_distance, mask, relax=True)`).

    Args:
        gts: Per frame, the GT lanes ((N, 3) arrays).
        preds: Per frame, the predicted lanes.
        version: '1.0' or '1.1' (v1.1 drops the repeated last point of closed GT lanes before
            the Fréchet distance).
    """
    # One flat buffer holds every frame's matrix, so results are scattered without a Python loop.
    sizes = np.array([len(g) * len(p) for g, p in zip(gts, preds)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    buffer = np.full(int(offsets[-1]), FAR_DISTANCE)
    out = [
        buffer[offsets[f] : offsets[f + 1]].reshape(len(g), len(p))
        for f, (g, p) in enumerate(zip(gts, preds))
    ]
    flat_gt = [lane for frame in gts for lane in frame]
    flat_pred = [lane for frame in preds for lane in frame]
    if not flat_gt or not flat_pred:
        return out
    gt_arr, gt_len = pad_lanes(flat_gt)
    pred_arr, pred_len = pad_lanes(flat_pred)
    relax = relaxation_factors(flat_gt)
    frechet_gt_len = gt_len.copy()
    if version != '1.0':
        last = gt_arr[np.arange(len(gt_arr)), gt_len - 1]
        frechet_gt_len[(gt_arr[:, 0] == last).all(1)] -= 1  # closed lanes

    # Every (GT, pred) pair within each frame, in the flat buffer's order, as global lane indices.
    n_g = np.array([len(g) for g in gts], dtype=np.int64)
    n_p = np.array([len(p) for p in preds], dtype=np.int64)
    if not sizes.sum():
        return out
    frame = np.repeat(np.arange(len(sizes)), sizes)
    within = np.arange(int(offsets[-1])) - offsets[:-1][frame]
    gi = (np.cumsum(n_g) - n_g)[frame] + within // n_p[frame]
    pj = (np.cumsum(n_p) - n_p)[frame] + within % n_p[frame]

    # Exact shortcuts (each a lower bound of the Chamfer distance, kept with a margin far above
    # rounding): the gap between the lanes' bounding boxes, then the mean distance of each lane's
    # points to the other lane's box. Pairs whose relaxed bound reaches 3 m cannot pass.
    limit = THRESHOLDS_FRECHET[-1] + 1e-6
    gt_lo, gt_hi = np.nanmin(gt_arr, axis=1), np.nanmax(gt_arr, axis=1)
    pr_lo, pr_hi = np.nanmin(pred_arr, axis=1), np.nanmax(pred_arr, axis=1)
    gap = np.maximum(np.maximum(pr_lo[pj] - gt_hi[gi], gt_lo[gi] - pr_hi[pj]), 0.0)
    cand = np.flatnonzero(np.sqrt((gap * gap).sum(-1)) * relax[gi] < limit)
    g, p = gi[cand], pj[cand]
    bound = (
        _mean_point_box_distance(pred_arr[p], pred_len[p], gt_lo[g], gt_hi[g])
        + _mean_point_box_distance(gt_arr[g], gt_len[g], pr_lo[p], pr_hi[p])
    ) / 2
    cand = cand[bound * relax[g] < limit]

    chunk = max(1, _CHUNK_ELEMENTS // (gt_arr.shape[1] * pred_arr.shape[1] * 3))
    keep = np.zeros(len(gi), dtype=bool)
    for s in range(0, len(cand), chunk):
        idx = cand[s : s + chunk]
        g, p = gi[idx], pj[idx]
        cham = chamfer_batched(gt_arr[g], gt_len[g], pred_arr[p], pred_len[p])
        keep[idx] = cham * relax[g] < THRESHOLDS_FRECHET[-1]
    sel = np.flatnonzero(keep)
    for s in range(0, len(sel), chunk):
        idx = sel[s : s + chunk]
        g, p = gi[idx], pj[idx]
        buffer[idx] = (
            frechet_batched(gt_arr[g], frechet_gt_len[g], pred_arr[p], pred_len[p]) * relax[g]
        )
    return out


def iou_distance_matrix(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> np.ndarray:
    """(G, P) 1 - IoU of boxes [[x1, y1], [x2, y2]], computed in the boxes' dtype like the devkit."""
    if len(gts) == 0 or len(preds) == 0:
        return np.full((len(gts), len(preds)), FAR_DISTANCE)
    g = np.stack(gts)[:, None]  # (G, 1, 2, 2)
    p = np.stack(preds)[None]  # (1, P, 2, 2)
    zero = np.zeros((), dtype=np.result_type(g, p))
    ix = np.maximum(
        np.minimum(p[..., 1, 0], g[..., 1, 0]) - np.maximum(p[..., 0, 0], g[..., 0, 0]), zero
    )
    iy = np.maximum(
        np.minimum(p[..., 1, 1], g[..., 1, 1]) - np.maximum(p[..., 0, 1], g[..., 0, 1]), zero
    )
    inter = ix * iy
    area_p = (p[..., 1, 0] - p[..., 0, 0]) * (p[..., 1, 1] - p[..., 0, 1])
    area_g = (g[..., 1, 0] - g[..., 0, 0]) * (g[..., 1, 1] - g[..., 0, 1])
    with np.errstate(divide='ignore', invalid='ignore'):
        return (1 - inter / (area_p + area_g - inter)).astype(np.float64)
