"""Submission writer/loader and the validator's reasons for every rejection."""

from __future__ import annotations

import copy
import pickle
import re

import numpy as np
import pytest

from interndrive.openlane.submission import (
    SubmissionError,
    load_submission,
    make_submission,
    validate_submission,
    write_submission,
)
from interndrive.openlane.synthetic import make_collection, make_predictions


@pytest.fixture
def valid():
    collection = make_collection(2, seed=0, num_roads=2, segments_per_road=2, num_tes=2)
    rng = np.random.default_rng(0)
    preds = {t: make_predictions(rng, f['annotation']) for t, f in collection.items()}
    return make_submission(preds, authors=['A. Author']), list(collection)


def _first(sub):
    return next(iter(sub['results'].values()))['predictions']


def test_round_trip_is_atomic(tmp_path, valid):
    sub, tokens = valid
    path = write_submission(tmp_path / 'out' / 'sub.pkl', sub)
    assert [p.name for p in path.parent.iterdir()] == ['sub.pkl']  # no temp file left behind
    loaded = load_submission(path)
    assert validate_submission(loaded, tokens).ok
    np.testing.assert_array_equal(_first(loaded)['topology_lclc'], _first(sub)['topology_lclc'])


def test_writer_refuses_invalid(tmp_path, valid):
    sub, _ = valid
    _first(sub)['lane_centerline'][0]['points'] = [[0, 0, 0], [1, 1, 1]]
    with pytest.raises(SubmissionError, match=r'numpy\.ndarray'):
        write_submission(tmp_path / 'sub.pkl', sub)
    assert not (tmp_path / 'sub.pkl').exists()


def test_loader_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'missing\.pkl'):
        load_submission(tmp_path / 'missing.pkl')
    (tmp_path / 'junk.pkl').write_bytes(b'not a pickle')
    with pytest.raises(SubmissionError, match=r'junk\.pkl'):
        load_submission(tmp_path / 'junk.pkl')
    (tmp_path / 'list.pkl').write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(SubmissionError, match='expected a dict'):
        load_submission(tmp_path / 'list.pkl')


def _lane(pred):
    return pred['lane_centerline'][0]


def _te(pred):
    return pred['traffic_element'][0]


CASES = [
    (
        'list points',
        lambda p: _lane(p).__setitem__('points', _lane(p)['points'].tolist()),
        'must be a numpy.ndarray',
    ),
    ('2-D lane', lambda p: _lane(p).__setitem__('points', np.zeros((5, 2))), r'shape \(N, 3\)'),
    (
        '1-point lane',
        lambda p: _lane(p).__setitem__('points', np.zeros((1, 3))),
        'at least 2 points',
    ),
    ('nan lane', lambda p: _lane(p)['points'].__setitem__((0, 0), np.nan), 'NaN or inf'),
    ('box shape', lambda p: _te(p).__setitem__('points', np.zeros(4)), r'shape \(2, 2\)'),
    (
        'inverted box',
        lambda p: _te(p).__setitem__('points', np.array([[5.0, 5], [1, 1]])),
        'x2 > x1',
    ),
    (
        'attribute',
        lambda p: _te(p).__setitem__('attribute', 13),
        r'attribute must be an int in \[0, 12\]',
    ),
    (
        'confidence',
        lambda p: _lane(p).__setitem__('confidence', 'high'),
        'confidence must be a finite number',
    ),
    ('missing key', lambda p: _lane(p).pop('confidence'), r"missing key\(s\) \['confidence'\]"),
    ('duplicate id', lambda p: _te(p).__setitem__('id', _lane(p)['id']), 'ids must be unique'),
    (
        'lclc shape',
        lambda p: p.__setitem__('topology_lclc', p['topology_lclc'][:-1]),
        'topology_lclc.*shape must be',
    ),
    (
        'lcte list',
        lambda p: p.__setitem__('topology_lcte', p['topology_lcte'].tolist()),
        'topology_lcte.*numpy.ndarray',
    ),
    ('scores range', lambda p: p.__setitem__('topology_lclc', p['topology_lclc'] + 3), r'\[0, 1\]'),
    ('missing lcte', lambda p: p.pop('topology_lcte'), 'missing key "topology_lcte"'),
]


@pytest.mark.parametrize(('name', 'corrupt', 'message'), CASES, ids=[c[0] for c in CASES])
def test_each_problem_is_reported(valid, name, corrupt, message):
    sub, tokens = valid
    sub = copy.deepcopy(sub)
    corrupt(_first(sub))
    report = validate_submission(sub, tokens)
    assert not report.ok
    assert any(re.search(message, e) for e in report.errors), report.errors
    with pytest.raises(SubmissionError, match='invalid'):
        report.raise_if_invalid()


def test_missing_predictions_level_gets_a_hint(valid):
    sub, tokens = valid
    token = tokens[0]
    sub['results'][token] = sub['results'][token]['predictions']  # the doc/code mismatch
    errors = validate_submission(sub, tokens).errors
    assert any('wrap it in {"predictions"' in e for e in errors), errors


def test_frame_coverage_and_meta(valid):
    sub, tokens = valid
    sub['results'][('val', 'xyz', '0')] = copy.deepcopy(sub['results'][tokens[0]])
    del sub['results'][tokens[1]]
    sub['authors'] = [f'a{i}' for i in range(11)]
    sub['country / region'] = 'Atlantis'
    del sub['e-mail']
    report = validate_submission(sub, tokens)
    text = '\n'.join(report.errors)
    assert '1 ground-truth frames have no prediction' in text
    assert '1 predicted frames are not in the ground truth' in text
    assert 'at most 10' in text and 'ISO 3166' in text
    assert any('e-mail' in w for w in report.warnings)


def test_collects_every_problem(valid):
    sub, tokens = valid
    pred = _first(sub)
    for lane in pred['lane_centerline']:
        lane['points'] = lane['points'].tolist()
    assert len(validate_submission(sub, tokens).errors) == len(pred['lane_centerline'])
