"""Submission writer and validator: round trip and a clear reason for every rejection."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from interndrive.hdmap.submission import (
    SubmissionError,
    build_submission,
    frame_from_normalized,
    load_submission,
    validate_submission,
    write_submission,
)

PRED = {
    '100': {'vectors': [np.array([[0.0, 0.0], [1.0, 0.5]])], 'scores': [0.9], 'labels': [1]},
    '200': {'vectors': [], 'scores': [], 'labels': []},
}


def test_write_and_load_round_trip(tmp_path):
    path = tmp_path / 'sub.json'
    report = write_submission(path, PRED, meta={'method': 'test'}, tokens=['100', '200'])
    assert report.ok and not report.warnings
    data, report = load_submission(path, ['100', '200'])
    assert data['meta']['method'] == 'test' and data['meta']['output_format'] == 'vector'
    assert data['results']['100'] == {
        'vectors': [[[0.0, 0.0], [1.0, 0.5]]],
        'scores': [0.9],
        'labels': [1],
    }
    assert [p.name for p in tmp_path.iterdir()] == ['sub.json']  # no temp file left behind


def test_builder_drops_single_point_lines_and_z():
    sub = build_submission(
        {
            '1': {
                'vectors': [[[0, 0, 5]], [[0, 0, 1], [1, 1, 1]]],
                'scores': [0.1, 0.2],
                'labels': [0, 2],
            }
        }
    )
    assert sub['results']['1'] == {
        'vectors': [[[0.0, 0.0], [1.0, 1.0]]],
        'scores': [0.2],
        'labels': [2],
    }


def _valid():
    return build_submission(PRED)


@pytest.mark.parametrize(
    ('mutate', 'message'),
    [
        (
            lambda s: s['results']['100'].update(labels=[3]),
            r"results\['100'\].labels\[0\]: unknown label 3",
        ),
        (lambda s: s['results']['100'].update(labels=['divider']), "unknown label 'divider'"),
        (lambda s: s['results']['100'].update(labels=[True]), 'unknown label True'),
        (
            lambda s: s['results']['100'].update(vectors=[[[1.0, 2.0]]]),
            r'vectors\[0\]: polyline with 1 point\(s\); at least 2 are needed',
        ),
        (
            lambda s: s['results']['100'].update(vectors=[[[0, 0, 0], [1, 1, 1]]]),
            r'expected shape \(N, 2\)',
        ),
        (lambda s: s['results']['100'].update(vectors=[[[0, 0], [float('nan'), 1]]]), 'NaN or inf'),
        (
            lambda s: s['results']['100'].update(scores=[None]),
            r'scores\[0\]: expected a finite number',
        ),
        (lambda s: s['results']['100'].update(scores=[0.5, 0.4]), 'different lengths'),
        (lambda s: s['results']['100'].pop('scores'), r"missing key\(s\) \['scores'\]"),
        (lambda s: s.pop('meta'), 'meta: missing'),
        (lambda s: s['meta'].update(output_format='raster'), "expected 'vector'"),
        (lambda s: s['meta'].update(use_camera='yes'), 'meta.use_camera: expected true/false'),
        (lambda s: s.update(results=[]), 'results: missing or not a dict'),
    ],
)
def test_every_rejection_has_a_reason(mutate, message):
    sub = copy.deepcopy(_valid())
    mutate(sub)
    report = validate_submission(sub)
    assert not report.ok
    assert any(__import__('re').search(message, e) for e in report.errors), report.errors


def test_missing_tokens_are_reported_not_silently_scored(tmp_path):
    report = validate_submission(_valid(), ['100', '200', '300'])
    assert report.ok
    assert report.missing_tokens == ['300']
    assert any(
        '1 of 3 ground-truth frame(s) have no entry' in w and "'300'" in w for w in report.warnings
    )
    strict = validate_submission(_valid(), ['100', '200', '300'], strict_tokens=True)
    assert not strict.ok and 'no entry' in strict.errors[0]


def test_unknown_tokens_are_reported():
    report = validate_submission(_valid(), ['100'])
    assert report.unknown_tokens == ['200'] and 'ignored' in report.warnings[0]


def test_loader_names_the_file(tmp_path):
    bad = tmp_path / 'bad.json'
    sub = _valid()
    sub['results']['100']['labels'] = [7]
    bad.write_text(json.dumps(sub))
    with pytest.raises(SubmissionError, match=r'bad\.json cannot be scored(.|\n)*unknown label 7'):
        load_submission(bad)
    (tmp_path / 'broken.json').write_text('{')
    with pytest.raises(ValueError, match=r'broken\.json: not valid JSON'):
        load_submission(tmp_path / 'broken.json')
    with pytest.raises(FileNotFoundError, match='no such file'):
        load_submission(tmp_path / 'absent.json')
    (tmp_path / 'sub.txt').write_text('{}')
    with pytest.raises(ValueError, match=r'expected a \.json'):
        load_submission(tmp_path / 'sub.txt')


def test_writer_refuses_invalid_predictions(tmp_path):
    with pytest.raises(SubmissionError, match='unknown label 5'):
        write_submission(
            tmp_path / 's.json',
            {'1': {'vectors': [[[0, 0], [1, 1]]], 'scores': [1.0], 'labels': [5]}},
        )
    assert not (tmp_path / 's.json').exists()


def test_frame_from_normalized_returns_metres():
    frame = frame_from_normalized(
        [np.array([[0.0, 0.0], [30 / 62, 15 / 32]])], [np.float32(0.5)], [np.int64(2)]
    )
    np.testing.assert_allclose(frame['vectors'][0], [[-30.0, -15.0], [0.0, 0.0]], atol=1e-12)
    assert frame['scores'] == [0.5] and frame['labels'] == [2] and type(frame['labels'][0]) is int
    assert validate_submission(build_submission({'t': frame})).ok
