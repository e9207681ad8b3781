"""Our metric against the official devkit `evaluate` (v1.1: openlanev2 2.1.0; v1.0: 1.0.0 wheel),
through the compatibility layer; skipped with the reason when the devkit is unavailable."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from interndrive.openlane import devkit_compat
from interndrive.openlane.metric.ols import METRIC_KEYS, evaluate_frames
from interndrive.openlane.submission import devkit_metrics_to_flat, make_submission
from interndrive.openlane.synthetic import make_collection, make_predictions


def test_pywrapgraph_shim_solves_an_assignment():
    from ortools.graph import pywrapgraph  # provided by devkit_compat on OR-Tools >= 9.5

    flow = pywrapgraph.SimpleMinCostFlow()
    # source 0 → workers 1, 2 → tasks 3, 4 → sink 5; cheapest: 1→4 (1) and 2→3 (2).
    for tail, head, cost in [
        (0, 1, 0),
        (0, 2, 0),
        (1, 3, 5),
        (1, 4, 1),
        (2, 3, 2),
        (2, 4, 4),
        (3, 5, 0),
        (4, 5, 0),
    ]:
        flow.AddArcWithCapacityAndUnitCost(tail, head, 1, cost)
    for node, supply in enumerate([2, 0, 0, 0, 0, -2]):
        flow.SetNodeSupply(node, supply)
    assert flow.Solve() == flow.OPTIMAL
    assert flow.OptimalCost() == 3
    used = {(flow.Tail(a), flow.Head(a)) for a in range(flow.NumArcs()) if flow.Flow(a) > 0}
    assert {(1, 4), (2, 3)} <= used


def test_devkit_data_api_and_evaluation_import():
    pytest.importorskip(
        'openlanev2', reason='openlanev2 not installed (pip install --no-deps openlanev2==2.1.0)'
    )
    assert devkit_compat.devkit_available()
    from openlanev2.centerline.dataset import Collection, Frame  # noqa: F401


def test_unknown_version_is_rejected():
    with pytest.raises(ValueError, match='version'):
        devkit_compat.load_devkit_evaluate('3.0')


def _case(seed: int, frames: int = 6, ties: bool = False, variant: str = ''):
    collection = make_collection(frames, seed=seed, num_roads=4, segments_per_road=3, num_tes=3)
    rng = np.random.default_rng(seed + 7)
    preds = {}
    for token, frame in collection.items():
        ann = frame['annotation']
        if ties:  # GT as prediction, one lane left out: tied topology scores (see metric tests)
            pred = copy.deepcopy(ann)
            del pred['lane_centerline'][-1]
            for x in pred['lane_centerline'] + pred['traffic_element']:
                x['confidence'] = np.float32(1)
            pred['topology_lclc'] = ann['topology_lclc'][:-1, :-1].astype(np.float32)
            pred['topology_lcte'] = ann['topology_lcte'][:-1].astype(np.float32)
        else:
            pred = make_predictions(rng, ann, num_points=int(rng.integers(5, 12)))
        if variant == 'rounded':  # many tied confidences and scores (incl. exactly 0.5 and 1.0)
            for x in pred['lane_centerline'] + pred['traffic_element']:
                x['confidence'] = round(x['confidence'], 1)
            pred['topology_lclc'] = np.round(pred['topology_lclc'], 1)
            pred['topology_lcte'] = np.round(pred['topology_lcte'], 1)
        if variant == 'float64':  # float64 points, boxes, scores and topology
            for x in pred['lane_centerline'] + pred['traffic_element']:
                x['points'] = x['points'].astype(np.float64) + 1e-9
            pred['topology_lclc'] = pred['topology_lclc'].astype(np.float64) + 1e-12
            pred['topology_lcte'] = pred['topology_lcte'].astype(np.float64)
        preds[token] = pred
    if variant == 'empty':  # one frame without any prediction, one without GT traffic elements
        first, second = list(collection)[:2]
        preds[first] = {
            'lane_centerline': [],
            'traffic_element': [],
            'topology_lclc': np.zeros((0, 0), np.float32),
            'topology_lcte': np.zeros((0, 0), np.float32),
        }
        ann = collection[second]['annotation']
        ann['traffic_element'] = []
        ann['topology_lcte'] = np.zeros((len(ann['lane_centerline']), 0), np.int8)
        preds[second]['traffic_element'] = []
        preds[second]['topology_lcte'] = np.zeros(
            (len(preds[second]['lane_centerline']), 0), np.float32
        )
    return collection, preds


@pytest.mark.parametrize('version', ['1.1', '1.0'])
@pytest.mark.parametrize(
    ('seed', 'ties', 'variant'),
    [
        (0, False, ''),
        (1, False, 'empty'),
        (2, True, ''),
        (3, False, 'float64'),
        (4, False, 'rounded'),
    ],
)
def test_identical_to_official_evaluate(devkit_evaluate, version, seed, ties, variant):
    official = devkit_evaluate(version)
    collection, preds = _case(seed, ties=ties, variant=variant)
    ours = evaluate_frames({t: f['annotation'] for t, f in collection.items()}, preds, version)
    # The devkit writes into its inputs: give it copies.
    theirs = devkit_metrics_to_flat(
        official(copy.deepcopy(collection), make_submission(copy.deepcopy(preds)), verbose=False)
    )
    assert ours.keys() == set(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert abs(ours[key] - theirs[key]) <= 1e-6, (key, ours[key], theirs[key])


def test_pure_modules_import_no_heavy_stack():
    """Offline scoring stays light: the metric, formats, submission, converter, generator and
    visualisation import neither torch nor OpenMMLab nor the devkit."""
    import subprocess
    import sys

    code = (
        'import sys\n'
        'import interndrive.openlane.evaluation, interndrive.openlane.convert, '
        'interndrive.openlane.synthetic, interndrive.openlane.visualize, interndrive.openlane.targets, '
        'interndrive.openlane.image_ops, interndrive.openlane.metric.reference\n'
        "print(sorted(m for m in ('torch', 'mmcv', 'mmdet', 'mmdet3d', 'mmengine', 'openlanev2') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]', out.stdout + out.stderr


def test_v1_0_wheel_unpacks_under_another_name(tmp_path, devkit_evaluate):
    devkit_evaluate('1.0')  # skips when the 1.0.0 wheel cannot be obtained
    wheel = devkit_compat.DEFAULT_CACHE / devkit_compat.V1_0_WHEEL_NAME
    evaluate = devkit_compat.load_devkit_evaluate('1.0', wheel=wheel, cache=tmp_path)
    assert evaluate.__module__ == 'openlanev2_v1_0.evaluation.evaluate'
    assert (
        tmp_path / 'openlanev2-1.0.0' / 'openlanev2_v1_0' / 'evaluation' / 'evaluate.py'
    ).is_file()
    with pytest.raises(ImportError, match=r'pip download --no-deps openlanev2==1\.0\.0'):
        devkit_compat.load_devkit_evaluate('1.0', cache=tmp_path / 'empty')
