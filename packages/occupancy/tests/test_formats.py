"""Occ3D labels.npz / annotations.json / info readers: real sample, round trips and clear rejections."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interndrive.occupancy.constants import FREE_LABEL, GRID_SHAPE
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.formats import (
    OccupancyLabels,
    gt_relative_path,
    load_annotations,
    load_infos,
    load_labels,
    save_labels,
)
from interndrive.occupancy.io_utils import atomic_pickle


def _labels(seed: int = 0) -> OccupancyLabels:
    rng = np.random.default_rng(seed)
    return OccupancyLabels(
        rng.integers(0, 18, GRID_SHAPE, dtype=np.uint8),
        rng.integers(0, 2, GRID_SHAPE, dtype=np.uint8),
        rng.integers(0, 2, GRID_SHAPE, dtype=np.uint8),
    )


def test_real_labels_load(real_labels_path) -> None:
    labels = load_labels(real_labels_path)
    assert int((labels.semantics == FREE_LABEL).sum()) == 600_908  # REFERENCE.md C.2
    assert int(labels.mask_camera.sum()) == 43_355
    assert int(labels.mask_lidar.sum()) == 56_601


def test_round_trip_is_atomic_and_exact(tmp_path) -> None:
    labels = _labels()
    path = save_labels(tmp_path / gt_relative_path('scene-0001', 'a' * 32), labels)
    assert path == tmp_path / 'gts/scene-0001' / ('a' * 32) / 'labels.npz'
    loaded = load_labels(path)
    for key in ('semantics', 'mask_lidar', 'mask_camera'):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(labels, key))
    assert [p.name for p in path.parent.iterdir()] == ['labels.npz']  # no temp file left


@pytest.mark.parametrize(
    ('mutate', 'match'),
    [
        (lambda a: a.pop('mask_camera'), r"missing array\(s\) \['mask_camera'\]"),
        (
            lambda a: a.update(semantics=a['semantics'][:100]),
            r'semantics has shape \(100, 200, 16\)',
        ),
        (
            lambda a: a.update(mask_lidar=a['mask_lidar'].astype(np.int64)),
            'mask_lidar has dtype int64',
        ),
        (lambda a: a['semantics'].__setitem__((0, 0, 0), 18), 'class id 18'),
        (
            lambda a: a['mask_camera'].__setitem__((0, 0, 0), 2),
            'mask_camera must hold only 0 and 1',
        ),
    ],
)
def test_bad_labels_are_rejected_with_file_and_reason(tmp_path, mutate, match) -> None:
    labels = _labels()
    arrays = {k: getattr(labels, k).copy() for k in ('semantics', 'mask_lidar', 'mask_camera')}
    mutate(arrays)
    path = tmp_path / 'labels.npz'
    np.savez_compressed(path, **arrays)
    with pytest.raises(OccupancyDataError, match=match) as error:
        load_labels(path)
    assert str(path) in str(error.value)


def test_missing_and_corrupt_files(tmp_path) -> None:
    with pytest.raises(OccupancyDataError, match='does not exist'):
        load_labels(tmp_path / 'nope.npz')
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(OccupancyDataError, match=r'not a readable \.npz'):
        load_labels(tmp_path / 'bad.npz')


def test_annotations_checks(tmp_path) -> None:
    with pytest.raises(OccupancyDataError, match=r'annotations\.json'):
        load_annotations(tmp_path)
    (tmp_path / 'annotations.json').write_text(json.dumps({'scene_infos': {'s': {'t': {}}}}))
    with pytest.raises(OccupancyDataError, match="has no 'gt_path'"):
        load_annotations(tmp_path)
    (tmp_path / 'annotations.json').write_text('{')
    with pytest.raises(OccupancyDataError, match='not valid JSON'):
        load_annotations(tmp_path)


def test_info_file_checks(tmp_path) -> None:
    with pytest.raises(OccupancyDataError, match='interndrive occupancy convert'):
        load_infos(tmp_path / 'missing.pkl')
    atomic_pickle(tmp_path / 'bad.pkl', {'infos': [{'token': 'x'}], 'metadata': {}})
    with pytest.raises(OccupancyDataError, match=r'infos\[0\]: missing keys'):
        load_infos(tmp_path / 'bad.pkl')


def test_selective_loading_skips_unneeded_arrays(tmp_path) -> None:
    labels = _labels()
    path = save_labels(tmp_path / 'labels.npz', labels)
    partial = load_labels(path, keys=('mask_camera',))
    assert partial.mask_lidar is None
    np.testing.assert_array_equal(partial.mask_camera, labels.mask_camera)
    np.testing.assert_array_equal(partial.semantics, labels.semantics)  # always loaded
