"""nuScenes (+ CAN bus + Occ3D scene index) → the per-sample info pickles the occupancy dataset reads.

Equivalent of upstream `tools/create_data.py occ` (`create_nuscenes_occ_infos`), without mmcv/mmdet3d:

    interndrive occupancy convert --data-root data/occ3d-nus --can-bus-root data --version v1.0-trainval

writes `<out>/<prefix>_infos_temporal_{train,val}.pkl` (or `_test.pkl` for v1.0-test), each
`{'infos': [...], 'metadata': {...}}` with per sample: token, prev, next, scene_token, scene_name,
frame_idx, timestamp (µs), can_bus (18,), lidar_path, lidar2ego_{translation,rotation},
ego2global_{translation,rotation} (quaternions wxyz), cams (six cameras: data_path, cam_intrinsic,
sensor2ego_*, ego2global_*, sensor2lidar_rotation / _translation, timestamp, sample_data_token),
sweeps (≤ max_sweeps previous lidar sweeps), occ_gt_path and, except for test, gt_boxes / gt_names /
gt_velocity / num_lidar_pts / num_radar_pts / valid_flag.

Differences from upstream, on purpose:
- File paths are stored relative to the nuScenes data root (upstream stored cwd-relative or absolute
  paths), so info files survive moving the data folder.
- Samples are walked scene by scene along their `next` chain, so `frame_idx` restarts at 0 in every scene
  even if the `sample` table is not sorted by scene.
- CAN-bus motion fields come from the right message (upstream bug behind `legacy_can_bus=True`).
- gt_boxes use the mmdet3d ≥ 1.0 LiDAR box convention (x, y, z, l, w, h, yaw); upstream (mmdet3d 0.x)
  stored (w, l, h) and −yaw − π/2. The occupancy model does not use boxes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.common.engine.progress import track
from interndrive.occupancy.can_bus import can_bus_vector
from interndrive.occupancy.constants import CAMERA_NAMES
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.formats import load_annotations
from interndrive.occupancy.io_utils import atomic_pickle

VERSIONS = ('v1.0-trainval', 'v1.0-test', 'v1.0-mini')

# nuScenes category -> detection class name (the mapping mmdet3d's NuScenesDataset uses).
NAME_MAPPING = {
    'movable_object.barrier': 'barrier',
    'vehicle.bicycle': 'bicycle',
    'vehicle.bus.bendy': 'bus',
    'vehicle.bus.rigid': 'bus',
    'vehicle.car': 'car',
    'vehicle.construction': 'construction_vehicle',
    'vehicle.motorcycle': 'motorcycle',
    'human.pedestrian.adult': 'pedestrian',
    'human.pedestrian.child': 'pedestrian',
    'human.pedestrian.construction_worker': 'pedestrian',
    'human.pedestrian.police_officer': 'pedestrian',
    'movable_object.trafficcone': 'traffic_cone',
    'vehicle.trailer': 'trailer',
    'vehicle.truck': 'truck',
}


def _transform(translation: Any, rotation: Any) -> np.ndarray:
    """4×4 matrix of a nuScenes (translation, quaternion wxyz) record."""
    from pyquaternion import Quaternion

    matrix = np.eye(4)
    matrix[:3, :3] = Quaternion(rotation).rotation_matrix
    matrix[:3, 3] = translation
    return matrix


def _relative(path: str | os.PathLike[str], root: Path) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def sensor_info(
    nusc: Any, sample_data_token: str, lidar_to_global_inv: np.ndarray, root: Path
) -> dict[str, Any]:
    """Record of one sensor sample_data with its pose relative to the reference lidar frame.

    `sensor2lidar_rotation` / `_translation` map points from this sensor into the key frame's lidar
    frame (p_lidar = R @ p_sensor + t), going sensor → ego(t_s) → global → ego(t_ref) → lidar.
    """
    sd = nusc.get('sample_data', sample_data_token)
    cs = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    pose = nusc.get('ego_pose', sd['ego_pose_token'])
    sensor_to_global = _transform(pose['translation'], pose['rotation']) @ _transform(
        cs['translation'], cs['rotation']
    )
    sensor_to_lidar = lidar_to_global_inv @ sensor_to_global
    return {
        'data_path': _relative(nusc.get_sample_data_path(sample_data_token), root),
        'type': 'camera' if sd['fileformat'] in ('jpg', 'png') else 'lidar',
        'sample_data_token': sample_data_token,
        'sensor2ego_translation': list(cs['translation']),
        'sensor2ego_rotation': list(cs['rotation']),
        'ego2global_translation': list(pose['translation']),
        'ego2global_rotation': list(pose['rotation']),
        'timestamp': sd['timestamp'],
        'sensor2lidar_rotation': sensor_to_lidar[:3, :3],
        'sensor2lidar_translation': sensor_to_lidar[:3, 3],
    }


def _annotation_fields(
    nusc: Any, sample: dict[str, Any], lidar_token: str, l2e: np.ndarray, e2g: np.ndarray
) -> dict[str, Any]:
    _, boxes, _ = nusc.get_sample_data(lidar_token)  # boxes in the lidar frame
    annotations = [nusc.get('sample_annotation', token) for token in sample['anns']]
    locs = np.array([b.center for b in boxes]).reshape(-1, 3)
    dims = np.array([b.wlh for b in boxes]).reshape(-1, 3)
    yaws = np.array([b.orientation.yaw_pitch_roll[0] for b in boxes]).reshape(-1, 1)
    global_to_lidar_rot = np.linalg.inv(e2g[:3, :3] @ l2e[:3, :3])
    velocity = np.zeros((len(annotations), 2))
    for i, token in enumerate(sample['anns']):
        v = nusc.box_velocity(token)
        velocity[i] = (global_to_lidar_rot @ np.array([v[0], v[1], 0.0]))[:2]
    return {
        'gt_boxes': np.concatenate([locs, dims[:, [1, 0, 2]], yaws], axis=1),
        'gt_names': np.array([NAME_MAPPING.get(b.name, b.name) for b in boxes]),
        'gt_velocity': velocity,
        'num_lidar_pts': np.array([a['num_lidar_pts'] for a in annotations]),
        'num_radar_pts': np.array([a['num_radar_pts'] for a in annotations]),
        'valid_flag': np.array(
            [(a['num_lidar_pts'] + a['num_radar_pts']) > 0 for a in annotations], dtype=bool
        ),
    }


def _scene_can_messages(can_bus: Any, scene_name: str) -> list[dict[str, Any]]:
    if can_bus is None:
        return []
    try:
        return can_bus.get_messages(scene_name, 'pose', print_warnings=False)
    except Exception:  # the devkit raises bare Exceptions for scenes without CAN data (e.g. test)
        return []


def build_infos(
    nusc: Any,
    can_bus: Any,
    scene_names: list[str],
    occ_scene_infos: dict[str, Any] | None,
    data_root: Path,
    with_annotations: bool,
    max_sweeps: int = 10,
    legacy_can_bus: bool = False,
    progress_every: int = 0,
) -> list[dict[str, Any]]:
    """Per-sample infos of the given scenes, in scene order and time order inside each scene.

    `progress_every` > 0 prints a line to stderr every that many samples (full trainval: ~34k).
    """
    scenes = {scene['name']: scene for scene in nusc.scene}
    infos: list[dict[str, Any]] = []
    for scene_name in track(scene_names, 'nuScenes -> infos', unit='scene'):
        scene = scenes[scene_name]
        messages = _scene_can_messages(can_bus, scene_name)
        occ_samples = None if occ_scene_infos is None else occ_scene_infos.get(scene_name, {})
        frame_idx = 0
        token = scene['first_sample_token']
        while token:
            sample = nusc.get('sample', token)
            token = sample['next']
            if occ_samples is not None and sample['token'] not in occ_samples:
                continue  # like upstream: only samples with Occ3D ground truth
            lidar_token = sample['data']['LIDAR_TOP']
            lidar_sd = nusc.get('sample_data', lidar_token)
            cs = nusc.get('calibrated_sensor', lidar_sd['calibrated_sensor_token'])
            pose = nusc.get('ego_pose', lidar_sd['ego_pose_token'])
            l2e = _transform(cs['translation'], cs['rotation'])
            e2g = _transform(pose['translation'], pose['rotation'])
            lidar_to_global_inv = np.linalg.inv(e2g @ l2e)
            info: dict[str, Any] = {
                'token': sample['token'],
                'prev': sample['prev'],
                'next': sample['next'],
                'scene_token': sample['scene_token'],
                'scene_name': scene_name,
                'frame_idx': frame_idx,
                'timestamp': sample['timestamp'],
                'can_bus': can_bus_vector(messages, sample['timestamp'], legacy=legacy_can_bus),
                'lidar_path': _relative(nusc.get_sample_data_path(lidar_token), data_root),
                'lidar2ego_translation': list(cs['translation']),
                'lidar2ego_rotation': list(cs['rotation']),
                'ego2global_translation': list(pose['translation']),
                'ego2global_rotation': list(pose['rotation']),
                'occ_gt_path': None
                if occ_samples is None
                else occ_samples[sample['token']]['gt_path'],
                'cams': {},
                'sweeps': [],
            }
            for cam in CAMERA_NAMES:
                cam_token = sample['data'][cam]
                cam_info = sensor_info(nusc, cam_token, lidar_to_global_inv, data_root)
                calib = nusc.get(
                    'calibrated_sensor',
                    nusc.get('sample_data', cam_token)['calibrated_sensor_token'],
                )
                cam_info['cam_intrinsic'] = np.array(calib['camera_intrinsic'])
                info['cams'][cam] = cam_info
            sweep_sd = lidar_sd
            while len(info['sweeps']) < max_sweeps and sweep_sd['prev']:
                info['sweeps'].append(
                    sensor_info(nusc, sweep_sd['prev'], lidar_to_global_inv, data_root)
                )
                sweep_sd = nusc.get('sample_data', sweep_sd['prev'])
            if with_annotations:
                info.update(_annotation_fields(nusc, sample, lidar_token, l2e, e2g))
            infos.append(info)
            if progress_every and len(infos) % progress_every == 0:
                print(f'converted {len(infos)} samples ...', file=sys.stderr, flush=True)
            frame_idx += 1
    return infos


def create_occ_infos(
    data_root: str | os.PathLike[str],
    can_bus_root: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str] | None = None,
    version: str = 'v1.0-trainval',
    occ_root: str | os.PathLike[str] | None = None,
    info_prefix: str = 'occ',
    max_sweeps: int = 10,
    legacy_can_bus: bool = False,
) -> dict[str, Path]:
    """Writes the info pickles of one nuScenes version; returns {split: path}.

    Args:
        data_root: nuScenes data root (holding `<version>/`, `samples/`, `maps/`).
        can_bus_root: Folder that holds `can_bus/` (the CAN bus expansion); None for zeros (test set).
        out_dir: Where to write (default: data_root).
        version: 'v1.0-trainval' (train + val), 'v1.0-mini' (mini_train + mini_val) or 'v1.0-test'.
        occ_root: Occ3D root holding `annotations.json` (default: data_root, as in the Occ3D release).
            Only samples listed there are kept, and their `gt_path` becomes `occ_gt_path`.
        info_prefix: File name prefix.
        max_sweeps: Previous lidar sweeps kept per sample.
        legacy_can_bus: Reproduce the upstream CAN-bus field bug (see `can_bus.py`).
    """
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils import splits

    if version not in VERSIONS:
        raise OccupancyDataError(f'version {version!r}: expected one of {VERSIONS}')
    data_root = Path(data_root)
    if not (data_root / version).is_dir():
        raise OccupancyDataError(
            f'nuScenes tables {str(data_root / version)!r} do not exist (data root {str(data_root)!r}, '
            f'version {version!r})'
        )
    can_bus = None
    if can_bus_root is not None:
        if not (Path(can_bus_root) / 'can_bus').is_dir():
            raise OccupancyDataError(
                f'CAN bus folder {str(Path(can_bus_root) / "can_bus")!r} does not exist (pass the folder '
                f'that contains can_bus/, or omit --can-bus-root to write zeros)'
            )
        from nuscenes.can_bus.can_bus_api import NuScenesCanBus

        can_bus = NuScenesCanBus(dataroot=str(can_bus_root))
    occ_index_root = Path(occ_root) if occ_root is not None else data_root
    if version == 'v1.0-test' and not (occ_index_root / 'annotations.json').is_file():
        occ_scene_infos = None  # test set without an Occ3D index: keep every sample, no occ_gt_path
    else:
        occ_scene_infos = load_annotations(occ_index_root)['scene_infos']
    nusc = NuScenes(version=version, dataroot=str(data_root), verbose=False)
    available = {scene['name'] for scene in nusc.scene}
    if version == 'v1.0-test':
        split_scenes = {'test': splits.test}
    elif version == 'v1.0-mini':
        split_scenes = {'train': splits.mini_train, 'val': splits.mini_val}
    else:
        split_scenes = {'train': splits.train, 'val': splits.val}
    out_dir = Path(out_dir) if out_dir is not None else data_root
    written: dict[str, Path] = {}
    for split, names in split_scenes.items():
        infos = build_infos(
            nusc,
            can_bus,
            [name for name in names if name in available],
            occ_scene_infos,
            data_root,
            with_annotations=split != 'test',
            max_sweeps=max_sweeps,
            legacy_can_bus=legacy_can_bus,
        )
        metadata = {
            'version': version,
            'split': split,
            'can_bus_fields': 'legacy_next_message' if legacy_can_bus else 'last_message',
            'paths_relative_to': 'nuScenes data root',
            'box_convention': 'mmdet3d>=1.0 lidar (x, y, z, l, w, h, yaw)',
        }
        written[split] = atomic_pickle(
            out_dir / f'{info_prefix}_infos_temporal_{split}.pkl',
            {'infos': infos, 'metadata': metadata},
        )
    return written


def _matrix_to_pose(matrix: Any) -> tuple[list[float], list[float]]:
    """(translation, quaternion wxyz) of a 4×4 rigid transform."""
    from pyquaternion import Quaternion

    matrix = np.asarray(matrix, dtype=np.float64)
    quaternion = Quaternion(matrix=matrix[:3, :3], atol=1e-5)
    return matrix[:3, 3].tolist(), [float(v) for v in quaternion.elements]


def info_from_mmdet3d(data_info: dict[str, Any], occ_gt_path: str | None = None) -> dict[str, Any]:
    """Converts one mmdet3d ≥ 1.1 nuScenes info (`data_list` entry with `images`, `lidar_points`,
    `ego2global` matrices) into this package's info format, for data that has no CAN bus expansion.

    The CAN-bus vector gets only the pose (its motion fields are zeros), there are no sweeps, and the
    sample is its own scene (mmdet3d infos do not name scenes); image paths are the `img_path` names.
    """
    lidar2ego = np.asarray(data_info['lidar_points']['lidar2ego'], dtype=np.float64)
    ego2global = np.asarray(data_info['ego2global'], dtype=np.float64)
    lidar_translation, lidar_rotation = _matrix_to_pose(lidar2ego)
    ego_translation, ego_rotation = _matrix_to_pose(ego2global)
    cams = {}
    for camera in CAMERA_NAMES:
        image = data_info['images'][camera]
        cam2lidar = np.linalg.inv(np.asarray(image['lidar2cam'], dtype=np.float64))
        sensor_translation, sensor_rotation = _matrix_to_pose(image['cam2ego'])
        cams[camera] = {
            'data_path': image['img_path'],
            'type': 'camera',
            'sample_data_token': image.get('sample_data_token', ''),
            'sensor2ego_translation': sensor_translation,
            'sensor2ego_rotation': sensor_rotation,
            'ego2global_translation': ego_translation,
            'ego2global_rotation': ego_rotation,
            'timestamp': round(float(image.get('timestamp', data_info['timestamp'])) * 1e6),
            'sensor2lidar_rotation': cam2lidar[:3, :3],
            'sensor2lidar_translation': cam2lidar[:3, 3],
            'cam_intrinsic': np.asarray(image['cam2img'], dtype=np.float64)[:3, :3],
        }
    can_bus = np.zeros(18)
    can_bus[:3] = ego_translation
    can_bus[3:7] = ego_rotation
    return {
        'token': data_info['token'],
        'prev': '',
        'next': '',
        'scene_token': data_info['token'],
        'scene_name': '',
        'frame_idx': 0,
        'timestamp': round(float(data_info['timestamp']) * 1e6),
        'can_bus': can_bus,
        'lidar_path': data_info['lidar_points']['lidar_path'],
        'lidar2ego_translation': lidar_translation,
        'lidar2ego_rotation': lidar_rotation,
        'ego2global_translation': ego_translation,
        'ego2global_rotation': ego_rotation,
        'occ_gt_path': occ_gt_path,
        'cams': cams,
        'sweeps': [],
    }
