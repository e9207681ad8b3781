"""Vectorised OLS / F-score against the naive reference and hand-computed cases."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from interndrive.openlane.metric.ols import METRIC_KEYS, evaluate_frames
from interndrive.openlane.metric.reference import evaluate_reference
from interndrive.openlane.synthetic import make_collection, make_predictions

TOKEN = ('val', '00000', '1')


def _lane(y: float) -> np.ndarray:
    """11 points from x=0 to x=10 m at lateral offset y (ego at the start: no relaxation)."""
    return np.stack([np.linspace(0, 10, 11), np.full(11, y), np.zeros(11)], 1).astype(np.float32)


def _one_frame(pred_offset: float) -> tuple[dict, dict]:
    gt = {
        'lane_centerline': [{'id': 1, 'points': _lane(0.0)}],
        'traffic_element': [
            {
                'id': 2,
                'attribute': 1,
                'category': 1,
                'points': np.array([[0, 0], [10, 10]], np.float32),
            }
        ],
        'topology_lclc': np.zeros((1, 1), np.int8),
        'topology_lcte': np.ones((1, 1), np.int8),
    }
    pred = {
        'lane_centerline': [{'id': 1, 'points': _lane(pred_offset), 'confidence': 0.9}],
        # IoU 0.5 with the GT box: IoU distance 0.5 < 0.75 → a match.
        'traffic_element': [
            {
                'id': 2,
                'attribute': 1,
                'points': np.array([[0, 0], [10, 5]], np.float32),
                'confidence': 0.8,
            }
        ],
        'topology_lclc': np.array([[0.2]], np.float32),
        'topology_lcte': np.array([[0.8]], np.float32),
    }
    return {TOKEN: gt}, {TOKEN: pred}


@pytest.mark.parametrize('version', ['1.0', '1.1'])
def test_hand_case_perfect(version):
    gts, preds = _one_frame(0.5)
    # Fréchet 0.5 m < 1 m: TP at every threshold; the TE matches; attributes without GT or
    # predictions count AP 1; the single lane has no successor and none is predicted (0.2 < 0.5);
    # its TE link is predicted (0.8). F-score: 11 samples all within 1.5 m.
    expected = dict.fromkeys(METRIC_KEYS, 1.0)
    for fn in (evaluate_frames, evaluate_reference):
        assert fn(gts, preds, version) == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize('version', ['1.0', '1.1'])
def test_hand_case_lane_off_by_1_5_m(version):
    gts, preds = _one_frame(1.5)
    # Fréchet 1.5 m: FP at 1 m, TP at 2 and 3 m → DET_l 2/3. At 1 m the lane is unmatched and
    # both topology matrices fall back to the fill: TOP vertex APs (0, 0) at 1 m and (1, 1) at
    # 2 and 3 m → TOP_ll = TOP_lt = 2/3. F-score: every sample is exactly 1.5 m away (not < 1.5).
    want = {'DET_l': 2 / 3, 'DET_t': 1.0, 'TOP_ll': 2 / 3, 'TOP_lt': 2 / 3, 'F-Score': 0.0}
    want['OLS'] = (2 / 3 + 1 + 2 * math.sqrt(2 / 3)) / 4
    for fn in (evaluate_frames, evaluate_reference):
        assert fn(gts, preds, version) == pytest.approx(want, abs=1e-6)


def test_eleven_point_ap_hand_case():
    gts, preds = _one_frame(0.0)
    gts[TOKEN]['lane_centerline'].append({'id': 3, 'points': _lane(10.0)})
    gts[TOKEN]['topology_lclc'] = np.zeros((2, 2), np.int8)
    gts[TOKEN]['topology_lcte'] = np.zeros((2, 1), np.int8)
    lanes = [
        {'id': 10, 'points': _lane(-20.0), 'confidence': 0.9},  # far from both GT: FP first
        {'id': 11, 'points': _lane(0.0), 'confidence': 0.8},
        {'id': 12, 'points': _lane(10.0), 'confidence': 0.7},
    ]
    preds[TOKEN]['lane_centerline'] = lanes
    preds[TOKEN]['topology_lclc'] = np.zeros((3, 3), np.float32)
    preds[TOKEN]['topology_lcte'] = np.zeros((3, 1), np.float32)
    # Ranked: FP, TP, TP → precision 0, 1/2, 2/3 at recall 0, 1/2, 1 → every 11-point
    # threshold sees max precision 2/3.
    for fn in (evaluate_frames, evaluate_reference):
        assert fn(gts, preds, '1.1')['DET_l'] == pytest.approx(2 / 3, abs=1e-6)


def _random_case(seed: int, frames: int = 5) -> tuple[dict, dict]:
    collection = make_collection(frames, seed=seed, num_roads=3, segments_per_road=3, num_tes=3)
    rng = np.random.default_rng(seed + 50)
    preds = {
        t: make_predictions(rng, f['annotation'], num_points=int(rng.integers(3, 12)))
        for t, f in collection.items()
    }
    return {t: f['annotation'] for t, f in collection.items()}, preds


@pytest.mark.parametrize('version', ['1.0', '1.1'])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_vectorised_equals_reference_on_random_inputs(version, seed):
    gts, preds = _random_case(seed)
    fast = evaluate_frames(gts, preds, version)
    slow = evaluate_reference(gts, preds, version)
    assert fast == pytest.approx(slow, abs=1e-6)
    # Detection and F-score follow the same float32 operations: bit-identical.
    for key in ('DET_l', 'DET_t', 'F-Score'):
        assert fast[key] == slow[key]


@pytest.mark.parametrize('version', ['1.0', '1.1'])
def test_ground_truth_as_prediction_with_tied_scores(version, monkeypatch):
    """GT fed back with confidence 1 and topology of exactly 1.0, one lane per frame left out:
    unmatched entries are filled with 1.0 (v1.0) or 0.5 + eps (v1.1, which the true edges get
    here), so true and false edges tie. Those vertices are ranked with the devkit's own
    call; the fallback must run and agree with the reference."""
    from interndrive.openlane.metric import topology

    calls = []
    exact = topology._vertex_ap_exact
    monkeypatch.setattr(topology, '_vertex_ap_exact', lambda *a: calls.append(1) or exact(*a))
    gts, _ = _random_case(3, frames=3)
    tie_value = np.float32(0.5) + np.finfo(np.float32).eps
    preds = {}
    for token, ann in gts.items():
        pred = copy.deepcopy(ann)
        del pred['lane_centerline'][-1]
        for x in pred['lane_centerline'] + pred['traffic_element']:
            x['confidence'] = 1.0
        pred['topology_lclc'] = ann['topology_lclc'][:-1, :-1].astype(np.float32)
        pred['topology_lcte'] = ann['topology_lcte'][:-1].astype(np.float32)
        if version == '1.1':
            pred['topology_lclc'][pred['topology_lclc'] == 1] = tie_value
        preds[token] = pred
    fast = evaluate_frames(gts, preds, version)
    assert calls, 'no mixed tie was produced: the test lost its purpose'
    assert fast == pytest.approx(evaluate_reference(gts, preds, version), abs=1e-6)
    assert fast['DET_t'] == pytest.approx(1.0)


@pytest.mark.parametrize('version', ['1.0', '1.1'])
def test_empty_predictions_and_missing_elements(version):
    gts, preds = _random_case(4, frames=3)
    tokens = list(gts)
    # Frame 0: nothing predicted; frame 1: no GT traffic elements.
    preds[tokens[0]] = {
        'lane_centerline': [],
        'traffic_element': [],
        'topology_lclc': np.zeros((0, 0)),
        'topology_lcte': np.zeros((0, 0)),
    }
    n = len(gts[tokens[1]]['lane_centerline'])
    gts[tokens[1]]['traffic_element'] = []
    gts[tokens[1]]['topology_lcte'] = np.zeros((n, 0), np.int8)
    fast = evaluate_frames(gts, preds, version)
    assert fast == pytest.approx(evaluate_reference(gts, preds, version), abs=1e-6)
    assert all(0 <= v <= 1 for v in fast.values())


def test_no_topology_anywhere_gives_zero_top():
    gts, preds = _random_case(5, frames=2)
    for ann in gts.values():
        ann['traffic_element'] = []
        ann['topology_lcte'] = np.zeros((len(ann['lane_centerline']), 0), np.int8)
    for version in ('1.0', '1.1'):
        assert evaluate_frames(gts, preds, version)['TOP_lt'] == 0.0


def test_bad_arguments_are_named():
    gts, preds = _random_case(6, frames=2)
    with pytest.raises(ValueError, match='version'):
        evaluate_frames(gts, preds, '2.0')
    del preds[next(iter(preds))]
    with pytest.raises(KeyError, match='no predictions'):
        evaluate_frames(gts, preds, '1.0')


def test_solver_without_vectorised_ortools_api_gives_the_same_matching(monkeypatch):
    """OR-Tools < 9.8 lacks the vectorised arc/supply/flow calls: the per-arc fallback builds the
    same graph in the same order, hence the same optimal matching."""
    from ortools.graph.python import min_cost_flow

    from interndrive.openlane.metric import f_score_solver

    cost = np.random.default_rng(0).integers(0, 200, size=(7, 9))
    fast = f_score_solver.solve_min_cost_assignment(cost)
    real_solver = min_cost_flow.SimpleMinCostFlow

    class PerArcOnly:
        def __init__(self):
            self._solver = real_solver()
            self.OPTIMAL = self._solver.OPTIMAL

        def __getattr__(self, name):
            if name in ('add_arcs_with_capacity_and_unit_cost', 'set_nodes_supplies', 'flows'):
                raise AttributeError(name)
            return getattr(self._solver, name)

    monkeypatch.setattr(f_score_solver.min_cost_flow, 'SimpleMinCostFlow', PerArcOnly)
    assert f_score_solver.solve_min_cost_assignment(cost) == fast
    assert len(fast) == 7 and len({j for _, j, _ in fast}) == 7


def test_recall_levels_equal_the_devkit_percentile_lookup():
    from interndrive.openlane.metric.detection import EPS32, recall_levels

    def devkit_way(num_gts, tp, confidence):
        order = np.argsort(-confidence)
        recalls = np.cumsum(tp[order], axis=0) / np.maximum(num_gts, EPS32)
        taken = np.percentile(recalls, np.arange(10, 101, 10), method='closest_observation')
        last = {r: i for i, r in enumerate(recalls)}
        return confidence[order][np.asarray([last[t] for t in taken])]

    rng = np.random.default_rng(0)
    for k in range(2000):
        n, num_gts = int(rng.integers(1, 60)), int(rng.integers(0, 50))
        tp = (rng.random(n) < rng.random()).astype(np.float32)
        conf = [rng.random(n), np.round(rng.random(n), 1), np.ones(n)][k % 3].astype(
            [np.float32, np.float64][k % 2]
        )  # distinct, tied and all-equal confidences
        np.testing.assert_array_equal(
            recall_levels(num_gts, tp, conf), devkit_way(num_gts, tp, conf)
        )
