"""Synthetic Occ3D-nuScenes dataset in exactly the real on-disk formats (for tests and the demo).

`generate_synthetic_dataset(root)` writes a tiny but complete dataset:

    root/
      v1.0-mini/*.json            nuScenes database (13 tables), loadable by nuscenes-devkit
      maps/<token>.png            map mask referenced by the `map` table
      samples/CAM_*/*.jpg         six camera images per key frame, ray-cast from the voxel scene
      samples/LIDAR_TOP/*.pcd.bin lidar returns (float32 x, y, z, intensity, ring) in the lidar frame
      can_bus/<scene>_pose.json   CAN bus `pose` messages at 50 Hz (nuScenes CAN bus expansion format)
      gts/<scene>/<token>/labels.npz  Occ3D ground truth (semantics, mask_lidar, mask_camera)
      annotations.json            Occ3D scene index (train_split, val_split, scene_infos)

The world is a straight street along the global x axis (road, sidewalks, terrain, buildings, trees,
parked vehicles, a walking pedestrian, barriers, cones); the ego drives along it. Each key frame's
ground truth is the world voxelised in that frame's ego coordinates, and its masks come from ray casting
(camera rays for `mask_camera`, lidar beams for `mask_lidar`), so images, lidar, boxes, labels, masks and
poses agree with each other. The scene names come from the nuScenes splits of the chosen version, so the
converter sorts them into train/val (or test) like real data.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.occupancy.constants import (
    CAMERA_NAMES,
    CLASS_PALETTE,
    FREE_LABEL,
    GRID_SHAPE,
    POINT_CLOUD_RANGE,
    VOXEL_SIZE,
)
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.formats import OccupancyLabels, gt_relative_path, save_labels
from interndrive.occupancy.io_utils import atomic_json, atomic_write_bytes

VERSIONS = ('v1.0-mini', 'v1.0-trainval', 'v1.0-test')
LIDAR_TRANSLATION = (0.943713, 0.0, 1.84023)
LIDAR_YAW = -math.pi / 2  # nuScenes LIDAR_TOP: x to the right of the car, y forward
CAMERA_YAWS = {  # degrees, counter-clockwise from the driving direction
    'CAM_FRONT': 0.0,
    'CAM_FRONT_RIGHT': -55.0,
    'CAM_FRONT_LEFT': 55.0,
    'CAM_BACK': 180.0,
    'CAM_BACK_LEFT': 110.0,
    'CAM_BACK_RIGHT': -110.0,
}
CAMERA_HEIGHT = 1.6
SKY = np.array([135, 190, 235], np.float32)

# nuScenes category of each annotated object class, with its Occ3D class id.
CATEGORIES: dict[str, int] = {
    'movable_object.barrier': 1,
    'vehicle.bicycle': 2,
    'vehicle.bus.rigid': 3,
    'vehicle.car': 4,
    'vehicle.construction': 5,
    'vehicle.motorcycle': 6,
    'human.pedestrian.adult': 7,
    'movable_object.trafficcone': 8,
    'vehicle.trailer': 9,
    'vehicle.truck': 10,
}


def _token(*parts: object) -> str:
    """Deterministic 32-hex token (like nuScenes tokens) from the given parts."""
    return hashlib.md5('/'.join(map(str, parts)).encode()).hexdigest()


def _yaw_quaternion(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


# Camera axes (x right, y down, z forward) expressed in the ego frame (x forward, y left, z up).
_CAM_BASE = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], np.float64)


def _matrix_to_quaternion(rotation: np.ndarray) -> list[float]:
    from pyquaternion import Quaternion

    return [float(v) for v in Quaternion(matrix=rotation, atol=1e-6).elements]


@dataclass(frozen=True)
class WorldBox:
    """An annotated object in the global frame (boxes stand on the ground, z = 0)."""

    category: str
    center: tuple[float, float]
    size_wlh: tuple[float, float, float]
    yaw: float
    velocity: tuple[float, float] = (0.0, 0.0)

    def at(self, t: float) -> tuple[float, float]:
        return self.center[0] + self.velocity[0] * t, self.center[1] + self.velocity[1] * t


def _street_objects(offset: float, rng: np.random.Generator) -> list[WorldBox]:
    """Parked vehicles, a walking pedestrian, barriers and cones along the street near `offset`."""
    boxes: list[WorldBox] = []
    parked = ['vehicle.car', 'vehicle.truck', 'vehicle.car', 'vehicle.bus.rigid', 'vehicle.car']
    parked += ['vehicle.trailer', 'vehicle.construction', 'vehicle.car']
    sizes = {
        'vehicle.car': (1.9, 4.5, 1.6),
        'vehicle.truck': (2.5, 7.0, 3.0),
        'vehicle.bus.rigid': (2.9, 11.0, 3.4),
        'vehicle.trailer': (2.6, 9.0, 3.2),
        'vehicle.construction': (2.8, 6.0, 3.0),
    }
    x = offset - 30.0
    for i, category in enumerate(parked):
        side = 1 if i % 2 == 0 else -1
        width, length, height = sizes[category]
        x += length / 2 + float(rng.uniform(2.0, 6.0))
        yaw = float(rng.normal(0, 0.05))
        boxes.append(WorldBox(category, (x, side * 5.2), (width, length, height), yaw))
        x += length / 2
    boxes.append(
        WorldBox('human.pedestrian.adult', (offset + 4.0, 8.4), (0.7, 0.7, 1.8), 0.0, (1.3, 0.0))
    )
    boxes.append(WorldBox('vehicle.bicycle', (offset + 12.0, -8.2), (0.6, 1.8, 1.2), 0.0))
    boxes.append(WorldBox('vehicle.motorcycle', (offset - 9.0, -8.0), (0.8, 2.1, 1.4), 0.3))
    for k in range(4):
        boxes.append(
            WorldBox('movable_object.barrier', (offset + 20.0 + 2.2 * k, 6.6), (0.6, 2.0, 1.0), 0.0)
        )
        boxes.append(
            WorldBox(
                'movable_object.trafficcone', (offset - 16.0 + 2.0 * k, 6.5), (0.4, 0.4, 0.8), 0.0
            )
        )
    return boxes


def world_classes(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, boxes: list[WorldBox], t: float
) -> np.ndarray:
    """Occ3D class of global points (x, y, z) at time t; FREE_LABEL where nothing is."""
    ay = np.abs(y)
    ground = (z >= -0.2) & (z < 0.2)
    out = np.full(x.shape, FREE_LABEL, np.uint8)
    surface = np.where(ay < 7.0, 11, np.where(ay < 10.0, 13, 14)).astype(
        np.uint8
    )  # road / sidewalk / terrain
    crossing = (np.mod(x, 60.0) < 6.0) & (ay < 7.0)
    surface[crossing] = 12  # other_flat patches on the road
    out[ground] = surface[ground]
    above = (z >= 0.2) & (z < 5.4)
    building = (ay >= 13.0) & (np.mod(x, 40.0) < 28.0) & above & (z < 4.6)
    out[building] = 15
    trees = (ay >= 10.4) & (ay < 12.6) & (np.mod(x, 15.0) < 2.4) & above & (z < 4.2)
    out[trees] = 16
    poles = (ay >= 9.6) & (ay < 10.0) & (np.mod(x, 25.0) < 0.4) & above & (z < 3.0)
    out[poles] = 0  # 'others'
    for box in boxes:
        cx, cy = box.at(t)
        width, length, height = box.size_wlh
        radius = math.hypot(width, length) / 2
        near = (np.abs(x - cx) < radius) & (np.abs(y - cy) < radius) & (z >= 0.2) & (z < height)
        if not near.any():
            continue
        dx, dy = x[near] - cx, y[near] - cy
        c, s = math.cos(box.yaw), math.sin(box.yaw)
        inside = (np.abs(c * dx + s * dy) < length / 2) & (np.abs(-s * dx + c * dy) < width / 2)
        idx = np.flatnonzero(near)[inside]
        out.reshape(-1)[idx] = CATEGORIES[box.category]
    return out


def voxel_grid_centers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ego-frame centres of all (200, 200, 16) voxels, each array of the grid shape."""
    axes = [
        POINT_CLOUD_RANGE[i] + VOXEL_SIZE[i] * (np.arange(GRID_SHAPE[i]) + 0.5) for i in range(3)
    ]
    return np.meshgrid(*axes, indexing='ij')


def _ego_to_global(points: np.ndarray, pose: tuple[float, float, float]) -> np.ndarray:
    x0, y0, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    gx = x0 + c * points[..., 0] - s * points[..., 1]
    gy = y0 + s * points[..., 0] + c * points[..., 1]
    return np.stack([gx, gy, points[..., 2]], axis=-1)


def ray_cast(
    semantics: np.ndarray, origin: np.ndarray, directions: np.ndarray, max_range: float, step: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marches rays (ego frame) through the voxel grid at fixed steps.

    Returns (observed voxel mask, first-hit distance per ray (inf = none), first-hit class per ray).
    Observed = free voxels traversed before the first hit, plus the hit voxel.
    """
    depths = np.arange(step, max_range, step, dtype=np.float32)
    flat = np.zeros((len(directions), len(depths)), np.int64)
    inside = np.ones(flat.shape, bool)
    for axis in range(3):  # one axis at a time keeps the (rays, steps) temporaries small
        coord = np.float32(origin[axis]) + directions[:, axis, None].astype(np.float32) * depths
        index = np.floor((coord - POINT_CLOUD_RANGE[axis]) / VOXEL_SIZE[axis]).astype(np.int64)
        inside &= (index >= 0) & (index < GRID_SHAPE[axis])
        flat = flat * GRID_SHAPE[axis] + np.clip(index, 0, GRID_SHAPE[axis] - 1)
    occupied = (semantics.reshape(-1)[flat] != FREE_LABEL) & inside
    hit_any = occupied.any(axis=1)
    first = np.where(hit_any, occupied.argmax(axis=1), len(depths))
    before = (np.arange(len(depths))[None, :] <= first[:, None]) & inside
    observed = np.zeros(semantics.size, bool)
    observed[flat[before]] = True
    rows = np.flatnonzero(hit_any)
    hit_depth = np.full(len(directions), np.inf)
    hit_depth[rows] = depths[first[rows]]
    hit_class = np.full(len(directions), FREE_LABEL, np.uint8)
    hit_class[rows] = semantics.reshape(-1)[flat[rows, first[rows]]]
    return observed.reshape(semantics.shape), hit_depth, hit_class


def _camera_mask_rays() -> tuple[np.ndarray, np.ndarray]:
    """Rays from the camera cluster: elevations aimed at ground rings every 0.4 m, plus upward ones."""
    ground_ranges = np.arange(1.5, 42.0, 0.4)
    elevations = np.concatenate(
        [-np.arctan(CAMERA_HEIGHT / ground_ranges), np.radians(np.arange(0, 16, 2.5))]
    )
    azimuths = np.radians(np.arange(0, 360, 0.9))
    el, az = np.meshgrid(elevations, azimuths, indexing='ij')
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    return np.array([0.5, 0.0, CAMERA_HEIGHT]), dirs.reshape(-1, 3)


def _lidar_rays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """32 beams from -30° to +10°, 1° azimuth steps (origin, directions, ring index)."""
    elevations = np.radians(np.linspace(-30.0, 10.0, 32))
    azimuths = np.radians(np.arange(0, 360, 1.0))
    el, az = np.meshgrid(elevations, azimuths, indexing='ij')
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    rings = np.repeat(np.arange(32), len(azimuths))
    return np.array(LIDAR_TRANSLATION), dirs.reshape(-1, 3), rings


def frame_labels(
    pose: tuple[float, float, float], boxes: list[WorldBox], t: float
) -> tuple[OccupancyLabels, np.ndarray]:
    """Occ3D labels of the ego frame at `pose` (x, y, yaw) and its lidar points (ego frame, + ring)."""
    xs, ys, zs = voxel_grid_centers()
    world = _ego_to_global(np.stack([xs, ys, zs], axis=-1), pose)
    semantics = world_classes(world[..., 0], world[..., 1], world[..., 2], boxes, t)
    cam_origin, cam_dirs = _camera_mask_rays()
    mask_camera, _, _ = ray_cast(semantics, cam_origin, cam_dirs, 42.0, 0.35)
    lidar_origin, lidar_dirs, rings = _lidar_rays()
    mask_lidar, depth, _ = ray_cast(semantics, lidar_origin, lidar_dirs, 42.0, 0.3)
    hit = np.isfinite(depth)
    points = lidar_origin + lidar_dirs[hit] * depth[hit, None]
    lidar = np.concatenate([points, np.full((len(points), 1), 20.0), rings[hit, None]], axis=1)
    labels = OccupancyLabels(semantics, mask_lidar.astype(np.uint8), mask_camera.astype(np.uint8))
    return labels, lidar.astype(np.float32)


def synthetic_occupancy(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One random ground-truth frame (semantics, mask_lidar, mask_camera) of the synthetic street."""
    offset = float(rng.uniform(0, 1000))
    boxes = _street_objects(offset, rng)
    labels, _ = frame_labels(
        (offset + float(rng.uniform(-5, 5)), 0.0, float(rng.normal(0, 0.05))), boxes, 0.0
    )
    return {
        'semantics': labels.semantics,
        'mask_lidar': labels.mask_lidar,
        'mask_camera': labels.mask_camera,
    }


def camera_setup(image_size: tuple[int, int]) -> dict[str, dict[str, Any]]:
    """Per camera: translation (ego), rotation matrix cam->ego, intrinsic matrix, for (W, H) images."""
    width, height = image_size
    setup = {}
    for name in CAMERA_NAMES:
        yaw = math.radians(CAMERA_YAWS[name])
        fov = math.radians(110.0 if name == 'CAM_BACK' else 70.0)
        focal = (width / 2) / math.tan(fov / 2)
        rotation = _rot_z(yaw) @ _CAM_BASE
        translation = np.array([1.5 * math.cos(yaw) + 0.5, 0.5 * math.sin(yaw), CAMERA_HEIGHT])
        intrinsic = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
        setup[name] = {'translation': translation, 'rotation': rotation, 'intrinsic': intrinsic}
    return setup


def render_camera(
    semantics: np.ndarray, camera: dict[str, Any], image_size: tuple[int, int]
) -> np.ndarray:
    """(H, W, 3) uint8 image ray-cast from one camera into the ego-frame voxel grid."""
    width, height = image_size
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)
    dirs_cam = pixels @ np.linalg.inv(camera['intrinsic']).T
    dirs = dirs_cam @ camera['rotation'].T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    _, depth, cls = ray_cast(semantics, camera['translation'], dirs, 42.0, 0.3)
    palette = np.asarray(CLASS_PALETTE, np.float32)
    shade = np.clip(1.0 - depth / 60.0, 0.35, 1.0)[:, None]
    image = np.where(np.isfinite(depth)[:, None], palette[cls] * shade, SKY)
    return image.reshape(height, width, 3).astype(np.uint8)


def _jpeg_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='JPEG', quality=92)
    return buffer.getvalue()


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='PNG')
    return buffer.getvalue()


def _scene_names(version: str, num_scenes: int) -> list[str]:
    """Real scene names of the version's splits, alternating train / val so both get scenes."""
    from nuscenes.utils import splits

    if version == 'v1.0-test':
        return list(splits.test[:num_scenes])
    first, second = (
        (splits.mini_train, splits.mini_val)
        if version == 'v1.0-mini'
        else (splits.train, splits.val)
    )
    return [(first if i % 2 == 0 else second)[i // 2] for i in range(num_scenes)]


def _ego_pose(t: float, offset: float) -> tuple[float, float, float]:
    """Ego (x, y, yaw) at time t (s) driving along the street with a gentle weave."""
    speed = 4.0
    x = offset + speed * t
    y = 0.8 * math.sin(0.35 * t)
    yaw = math.atan2(0.8 * 0.35 * math.cos(0.35 * t), speed)
    return x, y, yaw


def _can_pose_messages(
    start_us: int, end_us: int, offset: float, t0_us: int
) -> list[dict[str, Any]]:
    """50 Hz CAN `pose` messages; accel varies over time so that the message choice is observable."""
    messages = []
    for utime in range(start_us, end_us, 20_000):
        t = (utime - t0_us) * 1e-6
        x, y, yaw = _ego_pose(t, offset)
        messages.append(
            {
                'accel': [0.3 * math.sin(2.0 * t), 0.05 * math.cos(1.5 * t), 9.81],
                'orientation': _yaw_quaternion(yaw),
                'pos': [x, y, 0.0],
                'rotation_rate': [0.0, 0.0, 0.1 * math.cos(0.35 * t)],
                'utime': utime,
                'vel': [4.0, 0.0, 0.0],
            }
        )
    return messages


@dataclass
class SyntheticDataset:
    """What `generate_synthetic_dataset` wrote."""

    root: Path
    version: str
    scene_names: list[str]
    sample_tokens: list[str]

    @property
    def occ_root(self) -> Path:
        return self.root


TABLE_NAMES = (
    'category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose',
    'log', 'scene', 'sample', 'sample_data', 'sample_annotation', 'map',
)  # fmt: skip
CHANNELS = ('LIDAR_TOP', *CAMERA_NAMES)
BASE_TIME_US = 1_532_402_927_000_000
KEY_FRAME_INTERVAL_US = 500_000  # nuScenes key frames: 2 Hz


def _static_tables(
    tables: dict[str, list[dict[str, Any]]], version: str, cameras: dict
) -> dict[str, str]:
    """Fills category / attribute / visibility / sensor / calibrated_sensor; returns channel → calib token."""
    for category in CATEGORIES:
        tables['category'].append(
            {'token': _token('category', category), 'name': category, 'description': ''}
        )
    tables['attribute'].append(
        {'token': _token('attribute', 'parked'), 'name': 'vehicle.parked', 'description': ''}
    )
    tables['visibility'].append(
        {'token': '4', 'level': 'v80-100', 'description': 'visibility of whole object'}
    )
    calib_tokens = {}
    for channel in CHANNELS:
        modality = 'lidar' if channel == 'LIDAR_TOP' else 'camera'
        tables['sensor'].append(
            {'token': _token('sensor', channel), 'channel': channel, 'modality': modality}
        )
        if channel == 'LIDAR_TOP':
            pose = {
                'translation': list(LIDAR_TRANSLATION),
                'rotation': _yaw_quaternion(LIDAR_YAW),
                'camera_intrinsic': [],
            }
        else:
            cam = cameras[channel]
            pose = {
                'translation': cam['translation'].tolist(),
                'rotation': _matrix_to_quaternion(cam['rotation']),
                'camera_intrinsic': cam['intrinsic'].tolist(),
            }
        calib_tokens[channel] = _token('calibrated_sensor', channel, version)
        tables['calibrated_sensor'].append(
            {'token': calib_tokens[channel], 'sensor_token': _token('sensor', channel), **pose}
        )
    return calib_tokens


@dataclass
class _SceneContext:
    """What the per-frame writers of one scene share."""

    root: Path
    tables: dict[str, list[dict[str, Any]]]
    name: str
    log_token: str
    t0: int
    offset: float
    boxes: list[WorldBox]
    cameras: dict[str, dict[str, Any]]
    calib_tokens: dict[str, str]
    image_size: tuple[int, int]
    last_sample_data: dict[str, dict[str, Any]]  # channel -> previous record, for prev/next links


def _write_sensor_data(
    ctx: _SceneContext, sample_token: str, labels: OccupancyLabels, lidar_ego: np.ndarray
) -> None:
    """One key frame's sample_data + ego_pose records and files (lidar .pcd.bin, six JPEGs)."""
    timestamp = ctx.tables['sample'][-1]['timestamp']
    for index, channel in enumerate(CHANNELS):
        token = _token('sample_data', sample_token, channel)
        sd_time = timestamp + 2_000 * index  # cameras fire a few ms after the lidar, as in nuScenes
        x, y, yaw = _ego_pose((sd_time - ctx.t0) * 1e-6, ctx.offset)
        ego_token = _token('ego_pose', token)
        ctx.tables['ego_pose'].append(
            {
                'token': ego_token,
                'timestamp': sd_time,
                'rotation': _yaw_quaternion(yaw),
                'translation': [x, y, 0.0],
            }
        )
        stem = f'{ctx.log_token[:8]}__{channel}__{sd_time}'
        if channel == 'LIDAR_TOP':
            filename, width, height = f'samples/{channel}/{stem}.pcd.bin', 0, 0
            points = lidar_ego.copy()  # ego frame -> lidar frame
            points[:, :3] = (points[:, :3] - np.asarray(LIDAR_TRANSLATION)) @ _rot_z(LIDAR_YAW)
            atomic_write_bytes(ctx.root / filename, points.astype(np.float32).tobytes())
        else:
            filename, (width, height) = f'samples/{channel}/{stem}.jpg', ctx.image_size
            image = render_camera(labels.semantics, ctx.cameras[channel], ctx.image_size)
            atomic_write_bytes(ctx.root / filename, _jpeg_bytes(image))
        previous = ctx.last_sample_data.get(channel)
        record = {
            'token': token, 'sample_token': sample_token, 'ego_pose_token': ego_token,
            'calibrated_sensor_token': ctx.calib_tokens[channel], 'timestamp': sd_time,
            'fileformat': 'pcd' if channel == 'LIDAR_TOP' else 'jpg', 'is_key_frame': True,
            'height': height, 'width': width, 'filename': filename,
            'prev': previous['token'] if previous else '', 'next': '',
        }  # fmt: skip
        if previous:
            previous['next'] = token
        ctx.last_sample_data[channel] = record
        ctx.tables['sample_data'].append(record)


def _annotate(
    ctx: _SceneContext, sample_token: str, t: float, pose: tuple[float, float, float]
) -> dict[int, str]:
    """sample_annotation records of the boxes within 50 m; returns box index → annotation token."""
    tokens = {}
    for index, box in enumerate(ctx.boxes):
        cx, cy = box.at(t)
        if math.hypot(cx - pose[0], cy - pose[1]) > 50.0:
            continue
        tokens[index] = _token('sample_annotation', sample_token, index)
        ctx.tables['sample_annotation'].append(
            {'token': tokens[index], 'sample_token': sample_token, 'instance_token': _token('instance', ctx.name, index),
             'visibility_token': '4', 'attribute_tokens': [], 'translation': [cx, cy, box.size_wlh[2] / 2],
             'size': list(box.size_wlh), 'rotation': _yaw_quaternion(box.yaw), 'prev': '', 'next': '',
             'num_lidar_pts': 10, 'num_radar_pts': 0}
        )  # fmt: skip
    return tokens


def _link_instances(ctx: _SceneContext, per_box: dict[int, list[str]]) -> None:
    """prev/next links between an object's annotations and its `instance` record."""
    by_token = {record['token']: record for record in ctx.tables['sample_annotation']}
    for index, tokens in per_box.items():
        for a, b in itertools.pairwise(tokens):
            by_token[a]['next'], by_token[b]['prev'] = b, a
        ctx.tables['instance'].append(
            {'token': _token('instance', ctx.name, index), 'category_token': _token('category', ctx.boxes[index].category),
             'nbr_annotations': len(tokens), 'first_annotation_token': tokens[0], 'last_annotation_token': tokens[-1]}
        )  # fmt: skip


def _write_scene(ctx: _SceneContext, samples_per_scene: int, annotate: bool) -> dict[str, Any]:
    """Writes one scene (tables, files, CAN bus); returns its Occ3D `scene_infos` entry."""
    ctx.tables['log'].append(
        {'token': ctx.log_token, 'logfile': f'synthetic-{ctx.name}', 'vehicle': 'n015',
         'date_captured': '2018-07-24', 'location': 'singapore-onenorth'}
    )  # fmt: skip
    scene_token = _token('scene', ctx.name)
    samples = [_token('sample', ctx.name, i) for i in range(samples_per_scene)]
    ctx.tables['scene'].append(
        {'token': scene_token, 'log_token': ctx.log_token, 'nbr_samples': samples_per_scene,
         'first_sample_token': samples[0], 'last_sample_token': samples[-1], 'name': ctx.name,
         'description': 'synthetic street'}
    )  # fmt: skip
    scene_infos: dict[str, Any] = {}
    per_box: dict[int, list[str]] = {}
    for i, sample_token in enumerate(samples):
        timestamp = ctx.t0 + i * KEY_FRAME_INTERVAL_US
        t = (timestamp - ctx.t0) * 1e-6
        pose = _ego_pose(t, ctx.offset)
        links = {
            'prev': samples[i - 1] if i else '',
            'next': samples[i + 1] if i + 1 < len(samples) else '',
        }
        ctx.tables['sample'].append(
            {'token': sample_token, 'timestamp': timestamp, 'scene_token': scene_token, **links}
        )
        labels, lidar_ego = frame_labels(pose, ctx.boxes, t)
        gt_path = gt_relative_path(ctx.name, sample_token)
        save_labels(ctx.root / gt_path, labels)
        scene_infos[sample_token] = {'timestamp': timestamp, 'gt_path': gt_path, **links}
        _write_sensor_data(ctx, sample_token, labels, lidar_ego)
        if annotate:
            for index, token in _annotate(ctx, sample_token, t, pose).items():
                per_box.setdefault(index, []).append(token)
    _link_instances(ctx, per_box)
    end = ctx.t0 + samples_per_scene * KEY_FRAME_INTERVAL_US + 100_000
    messages = _can_pose_messages(ctx.t0 - 100_000, end, ctx.offset, ctx.t0)
    atomic_json(ctx.root / 'can_bus' / f'{ctx.name}_pose.json', messages)
    return scene_infos


def generate_synthetic_dataset(
    root: str | os.PathLike[str],
    version: str = 'v1.0-mini',
    num_scenes: int = 2,
    samples_per_scene: int = 3,
    image_size: tuple[int, int] = (128, 72),
    seed: int = 0,
) -> SyntheticDataset:
    """Writes a small nuScenes + CAN bus + Occ3D dataset under `root` (see module docstring).

    Args:
        root: Output folder (nuScenes dataroot, CAN bus root and Occ3D root at once).
        version: 'v1.0-mini', 'v1.0-trainval' or 'v1.0-test'; decides the scene names (and thus the
            split each scene falls in) and whether boxes are annotated (not for test).
        num_scenes: Number of scenes; with 2, one lands in train and one in val.
        samples_per_scene: Key frames per scene (2 Hz).
        image_size: Camera image (width, height) in pixels.
        seed: Seed of the object layout.

    Returns:
        Summary with the scene names and sample tokens in time order.
    """
    from nuscenes.utils import splits

    if version not in VERSIONS:
        raise OccupancyDataError(f'version {version!r}: expected one of {VERSIONS}')
    if num_scenes < 1 or samples_per_scene < 1:
        raise OccupancyDataError('num_scenes and samples_per_scene must be at least 1')
    root = Path(root)
    rng = np.random.default_rng(seed)
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLE_NAMES}
    cameras = camera_setup(image_size)
    calib_tokens = _static_tables(tables, version, cameras)
    split_of = {
        **dict.fromkeys(splits.train + splits.mini_train, 'train_split'),
        **dict.fromkeys(splits.val + splits.mini_val, 'val_split'),
    }
    annotations: dict[str, Any] = {'train_split': [], 'val_split': [], 'scene_infos': {}}
    scene_names = _scene_names(version, num_scenes)
    for index, name in enumerate(scene_names):
        offset = 1000.0 * index + 100.0  # scenes are far apart on the same street
        ctx = _SceneContext(
            root, tables, name, _token('log', name), BASE_TIME_US + index * 60_000_000, offset,
            _street_objects(offset, rng), cameras, calib_tokens, image_size, {},
        )  # fmt: skip
        annotations['scene_infos'][name] = _write_scene(
            ctx, samples_per_scene, annotate=version != 'v1.0-test'
        )
        if version != 'v1.0-test' and name in split_of:
            annotations[split_of[name]].append(name)
    map_token = _token('map', version)
    map_file = f'maps/{map_token}.png'
    atomic_write_bytes(root / map_file, _png_bytes(np.zeros((8, 8), np.uint8)))
    tables['map'].append(
        {
            'token': map_token,
            'log_tokens': [r['token'] for r in tables['log']],
            'category': 'semantic_prior',
            'filename': map_file,
        }
    )
    for name, records in tables.items():
        atomic_json(root / version / f'{name}.json', records)
    atomic_json(root / 'annotations.json', annotations)
    sample_tokens = [record['token'] for record in tables['sample']]
    return SyntheticDataset(root, version, scene_names, sample_tokens)
