"""Dataset + transforms on mmengine/mmdet3d: temporal queue, CAN-bus deltas, geometry, real frame."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

pytest.importorskip('mmdet3d.registry', reason='mmdet3d 1.4 (with mmcv ops) is not installed')
pytest.importorskip('nuscenes')

from mmengine.registry import init_default_scope

from interndrive.occupancy.converter import create_occ_infos, info_from_mmdet3d
from interndrive.occupancy.dataset import OccupancyDataset, ego_yaw_degrees
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.io_utils import atomic_pickle
from interndrive.occupancy.synthetic import generate_synthetic_dataset, render_camera
from interndrive.occupancy.transforms import (
    LoadOccupancyGT,
    OccLoadMultiViewImages,
    OccNormalizeMultiViewImage,
    OccPadMultiViewImage,
    OccPhotoMetricDistortionMultiView,
    OccScaleMultiViewImage,
)

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
TRAIN_PIPELINE = [
    dict(type='OccLoadMultiViewImages'),
    dict(type='LoadOccupancyGT'),
    dict(type='OccPhotoMetricDistortionMultiView'),
    dict(type='OccNormalizeMultiViewImage', mean=MEAN, std=STD),
    dict(type='OccPadMultiViewImage', size_divisor=32),
    dict(type='PackOccInputs'),
]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    init_default_scope('mmdet3d')
    root = tmp_path_factory.mktemp('occ_ds')
    # 3 mini scenes: scene-0061 and scene-0553 are both mini_train, so train crosses a scene boundary.
    generate_synthetic_dataset(root, num_scenes=3, samples_per_scene=2, image_size=(80, 45))
    create_occ_infos(root, root, version='v1.0-mini')
    return root


@pytest.mark.slow  # shares a generated 6-frame dataset (~5-10 s on 2 busy cores)
def test_train_queue_shapes_and_ground_truth(data_root) -> None:
    dataset = OccupancyDataset(
        'occ_infos_temporal_train.pkl', str(data_root), pipeline=TRAIN_PIPELINE
    )
    assert len(dataset) == 4
    assert dataset.get_scene_ids()[1] != dataset.get_scene_ids()[2]
    sample = dataset[1]
    assert tuple(sample['inputs']['img'].shape) == (4, 6, 3, 64, 96)  # 45x80 padded to /32
    assert tuple(sample['data_samples'].voxel_semantics.shape) == (200, 200, 16)
    metas = sample['data_samples'].metainfo['queue_metas']
    assert len(metas) == 4 and metas[-1]['token'] == dataset.get_data_info(1)['token']
    assert metas[0]['ori_shape'][0] == (45, 80) and metas[0]['img_shape'][0] == (64, 96)
    single = OccupancyDataset(
        'occ_infos_temporal_train.pkl', str(data_root), queue_length=1, pipeline=TRAIN_PIPELINE
    )
    (meta,) = single[1]['data_samples'].metainfo['queue_metas']
    assert meta['prev_bev_exists'] is False and tuple(single[1]['inputs']['img'].shape[:2]) == (
        1,
        6,
    )


@pytest.mark.slow  # shares a generated 6-frame dataset (~5-10 s on 2 busy cores)
def test_prev_bev_exists_and_can_bus_deltas(data_root, monkeypatch) -> None:
    dataset = OccupancyDataset(
        'occ_infos_temporal_train.pkl', str(data_root), pipeline=TRAIN_PIPELINE
    )
    monkeypatch.setattr(random, 'shuffle', lambda items: None)  # queue = [i-3, i-2, i-1, i]
    metas = dataset[3]['data_samples'].metainfo['queue_metas']  # indices 0, 1 | 2, 3 (scene change)
    assert [m['prev_bev_exists'] for m in metas] == [False, True, False, True]
    infos = [dataset.get_data_info(i) for i in range(4)]
    np.testing.assert_allclose(
        metas[1]['can_bus'][:3], infos[1]['can_bus'][:3] - infos[0]['can_bus'][:3]
    )
    assert metas[1]['can_bus'][-1] == pytest.approx(
        infos[1]['can_bus'][-1] - infos[0]['can_bus'][-1]
    )
    assert not metas[2]['can_bus'][:3].any() and metas[2]['can_bus'][-1] == 0.0
    assert metas[1]['can_bus'][:3] == pytest.approx(
        [2.0, metas[1]['can_bus'][1], 0.0]
    )  # 4 m/s, 0.5 s


@pytest.mark.slow  # shares a generated 6-frame dataset (~5-10 s on 2 busy cores)
def test_test_mode_single_frames_and_absolute_can_bus(data_root) -> None:
    pipeline = [p for p in TRAIN_PIPELINE if p['type'] != 'OccPhotoMetricDistortionMultiView']
    dataset = OccupancyDataset(
        'occ_infos_temporal_val.pkl', str(data_root), pipeline=pipeline, test_mode=True
    )
    sample = dataset[0]
    assert tuple(sample['inputs']['img'].shape) == (6, 3, 64, 96)
    can_bus = sample['data_samples'].metainfo['can_bus']
    info = dataset.get_data_info(0)
    assert 0.0 <= can_bus[-1] < 360.0 and can_bus[-2] == pytest.approx(np.radians(can_bus[-1]))
    assert can_bus[0] == pytest.approx(info['can_bus'][0]) and abs(can_bus[0]) > 100  # global x


@pytest.mark.slow  # shares a generated 6-frame dataset (~5-10 s on 2 busy cores)
def test_projection_matrices_reproduce_the_images(data_root) -> None:
    import cv2

    from interndrive.occupancy.formats import load_labels

    dataset = OccupancyDataset('occ_infos_temporal_val.pkl', str(data_root), test_mode=True)
    info = dataset.get_data_info(1)
    labels = load_labels(info['occ_gt_path'])
    for camera_index in (0, 4):
        cam2ego = info['lidar2ego'] @ np.linalg.inv(info['lidar2cam'][camera_index])
        camera = {
            'rotation': cam2ego[:3, :3],
            'translation': cam2ego[:3, 3],
            'intrinsic': info['cam2img'][camera_index][:3, :3],
        }
        np.testing.assert_allclose(
            info['lidar2img'][camera_index],
            info['cam2img'][camera_index] @ info['lidar2cam'][camera_index],
        )
        stored = cv2.imread(info['img_filename'][camera_index])[..., ::-1].astype(np.float32)
        assert np.mean(np.abs(stored - render_camera(labels.semantics, camera, (80, 45)))) < 12.0


def test_scale_pad_normalize_and_photometric() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (90, 160, 3)).astype(np.float32)
    lidar2img = np.eye(4)
    lidar2img[:3, :3] = [[100, 0, 80], [0, 100, 45], [0, 0, 1]]
    point = np.array([1.0, 2.0, 10.0, 1.0])
    scaled = OccScaleMultiViewImage(0.5)({'img': [image], 'lidar2img': [lidar2img]})
    assert scaled['img'][0].shape == (45, 80, 3)
    uvw, uvw_scaled = lidar2img @ point, scaled['lidar2img'][0] @ point
    np.testing.assert_allclose(uvw_scaled[:2] / uvw_scaled[2], 0.5 * uvw[:2] / uvw[2])
    padded = OccPadMultiViewImage(32)({'img': scaled['img']})
    assert padded['img'][0].shape == (64, 96, 3) and padded['ori_shape'] == [(45, 80)]
    assert not padded['img'][0][45:].any() and not padded['img'][0][:, 80:].any()
    normalized = OccNormalizeMultiViewImage(MEAN, STD, to_rgb=True)({'img': [image]})
    np.testing.assert_allclose(
        normalized['img'][0][..., 0], (image[..., 2] - MEAN[0]) / STD[0], rtol=1e-6
    )
    distorted = OccPhotoMetricDistortionMultiView(seed=3)({'img': [image, image]})['img']
    assert distorted[0].shape == image.shape and distorted[0].dtype == np.float32
    assert not np.array_equal(distorted[0], image)  # seed 3 applies at least one step
    with pytest.raises(ValueError, match='float32'):
        OccPhotoMetricDistortionMultiView()({'img': [image.astype(np.uint8)]})


def test_missing_inputs_are_named(tmp_path) -> None:
    missing = tmp_path / 'samples' / 'CAM_FRONT' / 'x.jpg'
    with pytest.raises(OccupancyDataError, match=r"camera image '.*CAM_FRONT/x\.jpg' is missing"):
        OccLoadMultiViewImages()({'img_filename': [str(missing)]})
    (tmp_path / 'not_an_image.jpg').write_bytes(b'text')
    with pytest.raises(OccupancyDataError, match=r'not_an_image\.jpg.*not an image'):
        OccLoadMultiViewImages()({'img_filename': [str(tmp_path / 'not_an_image.jpg')]})
    with pytest.raises(OccupancyDataError, match='sample abc: no occ_gt_path'):
        LoadOccupancyGT()({'token': 'abc'})
    with pytest.raises(
        OccupancyDataError, match=r"ground-truth file '.*labels\.npz' does not exist"
    ):
        LoadOccupancyGT()({'token': 'abc', 'occ_gt_path': str(tmp_path / 'labels.npz')})


@pytest.mark.realdata
def test_real_nuscenes_frame_through_the_pipeline(real_nuscenes_frame, tmp_path) -> None:
    init_default_scope('mmdet3d')
    raw = pickle.load(open(real_nuscenes_frame / 'n015-2018-07-24-11-22-45+0800.pkl', 'rb'))
    data_info = raw['data_list'][0]
    info = info_from_mmdet3d(data_info)
    atomic_pickle(tmp_path / 'real.pkl', {'infos': [info], 'metadata': {'version': 'v1.0-mini'}})
    pipeline = [
        dict(type='OccLoadMultiViewImages'),
        dict(type='OccScaleMultiViewImage', scale=0.2),
        dict(type='OccNormalizeMultiViewImage', mean=MEAN, std=STD),
        dict(type='OccPadMultiViewImage', size_divisor=32),
        dict(type='PackOccInputs'),
    ]
    dataset = OccupancyDataset(
        str(tmp_path / 'real.pkl'), str(real_nuscenes_frame), pipeline=pipeline, test_mode=True
    )
    parsed = dataset.get_data_info(0)
    front = data_info['images']['CAM_FRONT']
    expected = np.eye(4)
    expected[:3, :3] = np.asarray(front['cam2img'])
    np.testing.assert_allclose(
        parsed['lidar2img'][0], expected @ np.asarray(front['lidar2cam']), atol=1e-6
    )
    ego2global = np.asarray(data_info['ego2global'])
    assert parsed['can_bus'][-1] == pytest.approx(
        np.degrees(np.arctan2(ego2global[1, 0], ego2global[0, 0])) % 360
    )
    assert ego_yaw_degrees(info['ego2global_rotation']) == pytest.approx(parsed['can_bus'][-1])
    sample = dataset[0]
    assert tuple(sample['inputs']['img'].shape) == (
        6,
        3,
        192,
        320,
    )  # 1600x900 * 0.2 -> 320x180 -> pad
    assert sample['data_samples'].metainfo['token'] == 'ca9a282c9e77460f8360f564131a8af5'


@pytest.mark.slow  # shares the generated dataset
def test_dataloader_batches_with_mmengine_collate(data_root) -> None:
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from interndrive.occupancy.task import register_data_modules

    register_data_modules()
    dataset = OccupancyDataset(
        'occ_infos_temporal_train.pkl', str(data_root), pipeline=TRAIN_PIPELINE
    )
    batch = next(iter(DataLoader(dataset, batch_size=2, collate_fn=pseudo_collate)))
    assert len(batch['inputs']['img']) == 2 and tuple(batch['inputs']['img'][0].shape[:2]) == (4, 6)
    assert len(batch['data_samples']) == 2


@pytest.mark.slow  # shares the generated dataset
def test_base_dataset_config_builds(data_root) -> None:
    from mmdet3d.registry import DATASETS, METRICS
    from mmengine.config import Config

    from interndrive.occupancy.task import TASK, register_data_modules

    register_data_modules()
    cfg = Config.fromfile(TASK.config_dir / '_base_/datasets/occ3d_nuscenes.py')
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(data_root)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert tuple(train[0]['inputs']['img'].shape[:2]) == (4, 6)
    assert tuple(val[0]['inputs']['img'].shape[:1]) == (6,)
    assert val[0]['data_samples'].voxel_semantics.shape == (200, 200, 16)
    assert type(METRICS.build(cfg.val_evaluator)).__name__ == 'OccupancyMetric'
