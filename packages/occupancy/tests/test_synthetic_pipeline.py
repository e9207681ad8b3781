"""Synthetic dataset → nuScenes devkit → converter → infos → evaluation, checked for consistency."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from interndrive.occupancy.can_bus import can_bus_vector
from interndrive.occupancy.constants import CAMERA_NAMES, FREE_LABEL
from interndrive.occupancy.converter import create_occ_infos
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.evaluate import (
    evaluate_submission,
    ground_truth_index,
)
from interndrive.occupancy.formats import load_infos, load_labels
from interndrive.occupancy.metric_reference import ReferenceMIoU
from interndrive.occupancy.submission import save_prediction
from interndrive.occupancy.synthetic import generate_synthetic_dataset, render_camera

pytest.importorskip('nuscenes')


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('occ3d')
    data = generate_synthetic_dataset(root, num_scenes=2, samples_per_scene=2, image_size=(96, 54))
    fixed = create_occ_infos(root, root, out_dir=root / 'infos', version='v1.0-mini')
    legacy = create_occ_infos(
        root, root, root / 'legacy', 'v1.0-mini', info_prefix='old', legacy_can_bus=True
    )
    return data, fixed, legacy


def test_devkit_reads_the_generated_database(dataset) -> None:
    from nuscenes.nuscenes import NuScenes

    data, _, _ = dataset
    nusc = NuScenes('v1.0-mini', str(data.root), verbose=False)
    assert [s['name'] for s in nusc.scene] == ['scene-0061', 'scene-0103']
    assert len(nusc.sample) == 4
    sample = nusc.get('sample', data.sample_tokens[1])
    assert set(sample['data']) == {'LIDAR_TOP', *CAMERA_NAMES}
    path, boxes, _ = nusc.get_sample_data(sample['data']['LIDAR_TOP'])
    points = np.fromfile(path, np.float32).reshape(-1, 5)
    assert len(points) > 1000 and len(boxes) > 5


def test_ground_truth_is_valid_and_plausible(dataset) -> None:
    data, _, _ = dataset
    annotations = json.loads((data.root / 'annotations.json').read_text())
    assert annotations['train_split'] == ['scene-0061'] and annotations['val_split'] == [
        'scene-0103'
    ]
    for scene, samples in annotations['scene_infos'].items():
        for token, sample in samples.items():
            labels = load_labels(data.root / sample['gt_path'])
            assert sample['gt_path'] == f'gts/{scene}/{token}/labels.npz'
            present = set(np.unique(labels.semantics[labels.mask_camera.astype(bool)]))
            assert {4, 11, 13, FREE_LABEL} <= present  # cars, road, sidewalk and free are seen
            assert 0.02 < labels.mask_camera.mean() < 0.3


def test_converter_splits_order_and_paths(dataset) -> None:
    data, fixed, _ = dataset
    train, val = load_infos(fixed['train']), load_infos(fixed['val'])
    assert train['metadata']['version'] == 'v1.0-mini'
    assert [i['scene_name'] for i in train['infos']] == ['scene-0061'] * 2
    assert [i['scene_name'] for i in val['infos']] == ['scene-0103'] * 2
    for infos in (train['infos'], val['infos']):
        assert [i['frame_idx'] for i in infos] == [0, 1]
        assert infos[0]['next'] == infos[1]['token'] and infos[1]['prev'] == infos[0]['token']
        assert infos[0]['prev'] == '' and len(infos[1]['sweeps']) == 1
        for info in infos:
            assert (data.root / info['occ_gt_path']).is_file()
            assert (data.root / info['lidar_path']).is_file()
            assert all((data.root / c['data_path']).is_file() for c in info['cams'].values())
            assert info['gt_boxes'].shape[1] == 7 and len(info['gt_names']) == len(info['gt_boxes'])
            # CAN position is the ego position (within the 20 ms message spacing at 4 m/s).
            assert np.allclose(info['can_bus'][:3], info['ego2global_translation'], atol=0.1)


def _camera_from_info(info: dict, camera: str) -> dict:
    """cam->ego from the info's sensor2lidar and lidar2ego, as a dataset would build lidar2img."""
    from pyquaternion import Quaternion

    cam = info['cams'][camera]
    lidar2ego = np.eye(4)
    lidar2ego[:3, :3] = Quaternion(info['lidar2ego_rotation']).rotation_matrix
    lidar2ego[:3, 3] = info['lidar2ego_translation']
    cam2lidar = np.eye(4)
    cam2lidar[:3, :3] = cam['sensor2lidar_rotation']
    cam2lidar[:3, 3] = cam['sensor2lidar_translation']
    cam2ego = lidar2ego @ cam2lidar
    return {
        'rotation': cam2ego[:3, :3],
        'translation': cam2ego[:3, 3],
        'intrinsic': cam['cam_intrinsic'],
    }


def test_images_labels_and_calibration_agree(dataset) -> None:
    from PIL import Image

    data, fixed, _ = dataset
    info = load_infos(fixed['val'])['infos'][1]
    labels = load_labels(data.root / info['occ_gt_path'])
    for camera in ('CAM_FRONT', 'CAM_BACK_LEFT'):
        stored = np.asarray(Image.open(data.root / info['cams'][camera]['data_path']), np.float32)
        rerendered = render_camera(labels.semantics, _camera_from_info(info, camera), (96, 54))
        # Same image up to JPEG loss and the few ms between the camera and lidar timestamps.
        assert np.mean(np.abs(stored - rerendered)) < 12.0


def test_can_bus_fix_and_legacy_flag(dataset) -> None:
    data, fixed, legacy = dataset
    new = load_infos(fixed['train'])['infos'][1]
    old = load_infos(legacy['train'])['infos'][1]
    messages = json.loads((data.root / 'can_bus/scene-0061_pose.json').read_text())
    last = max((m for m in messages if m['utime'] <= new['timestamp']), key=lambda m: m['utime'])
    after = min((m for m in messages if m['utime'] > new['timestamp']), key=lambda m: m['utime'])
    np.testing.assert_allclose(new['can_bus'][7:10], last['accel'])
    np.testing.assert_allclose(
        old['can_bus'][7:10], after['accel']
    )  # upstream reads the next message
    np.testing.assert_array_equal(new['can_bus'][:7], old['can_bus'][:7])
    assert not np.allclose(new['can_bus'][7:16], old['can_bus'][7:16])


def test_can_bus_vector_hand_case() -> None:
    def message(utime: int, value: float) -> dict:
        return {'utime': utime, 'pos': [value] * 3, 'orientation': [1, 0, 0, 0], 'accel': [value] * 3,
                'rotation_rate': [2 * value] * 3, 'vel': [3 * value] * 3}  # fmt: skip

    messages = [message(100, 1.0), message(200, 2.0), message(300, 3.0)]
    fixed = can_bus_vector(messages, 250)
    np.testing.assert_array_equal(fixed, [2, 2, 2, 1, 0, 0, 0, 2, 2, 2, 4, 4, 4, 6, 6, 6, 0, 0])
    legacy = can_bus_vector(messages, 250, legacy=True)
    np.testing.assert_array_equal(legacy[7:16], [3, 3, 3, 6, 6, 6, 9, 9, 9])
    early = can_bus_vector(messages, 50)  # before the first message: upstream uses the first one
    np.testing.assert_array_equal(early[:3], [1, 1, 1])
    assert not can_bus_vector([], 0).any()


def test_converter_rejects_bad_roots(tmp_path, dataset) -> None:
    data, _, _ = dataset
    with pytest.raises(OccupancyDataError, match=r'v1\.0-trainval'):
        create_occ_infos(data.root, data.root, tmp_path, version='v1.0-trainval')
    with pytest.raises(OccupancyDataError, match='CAN bus folder'):
        create_occ_infos(data.root, tmp_path, tmp_path, version='v1.0-mini')
    with pytest.raises(OccupancyDataError, match=r'annotations\.json'):
        create_occ_infos(data.root, data.root, tmp_path, version='v1.0-mini', occ_root=tmp_path)
    with pytest.raises(OccupancyDataError, match=r"version 'v1\.0-nope': expected one of"):
        create_occ_infos(data.root, data.root, tmp_path, version='v1.0-nope')


def test_evaluate_submission_end_to_end(dataset, tmp_path) -> None:
    data, fixed, _ = dataset
    val = load_infos(fixed['val'])['infos']
    rng = np.random.default_rng(0)
    reference = ReferenceMIoU()
    for info in val:
        labels = load_labels(data.root / info['occ_gt_path'])
        noise = rng.integers(0, 18, labels.semantics.shape)
        pred = np.where(rng.random(noise.shape) < 0.2, noise, labels.semantics).astype(np.uint8)
        save_prediction(tmp_path / 'sub', info['token'], pred)
        save_prediction(tmp_path / 'perfect', info['token'], labels.semantics)
        reference.add_batch(pred, labels.semantics, labels.mask_camera)
    result = evaluate_submission(tmp_path / 'sub', data.root, split='val', fscore=True)
    assert result['mIoU'] == reference.count_miou()[1] * 100
    assert (
        evaluate_submission(tmp_path / 'sub', data.root, split='val', fscore=True, workers=1)
        == result
    )
    assert result['num_frames'] == 2 and 0 < result['F-score'] < 1
    via_infos = evaluate_submission(tmp_path / 'sub', fixed['val'], occ_root=str(data.root))
    assert via_infos['mIoU'] == result['mIoU']
    perfect = evaluate_submission(tmp_path / 'perfect', data.root, split='val')
    assert perfect['mIoU'] == 100.0 and perfect['car'] == 100.0
    assert math.isnan(
        perfect['bicycle']
    )  # never camera-visible in the val scene: skipped by the mean
    with pytest.raises(OccupancyDataError, match='missing predictions for 2 sample'):
        evaluate_submission(tmp_path / 'sub', data.root, split='train')
    partial = evaluate_submission(tmp_path / 'sub', data.root, split='all', allow_missing=True)
    assert partial['num_frames'] == 2


def test_test_version_has_no_annotations(tmp_path) -> None:
    root = Path(tmp_path)
    generate_synthetic_dataset(
        root, version='v1.0-test', num_scenes=1, samples_per_scene=1, image_size=(32, 18)
    )
    written = create_occ_infos(root, None, version='v1.0-test')
    assert set(written) == {'test'}
    (info,) = load_infos(written['test'])['infos']
    assert 'gt_boxes' not in info and not info['can_bus'].any()
    assert info['scene_name'] == 'scene-0077'
    # The real test set has no Occ3D index: samples are kept without occ_gt_path, and scoring
    # against those infos is refused with the reason.
    (root / 'annotations.json').unlink()
    written = create_occ_infos(root, None, version='v1.0-test')
    assert load_infos(written['test'])['infos'][0]['occ_gt_path'] is None
    with pytest.raises(
        OccupancyDataError, match=r'1 sample\(s\) have no occ_gt_path \(test split\?\)'
    ):
        ground_truth_index(written['test'])


def test_trainval_version_uses_train_and_val_scenes(tmp_path) -> None:
    generate_synthetic_dataset(
        tmp_path, version='v1.0-trainval', num_scenes=2, samples_per_scene=1, image_size=(32, 18)
    )
    written = create_occ_infos(tmp_path, tmp_path, version='v1.0-trainval')
    assert [i['scene_name'] for i in load_infos(written['train'])['infos']] == ['scene-0001']
    assert [i['scene_name'] for i in load_infos(written['val'])['infos']] == ['scene-0003']


def test_make_demo_data(tmp_path) -> None:
    from interndrive.occupancy.demo_data import make_demo_data

    demo = make_demo_data(tmp_path, num_scenes=2, samples_per_scene=1, image_size=(32, 18))
    assert demo.train_infos.is_file() and demo.val_infos.is_file()
    assert demo.root == tmp_path / 'data' and len(demo.val_tokens) == 1
