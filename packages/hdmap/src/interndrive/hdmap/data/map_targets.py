"""Training targets of VectorMapNet from map polylines (pure numpy/shapely).

1. `vectorize_map`: ego-frame polylines → 2-D, simplified (Douglas-Peucker 0.2 m, topology preserved),
   normalised to (0, 1) as (p + roi/2) / (roi + 2).
2. `map_targets`: per line, the keypoint bbox (xyxy in canvas units, grown to a minimum size) for the
   detector, and the quantised vertex token sequence (+ per-token loss weights) for the generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from shapely.geometry import LineString

from ..constants import ROI_SIZE

STOP_TOKEN = 0  # end of sequence; coordinate tokens are quantised value + 1
# Normalisation margin (metres) of upstream: (p + roi/2) / (roi + 2), so points stay inside (0, 1).
NORMALIZE_MARGIN = 2.0


def normalize_points(points: np.ndarray, roi_size: Sequence[float] = ROI_SIZE) -> np.ndarray:
    """Ego-frame metres → (0, 1) canvas coordinates."""
    roi = np.asarray(roi_size, dtype=np.float64)
    return (np.asarray(points, dtype=np.float64)[:, :2] + roi / 2) / (roi + NORMALIZE_MARGIN)


def denormalize_points(points: np.ndarray, roi_size: Sequence[float] = ROI_SIZE) -> np.ndarray:
    """Inverse of `normalize_points` (predictions → metres for the submission)."""
    roi = np.asarray(roi_size, dtype=np.float64)
    return np.asarray(points, dtype=np.float64)[:, :2] * (roi + NORMALIZE_MARGIN) - roi / 2


def vectorize_map(
    map_geoms: Mapping[int, Sequence[Any]],
    roi_size: Sequence[float] = ROI_SIZE,
    simplify_tolerance: float = 0.2,
    normalize: bool = True,
) -> dict[int, list[np.ndarray]]:
    """Simplified (and normalised) 2-D polylines per label.

    Args:
        map_geoms: label -> polylines (N, >=2) in ego metres.
        roi_size: ROI (x, y) extent in metres.
        simplify_tolerance: Douglas-Peucker tolerance in metres (0 disables).
        normalize: Map to (0, 1) canvas coordinates.
    """
    out: dict[int, list[np.ndarray]] = {}
    for label, lines in map_geoms.items():
        out[label] = []
        for line in lines:
            xy = np.asarray(line, dtype=np.float64)[:, :2]
            if len(xy) < 2:
                raise ValueError(
                    f'label {label}: polyline with {len(xy)} point(s), at least 2 needed'
                )
            if simplify_tolerance > 0:
                xy = np.asarray(
                    LineString(xy).simplify(simplify_tolerance, preserve_topology=True).coords
                )
            out[label].append(normalize_points(xy, roi_size) if normalize else xy)
    return out


def line_bbox(polyline: np.ndarray, min_size: float) -> np.ndarray:
    """Bounding box [[x0, y0], [x1, y1]] of a normalised polyline, grown so both sides are >= min_size
    (the envelope of the line buffered by half the missing size), clipped to [0, 1]."""
    line = LineString(polyline)
    x0, y0, x1, y1 = line.bounds
    w, h = x1 - x0, y1 - y0
    if w < min_size or h < min_size:
        grow = max((min_size - min(w, h)) / 2, 1e-4)
        x0, y0, x1, y1 = line.buffer(grow).envelope.bounds
    return np.clip(np.array([[x0, y0], [x1, y1]]), 0.0, 1.0)


def quantize(points: np.ndarray, canvas_size: Sequence[int]) -> np.ndarray:
    """(0, 1) coordinates → integer canvas cells in [0, canvas − 1] (truncation, as upstream)."""
    return (np.asarray(points)[:, :2] * (np.asarray(canvas_size) - 1)).astype(np.int32)


def vertex_weights(polyline: np.ndarray, arc_length_weighted: bool) -> np.ndarray:
    """Loss weights of a token sequence (2 per vertex + stop), summing to about 1.

    Arc-length weighting (used for boundaries, which have long straight runs) gives each vertex half the
    length of its adjacent edges; otherwise every token weighs 1 / (2n + 1).
    """
    n = len(polyline)
    if not arc_length_weighted:
        return np.full(2 * n + 1, 1.0 / (2 * n + 1))
    edge = np.linalg.norm(polyline[1:] - polyline[:-1], axis=-1)
    w = np.concatenate([edge[:1], (edge[:-1] + edge[1:]) / 2, edge[-1:]])
    total = w.sum()
    w = w / (total if total != 0 else 1.0)
    return np.concatenate([np.repeat(w, 2) / 2, [1.0 / (2 * n)]])


def map_targets(
    vectors: Mapping[int, Sequence[np.ndarray]],
    canvas_size: Sequence[int] = (200, 100),
    min_bbox_size: float = 4 / 200,
    arc_length_labels: Sequence[int] = (2,),
) -> dict[str, Any] | None:
    """Detector and generator targets of one sample (None when it has no line).

    Args:
        vectors: label -> normalised polylines (output of `vectorize_map`).
        canvas_size: (W, H) of the quantisation canvas (x cells, y cells).
        min_bbox_size: Minimum normalised bbox side.
        arc_length_labels: Labels whose vertex weights follow arc length (boundary).

    Returns:
        `keypoint` (M, 4) float32 xyxy in canvas units clipped to [0.1, canvas − 0.1]; `det_label` /
        `gen_label` (M,); `qkeypoint` (M, 4) int32 quantised bbox; `polylines` list of int token
        sequences (x, y, x, y, ..., STOP) with tokens = cell + 1; `polyline_weights` list of float weights.
    """
    canvas = np.asarray(canvas_size, dtype=np.float64)
    boxes, labels, qboxes, seqs, weights = [], [], [], [], []
    for label, lines in vectors.items():
        for line in lines:
            line = np.asarray(line, dtype=np.float64)
            box = line_bbox(line, min_bbox_size)
            boxes.append(box * canvas)
            qboxes.append(quantize(box, canvas_size).reshape(-1))
            labels.append(label)
            tokens = quantize(line, canvas_size).reshape(-1) + 1
            seqs.append(np.concatenate([tokens, [STOP_TOKEN]]).astype(np.int64))
            weights.append(vertex_weights(line, label in arc_length_labels))
    if not boxes:
        return None
    kp = np.stack(boxes).astype(np.float32)
    kp[..., 0] = np.clip(kp[..., 0], 0.1, canvas[0] - 0.1)
    kp[..., 1] = np.clip(kp[..., 1], 0.1, canvas[1] - 0.1)
    labels_arr = np.asarray(labels, dtype=np.int64)
    return {
        'keypoint': kp.reshape(len(kp), -1),
        'det_label': labels_arr,
        'gen_label': labels_arr.copy(),
        'qkeypoint': np.stack(qboxes),
        'qkeypoint_mask': np.ones((len(kp), 4), dtype=bool),
        'polylines': seqs,
        'polyline_masks': [np.ones(len(s), dtype=bool) for s in seqs],
        'polyline_weights': weights,
    }
