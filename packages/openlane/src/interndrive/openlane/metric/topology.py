"""Vectorised TOP_ll / TOP_lt: the mean over graph vertices of the AP of each vertex's neighbours.

For one frame, every evaluation variant (10 confidence levels × thresholds in v1.0, thresholds in
v1.1) builds a GT-sized predicted adjacency matrix (matched predictions' edge scores; unmatched
entries filled from the GT so they count as wrong), and every row and every column is a vertex
whose candidate neighbours are the entries > 0.5, ranked by score. Vertices of unmatched GT
elements score 0 in closed form; the matched ones of all frames and variants are ranked in one
stable sort per axis, each distinct variant of a frame once.

Ties: the devkit ranks with `np.argsort(-conf)` (quicksort, not stable), so among equal scores
with different correctness its result depends on numpy's sort kernel. Vertices with such a
mixed tie (rare: mostly exactly-1.0 sigmoid outputs or GT fed back as predictions) are recomputed
with the devkit's own ranking call, which keeps the scores identical in every case.
"""

from __future__ import annotations

import numpy as np

from ..constants import THRESHOLD_RELATIONSHIP_CONFIDENCE

EPS32 = np.finfo(np.float32).eps


def _vertex_ap_exact(gt_row: np.ndarray, pred_row: np.ndarray) -> np.float32:
    """One vertex exactly as the devkit ranks it (used only for mixed ties)."""
    gt_idx = set(np.flatnonzero(gt_row.astype(bool)).tolist())
    cand = pred_row > THRESHOLD_RELATIONSHIP_CONFIDENCE
    conf = pred_row[cand]
    ranked = np.flatnonzero(cand)[np.argsort(-conf)]
    rel = np.array([i in gt_idx for i in ranked], dtype=np.float32)
    tp = np.cumsum(rel)
    precision = tp / np.maximum(tp + np.cumsum(1 - rel), EPS32)
    return np.dot(precision, rel) / len(gt_idx)


def vertex_aps(gt_rows: np.ndarray, pred_rows: np.ndarray) -> np.ndarray:
    """AP of each vertex (row) of a stack of adjacency rows.

    Args:
        gt_rows: (V, N) GT adjacency rows (nonzero = neighbour).
        pred_rows: (V, N) predicted scores (float32 or float64).

    Returns:
        (V,) float64: 1 when a vertex has neither GT nor candidate neighbours, 0 when only one
        side is empty, else Σ precision@hit / #GT neighbours.
    """
    gt = gt_rows.astype(bool)
    cand = pred_rows > THRESHOLD_RELATIONSHIP_CONFIDENCE
    key = np.where(cand, -pred_rows, np.inf)
    order = np.argsort(key, axis=1, kind='stable')
    key_sorted = np.take_along_axis(key, order, axis=1)
    rel = np.take_along_axis(gt & cand, order, axis=1)
    tp = np.cumsum(rel, axis=1, dtype=np.float32)
    rank = np.arange(1, gt.shape[1] + 1, dtype=np.float32)
    precision = (
        tp / rank
    )  # == tp / (tp + fp) among the ranked candidates, in float32 like the devkit
    num_gt = gt.sum(1)
    num_cand = cand.sum(1)
    with np.errstate(divide='ignore', invalid='ignore'):
        # float32 dot, then a float64 division: the devkit's `np.dot(prec32, rel32) / num_gts`.
        ap = (precision * rel).sum(1, dtype=np.float32).astype(np.float64) / num_gt
    ap = np.where(
        (num_gt == 0) & (num_cand == 0), 1, np.where((num_gt == 0) | (num_cand == 0), 0, ap)
    )
    # Vertices with equal scores of different correctness: use the devkit's ranking.
    tie = (key_sorted[:, 1:] == key_sorted[:, :-1]) & np.isfinite(key_sorted[:, 1:])
    mixed = (tie & (rel[:, 1:] != rel[:, :-1])).any(1) & (num_gt > 0) & (num_cand > 0)
    for v in np.flatnonzero(mixed):
        # The devkit ranks float64 rows; float32 → float64 is exact, so the values are the same.
        ap[v] = _vertex_ap_exact(gt_rows[v], pred_rows[v].astype(np.float64))
    return ap


def _score_dtype(pred: np.ndarray) -> type:
    # The devkit ranks float64 copies of the scores. Float32 predictions (the usual sigmoid
    # outputs) and the fills (1, 0.5 + eps32) are exact in float32, so they are ranked in float32
    # (half the memory traffic); float64 predictions stay float64.
    small = pred.dtype in (np.float16, np.float32) or pred.dtype.kind in 'bui'
    return np.float32 if small else np.float64


def matched_vertex_rows(
    gt: np.ndarray,
    pred: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    fill_scale: float | None,
    axis: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The adjacency rows (axis 0) or columns (axis 1) of every *matched* vertex of every variant.

    A vertex whose GT lane/TE has no matched prediction sees only fill scores: its candidates
    (fill > 0.5) are exactly its non-neighbours, so its AP is 0 and it is not returned.

    Args:
        gt: (R, C) GT adjacency (topology_lclc or topology_lcte).
        pred: (R', C') predicted adjacency over the predictions.
        rows: (K, R) per variant, the prediction matched to each GT row (-1: none).
        cols: (K, C) likewise for the columns.
        fill_scale: Score of unmatched GT non-edges: None → 1 (v1.0, `1 - gt`), else
            `(1 - gt) * fill_scale` (v1.1, 0.5 + eps).
        axis: 0 for row vertices (out-edges / lanes), 1 for column vertices.

    Returns:
        (variant index, vertex index, GT rows (M, N), score rows (M, N)).
    """
    pred = np.asarray(pred)
    dtype = _score_dtype(pred)
    fill = (1 - gt).astype(dtype)
    if fill_scale is not None:
        fill = fill * dtype(fill_scale)
    matched = rows if axis == 0 else cols
    var_idx, vert_idx = np.nonzero(matched >= 0)
    other = cols[var_idx] if axis == 0 else rows[var_idx]  # (M, N) matches of the other side
    mine = matched[var_idx, vert_idx][:, None]  # (M, 1) prediction of this vertex
    if pred.size == 0 or len(var_idx) == 0:
        scores = np.zeros(other.shape, dtype)
    elif axis == 0:
        scores = pred.astype(dtype)[mine, np.maximum(other, 0)]
    else:
        scores = pred.astype(dtype)[np.maximum(other, 0), mine]
    gt_rows, fill_rows = (
        (gt[vert_idx], fill[vert_idx]) if axis == 0 else (gt.T[vert_idx], fill.T[vert_idx])
    )
    return var_idx, vert_idx, gt_rows, np.where(other >= 0, scores, fill_rows)


def topology_mean_ap(
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], fill_scale: float | None
) -> float:
    """Mean vertex AP over all frames, variants and vertices (rows and columns).

    Args:
        frames: Per frame with a non-empty GT adjacency: (gt (R, C), pred, rows (K, R), cols (K, C)).
        fill_scale: See `matched_vertex_rows`.

    All matched vertices of all frames are ranked in one batch per axis (rows padded with
    non-candidate, non-neighbour entries, which change no AP); unmatched vertices count 0.
    """
    total_vertices = sum(r.shape[0] * (g.shape[0] + g.shape[1]) for g, _, r, _ in frames)
    if total_vertices == 0:
        return 0.0
    # Variants of a frame with the same matches (v1.0 confidence levels that select the same
    # predictions) have the same vertex APs: rank each distinct one once, weighted by its count.
    unique_frames = []
    for g, p, r, c in frames:
        keys = np.ascontiguousarray(np.concatenate([r, c], axis=1))
        first: dict[bytes, int] = {}
        counts: dict[bytes, int] = {}
        for k, row in enumerate(keys):
            key = row.tobytes()
            first.setdefault(key, k)
            counts[key] = counts.get(key, 0) + 1
        idx = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        mult = np.fromiter((counts[key] for key in first), dtype=np.int64, count=len(first))
        unique_frames.append((g, p, r[idx], c[idx], mult))
    total = 0.0
    for axis in (0, 1):
        parts = []
        for g, p, r, c, counts in unique_frames:
            var_idx, _, gr, sc = matched_vertex_rows(g, p, r, c, fill_scale, axis)
            if len(gr):
                parts.append((gr, sc, counts[var_idx]))
        if not parts:
            continue
        width = max(gr.shape[1] for gr, _, _ in parts)
        dtype = np.result_type(*[sc.dtype for _, sc, _ in parts])
        gt_rows = np.zeros((sum(len(gr) for gr, _, _ in parts), width), dtype=np.int8)
        scores = np.zeros(gt_rows.shape, dtype=dtype)
        start = 0
        for gr, sc, _ in parts:
            gt_rows[start : start + len(gr), : gr.shape[1]] = gr != 0
            scores[start : start + len(gr), : sc.shape[1]] = sc
            start += len(gr)
        weights = np.concatenate([w for _, _, w in parts])
        total += float((vertex_aps(gt_rows, scores) * weights).sum())
    return total / total_vertices
