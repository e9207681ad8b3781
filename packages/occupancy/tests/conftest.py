"""Shared fixtures: location of the real sample data (../shared/data relative to the repo root)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
REAL_LABELS = SHARED_DATA / 'occ3d-frame' / 'labels.npz'
REAL_NUSCENES_FRAME = SHARED_DATA / 'nuscenes-frame'


@pytest.fixture
def real_labels_path() -> Path:
    if not REAL_LABELS.is_file():
        pytest.skip(
            f'real Occ3D sample not found at {REAL_LABELS} (only present in the dev checkout)'
        )
    return REAL_LABELS


@pytest.fixture
def real_nuscenes_frame() -> Path:
    if not (REAL_NUSCENES_FRAME / 'n015-2018-07-24-11-22-45+0800.pkl').is_file():
        pytest.skip(f'real nuScenes frame not found in {REAL_NUSCENES_FRAME} (dev checkout only)')
    return REAL_NUSCENES_FRAME


@pytest.fixture(scope='session')
def synthetic_occ_root(tmp_path_factory) -> Path:
    """3 synthetic v1.0-mini scenes × 2 frames (80×45 images) with converted info pickles.

    Scenes 0 and 1 are mini_train (so training queues cross a scene boundary), scene 2 mini_val.
    """
    from interndrive.occupancy.converter import create_occ_infos
    from interndrive.occupancy.synthetic import generate_synthetic_dataset

    root = tmp_path_factory.mktemp('occ_synthetic')
    generate_synthetic_dataset(root, num_scenes=3, samples_per_scene=2, image_size=(80, 45))
    create_occ_infos(root, root, version='v1.0-mini')
    return root
