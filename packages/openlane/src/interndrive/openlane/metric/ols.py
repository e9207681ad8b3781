"""OpenLane-V2 Score (OLS) and 3D-lane F-score, vectorised; same numbers as the official devkit.

    OLS = mean(DET_l, DET_t, √TOP_ll, √TOP_lt)

- DET_l: mean over Fréchet thresholds {1, 2, 3} m of the 11-point AP of lane centerlines
  (discrete Fréchet in 3D, scaled by max(0.5, 1 - 0.005·d_ego(GT)); pairs with relaxed Chamfer
  ≥ 3 m are never matched).
- DET_t: mean over the 13 attributes of the AP of traffic elements at IoU distance < 0.75.
- TOP_ll / TOP_lt: mean vertex AP of the lane→lane / lane↔TE graphs built from matched
  predictions (see `topology.py`). v1.0 (devkit 0.1.0/1.0.0, the CVPR 2023 challenge and the seed's
  0.325) averages over 10 recall-decile confidence levels and scores unmatched entries `1 - gt`;
  v1.1 (devkit 1.1.0/2.1.0, recommended by the maintainers since Nov 2023) uses all matches and
  `(1 - gt)·(0.5 + ε)`, and drops the repeated last point of closed GT lanes for Fréchet.
- F-Score: OpenLane-V1 3D-lane F1 (see `f_score.py`), independent of the version.

Pure numpy + OR-Tools (the F-score's min-cost flow); never imports the devkit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..constants import METRIC_VERSIONS, NUM_ATTRIBUTES, THRESHOLDS_FRECHET, THRESHOLDS_IOU
from .detection import EPS32, FrameMatch, average_precision
from .distances import iou_distance_matrix, lane_distance_matrices
from .f_score import f_score_from_lanes
from .topology import topology_mean_ap

METRIC_KEYS: tuple[str, ...] = ('OLS', 'DET_l', 'DET_t', 'TOP_ll', 'TOP_lt', 'F-Score')


def _topology(
    gts: list[Mapping],
    preds: list[Mapping],
    key: str,
    variants: list[tuple[list[FrameMatch], list[FrameMatch], int | None]],
    version: str,
) -> float:
    """Mean vertex AP over variants (row matches, column matches, v1.0 level) and frames."""
    fill_scale = None if version == '1.0' else float(np.float32(0.5) + EPS32)
    frames = []
    for f, (gt, pred) in enumerate(zip(gts, preds)):
        adj = np.asarray(gt[key])
        if 0 in adj.shape:
            continue
        rows = np.stack([rm[f].pred_of_gt(adj.shape[0], level) for rm, _, level in variants])
        cols = np.stack([cm[f].pred_of_gt(adj.shape[1], level) for _, cm, level in variants])
        frames.append((adj, np.asarray(pred[key]), rows, cols))
    return topology_mean_ap(frames, fill_scale)


def evaluate_frames(
    gts: Mapping[Any, Mapping], preds: Mapping[Any, Mapping], version: str = '1.0'
) -> dict[str, float]:
    """Scores per-frame predictions against per-frame annotations.

    Args:
        gts: {frame token: annotation} with `lane_centerline` ([{'points': (N, 3)}]),
            `traffic_element` ([{'points': (2, 2), 'attribute': int}]), `topology_lclc` (L, L),
            `topology_lcte` (L, T) — e.g. `collection[token]['annotation']`.
        preds: {frame token: predictions} in the same layout with a `confidence` per instance
            (a submission's `results[token]['predictions']`). Every GT token must be present.
        version: '1.0' (challenge / seed numbers) or '1.1' (current devkit).

    Returns:
        {'OLS', 'DET_l', 'DET_t', 'TOP_ll', 'TOP_lt', 'F-Score'} as floats.
    """
    if version not in METRIC_VERSIONS:
        raise ValueError(f'version must be one of {METRIC_VERSIONS}, got {version!r}')
    missing = [t for t in gts if t not in preds]
    if missing:
        raise KeyError(f'{len(missing)} GT frames have no predictions, e.g. {missing[0]!r}')
    tokens = list(gts)
    gt_list = [gts[t] for t in tokens]
    pred_list = [preds[t] for t in tokens]

    gt_lanes = [[np.asarray(x['points']) for x in g['lane_centerline']] for g in gt_list]
    pred_lanes = [[np.asarray(x['points']) for x in p['lane_centerline']] for p in pred_list]
    lane_dist = lane_distance_matrices(gt_lanes, pred_lanes, version)
    lane_conf = [[x['confidence'] for x in p['lane_centerline']] for p in pred_list]
    num_lanes = [len(g['lane_centerline']) for g in gt_list]
    det_l_aps, lane_matches = [], []
    for thr in THRESHOLDS_FRECHET:
        ap, matches = average_precision(
            num_lanes, lane_conf, lane_dist, thr, keep_matches=True, with_levels=version == '1.0'
        )
        det_l_aps.append(ap)
        lane_matches.append(matches)
    det_l = np.asarray(det_l_aps).mean()

    te_dist = [
        iou_distance_matrix(
            [np.asarray(x['points']) for x in g['traffic_element']],
            [np.asarray(x['points']) for x in p['traffic_element']],
        )
        for g, p in zip(gt_list, pred_list)
    ]
    gt_attr = [np.array([x['attribute'] for x in g['traffic_element']], int) for g in gt_list]
    pred_attr = [np.array([x['attribute'] for x in p['traffic_element']], int) for p in pred_list]
    te_conf = [[x['confidence'] for x in p['traffic_element']] for p in pred_list]
    det_t_aps = []
    for attr in range(NUM_ATTRIBUTES):
        gmask = [a == attr for a in gt_attr]
        pmask = [a == attr for a in pred_attr]
        ap, _ = average_precision(
            [int(m.sum()) for m in gmask],
            [[c for c, k in zip(conf, m) if k] for conf, m in zip(te_conf, pmask)],
            [d[gm][:, pm] for d, gm, pm in zip(te_dist, gmask, pmask)],
            THRESHOLDS_IOU[0],
        )
        det_t_aps.append(ap)
    det_t = np.hstack(det_t_aps).mean()
    num_tes = [len(g['traffic_element']) for g in gt_list]
    _, te_matches = average_precision(
        num_tes, te_conf, te_dist, THRESHOLDS_IOU[0], True, with_levels=version == '1.0'
    )

    levels: list[int | None] = list(range(10)) if version == '1.0' else [None]
    ll_variants = [(m, m, lv) for lv in levels for m in lane_matches]
    lt_variants = [(m, te_matches, lv) for lv in levels for m in lane_matches]
    top_ll = _topology(gt_list, pred_list, 'topology_lclc', ll_variants, version)
    top_lt = _topology(gt_list, pred_list, 'topology_lcte', lt_variants, version)

    ols = np.mean([det_l, det_t, math.sqrt(top_ll), math.sqrt(top_lt)])
    return {
        'OLS': float(ols),
        'DET_l': float(det_l),
        'DET_t': float(det_t),
        'TOP_ll': top_ll,
        'TOP_lt': top_lt,
        'F-Score': f_score_from_lanes(gt_lanes, pred_lanes),
    }
