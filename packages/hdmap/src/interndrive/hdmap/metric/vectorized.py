"""Vectorised Chamfer AP, numerically identical to the challenge's definition (see `reference.py`).

The definition: every polyline (prediction and GT, x/y only) is resampled every `sample_dist` metres
(points at 0, d, 2d, ... and at the full length); the distance between two lines is the symmetric
Chamfer distance of those point sets; per frame and class the predictions, in descending score, each take
their nearest GT and are a true positive if that distance is <= threshold and the GT is not taken yet;
per class and threshold all predictions of the dataset are ranked by score and the VOC "area" AP is taken;
a class's AP is the mean over thresholds and mAP the mean over classes.

How this is made fast without changing a single number:
- Resampling of all lines at once: padded per-line cumulative lengths, `searchsorted` and one lerp (the
  same floating-point operations GEOS does in `LineString.interpolate`).
- Pair pruning with exact lower bounds: the gap between two lines' bounding boxes, then the weighted
  mean gap between boxes of runs of 32 and of 8 consecutive resampled points, bound the Chamfer
  distance from below (every point is at least as far from the other line as its box is from the
  nearest box of the other line). A pair whose bound exceeds the largest
  threshold cannot decide anything, and per prediction only pairs whose bound is below the best exact
  distance found so far can be its nearest GT. Their exact distances are computed in batches of padded
  point sets, grouped by size, with one broadcast per batch.
- Greedy matching for all frames at once: a prediction is a TP exactly when it is the first, in its
  frame's score order, of the predictions within the threshold whose nearest GT is the same.
- Near-ties are decided by the official arithmetic: the batched sums round differently in the last
  bit, which matters when two GTs are at the same distance to ~1e-15 (overlapping crossings clipped at
  the ROI edge do this) or a distance sits on a threshold; those few pairs are recomputed per pair with
  scipy's `cdist` exactly as the challenge's code does.
- Ranking ties are broken exactly as the official code does (`np.argsort` on the same arrays in the
  same order), because the AP depends on the order of predictions with equal scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..constants import CLASSES, SAMPLE_DIST, THRESHOLDS
from .types import GroundTruth, Predictions, as_xy

# Bounds are compared with this slack so that a rounding error in a bound can never prune a pair
# whose exact distance is within a threshold.
_BOUND_SLACK = 1e-9
# Distances this close (metres) to each other or to a threshold are recomputed the official way.
_TIE_TOLERANCE = 1e-9
# Maximum number of float64 elements of one broadcast (a few temporaries of 16 MB each).
_CHUNK_ELEMENTS = 2_000_000
# Consecutive resampled points per box of the cheap lower bounds, coarse to fine (32 points span
# 9.3 m, 8 points 2.1 m).
_CHUNK_POINTS = (32, 8)


# --------------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------------
def resample_polylines(
    vectors: Sequence[np.ndarray], sample_dist: float = SAMPLE_DIST
) -> tuple[np.ndarray, np.ndarray]:
    """Resamples many polylines at a fixed spacing, exactly like the challenge's `interp_fixed_dist`.

    Args:
        vectors: Polylines, each (N_i, 2) float64 with N_i >= 2.
        sample_dist: Spacing in metres.

    Returns:
        (points, offsets): all resampled points (T, 2) and line i's points are
        `points[offsets[i]:offsets[i + 1]]`.
    """
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(1, dtype=np.int64)
    n_vert = np.array([len(v) for v in vectors], dtype=np.int64)
    if n_vert.min() < 2:
        bad = int(np.argmin(n_vert))
        raise ValueError(f'polyline {bad} has {n_vert[bad]} point(s); at least 2 are needed')
    # Lines sorted by vertex count and processed in chunks, so that one long line does not pad all.
    order = np.argsort(n_vert, kind='stable')
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    start = 0
    while start < n:
        stop = start
        while stop < n and (stop - start + 1) * int(n_vert[order[stop]]) <= _CHUNK_ELEMENTS // 8:
            stop += 1
        stop = max(stop, start + 1)
        ids = order[start:stop]
        width = int(n_vert[ids].max())
        pieces.append((ids, *_resample_padded([vectors[i] for i in ids], width, sample_dist)))
        start = stop
    counts = np.zeros(n, dtype=np.int64)
    for ids, _, cnt in pieces:
        counts[ids] = cnt
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    points = np.empty((offsets[-1], 2))
    for ids, pts, cnt in pieces:
        points[_ranges(offsets[ids], cnt)] = pts
    return points, offsets


def _resample_padded(
    vectors: Sequence[np.ndarray], width: int, sample_dist: float
) -> tuple[np.ndarray, np.ndarray]:
    m = len(vectors)
    verts = np.empty((m, width, 2))
    n_vert = np.array([len(v) for v in vectors], dtype=np.int64)
    for i, v in enumerate(vectors):
        verts[i, : len(v)] = v
        verts[i, len(v) :] = v[-1]  # repeated last vertex = zero-length segments, skipped like GEOS
    seg = verts[:, 1:] - verts[:, :-1]  # p1 - p0, as GEOS Coordinate::distance
    seg_len = np.sqrt(seg[..., 0] * seg[..., 0] + seg[..., 1] * seg[..., 1])
    cum_end = np.cumsum(seg_len, axis=1)  # sequential, like GEOS's running totalLength + segLen
    length = cum_end[:, -1]
    # np.arange(d, length, d) element count and values (start + i * delta), replicated for all lines.
    delta = (sample_dist + sample_dist) - sample_dist
    with np.errstate(invalid='ignore'):
        n_mid = np.ceil((length - sample_dist) / sample_dist)
    n_mid = np.where(np.isfinite(n_mid) & (n_mid > 0), n_mid, 0).astype(np.int64)
    counts = n_mid + 2
    line_of = np.repeat(np.arange(m), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    dist = sample_dist + (local - 1) * delta
    dist[local == 0] = 0.0
    last = local == counts[line_of] - 1
    dist[last] = length[line_of[last]]
    # GEOS: the first segment with totalLength + segLen > d holds the point; none -> the end point.
    seg_idx = _searchsorted_rows(cum_end, line_of, dist)
    n_seg = width - 1
    inside = seg_idx < n_seg
    seg_c = np.minimum(seg_idx, n_seg - 1)
    cum_start = np.where(seg_c > 0, cum_end[line_of, np.maximum(seg_c - 1, 0)], 0.0)
    with np.errstate(invalid='ignore', divide='ignore'):
        frac = (dist - cum_start) / seg_len[line_of, seg_c]
    p0 = verts[line_of, seg_c]
    p1 = verts[line_of, seg_c + 1]
    pts = p0 + frac[:, None] * (p1 - p0)
    pts = np.where((frac <= 0.0)[:, None], p0, pts)
    pts = np.where((frac >= 1.0)[:, None], p1, pts)
    end = verts[line_of, n_vert[line_of] - 1]
    pts = np.where(inside[:, None], pts, end)
    return pts, counts


def _searchsorted_rows(cum_end: np.ndarray, row: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per value, the first column j of `cum_end[row]` with cum_end[row, j] > value.

    One flat `np.searchsorted` over complex keys (row + 1j * length): numpy orders complex numbers
    lexicographically, so rows stay separate without any rounding (adding row offsets would round).
    """
    n_rows, width = cum_end.shape
    keys = (np.arange(n_rows, dtype=np.float64)[:, None] + 1j * cum_end).ravel()
    queries = row.astype(np.float64) + 1j * values
    return np.searchsorted(keys, queries, side='right') - row * width


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for every (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    base = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return base + np.arange(total)


# --------------------------------------------------------------------------------------------------
# Chamfer distances
# --------------------------------------------------------------------------------------------------
def _padded_size(n: np.ndarray) -> np.ndarray:
    """Rounds point counts up to a ladder with <= 25 % padding, so pairs can share a broadcast."""
    step = np.maximum(
        4, 2 ** np.maximum(np.floor(np.log2(np.maximum(n, 1))).astype(np.int64) - 2, 0)
    )
    return -(-n // step) * step


def _gather_padded(points: np.ndarray, starts: np.ndarray, counts: np.ndarray, width: int):
    cols = np.arange(width)
    mask = cols[None, :] < counts[:, None]
    idx = np.where(mask, starts[:, None] + cols[None, :], starts[:, None])
    # Padding far away from every real point: it never wins a minimum over real points.
    return np.where(mask[..., None], points[idx], 1e6), mask


def _padded_batches(
    len_a: np.ndarray, len_b: np.ndarray, arrays_per_pair: int
) -> Iterator[tuple[np.ndarray, int, int]]:
    """Batches of pair indices that share padded sizes (wa, wb), so each is one broadcast.

    Args:
        len_a, len_b: Point (or box) counts of the two lines of every pair.
        arrays_per_pair: (wa, wb)-sized temporaries one pair needs at once; a batch holds at most
            `_CHUNK_ELEMENTS` of their elements.

    Yields:
        (pair indices k, wa, wb).
    """
    pad_a, pad_b = _padded_size(len_a), _padded_size(len_b)
    key = pad_a * (int(pad_b.max()) + 1) + pad_b
    order = np.argsort(key, kind='stable')
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, bounds):
        wa, wb = int(pad_a[group[0]]), int(pad_b[group[0]])
        per_chunk = max(1, _CHUNK_ELEMENTS // (arrays_per_pair * wa * wb))
        for c in range(0, len(group), per_chunk):
            yield group[c : c + per_chunk], wa, wb


def chamfer_pairs(
    points_a: np.ndarray,
    offsets_a: np.ndarray,
    points_b: np.ndarray,
    offsets_b: np.ndarray,
    ia: np.ndarray,
    ib: np.ndarray,
) -> np.ndarray:
    """Exact symmetric Chamfer distances of the resampled line pairs (ia[k] of A, ib[k] of B).

    Pairs are grouped by padded sizes and evaluated in broadcasts of at most `_CHUNK_ELEMENTS`.
    """
    out = np.empty(len(ia))
    if len(ia) == 0:
        return out
    len_a = offsets_a[ia + 1] - offsets_a[ia]
    len_b = offsets_b[ib + 1] - offsets_b[ib]
    for k, wa, wb in _padded_batches(len_a, len_b, arrays_per_pair=1):
        a, mask_a = _gather_padded(points_a, offsets_a[ia[k]], len_a[k], wa)
        b, mask_b = _gather_padded(points_b, offsets_b[ib[k]], len_b[k], wb)
        # Squared distances, (dx*dx) + (dy*dy) as scipy's cdist; sqrt after the min (monotone).
        d2 = a[:, :, None, 0] - b[:, None, :, 0]
        np.multiply(d2, d2, out=d2)
        dy = a[:, :, None, 1] - b[:, None, :, 1]
        np.multiply(dy, dy, out=dy)
        d2 += dy
        a_to_b = np.where(mask_a, np.sqrt(d2.min(axis=2)), 0.0).sum(axis=1) / len_a[k]
        b_to_a = np.where(mask_b, np.sqrt(d2.min(axis=1)), 0.0).sum(axis=1) / len_b[k]
        out[k] = (a_to_b + b_to_a) / 2
    return out


def chamfer_distance_matrix(
    pred_vectors: Sequence[np.ndarray],
    gt_vectors: Sequence[np.ndarray],
    sample_dist: float = SAMPLE_DIST,
) -> np.ndarray:
    """Full (num_preds, num_gts) Chamfer matrix after resampling (no pruning), in metres.

    Args:
        pred_vectors: Predicted polylines, each (N, >=2); only x, y are used.
        gt_vectors: GT polylines, each (N, >=2).
        sample_dist: Resampling spacing in metres.
    """
    pa, oa = resample_polylines([as_xy(v) for v in pred_vectors], sample_dist)
    pb, ob = resample_polylines([as_xy(v) for v in gt_vectors], sample_dist)
    ia, ib = np.meshgrid(np.arange(len(pred_vectors)), np.arange(len(gt_vectors)), indexing='ij')
    return chamfer_pairs(pa, oa, pb, ob, ia.ravel(), ib.ravel()).reshape(ia.shape)


def _chamfer_official(points_a, offsets_a, points_b, offsets_b, ia, ib) -> np.ndarray:
    """Chamfer distances of a few pairs with the official arithmetic (scipy `cdist`, numpy sums), so
    that near-ties resolve bit for bit as in the challenge's code."""
    from scipy.spatial.distance import cdist

    out = np.empty(len(ia))
    for k, (a, b) in enumerate(zip(ia, ib)):
        pa = points_a[offsets_a[a] : offsets_a[a + 1]]
        pb = points_b[offsets_b[b] : offsets_b[b + 1]]
        d = cdist(pa, pb, 'euclidean')
        out[k] = (d.min(-1).sum() / len(pa) + d.min(-2).sum() / len(pb)) / 2
    return out


def _line_boxes(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    if len(offsets) == 1:
        return np.zeros((0, 4))
    lo = np.minimum.reduceat(points, offsets[:-1], axis=0)
    hi = np.maximum.reduceat(points, offsets[:-1], axis=0)
    return np.concatenate([lo, hi], axis=1)


def _chunk_boxes(points: np.ndarray, offsets: np.ndarray, size: int):
    """Boxes of runs of `size` consecutive resampled points of every line.

    Returns:
        (boxes (C, 4) as x0, y0, x1, y1; weights (C,) = points per box; chunk offsets (L + 1,)).
    """
    counts = np.diff(offsets)
    n_chunks = -(-counts // size)
    chunk_off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(n_chunks, out=chunk_off[1:])
    local = np.arange(chunk_off[-1]) - np.repeat(chunk_off[:-1], n_chunks)
    line = np.repeat(np.arange(len(counts)), n_chunks)
    starts = offsets[line] + local * size
    weights = np.minimum(size, offsets[line + 1] - starts)
    lo = np.minimum.reduceat(points, starts, axis=0)
    hi = np.maximum.reduceat(points, starts, axis=0)
    return np.concatenate([lo, hi], axis=1), weights.astype(np.float64), chunk_off


def chunk_lower_bounds(
    chunks_a: tuple[np.ndarray, np.ndarray, np.ndarray],
    chunks_b: tuple[np.ndarray, np.ndarray, np.ndarray],
    ia: np.ndarray,
    ib: np.ndarray,
) -> np.ndarray:
    """Lower bounds of the Chamfer distances of pairs (ia[k], ib[k]) from chunk boxes.

    Every point of a chunk is at least as far from the other line as the distance from its chunk's box
    to the nearest chunk box of the other line, so the weighted mean of those box distances bounds each
    directed mean from below. Costs 1/size² of the exact computation.
    """
    boxes_a, w_a, off_a = chunks_a
    boxes_b, w_b, off_b = chunks_b
    out = np.empty(len(ia))
    if len(ia) == 0:
        return out
    len_a = off_a[ia + 1] - off_a[ia]
    len_b = off_b[ib + 1] - off_b[ib]
    for k, wa, wb in _padded_batches(len_a, len_b, arrays_per_pair=2):
        a, mask_a = _gather_padded(boxes_a, off_a[ia[k]], len_a[k], wa)
        b, mask_b = _gather_padded(boxes_b, off_b[ib[k]], len_b[k], wb)
        gx = np.maximum(a[:, :, None, 0] - b[:, None, :, 2], b[:, None, :, 0] - a[:, :, None, 2])
        gy = np.maximum(a[:, :, None, 1] - b[:, None, :, 3], b[:, None, :, 1] - a[:, :, None, 3])
        np.maximum(gx, 0.0, out=gx)
        np.maximum(gy, 0.0, out=gy)
        gx *= gx
        gy *= gy
        gx += gy
        wa_k = np.where(
            mask_a, w_a[np.minimum(off_a[ia[k]][:, None] + np.arange(wa), len(w_a) - 1)], 0.0
        )
        wb_k = np.where(
            mask_b, w_b[np.minimum(off_b[ib[k]][:, None] + np.arange(wb), len(w_b) - 1)], 0.0
        )
        a_to_b = (np.sqrt(gx.min(axis=2)) * wa_k).sum(axis=1) / wa_k.sum(axis=1)
        b_to_a = (np.sqrt(gx.min(axis=1)) * wb_k).sum(axis=1) / wb_k.sum(axis=1)
        out[k] = (a_to_b + b_to_a) / 2
    return out


def nearest_gt(
    pred_points: np.ndarray,
    pred_offsets: np.ndarray,
    pred_frame: np.ndarray,
    gt_points: np.ndarray,
    gt_offsets: np.ndarray,
    gt_frame: np.ndarray,
    max_threshold: float,
    thresholds: Sequence[float] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Per prediction, the Chamfer distance to and index of its nearest GT of the same frame.

    Exact wherever it can matter: when the nearest distance is <= `max_threshold` both values equal
    `min`/`argmin` of the full matrix row (first index on ties); otherwise the distance is only known to
    exceed `max_threshold` (returned as inf, or as an exact larger value) and the index is -1 or any GT.

    Returns:
        (min_dist (P,), argmin (P,) global GT index or -1 when the frame has no GT).
    """
    n_pred = len(pred_offsets) - 1
    min_dist = np.full(n_pred, np.inf)
    argmin = np.full(n_pred, -1, dtype=np.int64)
    if n_pred == 0 or len(gt_offsets) == 1:
        return min_dist, argmin
    # Every (pred, gt) pair of the same frame; GTs of a frame are contiguous and in frame order.
    n_frames = int(max(pred_frame.max(), gt_frame.max())) + 1
    gt_count = np.bincount(gt_frame, minlength=n_frames)
    gt_start = np.cumsum(gt_count) - gt_count
    per_pred = gt_count[pred_frame]
    ia = np.repeat(np.arange(n_pred), per_pred)
    ib = _ranges(gt_start[pred_frame], per_pred)

    limit = max_threshold + _BOUND_SLACK
    box_a, box_b = _line_boxes(pred_points, pred_offsets), _line_boxes(gt_points, gt_offsets)
    ba, bb = box_a[ia], box_b[ib]
    gap_x = np.maximum(np.maximum(ba[:, 0] - bb[:, 2], bb[:, 0] - ba[:, 2]), 0.0)
    gap_y = np.maximum(np.maximum(ba[:, 1] - bb[:, 3], bb[:, 1] - ba[:, 3]), 0.0)
    keep = np.sqrt(gap_x * gap_x + gap_y * gap_y) <= limit
    ia, ib = ia[keep], ib[keep]
    # Coarse-to-fine chunk bounds: each level is cheap compared with the pairs it removes.
    for size in _CHUNK_POINTS:
        bound = chunk_lower_bounds(
            _chunk_boxes(pred_points, pred_offsets, size),
            _chunk_boxes(gt_points, gt_offsets, size),
            ia,
            ib,
        )
        keep = bound <= limit
        ia, ib, bound = ia[keep], ib[keep], bound[keep]
    if len(ia) == 0:
        return min_dist, argmin

    # Round 1: per prediction, the pair with the smallest bound (pairs are grouped by prediction).
    order = np.lexsort((bound, ia))
    first = order[np.r_[True, ia[order][1:] != ia[order][:-1]]]
    exact = np.full(len(ia), np.inf)
    exact[first] = chamfer_pairs(
        pred_points, pred_offsets, gt_points, gt_offsets, ia[first], ib[first]
    )
    best = np.full(n_pred, np.inf)
    np.minimum.at(best, ia[first], exact[first])
    # Round 2: other pairs that might beat (or tie with) the best distance found so far.
    todo = np.isinf(exact) & (bound <= np.minimum(best[ia], max_threshold) + _BOUND_SLACK)
    todo[first] = False
    sel = np.flatnonzero(todo)
    exact[sel] = chamfer_pairs(pred_points, pred_offsets, gt_points, gt_offsets, ia[sel], ib[sel])

    # Near-ties decide by the last bit: two GTs at (almost) the same distance, or a distance at a
    # threshold. There the batched sums (other summation order) may round differently from the
    # official per-pair arithmetic, so those few pairs are recomputed exactly the official way.
    best = np.full(n_pred, np.inf)
    np.minimum.at(best, ia, exact)
    near = exact <= best[ia] + _TIE_TOLERANCE
    n_near = np.bincount(ia[near], minlength=n_pred)
    at_thr = np.zeros(n_pred, dtype=bool)
    for thr in thresholds:
        at_thr |= np.abs(best - thr) <= _TIE_TOLERANCE
    redo = np.flatnonzero(near & ((n_near[ia] > 1) | at_thr[ia]))
    if len(redo):
        exact[redo] = _chamfer_official(
            pred_points, pred_offsets, gt_points, gt_offsets, ia[redo], ib[redo]
        )

    # min / argmin with numpy's tie rule (first GT index among equal distances).
    order = np.lexsort((ib, exact, ia))
    head = order[np.r_[True, ia[order][1:] != ia[order][:-1]]]
    min_dist[ia[head]] = exact[head]
    argmin[ia[head]] = np.where(np.isfinite(exact[head]), ib[head], -1)
    return min_dist, argmin


# --------------------------------------------------------------------------------------------------
# Matching and AP
# --------------------------------------------------------------------------------------------------
def _frame_ranks(frame: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Position of each prediction in its frame's `np.argsort(-scores)` (the official order)."""
    n = len(scores)
    rank = np.empty(n, dtype=np.int64)
    if n == 0:
        return rank
    order = np.lexsort((-scores, frame))
    f_sorted = frame[order]
    starts = np.r_[0, np.flatnonzero(f_sorted[1:] != f_sorted[:-1]) + 1]
    sizes = np.diff(np.r_[starts, n])
    rank[order] = np.arange(n) - np.repeat(starts, sizes)
    # With tied scores the order among the tied ones is whatever np.argsort returns (introsort is
    # not stable): redo exactly those frames with the official call.
    s_sorted = scores[order]
    tied = (s_sorted[1:] == s_sorted[:-1]) & (f_sorted[1:] == f_sorted[:-1])
    for f in np.unique(f_sorted[1:][tied]):
        members = np.flatnonzero(frame == f)
        rank[members[np.argsort(-scores[members])]] = np.arange(len(members))
    return rank


def greedy_match(
    min_dist: np.ndarray,
    argmin: np.ndarray,
    rank: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """TP flags (float64) of the challenge's greedy matching, for all frames at once.

    A prediction is a TP iff its nearest GT is within `threshold` and no prediction ranked before it
    in its frame has the same nearest GT within `threshold` (GT indices are global, so frames never
    share one).
    """
    tp = np.zeros(len(min_dist))
    valid = np.flatnonzero((argmin >= 0) & (min_dist <= threshold))
    if len(valid):
        order = valid[np.lexsort((rank[valid], argmin[valid]))]
        g = argmin[order]
        tp[order[np.r_[True, g[1:] != g[:-1]]]] = 1.0
    return tp


def average_precision(recalls: np.ndarray, precisions: np.ndarray) -> float:
    """VOC all-point ("area") AP: area under the monotone precision envelope.

    Args:
        recalls: Cumulative recall of the ranked predictions, shape (N,).
        precisions: Cumulative precision, shape (N,).
    """
    mrec = np.concatenate([[0.0], recalls, [1.0]])
    mpre = np.concatenate([[0.0], precisions, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    ind = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[ind + 1] - mrec[ind]) * mpre[ind + 1]))


def chamfer_ap(
    gts: GroundTruth,
    preds: Predictions,
    thresholds: Sequence[float] = THRESHOLDS,
    sample_dist: float = SAMPLE_DIST,
) -> dict[str, float]:
    """Chamfer AP of the challenge for `preds` against `gts`.

    Args:
        gts: token -> class name -> GT polylines (N, >=2) in metres, ego frame. Its tokens define the
            evaluated frames (in order); prediction tokens not in `gts` are ignored.
        preds: token -> {'vectors', 'scores', 'labels'}; a missing token scores as a frame without
            predictions (validate the submission first to be told about it).
        thresholds: Chamfer thresholds in metres.
        sample_dist: Resampling spacing in metres.

    Returns:
        Flat mapping with the keys of `metric_keys(thresholds)`; APs are fractions in [0, 1].
    """
    if len(gts) == 0:
        raise ValueError('chamfer_ap: the ground truth has no frames')
    out: dict[str, float] = {}
    max_thr = max(thresholds)
    sum_map = 0.0
    for label, cat in enumerate(CLASSES):
        pred_vecs, pred_scores, pred_frame, gt_vecs, gt_frame = [], [], [], [], []
        for f, (token, gt) in enumerate(gts.items()):
            lines = gt.get(cat, [])
            gt_vecs += [as_xy(v) for v in lines]
            gt_frame += [f] * len(lines)
            pred = preds.get(token)
            if pred is None:
                continue
            for vec, score, lab in zip(pred['vectors'], pred['scores'], pred['labels']):
                if lab == label:
                    pred_vecs.append(as_xy(vec))
                    pred_scores.append(score)
                    pred_frame.append(f)
        scores = np.asarray(pred_scores, dtype=np.float64)
        p_frame = np.asarray(pred_frame, dtype=np.int64)
        pp, po = resample_polylines(pred_vecs, sample_dist)
        gp, go = resample_polylines(gt_vecs, sample_dist)
        min_dist, argmin = nearest_gt(
            pp, po, p_frame, gp, go, np.asarray(gt_frame, dtype=np.int64), max_thr, thresholds
        )
        rank = _frame_ranks(p_frame, scores)
        order = np.argsort(-scores)  # same array, same call as the official global ranking
        num_gts = len(gt_vecs)
        sum_ap = 0.0
        for thr in thresholds:
            tp_flags = greedy_match(min_dist, argmin, rank, thr)
            tp = np.cumsum(tp_flags[order])
            fp = np.cumsum(1.0 - tp_flags[order])
            eps = np.finfo(np.float32).eps
            ap = average_precision(tp / np.maximum(num_gts, eps), tp / np.maximum(tp + fp, eps))
            out[f'AP_{cat}@{thr}'] = ap
            sum_ap += ap
        out[f'AP_{cat}'] = sum_ap / len(thresholds)
        out[f'num_gts_{cat}'] = float(num_gts)
        out[f'num_preds_{cat}'] = float(len(scores))
        sum_map += out[f'AP_{cat}']
    out['mAP'] = sum_map / len(CLASSES)
    return out
