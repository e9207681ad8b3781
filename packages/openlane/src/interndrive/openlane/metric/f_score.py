"""Vectorised 3D-lane F-score (the OpenLane-V1 metric that OpenLane-V2 reports beside OLS).

Lanes are resampled at 100 x positions in [-50, 50) m (linear inter/extrapolation of y and z,
visible where x lies within the lane's own x range); a GT/prediction pair costs the integer sum
of per-sample distances (1.5 where only one is visible); lanes are matched by min-cost flow and a
match counts when its cost < 150 and ≥ 75 % of the visible samples are within 1.5 m. All lanes of
a frame are resampled in one batch and all pairs are costed in one broadcast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .f_score_solver import solve_min_cost_assignment

X_SAMPLES = np.linspace(-50, 50, num=100, endpoint=False)
DIST_TH = 1.5
RATIO_TH = 0.75


def _usable(lanes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Lanes with ≥ 2 points overlapping the sampled x range (checked on first/last point)."""
    lanes = [x for x in lanes if x.shape[0] > 1]
    return [x for x in lanes if x[0, 0] < X_SAMPLES[-1] and x[-1, 0] > X_SAMPLES[0]]


def resample_lanes(lanes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, z, visible), each (L, 100), of `scipy.interpolate.interp1d(x, ·, fill_value='extrapolate')`
    at the x samples, for all lanes at once (same arithmetic and dtypes as interp1d)."""
    n = np.array([len(x) for x in lanes])
    flat = np.concatenate(lanes)
    pts = np.full((len(lanes), n.max(), 3), np.inf, dtype=flat.dtype)
    starts = np.repeat(np.cumsum(n) - n, n)
    pts[np.repeat(np.arange(len(lanes)), n), np.arange(len(flat)) - starts] = flat
    order = np.argsort(pts[:, :, 0], axis=1, kind='stable')  # interp1d sorts x with mergesort
    pts = np.take_along_axis(pts, order[:, :, None], axis=1)
    x = pts[:, :, 0]
    # searchsorted(x, x_new) (left) = how many x are < x_new. The samples are the integers
    # -50..49, so x < X[k] ⟺ k ≥ floor(x + 50) + 1 (exact in float64): count points per first
    # sample index and accumulate, instead of comparing every point with every sample.
    first = np.clip(np.floor(x.astype(np.float64) + 50.0) + 1, 0, 100)
    first = np.where(np.isfinite(x), first, 100).astype(np.int64)
    rows = np.repeat(np.arange(len(lanes)) * 101, x.shape[1])
    counts = np.bincount(rows + first.ravel(), minlength=101 * len(lanes)).reshape(len(lanes), 101)
    hi = np.clip(np.cumsum(counts, axis=1)[:, :100], 1, (n - 1)[:, None])
    lo = hi - 1
    x_lo = np.take_along_axis(x, lo, 1)
    out = []
    with np.errstate(divide='ignore', invalid='ignore'):
        dx = x[:, 1:] - x[:, :-1]
        for c in (1, 2):
            v = pts[:, :, c]
            # Same per-segment slope as interp1d's (y_hi - y_lo) / (x_hi - x_lo), then gathered.
            slope = np.take_along_axis((v[:, 1:] - v[:, :-1]) / dx, lo, 1)
            v_lo = np.take_along_axis(v, lo, 1)
            out.append((slope * (X_SAMPLES[None] - x_lo) + v_lo).astype(np.float64))
    valid = np.arange(x.shape[1])[None, :] < n[:, None]
    x_min = np.where(valid, x, np.inf).min(1)  # same values as np.min(lane[:, 0]) per lane
    x_max = np.where(valid, x, -np.inf).max(1)
    visible = (X_SAMPLES[None] >= x_min[:, None]) & (X_SAMPLES[None] <= x_max[:, None])
    return out[0], out[1], visible


def _resample_all(lanes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`resample_lanes` over lanes of possibly different dtypes (each dtype group computed in its
    own dtype, as the devkit computes each lane in its own)."""
    if not lanes:
        return np.zeros((0, 100)), np.zeros((0, 100)), np.zeros((0, 100), bool)
    dtypes = [lane.dtype for lane in lanes]
    if all(d == dtypes[0] for d in dtypes):
        return resample_lanes(lanes)
    y, z, vis = (
        np.zeros((len(lanes), 100)),
        np.zeros((len(lanes), 100)),
        np.zeros((len(lanes), 100), bool),
    )
    for dtype in set(dtypes):
        idx = [k for k, d in enumerate(dtypes) if d == dtype]
        y[idx], z[idx], vis[idx] = resample_lanes([lanes[k] for k in idx])
    return y, z, vis


def _pair_costs(
    gy: np.ndarray, gz: np.ndarray, gv: np.ndarray, py: np.ndarray, pz: np.ndarray, pv: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(integer cost, matched-sample count) of paired resampled lanes, each input (C, 100)."""
    dist = np.sqrt((gy - py) ** 2 + (gz - pz) ** 2)
    both_invisible = ~gv & ~pv
    dist[both_invisible] = 0
    dist[gv != pv] = DIST_TH
    num_match = (dist < DIST_TH).sum(-1) - both_invisible.sum(-1)
    total = dist.sum(-1)
    with np.errstate(invalid='ignore'):
        cost = np.where((total > 0) & (total < 1), 1, total.astype(int))
    return cost, num_match


def f_score(gts: Mapping, preds: Mapping) -> float:
    """Dataset F-score: 2RP/(R+P) with R = recalled/#GT, P = precise/#predictions (frames in
    `preds` order, each scored against `gts[token]`)."""
    tokens = list(preds)
    return f_score_from_lanes(
        [[np.asarray(x['points']) for x in gts[t]['lane_centerline']] for t in tokens],
        [[np.asarray(x['points']) for x in preds[t]['lane_centerline']] for t in tokens],
    )


def f_score_from_lanes(
    gt_lanes: Sequence[Sequence[np.ndarray]], pred_lanes: Sequence[Sequence[np.ndarray]]
) -> float:
    """F-score from per-frame lists of (N, 3) GT and predicted lanes.

    All lanes of all frames are resampled in one batch. Pairs whose visible x ranges do not
    overlap have only 0 and 1.5 m samples, so their cost is exactly 1.5·(#visible GT + #visible
    pred) and they match no sample; only overlapping pairs are costed sample by sample.
    """
    num_frames = len(gt_lanes)
    gt_frames = [_usable(f) for f in gt_lanes]
    pred_frames = [_usable(f) for f in pred_lanes]
    gy, gz, gv = _resample_all([x for f in gt_frames for x in f])
    py, pz, pv = _resample_all([x for f in pred_frames for x in f])
    # Lanes need more than one visible sample.
    g_frame = np.repeat(np.arange(num_frames), [len(f) for f in gt_frames])
    p_frame = np.repeat(np.arange(num_frames), [len(f) for f in pred_frames])
    gkeep, pkeep = gv.sum(1) > 1, pv.sum(1) > 1
    gy, gz, gv, g_frame = gy[gkeep], gz[gkeep], gv[gkeep], g_frame[gkeep]
    py, pz, pv, p_frame = py[pkeep], pz[pkeep], pv[pkeep], p_frame[pkeep]
    g_start = np.searchsorted(g_frame, np.arange(num_frames + 1))
    p_start = np.searchsorted(p_frame, np.arange(num_frames + 1))
    gcount, pcount = gv.sum(1), pv.sum(1)
    # Visible samples form one interval per lane (x within the lane's own range).
    g_first, g_last = gv.argmax(1), 99 - gv[:, ::-1].argmax(1)
    p_first, p_last = pv.argmax(1), 99 - pv[:, ::-1].argmax(1)

    totals = np.zeros(4)
    for f in range(num_frames):
        gs, ps = slice(g_start[f], g_start[f + 1]), slice(p_start[f], p_start[f + 1])
        ng, npred = gs.stop - gs.start, ps.stop - ps.start
        totals[2:] += ng, npred
        if ng == 0 or npred == 0:
            continue
        cost = ((gcount[gs, None] + pcount[None, ps]) * DIST_TH).astype(int)
        num_match = np.zeros((ng, npred), dtype=np.int64)
        overlap = np.maximum(g_first[gs, None], p_first[None, ps]) <= np.minimum(
            g_last[gs, None], p_last[None, ps]
        )
        ii, jj = np.nonzero(overlap)
        if len(ii):
            gi, pj = gs.start + ii, ps.start + jj
            cost[ii, jj], num_match[ii, jj] = _pair_costs(
                gy[gi], gz[gi], gv[gi], py[pj], pz[pj], pv[pj]
            )
        for i, j, c in solve_min_cost_assignment(cost):
            if c < DIST_TH * len(X_SAMPLES):
                totals[0] += num_match[i, j] / gcount[gs.start + i] >= RATIO_TH
                totals[1] += num_match[i, j] / pcount[ps.start + j] >= RATIO_TH
    recall = totals[0] / (totals[2] if totals[2] else 1e-6)
    precision = totals[1] / (totals[3] if totals[3] else 1e-6)
    if recall + precision == 0:
        return 0.0
    return float(2 * recall * precision / (recall + precision))
