"""Training targets from an annotation, and model outputs → submission predictions (pure numpy).

`frame_targets` turns one frame's annotation (collection entry) into the arrays the heads are
trained on: lane centerlines as end-point-fixed Bézier control points (5 × xyz = 15 numbers, ego
metres), traffic-element boxes (xyxy pixels of the front image) with their attribute as label
(0..12), and the lane→lane / lane→TE adjacency. `format_predictions` is the inverse used when
writing a submission: control points are sampled at 11 points, ids are 1000+i (lanes) and 2000+i
(traffic elements) as upstream, boxes are mapped back to original image pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .bezier import fit_bezier_endpoint_fixed, sample_bezier


def frame_targets(annotation: Mapping[str, Any], num_control: int = 5) -> dict[str, np.ndarray]:
    """Arrays of one frame: gt_lc (L, 3·num_control), gt_lc_points (list), gt_lc_labels (L,),
    gt_te (T, 4), gt_te_labels (T,), gt_topology_lclc (L, L), gt_topology_lcte (L, T)."""
    lanes = [np.asarray(x['points'], dtype=np.float64) for x in annotation['lane_centerline']]
    tes = annotation['traffic_element']
    ctrl = [fit_bezier_endpoint_fixed(p, num_control).reshape(-1) for p in lanes]
    n_l, n_t = len(lanes), len(tes)
    return {
        'gt_lc': np.asarray(ctrl, dtype=np.float32).reshape(n_l, 3 * num_control),
        'gt_lc_labels': np.zeros(n_l, dtype=np.int64),
        'gt_te': np.asarray(
            [np.asarray(t['points']).reshape(4) for t in tes], dtype=np.float32
        ).reshape(n_t, 4),
        'gt_te_labels': np.asarray([t['attribute'] for t in tes], dtype=np.int64).reshape(n_t),
        'gt_topology_lclc': np.asarray(annotation['topology_lclc'], dtype=np.float32).reshape(
            n_l, n_l
        ),
        'gt_topology_lcte': np.asarray(annotation['topology_lcte'], dtype=np.float32).reshape(
            n_l, n_t
        ),
    }


def format_predictions(
    lane_control: np.ndarray,
    lane_scores: np.ndarray,
    te_boxes: np.ndarray,
    te_labels: np.ndarray,
    te_scores: np.ndarray,
    topology_lclc: np.ndarray,
    topology_lcte: np.ndarray,
    te_scale: tuple[float, float] = (1.0, 1.0),
    num_points: int = 11,
) -> dict[str, Any]:
    """One frame's `predictions` dict of a submission from head outputs.

    Args:
        lane_control: (N, 3·C) Bézier control points (ego metres).
        lane_scores: (N,) lane confidences in [0, 1].
        te_boxes: (M, 4) xyxy boxes in the network's front-image pixels.
        te_labels: (M,) attribute per box; te_scores: (M,) confidences.
        topology_lclc: (N, N), topology_lcte: (N, M) relationship scores in [0, 1].
        te_scale: (sx, sy) applied to the front image by the pipeline; boxes are divided by it.
        num_points: Points per lane in the submission (upstream: 11).
    """
    control = np.asarray(lane_control, dtype=np.float32)
    if len(control):
        points = sample_bezier(control.reshape(len(control), -1, 3), num_points)
        points = points.astype(np.float32)
    else:  # no lanes (reshape(0, -1, 3) is ambiguous)
        points = np.zeros((0, num_points, 3), dtype=np.float32)
    scale = np.array([te_scale[0], te_scale[1], te_scale[0], te_scale[1]], dtype=np.float32)
    boxes = (np.asarray(te_boxes, dtype=np.float32).reshape(-1, 4) / scale).reshape(-1, 2, 2)
    return {
        'lane_centerline': [
            {'id': 1000 + i, 'points': points[i], 'confidence': float(lane_scores[i])}
            for i in range(len(points))
        ],
        'traffic_element': [
            {
                'id': 2000 + j,
                'attribute': int(te_labels[j]),
                'points': boxes[j],
                'confidence': float(te_scores[j]),
            }
            for j in range(len(boxes))
        ],
        'topology_lclc': np.asarray(topology_lclc, dtype=np.float32),
        'topology_lcte': np.asarray(topology_lcte, dtype=np.float32),
    }
