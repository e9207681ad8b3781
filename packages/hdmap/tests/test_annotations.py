"""Annotation format: the synthetic generator writes valid files; bad files are rejected with reasons."""

from __future__ import annotations

import copy
import json

import pytest

from interndrive.hdmap.annotations import (
    AnnotationError,
    ground_truth,
    load_annotations,
    save_annotations,
    validate_annotations,
)
from interndrive.hdmap.constants import CAMERAS, CLASSES
from interndrive.hdmap.synthetic import generate_annotations


@pytest.fixture(scope='module')
def ann():
    return generate_annotations(num_segments=2, frames_per_segment=2, seed=3)


def test_synthetic_annotations_are_valid(ann, tmp_path):
    report = validate_annotations(ann)
    assert report.ok and not report.warnings and report.num_frames == 4
    path = save_annotations(ann, tmp_path / 'val_annotations.json')
    loaded = load_annotations(path)
    assert loaded == json.loads(json.dumps(ann))
    frame = next(iter(loaded.values()))[0]
    assert list(frame['sensor']) == list(CAMERAS)
    gts = ground_truth(loaded)
    assert len(gts) == 4 and set(next(iter(gts.values()))) == set(CLASSES)
    assert next(iter(gts.values()))['divider'][0].shape[1] == 4


def _first(a):
    return next(iter(a.values()))[0]


@pytest.mark.parametrize(
    ('mutate', 'message'),
    [
        (lambda a: _first(a)['annotation']['divider'].append([[0, 0, 0, 1]]), 'has 1 point'),
        (
            lambda a: _first(a)['annotation']['divider'].append([[0, 0], [1, 1]]),
            r'expected shape \(N, 4\)',
        ),
        (lambda a: _first(a)['annotation'].pop('boundary'), "missing class 'boundary'"),
        (lambda a: _first(a)['annotation'].update(lane=[]), r"unknown class\(es\) \['lane'\]"),
        (lambda a: _first(a)['sensor'].pop('ring_rear_left'), 'missing camera.*ring_rear_left'),
        (
            lambda a: _first(a)['sensor']['ring_front_center'].update(intrinsic=[[1, 0], [0, 1]]),
            r'ring_front_center.intrinsic: expected shape \(3, 3\)',
        ),
        (
            lambda a: _first(a)['pose'].update(
                ego2global_rotation=[[2, 0, 0], [0, 1, 0], [0, 0, 1]]
            ),
            'not a rotation matrix',
        ),
        (lambda a: _first(a).update(timestamp=123), 'expected a non-empty string'),
        (lambda a: _first(a).pop('pose'), r"missing key\(s\) \['pose'\]"),
        (lambda a: _first(a).update(segment_id='other'), 'differs from its segment key'),
        (lambda a: list(a.values())[1][0].update(timestamp=_first(a)['timestamp']), 'already used'),
    ],
)
def test_bad_annotations_are_rejected_with_location(ann, mutate, message):
    bad = copy.deepcopy(ann)
    mutate(bad)
    report = validate_annotations(bad)
    assert not report.ok
    assert any(__import__('re').search(message, e) for e in report.errors), report.errors
    assert all(e.startswith('[') for e in report.errors)  # every error names the segment and frame


def test_points_outside_roi_are_a_warning(ann):
    bad = copy.deepcopy(ann)
    _first(bad)['annotation']['divider'].append([[0, 0, 0, 1], [45, 0, 0, 1]])
    report = validate_annotations(bad)
    assert report.ok and any('outside the 60×30 m ROI' in w for w in report.warnings)


def test_loader_error_names_the_file(ann, tmp_path):
    bad = copy.deepcopy(ann)
    _first(bad)['annotation']['divider'] = [[[1, 2, 3, 1]]]
    path = tmp_path / 'broken_annotations.json'
    path.write_text(json.dumps(bad))
    with pytest.raises(
        AnnotationError, match=r'broken_annotations\.json: 1 problem(.|\n)*has 1 point'
    ):
        load_annotations(path)
    with pytest.raises(AnnotationError, match='refusing to write'):
        save_annotations(bad, tmp_path / 'x.json')
    path.write_text('[]')
    with pytest.raises(AnnotationError, match=r'expected \{segment_id'):
        load_annotations(path)


def test_test_split_without_map_annotations(ann, tmp_path):
    """The challenge's test frames may carry cameras and poses only: readable for inference and
    token checks, rejected (with the reason) where GT is needed."""
    from interndrive.hdmap.annotations import frame_tokens

    test = copy.deepcopy(ann)
    for frames in test.values():
        for frame in frames:
            del frame['annotation']
    path = tmp_path / 'test_annotations.json'
    path.write_text(json.dumps(test))
    with pytest.raises(AnnotationError, match=r"missing key\(s\) \['annotation'\] \(a test split"):
        load_annotations(path)
    loaded = load_annotations(path, require_map=False)
    assert validate_annotations(loaded, require_map=False).frames_without_map == 4
    assert frame_tokens(loaded) == [f['timestamp'] for v in ann.values() for f in v]
    with pytest.raises(AnnotationError, match=r'4 frame\(s\) have no map annotation'):
        ground_truth(loaded)
    broken = copy.deepcopy(test)
    next(iter(broken.values()))[0]['pose']['ego2global_rotation'] = [
        [2, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
    ]
    report = validate_annotations(broken, require_map=False)
    assert any('not a rotation matrix' in e for e in report.errors)  # the rest is still checked
