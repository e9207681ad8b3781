"""Synthetic datasets in exactly the real on-disk formats, for tests and the demo.

- `generate_dataset`: the challenge format: `<out>/<split>_annotations.json` plus, optionally, the 7
  camera images of every frame under `<out>/<split>/<image_path>` (small JPEGs with the GT map elements
  painted on the ground plane, so a model has something real to learn).
- `generate_av2_log`: a raw Argoverse 2 sensor log (map archive JSON in the av2 schema, city←ego poses
  and calibration feather files) for the converter.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .annotations import save_annotations
from .constants import CAMERAS, CLASSES
from .errors import HDMapInputError
from .io_utils import write_bytes_atomic, write_json_atomic
from .synthetic_geometry import noisy_predictions, random_map

# Ring-camera yaw (degrees, left positive) of the AV2 rig; mounted ~1.4 m high near the roof centre.
CAMERA_YAW_DEG = {
    'ring_front_center': 0.0,
    'ring_front_left': 45.0,
    'ring_front_right': -45.0,
    'ring_side_left': 99.0,
    'ring_side_right': -99.0,
    'ring_rear_left': 153.0,
    'ring_rear_right': -153.0,
}
# Full-resolution AV2 image sizes (w, h): the front centre camera is portrait.
FULL_SIZE = {c: ((1550, 2048) if c == 'ring_front_center' else (2048, 1550)) for c in CAMERAS}
FULL_FOCAL = 1700.0


def camera_rig(scale: float = 0.1) -> dict[str, dict[str, Any]]:
    """AV2-like intrinsics (scaled to the image size), ego→camera extrinsics and image sizes.

    Args:
        scale: Image size relative to AV2's full resolution (0.1 → 155×205 / 205×155 pixels).
    """
    rig = {}
    for cam in CAMERAS:
        yaw = np.deg2rad(CAMERA_YAW_DEG[cam])
        w, h = (max(8, round(s * scale)) for s in FULL_SIZE[cam])
        f = FULL_FOCAL * w / FULL_SIZE[cam][0]
        k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
        # Camera axes in the ego frame (OpenCV convention): x right, y down, z forward.
        forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        down = np.array([0.0, 0.0, -1.0])
        r_ego_cam = np.stack([right, down, forward], axis=1)
        position = np.array([1.3 + 0.3 * np.cos(yaw), 0.25 * np.sin(yaw), 1.4])
        ego2cam = np.eye(4)
        ego2cam[:3, :3] = r_ego_cam.T
        ego2cam[:3, 3] = -r_ego_cam.T @ position
        rig[cam] = {'intrinsic': k, 'extrinsic': ego2cam, 'size': (w, h)}
    return rig


def render_camera_image(
    annotation: dict[str, list[np.ndarray]], info: dict[str, Any], rng: np.random.Generator
) -> bytes:
    """A JPEG of a flat world: sky, grey road surface and the map elements painted on it."""
    from PIL import Image, ImageDraw

    from .visualize import _dense, project_to_image

    w, h = info['size']
    img = Image.new('RGB', (w, h), (70, 70, 75))
    draw = ImageDraw.Draw(img)
    # Horizon: where a far ground point ahead of the camera projects.
    k = info['intrinsic']
    draw.rectangle([0, 0, w, int(k[1, 2])], fill=(150, 180, 215))
    color = {'ped_crossing': (240, 240, 240), 'divider': (250, 220, 60), 'boundary': (200, 90, 60)}
    width = max(1, w // 80)
    for cat in CLASSES:
        for line in annotation[cat]:
            uv = project_to_image(_dense(np.asarray(line)[:, :3]), k, info['extrinsic'], (w, h))
            ok = np.isfinite(uv[:, 0])
            for a, b, ok_a, ok_b in zip(uv[:-1], uv[1:], ok[:-1], ok[1:]):
                if ok_a and ok_b:
                    draw.line([tuple(a), tuple(b)], fill=color[cat], width=width)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-6, 7, size=(h, w, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, format='JPEG', quality=90)
    return buf.getvalue()


def generate_annotations(
    num_segments: int = 2, frames_per_segment: int = 4, seed: int = 0, image_scale: float = 0.1
) -> dict[str, list[dict[str, Any]]]:
    """Annotation structure `{segment: [frame]}` with random road-like maps (no files written).

    Each frame's map is drawn independently (frames of a segment are not a consistent drive); poses
    advance 5 m per frame along the global x axis.
    """
    rng = np.random.default_rng(seed)
    rig = camera_rig(image_scale)
    ann: dict[str, list[dict[str, Any]]] = {}
    t0 = 315_966_000_000_000_000
    for s in range(num_segments):
        seg = f'synthetic-{seed:04d}-{s:03d}'
        frames = []
        for i in range(frames_per_segment):
            ts = str(t0 + s * 10**12 + i * 500_000_000)  # 2 Hz, unique across segments
            elements = random_map(rng)
            frames.append(
                {
                    'segment_id': seg,
                    'timestamp': ts,
                    'sensor': {
                        cam: {
                            'image_path': f'{seg}/image/{cam}/{ts}.jpg',
                            'intrinsic': rig[cam]['intrinsic'].tolist(),
                            'extrinsic': rig[cam]['extrinsic'].tolist(),
                        }
                        for cam in CAMERAS
                    },
                    'annotation': {
                        c: [np.round(v, 4).tolist() for v in elements[c]] for c in CLASSES
                    },
                    'pose': {
                        'ego2global_translation': [1000.0 + 5.0 * i, 2000.0 + 100.0 * s, 50.0],
                        'ego2global_rotation': np.eye(3).tolist(),
                    },
                }
            )
        ann[seg] = frames
    return ann


def generate_dataset(
    out_dir: str | os.PathLike,
    *,
    split: str = 'val',
    num_segments: int = 2,
    frames_per_segment: int = 4,
    seed: int = 0,
    images: bool = True,
    image_scale: float = 0.1,
) -> Path:
    """Writes a synthetic dataset in the challenge layout and returns the annotation file.

    Layout: `<out_dir>/<split>_annotations.json`; images `<out_dir>/<split>/<segment>/image/<camera>/
    <timestamp>.jpg` (the frames' `image_path` is relative to `<out_dir>/<split>`).

    Args:
        out_dir: Output folder.
        split: Split name used in the file names.
        num_segments: Number of segments (logs).
        frames_per_segment: Frames per segment.
        seed: Random seed (the same seed gives the same files).
        images: Also render the 7 camera JPEGs of every frame.
        image_scale: Image size relative to AV2's full resolution.
    """
    for name, value in (('num_segments (--segments)', num_segments),
                        ('frames_per_segment (--frames)', frames_per_segment)):  # fmt: skip
        if value < 1:
            raise HDMapInputError(f'generate: {name} must be >= 1, got {value}')
    if not 0 < image_scale <= 1:
        raise HDMapInputError(
            f'generate: image_scale (--image-scale) must be in (0, 1], got {image_scale}'
        )
    out_dir = Path(out_dir)
    ann = generate_annotations(num_segments, frames_per_segment, seed, image_scale)
    if images:
        rng = np.random.default_rng(seed + 1)
        rig = camera_rig(image_scale)
        for frames in ann.values():
            for frame in frames:
                elements = {c: [np.asarray(v) for v in frame['annotation'][c]] for c in CLASSES}
                for cam in CAMERAS:
                    jpg = render_camera_image(elements, rig[cam], rng)
                    write_bytes_atomic(out_dir / split / frame['sensor'][cam]['image_path'], jpg)
    return save_annotations(ann, out_dir / f'{split}_annotations.json')


def generate_predictions(
    annotations: dict[str, list[dict[str, Any]]],
    *,
    seed: int = 0,
    num_preds: int = 10,
    recall: float = 0.8,
    noise: float = 0.4,
) -> dict[str, dict[str, list]]:
    """Detector-like predictions for every frame (token -> {'vectors', 'scores', 'labels'})."""
    rng = np.random.default_rng(seed)
    out = {}
    for frames in annotations.values():
        for f in frames:
            gt = {c: [np.asarray(v) for v in f['annotation'][c]] for c in CLASSES}
            out[f['timestamp']] = noisy_predictions(rng, gt, num_preds, recall=recall, noise=noise)
    return out


# --------------------------------------------------------------------------------------------------
# Raw Argoverse 2 sensor log
# --------------------------------------------------------------------------------------------------
def _pts(xyz: np.ndarray) -> list[dict[str, float]]:
    return [{'x': float(x), 'y': float(y), 'z': float(z)} for x, y, z in xyz]


def generate_av2_log(
    out_root: str | os.PathLike,
    log_id: str = '00000000-0000-4000-8000-000000000000',
    *,
    num_poses: int = 21,
    seed: int = 0,
    images: bool = False,
    image_scale: float = 1.0,
) -> Path:
    """Writes a small raw AV2 sensor log: a straight 3-lane road along city x with painted lane lines
    (one dashed and one solid divider), a drivable area and two pedestrian crossings; the ego drives
    along the road at 10 m/s with poses every 0.1 s.

    Args:
        out_root: Folder that receives the log folder.
        log_id: Log name.
        num_poses: Number of poses (0.1 s apart).
        seed: Random seed.
        images: Also write `sensors/cameras/<camera>/<timestamp_ns>.jpg` (plain grey, 20 Hz, each camera
            a few ms apart, as AV2's unsynchronised ring cameras).
        image_scale: Camera resolution relative to AV2's (calibration and images agree).

    Returns:
        The log folder `<out_root>/<log_id>`.
    """
    import pandas as pd
    from av2.geometry.geometry import mat_to_quat

    rng = np.random.default_rng(seed)
    log = Path(out_root) / log_id
    origin = np.array([5000.0, 2000.0, 60.0])
    x = np.arange(-100.0, 201.0, 25.0)
    lanes = {}
    offsets = [-5.25, -1.75, 1.75, 5.25]  # lane boundaries' y offsets; 3 lanes of 3.5 m
    marks = ['NONE', 'DASHED_WHITE', 'SOLID_YELLOW', 'NONE']
    for k in range(3):
        for j in range(len(x) - 1):
            lane_id = 1000 * (k + 1) + j
            seg = np.stack([x[j : j + 2], np.zeros(2), np.zeros(2)], 1) + origin
            right, left = seg + np.array([0, offsets[k], 0]), seg + np.array([0, offsets[k + 1], 0])
            lanes[str(lane_id)] = {
                'id': lane_id,
                'is_intersection': False,
                'lane_type': 'VEHICLE',
                'left_lane_boundary': _pts(left),
                'left_lane_mark_type': marks[k + 1],
                'right_lane_boundary': _pts(right),
                'right_lane_mark_type': marks[k],
                'successors': [lane_id + 1] if j < len(x) - 2 else [],
                'predecessors': [lane_id - 1] if j > 0 else [],
                'right_neighbor_id': 1000 * k + j if k > 0 else None,
                'left_neighbor_id': 1000 * (k + 2) + j if k < 2 else None,
            }
    area = origin + np.array([[-100, -6.0, 0], [200, -6.0, 0], [200, 6.0, 0], [-100, 6.0, 0]])
    crossings = {}
    for i, cx in enumerate((20.0, 45.0)):
        e1 = origin + np.array([[cx, -6.0, 0], [cx, 6.0, 0]])
        crossings[str(i + 1)] = {
            'id': i + 1,
            'edge1': _pts(e1),
            'edge2': _pts(e1 + np.array([4.0, 0, 0])),
        }
    archive = {
        'pedestrian_crossings': crossings,
        'lane_segments': lanes,
        'drivable_areas': {'1': {'id': 1, 'area_boundary': _pts(area)}},
    }
    write_json_atomic(log / 'map' / f'log_map_archive_{log_id}____SYN_city_00000.json', archive)
    write_json_atomic(
        log / 'map' / f'{log_id}___img_Sim2_city.json',
        {'R': [1.0, 0.0, 0.0, 1.0], 't': [-origin[0], -origin[1]], 's': 3.3333333333333335},
    )

    t0 = 315_970_000_000_000_000
    rows = []
    for i in range(num_poses):
        yaw = 0.02 * rng.standard_normal()
        c, s = np.cos(yaw), np.sin(yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        qw, qx, qy, qz = mat_to_quat(rot)
        tx, ty, tz = origin + np.array([1.0 * i, 0.3 * rng.standard_normal(), 0.0])
        rows.append((t0 + i * 100_000_000, qw, qx, qy, qz, tx, ty, tz))
    poses = pd.DataFrame(
        rows, columns=['timestamp_ns', 'qw', 'qx', 'qy', 'qz', 'tx_m', 'ty_m', 'tz_m']
    )
    _write_feather(poses, log / 'city_SE3_egovehicle.feather')

    rig = camera_rig(image_scale)
    if images:
        from PIL import Image

        for c, cam in enumerate(CAMERAS):
            w, h = rig[cam]['size']
            buf = io.BytesIO()
            Image.new('RGB', (w, h), (90, 90, 90)).save(buf, format='JPEG')
            for i in range(2 * (num_poses - 1) + 1):
                ts = t0 + i * 50_000_000 + 3_000_000 * c
                write_bytes_atomic(log / 'sensors' / 'cameras' / cam / f'{ts}.jpg', buf.getvalue())
    intr, extr = [], []
    for cam in CAMERAS:
        k, (w, h) = rig[cam]['intrinsic'], rig[cam]['size']
        intr.append((cam, k[0, 0], k[1, 1], k[0, 2], k[1, 2], -0.25, -0.1, 0.2, h, w))
        ego_from_cam = np.linalg.inv(rig[cam]['extrinsic'])
        qw, qx, qy, qz = mat_to_quat(ego_from_cam[:3, :3])
        extr.append((cam, qw, qx, qy, qz, *ego_from_cam[:3, 3]))
    cols = [
        'sensor_name',
        'fx_px',
        'fy_px',
        'cx_px',
        'cy_px',
        'k1',
        'k2',
        'k3',
        'height_px',
        'width_px',
    ]
    _write_feather(pd.DataFrame(intr, columns=cols), log / 'calibration' / 'intrinsics.feather')
    cols = ['sensor_name', 'qw', 'qx', 'qy', 'qz', 'tx_m', 'ty_m', 'tz_m']
    _write_feather(
        pd.DataFrame(extr, columns=cols), log / 'calibration' / 'egovehicle_SE3_sensor.feather'
    )
    return log


def _write_feather(df: Any, path: Path) -> None:
    buf = io.BytesIO()
    df.reset_index(drop=True).to_feather(buf)
    write_bytes_atomic(path, buf.getvalue())


def annotation_summary(path: str | os.PathLike) -> dict[str, int]:
    """Frame and element counts of an annotation file (for CLI messages)."""
    with open(path) as f:
        data = json.load(f)
    counts = {'segments': len(data), 'frames': sum(len(v) for v in data.values())}
    for c in CLASSES:
        counts[c] = sum(len(fr['annotation'][c]) for v in data.values() for fr in v)
    return counts
