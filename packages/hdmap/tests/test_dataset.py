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


def test_missing_image_is_named(ann_file, tmp_path):
    init_default_scope('mmdet3d')
    ds = AV2MapDataset(ann_file=str(ann_file), data_root=str(tmp_path), pipeline=PIPELINE[:1])
    with pytest.raises(FileNotFoundError, match=r'image .*ring_front_center'):
        ds[0]
