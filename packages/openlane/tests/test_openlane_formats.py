"""Synthetic dataset writer, on-disk format validation and the raw → collection converter."""

from __future__ import annotations

import json
import pickle
import shutil

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from interndrive.openlane.constants import CAMERAS, FRONT_CAMERA
from interndrive.openlane.convert import convert, devkit_collect_available
from interndrive.openlane.formats import (
    FormatError,
    load_collection,
    load_data_dict,
    load_frame_info,
    validate_frame_info,
)
from interndrive.openlane.synthetic import write_dataset


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('olv2')
    split_file = write_dataset(root, splits={'train': 1, 'val': 1, 'test': 1}, frames_per_segment=2)
    return root, split_file


def _assert_same(a, b, path='root'):
    assert type(a) is type(b) or (np.isscalar(a) and np.isscalar(b)), (path, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f'{path}/{k}')
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{path}[{i}]')
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b, path


def test_written_layout(dataset):
    root, split_file = dataset
    data_dict = load_data_dict(split_file)
    assert set(data_dict) == {'train', 'val', 'test'}
    for split, segments in data_dict.items():
        for segment, stamps in segments.items():
            for stamp in stamps:
                info = load_frame_info(root / split / segment / 'info' / stamp)
                assert list(info['sensor']) == list(CAMERAS)
                assert ('annotation' in info) == (split != 'test')
                front = cv2.imread(str(root / info['sensor'][FRONT_CAMERA]['image_path']))
                side = cv2.imread(str(root / info['sensor'][CAMERAS[1]]['image_path']))
                assert front.shape[0] > front.shape[1]  # portrait front camera
                assert side.shape[1] > side.shape[0]
                k = np.asarray(info['sensor'][FRONT_CAMERA]['intrinsic']['K'])
                assert (2 * k[0, 2], 2 * k[1, 2]) == pytest.approx(
                    (front.shape[1], front.shape[0]), abs=1
                )
                if 'annotation' in info:
                    ann = info['annotation']
                    assert all(len(x['points']) == 201 for x in ann['lane_centerline'])
                    assert np.asarray(ann['topology_lclc']).sum() > 0


def test_convert_subsamples_and_types(dataset, tmp_path):
    root, split_file = dataset
    paths = convert(root, split_file, out_dir=tmp_path, backend='builtin')
    assert sorted(p.name for p in paths) == [
        'data_dict_subset_A_test.pkl',
        'data_dict_subset_A_train.pkl',
        'data_dict_subset_A_val.pkl',
    ]
    val = load_collection(tmp_path / 'data_dict_subset_A_val.pkl')
    train = load_collection(tmp_path / 'data_dict_subset_A_train.pkl')
    ann = next(iter(val.values()))['annotation']
    assert {x['points'].shape for x in ann['lane_centerline']} == {(11, 3)}  # 201 points [::20]
    assert ann['lane_centerline'][0]['points'].dtype == np.float32
    assert ann['topology_lclc'].dtype == np.int8
    assert {
        x['points'].shape for x in next(iter(train.values()))['annotation']['lane_centerline']
    } == {(201, 3)}
    test = load_collection(tmp_path / 'data_dict_subset_A_test.pkl', require_annotation=False)
    assert all('annotation' not in f for f in test.values())
    assert next(iter(test.values()))['pose']['rotation'].dtype == np.float64


@pytest.mark.skipif(not devkit_collect_available(), reason='openlanev2 devkit not installed')
def test_builtin_backend_equals_official_collect(dataset, tmp_path):
    root, split_file = dataset
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    convert(root, split_file, out_dir=tmp_path / 'a', backend='builtin')
    convert(root, split_file, out_dir=tmp_path / 'b', backend='devkit')
    for name in ('train', 'val', 'test'):
        a = pickle.loads((tmp_path / 'a' / f'data_dict_subset_A_{name}.pkl').read_bytes())
        b = pickle.loads((tmp_path / 'b' / f'data_dict_subset_A_{name}.pkl').read_bytes())
        _assert_same(a, b)
    assert not list(root.glob('*.pkl'))  # the dataset root was not written to


def test_convert_reports_every_bad_file(dataset, tmp_path):
    root, split_file = dataset
    broken = tmp_path / 'broken'
    shutil.copytree(root, broken)
    data_dict = load_data_dict(split_file)
    segment, stamps = next(iter(data_dict['val'].items()))
    (broken / 'val' / segment / 'info' / stamps[0]).unlink()
    bad = broken / 'val' / segment / 'info' / stamps[1]
    info = json.loads(bad.read_text())
    info['annotation']['lane_centerline'][0]['points'] = [[0, 0]]
    bad.write_text(json.dumps(info))
    with pytest.raises(FormatError) as err:
        convert(broken, broken / split_file.name, splits=['val'])
    text = str(err.value)
    assert '2 problems' in text and stamps[0] in text and 'lane_centerline[0].points' in text
    assert not list(broken.glob('*_val.pkl'))  # nothing written
    with pytest.raises(FormatError, match='no split'):
        convert(root, split_file, splits=['nope'])


def test_validator_names_fields():
    errors = validate_frame_info(
        {'segment_id': 's', 'timestamp': '1', 'sensor': {}, 'pose': {}}, 'x.json'
    )
    assert any('x.json' in e and 'sensor' in e for e in errors)
    assert any('pose' in e for e in errors)


def test_load_collection_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='interndrive openlane convert'):
        load_collection(tmp_path / 'nope.pkl')
    (tmp_path / 'bad.pkl').write_bytes(pickle.dumps({'a': 1}))
    with pytest.raises(FormatError, match='not a \\(split, segment_id, timestamp\\) tuple'):
        load_collection(tmp_path / 'bad.pkl')


OPENLANE_SAMPLE = SHARED_DATA / 'openlane-v2'


@pytest.mark.realdata
@pytest.mark.skipif(
    not OPENLANE_SAMPLE.is_dir(),
    reason=f'no real OpenLane-V2 sample at {OPENLANE_SAMPLE} (../shared/data has none yet)',
)
def test_real_sample_converts_and_scores_itself(tmp_path, devkit_evaluate):
    """Real frames: convert, then score perturbed predictions against the official devkit (both
    metric versions) and the GT fed back as prediction (perfect detection)."""
    import copy

    from interndrive.openlane.metric.ols import METRIC_KEYS, evaluate_frames
    from interndrive.openlane.submission import devkit_metrics_to_flat, make_submission
    from interndrive.openlane.synthetic import make_predictions

    split_files = sorted(OPENLANE_SAMPLE.glob('data_dict_*.json'))
    assert split_files, f'{OPENLANE_SAMPLE} has no data_dict_*.json'
    paths = convert(OPENLANE_SAMPLE, split_files[0], out_dir=tmp_path)
    for path in paths:
        collection = load_collection(path, require_annotation=False)
        gts = {t: f['annotation'] for t, f in collection.items() if 'annotation' in f}
        if not gts:
            continue
        preds = {}
        for t, ann in gts.items():
            pred = dict(ann)
            pred['lane_centerline'] = [{**x, 'confidence': 1.0} for x in ann['lane_centerline']]
            pred['traffic_element'] = [{**x, 'confidence': 1.0} for x in ann['traffic_element']]
            preds[t] = pred
        metrics = evaluate_frames(gts, preds, '1.1')
        assert metrics['DET_l'] == pytest.approx(1.0) and metrics['DET_t'] == pytest.approx(1.0)
        rng = np.random.default_rng(0)
        noisy = {t: make_predictions(rng, ann) for t, ann in gts.items()}
        frames = {t: collection[t] for t in gts}
        for version in ('1.0', '1.1'):
            ours = evaluate_frames(gts, noisy, version)
            theirs = devkit_metrics_to_flat(
                devkit_evaluate(version)(
                    copy.deepcopy(frames), make_submission(copy.deepcopy(noisy)), verbose=False
                )
            )
            assert all(abs(ours[k] - theirs[k]) <= 1e-6 for k in METRIC_KEYS), (ours, theirs)


def test_generator_and_converter_name_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='image_scale must be > 0'):
        write_dataset(tmp_path, image_scale=0)
    with pytest.raises(ValueError, match='frames_per_segment must be ≥ 1'):
        write_dataset(tmp_path, frames_per_segment=0)
    with pytest.raises(ValueError, match=r"segments per split must be ≥ 0, got \{'val': -1\}"):
        write_dataset(tmp_path, splits={'val': -1})
    assert not any(tmp_path.iterdir())  # nothing written before the check
    split_file = write_dataset(
        tmp_path, splits={'val': 1}, frames_per_segment=1, write_images=False
    )
    for bad in (0, -20, 2.5):
        with pytest.raises(ValueError, match=f'point_interval must be an int ≥ 1, got {bad}'):
            convert(tmp_path, split_file, point_interval=bad, backend='builtin')
