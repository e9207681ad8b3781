"""Readers, writers and validators of the on-disk formats of Occ3D-nuScenes and of our info files.

- `gts/<scene_name>/<sample_token>/labels.npz`: `semantics`, `mask_lidar`, `mask_camera`, each
  (200, 200, 16) uint8 indexed [x, y, z]; semantics in 0..17 (17 = free), masks 0/1.
- `annotations.json`: `{'train_split': [scene names], 'val_split': [...], 'scene_infos':
  {scene_name: {sample_token: {'gt_path': 'gts/<scene>/<token>/labels.npz', 'timestamp', 'prev',
  'next', ...}}}}`; the converter needs only `scene_infos[scene][token]['gt_path']`.
- Info pickles written by `converter.py`: `{'infos': [per-sample dict], 'metadata': {'version', ...}}`.

Pure numpy + json + pickle: no torch, no OpenMMLab.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.occupancy.constants import CAMERA_NAMES, GRID_SHAPE, NUM_CLASSES
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.io_utils import atomic_savez_compressed

LABEL_KEYS = ('semantics', 'mask_lidar', 'mask_camera')
INFO_KEYS = (
    'token',
    'prev',
    'next',
    'scene_token',
    'scene_name',
    'frame_idx',
    'timestamp',
    'can_bus',
    'lidar_path',
    'lidar2ego_translation',
    'lidar2ego_rotation',
    'ego2global_translation',
    'ego2global_rotation',
    'cams',
    'sweeps',
)
CAM_INFO_KEYS = (
    'data_path',
    'cam_intrinsic',
    'sensor2ego_translation',
    'sensor2ego_rotation',
    'sensor2lidar_rotation',
    'sensor2lidar_translation',
)


def gt_relative_path(scene_name: str, sample_token: str) -> str:
    """Occ3D's relative ground-truth path of one sample (joined with the Occ3D data root)."""
    return f'gts/{scene_name}/{sample_token}/labels.npz'


@dataclass(frozen=True)
class OccupancyLabels:
    """One Occ3D ground-truth frame (arrays indexed [x, y, z]); a mask not loaded is None."""

    semantics: np.ndarray
    mask_lidar: np.ndarray | None
    mask_camera: np.ndarray | None


def validate_labels(
    arrays: Mapping[str, np.ndarray], source: str, keys: Sequence[str] = LABEL_KEYS
) -> OccupancyLabels:
    """Checks keys, shapes, dtypes and value ranges of a labels.npz; raises with the file name.

    Args:
        arrays: Array name → array.
        source: File name for the messages.
        keys: The arrays that must be present and are checked (`semantics` always).
    """
    keys = tuple(dict.fromkeys(('semantics', *keys)))
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise OccupancyDataError(
            f'{source}: missing array(s) {missing}; an Occ3D labels.npz holds {list(LABEL_KEYS)}'
        )
    for key in keys:
        array = arrays[key]
        if array.shape != GRID_SHAPE:
            raise OccupancyDataError(
                f'{source}: {key} has shape {array.shape}, expected {GRID_SHAPE}'
            )
        if array.dtype != np.uint8:
            raise OccupancyDataError(f'{source}: {key} has dtype {array.dtype}, expected uint8')
    if int(arrays['semantics'].max()) >= NUM_CLASSES:
        raise OccupancyDataError(
            f'{source}: semantics has class id {int(arrays["semantics"].max())}, expected 0..17'
        )
    for key in ('mask_lidar', 'mask_camera'):
        if key in keys and int(arrays[key].max()) > 1:
            raise OccupancyDataError(f'{source}: {key} must hold only 0 and 1')
    return OccupancyLabels(
        arrays['semantics'],
        arrays['mask_lidar'] if 'mask_lidar' in keys else None,
        arrays['mask_camera'] if 'mask_camera' in keys else None,
    )


def load_labels(path: str | os.PathLike[str], keys: Sequence[str] = LABEL_KEYS) -> OccupancyLabels:
    """Loads and validates an Occ3D `labels.npz`.

    Args:
        path: The file.
        keys: Arrays to read (`semantics` always). Scoring with the camera mask needs only
            ('semantics', 'mask_camera'): skipping `mask_lidar` saves a third of the decompression.
    """
    path = Path(path)
    if not path.is_file():
        raise OccupancyDataError(f'ground-truth file {str(path)!r} does not exist')
    try:
        with np.load(path) as data:
            wanted = set(keys) | {'semantics'}
            arrays = {key: data[key] for key in data.files if key in wanted}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise OccupancyDataError(f'{path}: not a readable .npz file ({e})') from e
    return validate_labels(arrays, str(path), keys)


def save_labels(path: str | os.PathLike[str], labels: OccupancyLabels) -> Path:
    """Writes a labels.npz (compressed, atomically) after validating it."""
    arrays = {key: getattr(labels, key) for key in LABEL_KEYS}
    validate_labels(arrays, str(path))
    return atomic_savez_compressed(path, **arrays)


def load_annotations(occ_root: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads and checks `<occ_root>/annotations.json` (the Occ3D scene index)."""
    path = Path(occ_root) / 'annotations.json'
    if not path.is_file():
        raise OccupancyDataError(
            f'Occ3D scene index {str(path)!r} does not exist (expected annotations.json in the '
            f'Occ3D data root next to gts/)'
        )
    try:
        annotations = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise OccupancyDataError(f'{path}: not valid JSON ({e})') from e
    scene_infos = annotations.get('scene_infos') if isinstance(annotations, dict) else None
    if not isinstance(scene_infos, dict):
        raise OccupancyDataError(f"{path}: expected a 'scene_infos' mapping scene -> token -> info")
    for scene, samples in scene_infos.items():
        for token, sample in samples.items():
            if 'gt_path' not in sample:
                raise OccupancyDataError(
                    f"{path}: scene_infos[{scene!r}][{token!r}] has no 'gt_path'"
                )
    return annotations


def load_infos(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads an info pickle written by the converter and checks every sample's keys."""
    path = Path(path)
    if not path.is_file():
        raise OccupancyDataError(
            f'info file {str(path)!r} does not exist (create it with `interndrive occupancy convert`)'
        )
    with path.open('rb') as f:
        data = pickle.load(f)
    if not isinstance(data, dict) or 'infos' not in data or 'metadata' not in data:
        raise OccupancyDataError(f"{path}: expected a dict with 'infos' and 'metadata'")
    for index, info in enumerate(data['infos']):
        validate_info(info, f'{path}: infos[{index}]')
    return data


def validate_info(info: Mapping[str, Any], source: str) -> None:
    """Checks one per-sample info dict (keys, camera entries, array shapes)."""
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        raise OccupancyDataError(f'{source}: missing keys {missing}')
    if np.shape(info['can_bus']) != (18,):
        raise OccupancyDataError(
            f'{source}: can_bus has shape {np.shape(info["can_bus"])}, expected (18,)'
        )
    missing_cams = [cam for cam in CAMERA_NAMES if cam not in info['cams']]
    if missing_cams:
        raise OccupancyDataError(f'{source}: cams lacks {missing_cams}')
    for cam in CAMERA_NAMES:
        cam_info = info['cams'][cam]
        lacking = [key for key in CAM_INFO_KEYS if key not in cam_info]
        if lacking:
            raise OccupancyDataError(f'{source}: cams[{cam!r}] lacks {lacking}')
        if np.shape(cam_info['cam_intrinsic']) != (3, 3):
            raise OccupancyDataError(f'{source}: cams[{cam!r}].cam_intrinsic must be 3x3')
