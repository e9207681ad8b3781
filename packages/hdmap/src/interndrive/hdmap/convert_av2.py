"""Builds the challenge annotation format from raw Argoverse 2 sensor logs with the `av2` package.

Per log: the vector map archive (`map/log_map_archive_*.json`), the city←ego poses
(`city_SE3_egovehicle.feather`) and the camera calibration (`calibration/*.feather`). For every frame:
- divider: painted lane boundaries (lane segments' left/right boundaries whose mark type is not NONE),
  shared boundaries of neighbouring lanes de-duplicated, consecutive pieces merged;
- boundary: the outline of the union of all drivable areas;
- ped_crossing: the closed outline of each pedestrian crossing;
transformed into the ego frame and clipped to the 60 × 30 m ROI. The 4th column ("visibility") is 1 where
the point projects into at least one ring camera's image (pinhole, no occlusion reasoning: we have no
depth), else 0.

Frames are the ring_front_center image timestamps when the log has images, else the pose timestamps,
thinned to one frame every `interval_s` seconds (the challenge's frames are 2 Hz).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, box
from shapely.ops import linemerge, unary_union

from interndrive.common.engine.progress import track

from .constants import CAMERAS, CLASSES, ROI_SIZE
from .errors import HDMapInputError, MissingPathError

_ROI_BOX = box(-ROI_SIZE[0] / 2, -ROI_SIZE[1] / 2, ROI_SIZE[0] / 2, ROI_SIZE[1] / 2)
# Map elements farther than this from the ego position cannot reach the ROI (half-diagonal ≈ 33.6 m).
_NEAR_M = 40.0


def _require_av2():
    try:
        from av2.map.map_api import ArgoverseStaticMap
        from av2.utils.io import read_city_SE3_ego, read_ego_SE3_sensor, read_feather
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f'the AV2 converter needs the `av2` package and a pyarrow that matches numpy ({e}); '
            'install interndrive-hdmap with its dependencies'
        ) from e
    return ArgoverseStaticMap, read_city_SE3_ego, read_ego_SE3_sensor, read_feather


def city_map_elements(log_dir: Path) -> dict[str, list[np.ndarray]]:
    """The log's map elements in city coordinates: class -> list of (N, 3) polylines."""
    ArgoverseStaticMap, *_ = _require_av2()
    map_dir = log_dir / 'map'
    if not map_dir.is_dir():
        raise MissingPathError(f'{log_dir}: no map/ folder (expected an Argoverse 2 sensor log)')
    avm = ArgoverseStaticMap.from_map_dir(map_dir, build_raster=False)

    seen: set[bytes] = set()
    painted: list[LineString] = []
    for lane in avm.vector_lane_segments.values():
        for bound, mark in (
            (lane.left_lane_boundary, lane.left_mark_type),
            (lane.right_lane_boundary, lane.right_mark_type),
        ):
            if str(getattr(mark, 'value', mark)) == 'NONE':
                continue
            xyz = np.asarray(bound.xyz, dtype=np.float64)
            # Neighbouring lanes share a boundary (possibly in opposite directions): keep one copy.
            key = np.round(xyz[:, :2], 2)
            k1, k2 = key.tobytes(), key[::-1].copy().tobytes()
            if k1 in seen or k2 in seen:
                continue
            seen.add(k1)
            painted.append(LineString(xyz))
    dividers = _as_lines(linemerge(painted)) if painted else []

    areas = [
        shapely.Polygon(np.asarray(a.xyz, dtype=np.float64))
        for a in avm.vector_drivable_areas.values()
    ]
    boundaries: list[np.ndarray] = []
    if areas:
        union = unary_union([a.buffer(0) if not a.is_valid else a for a in areas])
        for poly in getattr(union, 'geoms', [union]):
            if poly.geom_type != 'Polygon':
                continue
            boundaries += [_fill_z(np.asarray(r.coords)) for r in (poly.exterior, *poly.interiors)]

    crossings = [
        np.asarray(pc.polygon, dtype=np.float64) for pc in avm.vector_pedestrian_crossings.values()
    ]
    return {'ped_crossing': crossings, 'divider': dividers, 'boundary': boundaries}


def _as_lines(geom: Any) -> list[np.ndarray]:
    parts = getattr(geom, 'geoms', [geom])
    return [
        _fill_z(np.asarray(p.coords))
        for p in parts
        if p.geom_type == 'LineString' and len(p.coords) >= 2
    ]


def _fill_z(coords: np.ndarray) -> np.ndarray:
    """(N, 3) with missing z (2-D results or NaN from overlays) filled from the neighbours."""
    if coords.shape[1] == 2:
        return np.concatenate([coords, np.zeros((len(coords), 1))], axis=1)
    z = coords[:, 2]
    bad = ~np.isfinite(z)
    if bad.any():
        good = np.flatnonzero(~bad)
        coords = coords.copy()
        coords[bad, 2] = np.interp(np.flatnonzero(bad), good, z[good]) if len(good) else 0.0
    return coords


def clip_to_roi(lines_ego: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Parts of (N, 3) ego-frame polylines inside the ROI, pieces of one line merged where they touch."""
    out = []
    for xyz in lines_ego:
        inter = LineString(xyz).intersection(_ROI_BOX)
        if inter.is_empty:
            continue
        pieces = [g for g in getattr(inter, 'geoms', [inter]) if g.geom_type == 'LineString']
        if not pieces:
            continue
        merged = linemerge(MultiLineString(pieces)) if len(pieces) > 1 else pieces[0]
        out += [p for p in _as_lines(merged) if LineString(p[:, :2]).length > 1e-3]
    return out


def camera_calibration(log_dir: Path) -> dict[str, dict[str, Any]]:
    """Per ring camera: 3×3 intrinsic, 4×4 ego→camera extrinsic and the image size (w, h)."""
    _, _, read_ego_SE3_sensor, read_feather = _require_av2()
    intr = read_feather(log_dir / 'calibration' / 'intrinsics.feather').set_index('sensor_name')
    ego_se3_sensor = read_ego_SE3_sensor(log_dir)
    out = {}
    for cam in CAMERAS:
        if cam not in intr.index or cam not in ego_se3_sensor:
            raise HDMapInputError(f'{log_dir}/calibration: camera {cam!r} missing')
        row = intr.loc[cam]
        k = np.array(
            [[row.fx_px, 0, row.cx_px], [0, row.fy_px, row.cy_px], [0, 0, 1]], dtype=np.float64
        )
        out[cam] = {
            'intrinsic': k,
            'extrinsic': ego_se3_sensor[cam].inverse().transform_matrix,
            'size': (int(row.width_px), int(row.height_px)),
        }
    return out


def visibility(points_ego: np.ndarray, calib: dict[str, dict[str, Any]]) -> np.ndarray:
    """1.0 where a point projects inside at least one camera image (depth > 0), else 0.0."""
    vis = np.zeros(len(points_ego), dtype=bool)
    hom = np.concatenate([points_ego[:, :3], np.ones((len(points_ego), 1))], axis=1)
    for info in calib.values():
        cam = hom @ info['extrinsic'].T
        depth = cam[:, 2]
        uv = cam[:, :3] @ info['intrinsic'].T
        with np.errstate(divide='ignore', invalid='ignore'):
            u, v = uv[:, 0] / depth, uv[:, 1] / depth
        w, h = info['size']
        vis |= (depth > 0.1) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    return vis.astype(np.float64)


def _frame_timestamps(
    log_dir: Path, pose_ts: np.ndarray, interval_s: float
) -> tuple[np.ndarray, bool]:
    cam_dir = log_dir / 'sensors' / 'cameras' / CAMERAS[0]
    images = sorted(int(p.stem) for p in cam_dir.glob('*.jpg')) if cam_dir.is_dir() else []
    ts = np.array(images if images else pose_ts, dtype=np.int64)
    keep, last = [], None
    for t in ts:
        if last is None or t - last >= interval_s * 1e9 - 1e6:
            keep.append(t)
            last = t
    return np.array(keep, dtype=np.int64), bool(images)


def _nearest(sorted_ts: np.ndarray, t: int) -> int:
    i = (
        int(np.clip(np.searchsorted(sorted_ts, t), 1, len(sorted_ts) - 1))
        if len(sorted_ts) > 1
        else 0
    )
    if len(sorted_ts) > 1 and abs(sorted_ts[i - 1] - t) <= abs(sorted_ts[i] - t):
        i -= 1
    return int(sorted_ts[i])


def convert_log(
    log_dir: str | os.PathLike, interval_s: float = 0.5, max_frames: int | None = None
) -> list[dict[str, Any]]:
    """Annotation frames (challenge format) of one AV2 sensor log.

    Args:
        log_dir: The log folder (contains map/, calibration/, city_SE3_egovehicle.feather).
        interval_s: Seconds between frames.
        max_frames: Keep at most this many frames (from the start).
    """
    log_dir = Path(log_dir)
    if not interval_s > 0:
        raise HDMapInputError(f'convert: --interval must be > 0 seconds, got {interval_s}')
    if max_frames is not None and max_frames < 1:
        raise HDMapInputError(f'convert: --max-frames must be >= 1, got {max_frames}')
    _, read_city_SE3_ego, _, _ = _require_av2()
    if not (log_dir / 'city_SE3_egovehicle.feather').is_file():
        raise MissingPathError(
            f'{log_dir}: no city_SE3_egovehicle.feather (expected an AV2 sensor log)'
        )
    log_id = log_dir.name
    elements = city_map_elements(log_dir)
    calib = camera_calibration(log_dir)
    poses = read_city_SE3_ego(log_dir)
    pose_ts = np.array(sorted(poses), dtype=np.int64)
    frame_ts, has_images = _frame_timestamps(log_dir, pose_ts, interval_s)
    if max_frames is not None:
        frame_ts = frame_ts[:max_frames]
    cam_ts = {}
    for cam in CAMERAS:
        d = log_dir / 'sensors' / 'cameras' / cam
        cam_ts[cam] = (
            np.array(sorted(int(p.stem) for p in d.glob('*.jpg')), dtype=np.int64)
            if has_images
            else None
        )
    centroids = {
        c: np.array([e[:, :2].mean(0) for e in v]).reshape(-1, 2) for c, v in elements.items()
    }
    radii = {c: np.array([np.ptp(e[:, :2], 0).max() / 2 for e in v]) for c, v in elements.items()}

    frames = []
    for t in frame_ts:
        pose = poses[_nearest(pose_ts, int(t))]
        rot, trans = np.asarray(pose.rotation), np.asarray(pose.translation)
        annotation = {}
        for c in CLASSES:
            near = np.linalg.norm(centroids[c] - trans[:2], axis=1) <= _NEAR_M + radii[c]
            ego = [(e - trans) @ rot for e, n in zip(elements[c], near) if n]  # Rᵀ(p − t), row form
            lines = clip_to_roi(ego)
            annotation[c] = [
                np.concatenate([ln, visibility(ln, calib)[:, None]], axis=1).round(4).tolist()
                for ln in lines
            ]
        sensor = {}
        for cam in CAMERAS:
            ts_cam = _nearest(cam_ts[cam], int(t)) if has_images and len(cam_ts[cam]) else int(t)
            sensor[cam] = {
                'image_path': f'{log_id}/sensors/cameras/{cam}/{ts_cam}.jpg',
                'intrinsic': calib[cam]['intrinsic'].tolist(),
                'extrinsic': calib[cam]['extrinsic'].tolist(),
            }
        frames.append(
            {
                'segment_id': log_id,
                'timestamp': str(int(t)),
                'sensor': sensor,
                'annotation': annotation,
                'pose': {
                    'ego2global_translation': trans.tolist(),
                    'ego2global_rotation': rot.tolist(),
                },
            }
        )
    return frames


def find_logs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Log folders among `paths`: each path is a log, or a folder whose sub-folders are logs."""
    logs = []
    for p in map(Path, paths):
        if (p / 'map').is_dir():
            logs.append(p)
        elif p.is_dir():
            found = sorted(c for c in p.iterdir() if (c / 'map').is_dir())
            if not found:
                raise MissingPathError(
                    f'{p}: neither an AV2 log (no map/ folder) nor a folder of logs'
                )
            logs += found
        else:
            raise MissingPathError(f'{p}: no such folder')
    return logs


def convert_logs(
    paths: Sequence[str | os.PathLike], interval_s: float = 0.5, max_frames: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`{log_id: frames}` for every log found in `paths` (see `find_logs`)."""
    logs = find_logs(paths)
    return {
        log.name: convert_log(log, interval_s, max_frames)
        for log in track(logs, 'converting AV2 logs', total=len(logs), unit='log')
    }
