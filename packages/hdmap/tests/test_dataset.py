"""AV2MapDataset and the registered transforms on a generated dataset (needs mmdet3d)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('mmdet3d.datasets', reason='mmdet3d (built by the lead) is not installed')

from mmengine.registry import init_default_scope

from interndrive.hdmap.data import transforms
from interndrive.hdmap.data.dataset import AV2MapDataset
from interndrive.hdmap.synthetic import generate_dataset

PIPELINE = [
    {'type': 'HDMapLoadMultiViewImages'},
    {'type': 'HDMapResizeMultiViewImages', 'size': (256, 455)},
    {'type': 'HDMapNormalizeMultiViewImages'},
    {'type': 'HDMapPadMultiViewImages', 'size_divisor': 32},
    {'type': 'HDMapVectorizeMap'},
    {'type': 'HDMapPolygonizeLocalMapBbox'},
]


@pytest.fixture(scope='module')
def ann_file(tmp_path_factory):
    return generate_dataset(
        tmp_path_factory.mktemp('hd'), num_segments=1, frames_per_segment=2, seed=4
    )


def test_dataset_pipeline(ann_file):
    init_default_scope('mmdet3d')
    ds = AV2MapDataset(
        ann_file=str(ann_file), data_root=str(ann_file.parent / 'val'), pipeline=PIPELINE
    )
    assert len(ds) == 2
    r = ds[0]
    imgs = transforms.stack_views(r)
    assert imgs.shape == (7, 3, 256, 480) and imgs.dtype == np.float32
    assert r['pad_shape'] == (256, 480)
    polys = r['polys']
    n_lines = sum(len(v) for v in r['map_geoms'].values())
    assert polys['keypoint'].shape == (n_lines, 4)
    assert all(s[-1] == 0 and s[:-1].min() >= 1 for s in polys['polylines'])
    # ego2img after resize = scaled intrinsics @ extrinsic
    k = r['cam_intrinsics'][1]
    e2i = np.eye(4)
    e2i[:3, :3] = k
    np.testing.assert_allclose(r['ego2img'][1], e2i @ r['cam_extrinsics'][1])


def test_test_mode_has_no_map(ann_file):
    init_default_scope('mmdet3d')
    ds = AV2MapDataset(
        ann_file=str(ann_file),
        data_root=str(ann_file.parent / 'val'),
        test_mode=True,
        pipeline=PIPELINE[:4],
    )
    assert 'map_geoms' not in ds.get_data_info(0)


def test_test_split_without_map_annotations_loads_in_test_mode(ann_file, tmp_path):
    import json

    from interndrive.hdmap.annotations import AnnotationError

    data = json.loads(ann_file.read_text())
    for frames in data.values():
        for frame in frames:
            del frame['annotation']
    test_file = tmp_path / 'test_annotations.json'
    test_file.write_text(json.dumps(data))
    init_default_scope('mmdet3d')
    ds = AV2MapDataset(ann_file=str(test_file), data_root=str(ann_file.parent / 'val'),
                       test_mode=True, pipeline=PIPELINE[:4])  # fmt: skip
    assert len(ds) == 2 and ds[0]['img'][0].shape[:2] == (256, 480)
    with pytest.raises(AnnotationError, match=r'test_annotations\.json(.|\n)*missing key'):
        AV2MapDataset(ann_file=str(test_file), data_root=str(ann_file.parent / 'val'), pipeline=[])


def test_missing_image_is_named(ann_file, tmp_path):
    init_default_scope('mmdet3d')
    ds = AV2MapDataset(ann_file=str(ann_file), data_root=str(tmp_path), pipeline=PIPELINE[:1])
    with pytest.raises(FileNotFoundError, match=r'image .*ring_front_center'):
        ds[0]


def test_converted_av2_log_feeds_the_pipeline(tmp_path):
    pytest.importorskip('av2.map.map_api', reason='the av2 package')
    from interndrive.hdmap.annotations import save_annotations
    from interndrive.hdmap.convert_av2 import convert_logs
    from interndrive.hdmap.synthetic import generate_av2_log

    init_default_scope('mmdet3d')
    log = generate_av2_log(tmp_path / 'logs', num_poses=6, images=True, image_scale=0.05)
    ann_file = save_annotations(convert_logs([log]), tmp_path / 'val_annotations.json')
    ds = AV2MapDataset(ann_file=str(ann_file), data_root=str(tmp_path / 'logs'), pipeline=PIPELINE)
    r = ds[0]
    assert transforms.stack_views(r).shape == (7, 3, 256, 480)
    assert sorted(set(r['polys']['det_label'].tolist())) == [0, 1, 2]
