"""Synthetic OpenLane-V2 subset_A data in the real on-disk format (for tests, benchmarks, the demo).

`write_dataset` writes what the official download unpacks to:

    <root>/<split>/<segment_id>/info/<timestamp>.json         one per frame
    <root>/<split>/<segment_id>/image/<camera>/<timestamp>.jpg 7 ring cameras
    <root>/data_dict_<name>.json                              {split: {segment_id: [<timestamp>.json]}}

Lane centerlines are smooth 3D curves of 201 points in the ego frame (x forward, y left) that
chain into each other (lane → successor lane gives `topology_lclc`), traffic elements are boxes in
the portrait front image linked to the lanes they govern (`topology_lcte`). Camera intrinsics and
extrinsics are those of a plausible Argoverse 2 ring rig, so projected lanes land in the images.

`make_predictions` perturbs a ground truth into a detector-like submission (noisy, subsampled,
missed and spurious lanes and boxes, scored topology) for metric tests and benchmarks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.common.engine.atomic_files import atomic_write_bytes

from .constants import CAMERAS, LANDSCAPE_IMAGE_SIZE, NUM_ATTRIBUTES, PORTRAIT_IMAGE_SIZE

# Camera yaw (rad, counter-clockwise from forward) of the 7 ring cameras.
CAMERA_YAWS: dict[str, float] = {
    'ring_front_center': 0.0,
    'ring_front_left': np.deg2rad(45),
    'ring_front_right': np.deg2rad(-45),
    'ring_rear_left': np.deg2rad(153),
    'ring_rear_right': np.deg2rad(-153),
    'ring_side_left': np.deg2rad(99),
    'ring_side_right': np.deg2rad(-99),
}
CAMERA_HEIGHT = 1.4  # metres above the ego origin
FOCAL = 1750.0  # pixels at full resolution (AV2 ring cameras: ~1680-1780)


def camera_calibration(camera: str, scale: float = 1.0) -> dict[str, Any]:
    """Intrinsic and extrinsic (camera→ego) of one ring camera, as lists like the info JSON."""
    width, height = PORTRAIT_IMAGE_SIZE if camera == CAMERAS[0] else LANDSCAPE_IMAGE_SIZE
    k = [
        [FOCAL * scale, 0.0, width * scale / 2],
        [0.0, FOCAL * scale, height * scale / 2],
        [0.0, 0.0, 1.0],
    ]
    yaw = CAMERA_YAWS[camera]
    # Camera axes (x right, y down, z forward) expressed in the ego frame (x fwd, y left, z up).
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    rotation = np.stack([right, down, forward], axis=1)
    translation = [1.5 * np.cos(yaw), 0.8 * np.sin(yaw), CAMERA_HEIGHT]
    return {
        'image_path': None,  # filled by the writer
        'extrinsic': {'rotation': rotation.tolist(), 'translation': translation},
        'intrinsic': {'K': k, 'distortion': [0.0, 0.0, 0.0]},
    }


def _curve(
    rng: np.random.Generator, start: np.ndarray, heading: float, length: float
) -> np.ndarray:
    """201 points of a gently curving 3D lane starting at `start` with `heading` (rad)."""
    t = np.linspace(0.0, 1.0, 201)
    curvature = rng.uniform(-0.01, 0.01)
    angle = heading + curvature * length * t
    step = length / 200
    xy = start[:2] + np.concatenate(
        [[[0.0, 0.0]], np.cumsum(step * np.stack([np.cos(angle), np.sin(angle)], 1)[1:], 0)]
    )
    z = start[2] + rng.uniform(-0.02, 0.02) * length * t
    return np.concatenate([xy, z[:, None]], axis=1)


def make_annotation(
    rng: np.random.Generator,
    num_roads: int = 4,
    segments_per_road: int = 3,
    num_tes: int = 4,
    image_scale: float = 1.0,
) -> dict[str, Any]:
    """One frame's annotation (JSON-able lists, like an info JSON's `annotation`).

    Args:
        rng: Random generator.
        num_roads: Parallel roads; each is a chain of `segments_per_road` successive lanes.
        segments_per_road: Lanes per road; consecutive ones are connected in `topology_lclc`.
        num_tes: Traffic elements in the front image, each linked to the first lane of a road.
        image_scale: Size of the front image relative to the real 1550×2048: boxes are in the
            pixels of the image written (as in the real data, where both are full size).
    """
    lanes: list[np.ndarray] = []
    lclc_edges: list[tuple[int, int]] = []
    road_heads: list[int] = []
    for road in range(num_roads):
        y0 = -15.0 + 30.0 * (road + 0.5) / num_roads + rng.uniform(-1.0, 1.0)
        point = np.array([rng.uniform(-45.0, -30.0), y0, rng.uniform(-0.3, 0.3)])
        heading = rng.uniform(-0.1, 0.1)
        for seg in range(segments_per_road):
            length = rng.uniform(15.0, 30.0)
            lane = _curve(rng, point, heading, length)
            if seg > 0:
                lclc_edges.append((len(lanes) - 1, len(lanes)))
            else:
                road_heads.append(len(lanes))
            lanes.append(lane)
            point = lane[-1]
            heading = float(np.arctan2(*(lane[-1, 1::-1] - lane[-2, 1::-1])))
    num_lanes = len(lanes)
    lclc = np.zeros((num_lanes, num_lanes), dtype=int)
    for a, b in lclc_edges:
        lclc[a, b] = 1
    width, height = PORTRAIT_IMAGE_SIZE[0] * image_scale, PORTRAIT_IMAGE_SIZE[1] * image_scale
    tes = []
    lcte = np.zeros((num_lanes, num_tes), dtype=int)
    for k in range(num_tes):
        attribute = int(rng.integers(0, NUM_ATTRIBUTES))
        w, h = rng.uniform(30, 160) * image_scale, rng.uniform(30, 160) * image_scale
        x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height / 2 - h)
        tes.append(
            {
                'id': 2000 + k,
                'category': 1 if attribute <= 3 else 2,
                'attribute': attribute,
                'points': [[x1, y1], [x1 + w, y1 + h]],
            }
        )
        lcte[road_heads[k % len(road_heads)] + 1 if segments_per_road > 1 else 0, k] = 1
    return {
        'lane_centerline': [
            {'id': 1000 + i, 'points': lane.round(4).tolist()} for i, lane in enumerate(lanes)
        ],
        'traffic_element': tes,
        'topology_lclc': lclc.tolist(),
        'topology_lcte': lcte.tolist(),
    }


def make_frame_info(
    rng: np.random.Generator,
    split: str,
    segment_id: str,
    timestamp: str,
    image_scale: float = 1.0,
    with_annotation: bool = True,
    **annotation_options: int,
) -> dict[str, Any]:
    """The info JSON of one frame (without writing images)."""
    sensor = {}
    for camera in CAMERAS:
        calib = camera_calibration(camera, image_scale)
        calib['image_path'] = f'{split}/{segment_id}/image/{camera}/{timestamp}.jpg'
        sensor[camera] = calib
    yaw = rng.uniform(-np.pi, np.pi)
    info: dict[str, Any] = {
        'version': 'v1.0',
        'segment_id': segment_id,
        'meta_data': {'source': 'synthetic', 'source_id': segment_id},
        'timestamp': timestamp,
        'sensor': sensor,
        'pose': {
            'rotation': [
                [np.cos(yaw), -np.sin(yaw), 0.0],
                [np.sin(yaw), np.cos(yaw), 0.0],
                [0.0, 0.0, 1.0],
            ],
            'translation': rng.uniform(-1000, 1000, size=3).round(3).tolist(),
        },
    }
    if with_annotation:
        info['annotation'] = make_annotation(rng, image_scale=image_scale, **annotation_options)
    return info


def write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj).encode())


def _render_image(info: Mapping[str, Any], camera: str, size: tuple[int, int]) -> np.ndarray:
    """A BGR image of a road scene: sky, ground, projected lanes and (front) the TE boxes."""
    import cv2

    width, height = size
    img = np.empty((height, width, 3), np.uint8)
    img[: height // 2] = (200, 170, 120)
    img[height // 2 :] = (90, 90, 90)
    calib = info['sensor'][camera]
    k = np.asarray(calib['intrinsic']['K'])
    rot = np.asarray(calib['extrinsic']['rotation'])
    trans = np.asarray(calib['extrinsic']['translation'])
    for lane in info.get('annotation', {}).get('lane_centerline', []):
        pts = (np.asarray(lane['points']) - trans) @ rot  # ego → camera
        pts = pts[pts[:, 2] > 0.5]
        if len(pts) < 2:
            continue
        uv = (pts @ k.T)[:, :2] / pts[:, 2:3]
        cv2.polylines(img, [uv.round().astype(np.int32)], False, (255, 255, 255), 2)
    if camera == CAMERAS[0]:
        for te in info.get('annotation', {}).get('traffic_element', []):
            (x1, y1), (x2, y2) = np.asarray(te['points']).round().astype(int)
            colour = (0, 0, 255) if te['attribute'] == 1 else (0, 200, 0)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, -1)
    return img


def write_dataset(
    root: str | Path,
    splits: Mapping[str, int] | None = None,
    frames_per_segment: int = 2,
    image_scale: float = 0.125,
    seed: int = 0,
    name: str = 'subset_A',
    write_images: bool = True,
    **annotation_options: int,
) -> Path:
    """Writes a synthetic dataset in the OpenLane-V2 layout; returns the data_dict JSON path.

    Args:
        root: Dataset root (`data/OpenLane-V2` in the official layout).
        splits: Segments per split, default {'train': 2, 'val': 1}. 'test' frames get no annotation.
        frames_per_segment: Frames per segment (timestamps 100 ms apart).
        image_scale: Image size relative to the real 2048×1550 (intrinsics are scaled to match);
            1.0 writes full-size images.
        seed: Random seed (the output is deterministic).
        name: Subset name; the split file is `data_dict_<name>.json`.
        write_images: Write the 7 JPEGs per frame (False: info JSON and split file only).
        **annotation_options: Forwarded to `make_annotation` (num_roads, segments_per_road, num_tes).
    """
    import cv2

    splits = dict(splits or {'train': 2, 'val': 1})
    # Bad sizes fail here with the argument's name, not deep inside the random generator.
    if not image_scale > 0:
        raise ValueError(f'image_scale must be > 0 (1.0 = full 2048×1550), got {image_scale}')
    if frames_per_segment < 1:
        raise ValueError(f'frames_per_segment must be ≥ 1, got {frames_per_segment}')
    bad = {k: v for k, v in splits.items() if v < 0}
    if bad:
        raise ValueError(f'segments per split must be ≥ 0, got {bad}')
    root = Path(root)
    rng = np.random.default_rng(seed)
    data_dict: dict[str, dict[str, list[str]]] = {}
    counter = 0
    for split, num_segments in splits.items():
        data_dict[split] = {}
        for s in range(num_segments):
            # Unique across splits, 5 digits like the real segment ids ('00000' ... '10000').
            segment_id = f'{(seed * 1000 + counter) % 100000:05d}'
            counter += 1
            data_dict[split][segment_id] = []
            for f in range(frames_per_segment):
                timestamp = str(315967376859506000 + 100_000_000 * f + 10**12 * s)
                info = make_frame_info(
                    rng, split, segment_id, timestamp, image_scale,
                    with_annotation=split != 'test', **annotation_options,
                )  # fmt: skip
                seg_dir = root / split / segment_id
                write_json_atomic(seg_dir / 'info' / f'{timestamp}.json', info)
                if write_images:
                    for camera in CAMERAS:
                        full = PORTRAIT_IMAGE_SIZE if camera == CAMERAS[0] else LANDSCAPE_IMAGE_SIZE
                        size = (round(full[0] * image_scale), round(full[1] * image_scale))
                        ok, buf = cv2.imencode('.jpg', _render_image(info, camera, size))
                        assert ok
                        atomic_write_bytes(
                            root / info['sensor'][camera]['image_path'], buf.tobytes()
                        )
                data_dict[split][segment_id].append(f'{timestamp}.json')
    split_file = root / f'data_dict_{name}.json'
    write_json_atomic(split_file, data_dict)
    return split_file


def make_predictions(
    rng: np.random.Generator,
    annotation: Mapping[str, Any],
    num_points: int = 11,
    noise: float = 0.6,
    miss_rate: float = 0.2,
    num_false_lanes: int = 3,
    num_false_tes: int = 2,
    total_lanes: int | None = None,
) -> dict[str, Any]:
    """A detector-like prediction for one frame (the `predictions` dict of a submission).

    Args:
        rng: Random generator.
        annotation: The frame's annotation (lists or arrays; lanes of any number of points).
        num_points: Points per predicted lane (the seed model outputs 11).
        noise: Std of the per-lane offset in metres (and of box jitter, in 1/10 of box size).
        miss_rate: Probability of dropping a GT lane or box.
        num_false_lanes: Spurious lanes.
        num_false_tes: Spurious traffic elements.
        total_lanes: If given, add spurious lanes until there are exactly this many predicted
            lanes (overrides `num_false_lanes`; GT lanes beyond it are dropped).
    """
    lanes, kept_lanes = [], []
    for i, lane in enumerate(annotation['lane_centerline']):
        pts = np.asarray(lane['points'], dtype=np.float64)
        if rng.random() < miss_rate:
            continue
        idx = np.linspace(0, len(pts) - 1, num_points).round().astype(int)
        offset = rng.normal(0, noise, size=3) * np.array([1.0, 1.0, 0.3])
        jitter = rng.normal(0, noise / 4, size=(num_points, 3))
        lanes.append((pts[idx] + offset + jitter).astype(np.float32))
        kept_lanes.append(i)
    if total_lanes is not None:
        lanes, kept_lanes = lanes[:total_lanes], kept_lanes[:total_lanes]
        num_false_lanes = total_lanes - len(lanes)
    for _ in range(num_false_lanes):
        start = np.array([rng.uniform(-50, 40), rng.uniform(-25, 25), 0.0])
        lane = _curve(rng, start, rng.uniform(-0.3, 0.3), rng.uniform(5, 40))
        idx = np.linspace(0, 200, num_points).round().astype(int)
        lanes.append(lane[idx].astype(np.float32))
        kept_lanes.append(-1)
    tes, kept_tes = [], []
    for i, te in enumerate(annotation['traffic_element']):
        if rng.random() < miss_rate:
            continue
        box = np.asarray(te['points'], dtype=np.float64)
        size = box[1] - box[0]
        box = box + rng.normal(0, noise / 10, size=(2, 2)) * size
        box[1] = np.maximum(box[1], box[0] + 1)
        attribute = te['attribute'] if rng.random() > 0.1 else int(rng.integers(0, NUM_ATTRIBUTES))
        tes.append((box.astype(np.float32), attribute))
        kept_tes.append(i)
    for _ in range(num_false_tes):
        x1, y1 = rng.uniform(0, 1400), rng.uniform(0, 900)
        box = np.array([[x1, y1], [x1 + rng.uniform(20, 150), y1 + rng.uniform(20, 150)]])
        tes.append((box.astype(np.float32), int(rng.integers(0, NUM_ATTRIBUTES))))
        kept_tes.append(-1)
    gt_lclc = np.asarray(annotation['topology_lclc']).reshape(
        len(annotation['lane_centerline']), -1
    )
    gt_lcte = np.asarray(annotation['topology_lcte']).reshape(
        len(annotation['lane_centerline']), -1
    )

    def scored(gt: np.ndarray, rows: list[int], cols: list[int]) -> np.ndarray:
        out = rng.uniform(0, 0.6, size=(len(rows), len(cols)))
        for a, i in enumerate(rows):
            for b, j in enumerate(cols):
                if i >= 0 and j >= 0 and gt[i, j]:
                    out[a, b] = rng.uniform(0.3, 1.0)
        return out.astype(np.float32)

    return {
        'lane_centerline': [
            {'id': 1000 + k, 'points': p, 'confidence': float(rng.uniform(0.05, 1.0))}
            for k, p in enumerate(lanes)
        ],
        'traffic_element': [
            {'id': 2000 + k, 'attribute': a, 'points': b, 'confidence': float(rng.uniform(0.05, 1))}
            for k, (b, a) in enumerate(tes)
        ],
        'topology_lclc': scored(gt_lclc, kept_lanes, kept_lanes),
        'topology_lcte': scored(gt_lcte, kept_lanes, kept_tes),
    }


def make_collection(
    num_frames: int,
    seed: int = 0,
    point_interval: int = 20,
    split: str = 'val',
    **annotation_options: int,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """An in-memory collection as the official preprocessing stores it (no files, no images):
    {(split, segment_id, timestamp): frame meta with numpy annotation arrays}."""
    rng = np.random.default_rng(seed)
    out = {}
    for f in range(num_frames):
        segment_id, timestamp = f'{f // 10:05d}', str(315967376859506000 + f)
        info = make_frame_info(rng, split, segment_id, timestamp, **annotation_options)
        ann = info['annotation']
        for lane in ann['lane_centerline']:
            lane['points'] = np.array(lane['points'][::point_interval], dtype=np.float32)
        for te in ann['traffic_element']:
            te['points'] = np.array(te['points'], dtype=np.float32)
        ann['topology_lclc'] = np.array(ann['topology_lclc'], dtype=np.int8).reshape(
            len(ann['lane_centerline']), -1
        )
        ann['topology_lcte'] = np.array(ann['topology_lcte'], dtype=np.int8).reshape(
            len(ann['lane_centerline']), len(ann['traffic_element'])
        )
        out[(split, segment_id, timestamp)] = info
    return out
