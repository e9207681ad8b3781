"""Chamfer AP on small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from interndrive.hdmap.metric import (
    average_precision,
    chamfer_ap,
    chamfer_distance_matrix,
    resample_polylines,
)
from interndrive.hdmap.metric.reference import chamfer_ap_reference


def _seg(y: float, x0: float = 0.0, x1: float = 3.0) -> np.ndarray:
    return np.array([[x0, y], [x1, y]])


def test_resampling_keeps_both_ends_and_official_spacing():
    pts, off = resample_polylines(
        [np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 0.0], [0.2, 0.0]])]
    )
    assert off.tolist() == [0, 5, 7]
    np.testing.assert_allclose(pts[:5, 0], [0, 0.3, 0.6, 0.9, 1.0], atol=1e-12)
    # A line shorter than the spacing keeps exactly its two ends.
    np.testing.assert_array_equal(pts[5:], [[0, 0], [0.2, 0]])


def test_resampling_follows_corners():
    pts, _ = resample_polylines([np.array([[0.0, 0.0], [0.45, 0.0], [0.45, 0.45]])])
    # 0.3 along the first leg, then 0.6 and 0.9 measured along the path (0.15 and 0.45 up the second).
    np.testing.assert_allclose(
        pts, [[0, 0], [0.3, 0], [0.45, 0.15], [0.45, 0.45], [0.45, 0.45]], atol=1e-12
    )


def test_resampling_rejects_single_point_lines():
    with pytest.raises(ValueError, match='polyline 1 has 1 point'):
        resample_polylines([_seg(0), np.array([[1.0, 2.0]])])


def test_chamfer_of_parallel_lines_is_their_offset():
    m = chamfer_distance_matrix([_seg(0.4), _seg(-1.25)], [_seg(0.0)])
    np.testing.assert_allclose(m[:, 0], [0.4, 1.25], atol=1e-12)


def test_chamfer_of_half_overlapping_segments():
    # Pred covers x in [0, 3], GT x in [0, 6] on the same line: pred→GT is 0; GT points beyond x = 3
    # are at distance x − 3.
    m = chamfer_distance_matrix([_seg(0.0, 0, 3)], [_seg(0.0, 0, 6)])
    gt_x = resample_polylines([_seg(0.0, 0, 6)])[0][:, 0]
    expected = 0.5 * np.maximum(gt_x - 3, 0).mean()
    np.testing.assert_allclose(m[0, 0], expected, atol=1e-12)


def test_average_precision_by_hand():
    # TP, FP, TP with 2 GTs: recall 0.5, 0.5, 1.0; precision 1, 0.5, 2/3 -> 0.5·1 + 0.5·(2/3).
    ap = average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]))
    assert ap == pytest.approx(0.5 + 1 / 3)
    assert average_precision(np.array([]), np.array([])) == 0.0


def _hand_case():
    gts = {'f0': {'ped_crossing': [], 'divider': [_seg(0.0), _seg(5.0)], 'boundary': []}}
    preds = {
        'f0': {
            'vectors': [_seg(10.0), _seg(0.4), _seg(0.2), _seg(5.8)],
            'scores': [0.95, 0.9, 0.8, 0.7],
            'labels': [1, 1, 1, 1],
        }
    }
    return gts, preds


def test_greedy_matching_and_ap_by_hand():
    """Ranked: p(y=10) FP (5 m away) · p(0.4) TP · p(0.2) FP (its nearest GT is taken; it is never
    re-matched) · p(5.8) 0.8 m from y=5: FP at 0.5 m, TP at 1.0 and 1.5 m.

    thr 0.5: recall 0, .5, .5, .5 / precision 0, .5, 1/3, 1/4 -> AP = 0.5 · 0.5 = 0.25.
    thr 1.0, 1.5: recall 0, .5, .5, 1 / precision 0, .5, 1/3, .5 -> AP = 0.5·0.5 + 0.5·0.5 = 0.5.
    """
    gts, preds = _hand_case()
    for impl in (chamfer_ap, chamfer_ap_reference):
        m = impl(gts, preds)
        assert m['AP_divider@0.5'] == pytest.approx(0.25)
        assert m['AP_divider@1.0'] == pytest.approx(0.5)
        assert m['AP_divider@1.5'] == pytest.approx(0.5)
        assert m['AP_divider'] == pytest.approx((0.25 + 0.5 + 0.5) / 3)
        assert m['AP_ped_crossing'] == 0.0 and m['AP_boundary'] == 0.0
        assert m['mAP'] == pytest.approx((0.25 + 0.5 + 0.5) / 9)
        assert m['num_gts_divider'] == 2 and m['num_preds_divider'] == 4


def test_equal_scores_give_one_tp_per_gt():
    gts = {'f0': {'ped_crossing': [], 'divider': [_seg(0.0)], 'boundary': []}}
    preds = {'f0': {'vectors': [_seg(0.1), _seg(0.1)], 'scores': [0.5, 0.5], 'labels': [1, 1]}}
    m = chamfer_ap(gts, preds)
    # Only one of them can take the GT. With equal scores the official order (np.argsort of the
    # negated scores: the first listed first, for small arrays) ranks the TP first: AP 1, not 0.5.
    assert m['AP_divider@0.5'] == 1.0
    assert m['num_preds_divider'] == 2
    assert m == chamfer_ap_reference(gts, preds)


def test_missing_frames_and_empty_classes():
    gts = {
        'a': {'ped_crossing': [_seg(0.0)], 'divider': [], 'boundary': []},
        'b': {'ped_crossing': [_seg(0.0)], 'divider': [], 'boundary': []},
    }
    # Frame b has no entry: its GT counts, so recall stops at 0.5.
    preds = {'a': {'vectors': [_seg(0.0), _seg(3.0)], 'scores': [0.9, 0.8], 'labels': [0, 1]}}
    m = chamfer_ap(gts, preds)
    assert m['AP_ped_crossing'] == pytest.approx(0.5)
    assert m['AP_divider'] == 0.0  # predictions without any GT are all false positives
    assert m == chamfer_ap_reference(gts, preds)


def test_frames_do_not_share_gts():
    # The GT is in frame a; an identical prediction in frame b must not match it.
    gts = {
        'a': {'ped_crossing': [], 'divider': [_seg(0.0)], 'boundary': []},
        'b': {'ped_crossing': [], 'divider': [], 'boundary': []},
    }
    preds = {'b': {'vectors': [_seg(0.0)], 'scores': [0.9], 'labels': [1]}}
    assert chamfer_ap(gts, preds)['AP_divider'] == 0.0


def test_no_frames_is_an_error():
    with pytest.raises(ValueError, match='no frames'):
        chamfer_ap({}, {})
