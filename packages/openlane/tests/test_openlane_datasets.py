"""OpenLane-V2 dataset and transforms on mmdet3d 1.4 (skipped when the OpenMMLab stack is absent)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('mmdet3d.datasets', reason='mmdet3d 1.4 (with mmcv ops) is not installed')

from interndrive.openlane.convert import convert
from interndrive.openlane.datasets import (
    OpenLaneV2Dataset,
    can_bus_from_pose,
    default_pipeline,
    devkit_dataset_available,
    rotation_to_quaternion,
)
from interndrive.openlane.synthetic import write_dataset


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet3d')  # what configs set with default_scope = 'mmdet3d'
    root = tmp_path_factory.mktemp('olv2')
    split_file = write_dataset(
        root, splits={'train': 1, 'val': 1, 'test': 1}, frames_per_segment=1, image_scale=0.0625
    )
    convert(root, split_file, backend='builtin')
    return root


def _project(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    uvw = m @ np.append(p, 1.0)
    return uvw[:2] / uvw[2]


@pytest.mark.parametrize('upstream_swap', [False, True])
def test_train_sample(data, upstream_swap):
    ds = OpenLaneV2Dataset(
        'data_dict_subset_A_train.pkl', str(data), pipeline=default_pipeline(True, upstream_swap)
    )
    raw = ds.get_data_info(0)
    front_k = raw['cam_intrinsic'][0].copy()
    out = ds[0]
    img = out['inputs']['img']
    sample = out['data_samples']
    assert img.shape[0] == 7 and img.shape[2] % 32 == 0 and img.shape[3] % 32 == 0
    h, w = sample.metainfo['img_shape'][0]
    side_h, side_w = sample.metainfo['img_shape'][1]
    assert side_w > side_h  # landscape side views
    sx, sy = sample.metainfo['scale_factor']
    if upstream_swap:
        assert (h, w) == (side_h, side_w) and sx / sy == pytest.approx((2048 / 1550) ** 2, rel=0.02)
    else:
        assert (
            h == side_h and sx == pytest.approx(sy, rel=0.02) and w < h
        )  # uniform: still portrait
    # The front lidar2img follows the resize: a point projects to the scaled pixel.
    point = np.array([20.0, 1.0, 0.0])
    k4 = np.eye(4)
    k4[:3, :3] = front_k
    before = _project(k4 @ raw['lidar2cam'][0], point)
    after = _project(np.asarray(sample.metainfo['lidar2img'][0]), point)
    np.testing.assert_allclose(after, before * [sx, sy], rtol=1e-6)
    assert sample.gt_lc.shape[1] == 15 and sample.gt_lc.shape[0] == sample.gt_topology_lclc.shape[0]
    assert sample.gt_te.shape[0] == sample.gt_te_labels.shape[0] == sample.gt_topology_lcte.shape[1]
    assert sample.metainfo['can_bus'].shape == (18,)


def test_test_split_without_annotations(data):
    ds = OpenLaneV2Dataset(
        'data_dict_subset_A_test.pkl', str(data), pipeline=default_pipeline(False), test_mode=True
    )
    out = ds[0]
    assert 'gt_lc' not in out['data_samples'] and out['inputs']['img'].shape[0] == 7


def test_pose_helpers():
    yaw = np.radians(135)
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    q = rotation_to_quaternion(rot)
    np.testing.assert_allclose(q, [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)], atol=1e-12)
    can = can_bus_from_pose(rot, [1.0, 2.0, 3.0])
    assert (
        can[-1] == pytest.approx(135)
        and can[-2] == pytest.approx(yaw)
        and can[:3].tolist() == [1, 2, 3]
    )
    assert can_bus_from_pose(rot.T, [0, 0, 0])[-1] == pytest.approx(225)  # wrapped to [0, 360)


def test_metric_scores_ground_truth_outputs_and_writes_submission(data, tmp_path):
    """Feed the val GT back as head outputs through the mmengine metric: perfect detection (val GT
    lanes have 11 points like the predictions; against 201-point train GT the discrete Fréchet
    distance of 11-point predictions exceeds 1 m by construction); format-only writes a valid
    submission."""
    import torch
    from mmdet3d.structures import Det3DDataSample

    from interndrive.openlane.evaluator import OpenLaneV2Metric
    from interndrive.openlane.submission import load_submission, validate_submission

    ann = str(data / 'data_dict_subset_A_val.pkl')
    ds = OpenLaneV2Dataset('data_dict_subset_A_val.pkl', str(data), pipeline=default_pipeline(True))
    samples = []
    for i in range(len(ds)):
        gt = ds[i]['data_samples']
        pred = Det3DDataSample(metainfo=gt.metainfo)
        n, m = len(gt.gt_lc), len(gt.gt_te)
        pred.pred_lc, pred.pred_lc_scores = gt.gt_lc, torch.ones(n)
        pred.pred_te, pred.pred_te_labels, pred.pred_te_scores = (
            gt.gt_te,
            gt.gt_te_labels,
            torch.ones(m),
        )
        pred.pred_topology_lclc, pred.pred_topology_lcte = gt.gt_topology_lclc, gt.gt_topology_lcte
        samples.append(pred)
    metric = OpenLaneV2Metric(ann, version='1.1')
    metric.process({}, samples)
    scores = metric.compute_metrics(metric.results)
    assert scores['DET_l'] == pytest.approx(1.0), scores
    assert scores['DET_t'] == pytest.approx(1.0), scores
    sub_path = tmp_path / 'sub.pkl'
    meta = {'method': 'ours', 'authors': ['A. Author'], 'country': 'DE'}
    writer = OpenLaneV2Metric(
        ann, format_only=True, submission_path=str(sub_path), submission_meta=meta
    )
    writer.process({}, samples)
    assert writer.compute_metrics(writer.results) == {}
    submission = load_submission(sub_path)
    assert validate_submission(submission, [s.metainfo['token'] for s in samples]).ok
    assert submission['method'] == 'ours' and submission['authors'] == ['A. Author']
    assert submission['country / region'] == 'DE'
    with pytest.raises(KeyError, match='lacks'):
        OpenLaneV2Metric(ann).process({}, [Det3DDataSample(metainfo={'token': ('a', 'b', 'c')})])


def test_metric_config_errors_name_the_argument(data, tmp_path):
    from interndrive.common.engine.checks import ConfigError, MissingPathError
    from interndrive.openlane.evaluator import OpenLaneV2Metric

    ann = str(data / 'data_dict_subset_A_val.pkl')
    with pytest.raises(ConfigError, match=r"OpenLaneV2Metric version: .*got '2\.5'"):
        OpenLaneV2Metric(ann, version='2.5')
    with pytest.raises(ConfigError, match='format_only=True needs submission_path'):
        OpenLaneV2Metric(ann, format_only=True)
    with pytest.raises(ConfigError, match=r"submission_meta: unknown key\(s\) \['e-mail'\]"):
        OpenLaneV2Metric(ann, submission_meta={'e-mail': 'a@b.c'})
    with pytest.raises(ConfigError, match=r'submission_meta: .*Atlantis. is not an ISO 3166'):
        OpenLaneV2Metric(ann, submission_meta={'country': 'Atlantis'})
    with pytest.raises(MissingPathError, match=r'OpenLaneV2Metric ann_file .*nowhere.pkl'):
        OpenLaneV2Metric(str(tmp_path / 'nowhere.pkl'))
    # Format-only runs (the test split) need no ground truth file.
    OpenLaneV2Metric(str(tmp_path / 'nowhere.pkl'), format_only=True, submission_path='s.pkl')
    with pytest.raises(ConfigError, match='were not predicted'):
        OpenLaneV2Metric(ann).compute_metrics([])
    test_split = str(data / 'data_dict_subset_A_test.pkl')  # no annotation: cannot be scored
    with pytest.raises(ConfigError, match=r'ann_file: .*has no "annotation" \(test split\?\)'):
        OpenLaneV2Metric(test_split).compute_metrics([])


@pytest.mark.skipif(
    not devkit_dataset_available(), reason='openlanev2 devkit (dataset API) not installed'
)
def test_devkit_and_builtin_io_give_identical_samples(tmp_path):
    """Frames read through the devkit's Collection/Frame equal those of the built-in reader."""
    split_file = write_dataset(
        tmp_path, splits={'train': 1, 'test': 1}, frames_per_segment=3, write_images=False
    )
    convert(tmp_path, split_file, backend='builtin')
    for ann, test_mode in (('data_dict_subset_A_train.pkl', False), ('data_dict_subset_A_test.pkl', True)):  # fmt: skip
        official = OpenLaneV2Dataset(ann, str(tmp_path), test_mode=test_mode, io_backend='devkit')
        builtin = OpenLaneV2Dataset(ann, str(tmp_path), test_mode=test_mode, io_backend='builtin')
        assert official.io_backend == 'devkit' and builtin.io_backend == 'builtin'
        assert OpenLaneV2Dataset(ann, str(tmp_path), test_mode=test_mode).io_backend == 'devkit'
        assert len(official) == len(builtin) == 3
        for i in range(3):
            a, b = official.get_data_info(i), builtin.get_data_info(i)
            assert a.keys() == b.keys() and ('gt_lc_points' in a) == (not test_mode)
            for key in a:
                if key in ('sample_idx',):
                    continue
                va, vb = a[key], b[key]
                if isinstance(va, list) and va and isinstance(va[0], np.ndarray):
                    assert all(np.array_equal(x, y) for x, y in zip(va, vb, strict=True)), key
                elif isinstance(va, np.ndarray):
                    assert np.array_equal(va, vb), key
                else:
                    assert va == vb, key
            assert all(
                p.startswith(str(tmp_path) + '/') and '//' not in p for p in a['img_filename']
            )
    from interndrive.common.engine.checks import ConfigError

    with pytest.raises(ConfigError, match=r"io_backend must be one of .*got 'pandas'"):
        OpenLaneV2Dataset('data_dict_subset_A_train.pkl', str(tmp_path), io_backend='pandas')


def test_devkit_backend_without_the_devkit(data, monkeypatch):
    """Without the devkit: 'auto' falls back to the built-in reader, 'devkit' says what to install."""
    from interndrive.common.engine.checks import ConfigError
    from interndrive.openlane import datasets

    monkeypatch.setattr(datasets, 'devkit_dataset_available', lambda: False)
    ds = OpenLaneV2Dataset('data_dict_subset_A_train.pkl', str(data))
    assert ds.io_backend == 'builtin' and len(ds) == 1
    with pytest.raises(ConfigError, match=r'needs the official devkit: pip install --no-deps'):
        OpenLaneV2Dataset('data_dict_subset_A_train.pkl', str(data), io_backend='devkit')


def test_scale_transform_keeps_projection_and_boxes_consistent(data):
    """OLV2ScaleMultiViewImage then the front-view resize: every view's lidar2img still maps a 3D
    point to the scaled pixel, TE boxes follow, and format_predictions maps them back."""
    from interndrive.openlane.targets import format_predictions

    full = OpenLaneV2Dataset(
        'data_dict_subset_A_train.pkl', str(data), pipeline=default_pipeline(False)
    )
    half = OpenLaneV2Dataset(
        'data_dict_subset_A_train.pkl', str(data), pipeline=default_pipeline(False, image_scale=0.5)
    )
    raw = half.get_data_info(0)
    a, b = full[0]['data_samples'], half[0]['data_samples']
    (fh, fw), (hh, hw) = a.metainfo['img_shape'][1], b.metainfo['img_shape'][1]
    assert (hh, hw) == (round(fh / 2), round(fw / 2))  # side views halved
    point = np.array([25.0, -2.0, 0.5])
    for view in range(7):
        k4 = np.eye(4)
        k4[:3, :3] = raw['cam_intrinsic'][view]
        original = _project(k4 @ raw['lidar2cam'][view], point)
        scaled = _project(np.asarray(b.metainfo['lidar2img'][view]), point)
        h0, w0 = a.metainfo['ori_shape'][view]
        h1, w1 = b.metainfo['img_shape'][view]
        np.testing.assert_allclose(scaled, original * [w1 / w0, h1 / h0], rtol=1e-9)
    sx, sy = b.metainfo['scale_factor']
    (ah, aw), (bh, bw) = a.metainfo['img_shape'][0], b.metainfo['img_shape'][0]
    assert sx == pytest.approx(bw / a.metainfo['ori_shape'][0][1])
    assert sy == pytest.approx(bh / a.metainfo['ori_shape'][0][0])
    assert bh == hh and abs(bw - aw * hh / ah) <= 1  # front: uniform resize to the sides' height
    # Boxes: network pixels / scale_factor = the original annotation.
    gt_te_original = np.asarray(raw['gt_te'])
    te_net = np.asarray(half[0]['data_samples'].gt_te)
    assert len(te_net) == len(gt_te_original) > 0
    n = len(te_net)
    pred = format_predictions(
        np.zeros((0, 15)), np.zeros(0), te_net, np.zeros(n, int), np.ones(n),
        np.zeros((0, 0)), np.zeros((0, n)), te_scale=(sx, sy),
    )  # fmt: skip
    back = np.stack([t['points'].reshape(4) for t in pred['traffic_element']])
    np.testing.assert_allclose(back, gt_te_original, rtol=1e-5, atol=1e-3)
    from interndrive.common.engine.checks import ConfigError
    from interndrive.openlane.datasets import OLV2ScaleMultiViewImage

    with pytest.raises(ConfigError, match='scale must be > 0, got 0'):
        OLV2ScaleMultiViewImage(0)


def test_photometric_distortion_follows_the_global_seed():
    """Unseeded (as in the configs) it draws from NumPy's global RNG, which mmengine seeds and the
    train loops reseed: same global seed → same augmentation (it used OS entropy before)."""
    from interndrive.openlane.datasets import OLV2PhotoMetricDistortion

    image = np.random.default_rng(0).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    transform = OLV2PhotoMetricDistortion()

    def run(seed: int) -> list[np.ndarray]:
        np.random.seed(seed)  # noqa: NPY002  what mmengine's set_random_seed does
        return transform({'img': [image.copy() for _ in range(7)]})['img']

    first, again, other = run(3), run(3), run(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    fixed = OLV2PhotoMetricDistortion(seed=1)  # its own generator: independent of the global one
    np.random.seed(3)  # noqa: NPY002
    out = fixed({'img': [image.copy()]})['img'][0]
    assert not np.array_equal(out, image)
