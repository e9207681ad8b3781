"""End to end on generated data through the entry points users run: the tiny config trains a few
iterations with `run_train` (what `interndrive train` calls), `run_test` scores it with the OLS
metric and writes a format-only submission, and the demo renders a PNG; dataset errors are clear."""

from __future__ import annotations

import math

import pytest

pytest.importorskip('mmdet3d.models', reason='mmdet3d 1.4 (with mmcv ops) is not installed')

from interndrive.openlane.metric.ols import METRIC_KEYS
from interndrive.openlane.task import TASK


def test_task_offers_model_capabilities():
    assert TASK.register_modules is not None and TASK.demo is not None
    TASK.register_modules()
    from mmdet3d.registry import DATASETS, METRICS, MODELS, TRANSFORMS

    for name in ('RoadBEVFormer', 'LaneDETRHead', 'TEDeformableDETRHead', 'RelationshipHead',
                 'InternImage', 'BEVFormerConstructer'):  # fmt: skip
        assert MODELS.get(name) is not None, name
    assert DATASETS.get('OpenLaneV2Dataset') is not None
    assert TRANSFORMS.get('OLV2ParameterizeLane') is not None
    assert METRICS.get('OpenLaneV2Metric') is not None


@pytest.mark.slow
def test_demo_trains_evaluates_and_writes_submission(tmp_path, capsys):
    from interndrive.openlane.formats import load_collection
    from interndrive.openlane.submission import load_submission, validate_submission

    summary = TASK.demo(tmp_path)
    out = capsys.readouterr().out
    metrics = summary['metrics']
    assert set(METRIC_KEYS) <= set(metrics)
    for key in METRIC_KEYS:
        assert 0.0 <= metrics[key] <= 1.0 and math.isfinite(metrics[key]), key
    # OLS is the mean of DET_l, DET_t and the square roots of the TOP terms.
    ols = (metrics['DET_l'] + metrics['DET_t'] + math.sqrt(metrics['TOP_ll'])
           + math.sqrt(metrics['TOP_lt'])) / 4  # fmt: skip
    assert metrics['OLS'] == pytest.approx(ols, abs=1e-6)
    # The seed README's table layout, with the seed rows.
    assert '| Method | OLS | DET_l | DET_t | TOP_ll | TOP_lt | F-Score |' in out
    assert '| seed InternImage-S (internimage-s.py), v1.0 | 0.325 |' in out
    assert summary['checkpoint'].is_file()
    assert summary['png'].is_file() and summary['png'].stat().st_size > 10_000
    gt = load_collection(tmp_path / 'data' / 'data_dict_subset_A_val.pkl')
    sub = load_submission(summary['submission'])
    assert validate_submission(sub, gt.keys()).ok
    frame = next(iter(sub['results'].values()))['predictions']
    assert len(frame['lane_centerline']) == 20  # the tiny config's lane queries
    assert frame['lane_centerline'][0]['points'].shape == (11, 3)
    assert frame['topology_lcte'].shape == (20, 10)
    assert (tmp_path / 'metrics.json').is_file()
    print(f'demo timings (s): {summary["timings"]}')


def test_dataset_errors_name_the_path(tmp_path):
    from interndrive.common.engine.checks import InterndriveError, MissingPathError
    from interndrive.openlane.convert import convert
    from interndrive.openlane.datasets import OpenLaneV2Dataset
    from interndrive.openlane.synthetic import write_dataset

    with pytest.raises(MissingPathError, match=r"OpenLane-V2 data root '.*nowhere' does not exist"):
        OpenLaneV2Dataset('data_dict_subset_A_train.pkl', str(tmp_path / 'nowhere'))
    with pytest.raises(MissingPathError, match=r'collection pickle .* does not exist.*convert'):
        OpenLaneV2Dataset('data_dict_subset_A_train.pkl', str(tmp_path))
    split_file = write_dataset(
        tmp_path, splits={'test': 1}, frames_per_segment=1, write_images=False
    )
    convert(tmp_path, split_file, backend='builtin')
    # A test-split pickle has no annotation: fine for testing, a clear error for training.
    assert len(OpenLaneV2Dataset('data_dict_subset_A_test.pkl', str(tmp_path), test_mode=True)) == 1
    with pytest.raises(InterndriveError, match='has no "annotation" \\(test split\\?\\)'):
        OpenLaneV2Dataset('data_dict_subset_A_test.pkl', str(tmp_path))


def test_dataset_errors_name_the_frame_and_image(tmp_path):
    import pickle

    from mmengine.registry import init_default_scope

    from interndrive.common.engine.checks import InterndriveError, MissingPathError
    from interndrive.openlane.convert import convert
    from interndrive.openlane.datasets import OpenLaneV2Dataset, default_pipeline
    from interndrive.openlane.formats import load_collection
    from interndrive.openlane.synthetic import write_dataset

    split_file = write_dataset(
        tmp_path, splits={'val': 1}, frames_per_segment=1, image_scale=0.0625
    )
    (pkl,) = convert(tmp_path, split_file, backend='builtin')
    collection = load_collection(pkl)
    frame = next(iter(collection.values()))
    # Front camera not first (the model's front-view TE head reads view 0).
    cameras = list(frame['sensor'])
    frame['sensor'] = {c: frame['sensor'][c] for c in [*cameras[1:], cameras[0]]}
    bad = tmp_path / 'bad_order.pkl'
    bad.write_bytes(pickle.dumps(collection))
    with pytest.raises(
        InterndriveError, match=r'bad_order.pkl: frame .* expected ring_front_center'
    ):
        OpenLaneV2Dataset(str(bad), str(tmp_path))
    # A missing image is named when the sample is loaded.
    image = tmp_path / frame['sensor'][cameras[1]]['image_path']
    image.unlink()
    init_default_scope('mmdet3d')  # what configs set with default_scope = 'mmdet3d'
    ds = OpenLaneV2Dataset(str(pkl), str(tmp_path), pipeline=default_pipeline(train=False))
    with pytest.raises(MissingPathError, match=f'camera image .*{image.name} is missing'):
        ds[0]
