"""PNG rendering of map elements: bird's-eye view (GT and predictions by class) and projection onto
the 7 ring-camera images when they exist. matplotlib with the Agg backend (no display needed)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from .annotations import iter_frames, load_annotations
from .constants import CAMERAS, CLASSES, ROI_SIZE
from .errors import HDMapInputError
from .io_utils import write_bytes_atomic
from .metric.vectorized import resample_polylines
from .submission import load_submission

COLORS = {'ped_crossing': '#1f77b4', 'divider': '#ff7f0e', 'boundary': '#2ca02c'}
# Camera panel layout (row, col) of the 3×3 grid: front row, sides, rear.
_LAYOUT = {
    'ring_front_left': (0, 0),
    'ring_front_center': (0, 1),
    'ring_front_right': (0, 2),
    'ring_side_left': (1, 0),
    'ring_side_right': (1, 2),
    'ring_rear_left': (2, 0),
    'ring_rear_right': (2, 2),
}


def _save_atomic(fig: plt.Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=fig.dpi, format='png')
    finally:
        plt.close(fig)
    return write_bytes_atomic(path, buffer.getvalue())


def _pred_lines(
    pred: Mapping[str, Any] | None, score_thr: float
) -> list[tuple[str, np.ndarray, float]]:
    if not pred:
        return []
    out = []
    for vec, score, label in zip(pred['vectors'], pred['scores'], pred['labels']):
        if score >= score_thr and 0 <= int(label) < len(CLASSES):
            out.append((CLASSES[int(label)], np.asarray(vec, dtype=np.float64), float(score)))
    return out


def render_bev(
    gt: Mapping[str, Sequence[Any]] | None,
    pred: Mapping[str, Any] | None,
    out_path: str | os.PathLike,
    *,
    score_thr: float = 0.3,
    title: str = '',
) -> Path:
    """Bird's-eye view PNG: GT solid, predictions dashed (opacity = score), ego box at the origin.

    Args:
        gt: class -> polylines (N, >=2) in the ego frame, or None.
        pred: One frame of a submission ({'vectors', 'scores', 'labels'}), or None.
        out_path: PNG file to write.
        score_thr: Predictions below this score are not drawn.
        title: Figure title.
    """
    half_x, half_y = ROI_SIZE[0] / 2, ROI_SIZE[1] / 2
    fig, ax = plt.subplots(figsize=(10, 5.6), dpi=100)
    for cat in CLASSES:
        for line in (gt or {}).get(cat, []):
            xy = np.asarray(line, dtype=np.float64)[:, :2]
            ax.plot(xy[:, 0], xy[:, 1], '-', color=COLORS[cat], lw=2.5, alpha=0.9)
    for cat, xy, score in _pred_lines(pred, score_thr):
        ax.plot(
            xy[:, 0], xy[:, 1], '--', color=COLORS[cat], lw=1.5, alpha=max(0.25, min(score, 1.0))
        )
        ax.plot(
            xy[[0, -1], 0],
            xy[[0, -1], 1],
            'o',
            color=COLORS[cat],
            ms=3,
            alpha=max(0.25, min(score, 1.0)),
        )
    ax.add_patch(Rectangle((-2.4, -1.0), 4.8, 2.0, color='black', alpha=0.8))
    ax.annotate('', xy=(4.0, 0), xytext=(2.4, 0), arrowprops={'arrowstyle': '->', 'color': 'black'})
    handles = [plt.Line2D([], [], color=COLORS[c], lw=2.5, label=c) for c in CLASSES]
    handles += [
        plt.Line2D([], [], color='gray', lw=2.5, ls='-', label='ground truth'),
        plt.Line2D(
            [], [], color='gray', lw=1.5, ls='--', label=f'prediction (score ≥ {score_thr:g})'
        ),
    ]
    ax.legend(handles=handles, loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_xlim(-half_x, half_x)
    ax.set_ylim(-half_y, half_y)
    ax.set_aspect('equal')
    ax.set_xlabel('x (m, forward)')
    ax.set_ylabel('y (m, left)')
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save_atomic(fig, Path(out_path))


def project_to_image(
    points_ego: np.ndarray, intrinsic: np.ndarray, extrinsic: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Pixel coordinates (N, 2) of ego-frame points, NaN where behind the camera or outside the image."""
    xyz = np.zeros((len(points_ego), 3))
    xyz[:, : min(3, points_ego.shape[1])] = points_ego[:, :3]
    cam = np.concatenate([xyz, np.ones((len(xyz), 1))], axis=1) @ np.asarray(extrinsic).T
    uvw = cam[:, :3] @ np.asarray(intrinsic).T
    with np.errstate(divide='ignore', invalid='ignore'):
        uv = uvw[:, :2] / uvw[:, 2:3]
    w, h = size
    bad = (cam[:, 2] <= 0.1) | (uv[:, 0] < 0) | (uv[:, 0] >= w) | (uv[:, 1] < 0) | (uv[:, 1] >= h)
    uv[bad] = np.nan
    return uv


def _dense(line: np.ndarray) -> np.ndarray:
    """Resampled every 0.3 m so that projected curves bend correctly; z kept (0 if absent)."""
    xy = np.asarray(line, dtype=np.float64)
    pts, _ = resample_polylines([xy[:, :2]])
    if xy.shape[1] >= 3:
        # z interpolated along the resampled arc length.
        seg = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(xy[:, :2], axis=0), axis=1))]
        arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        z = np.interp(arc, seg, xy[:, 2])
        return np.concatenate([pts, z[:, None]], axis=1)
    return pts


def render_cameras(
    frame: Mapping[str, Any],
    image_root: str | os.PathLike,
    pred: Mapping[str, Any] | None,
    out_path: str | os.PathLike,
    *,
    score_thr: float = 0.3,
) -> Path | None:
    """GT (solid) and predictions (dashed, drawn at z = 0) projected onto the 7 camera images.

    Returns None (and writes nothing) when none of the frame's images exist under `image_root`.
    """
    from PIL import Image

    paths = {c: Path(image_root) / frame['sensor'][c]['image_path'] for c in CAMERAS}
    if not any(p.is_file() for p in paths.values()):
        return None
    fig, axes = plt.subplots(3, 3, figsize=(12, 10), dpi=80)
    for ax in axes.ravel():
        ax.axis('off')
    for cam in CAMERAS:
        ax = axes[_LAYOUT[cam]]
        if not paths[cam].is_file():
            ax.set_title(f'{cam} (no image)', fontsize=8)
            continue
        img = np.asarray(Image.open(paths[cam]).convert('RGB'))
        h, w = img.shape[:2]
        ax.imshow(img)
        info = frame['sensor'][cam]
        k, e = np.asarray(info['intrinsic']), np.asarray(info['extrinsic'])
        for cat in CLASSES:
            for line in frame.get('annotation', {}).get(cat, []):
                uv = project_to_image(_dense(np.asarray(line)[:, :3]), k, e, (w, h))
                ax.plot(uv[:, 0], uv[:, 1], '-', color=COLORS[cat], lw=2)
        for cat, xy, _score in _pred_lines(pred, score_thr):
            uv = project_to_image(_dense(xy), k, e, (w, h))
            ax.plot(uv[:, 0], uv[:, 1], '--', color=COLORS[cat], lw=1.5)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_title(cam, fontsize=8)
    fig.suptitle(f'{frame["segment_id"]} / {frame["timestamp"]}', fontsize=9)
    fig.tight_layout()
    return _save_atomic(fig, Path(out_path))


def default_image_root(annotation_file: str | os.PathLike) -> Path:
    """`<dir>/<split>` for `<dir>/<split>_annotations.json` when that folder exists, else `<dir>`."""
    path = Path(annotation_file)
    split = path.stem.removesuffix('_annotations')
    candidate = path.parent / split
    return candidate if split != path.stem and candidate.is_dir() else path.parent


def visualize_files(
    annotation_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    submission: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    tokens: Sequence[str] | None = None,
    segment: str | None = None,
    max_frames: int = 5,
    score_thr: float = 0.3,
) -> list[Path]:
    """Renders BEV (and camera, when images exist) PNGs for frames of an annotation file.

    Args:
        annotation_file: Annotation .json.
        out_dir: Output folder; files are `<token>_bev.png` and `<token>_cameras.png`.
        submission: Optional submission file whose predictions are drawn too.
        image_root: Folder the frames' `image_path`s are relative to (default: `default_image_root`).
        tokens: Only these frames (default: the first `max_frames` frames).
        segment: Only frames of this segment.
        max_frames: Frame limit when `tokens` is not given.
        score_thr: Minimum prediction score drawn.

    Returns:
        The written PNG paths.
    """
    ann = load_annotations(annotation_file, require_map=False)  # test split: predictions only
    frames = [f for f in iter_frames(ann) if segment is None or f['segment_id'] == segment]
    if tokens:
        wanted = set(tokens)
        frames = [f for f in frames if f['timestamp'] in wanted]
        missing = wanted - {f['timestamp'] for f in frames}
        if missing:
            raise HDMapInputError(f'{annotation_file}: no frame with token(s) {sorted(missing)}')
    else:
        frames = frames[:max_frames]
    if not frames:
        raise HDMapInputError(f'{annotation_file}: no frames to draw (segment={segment!r})')
    results = {}
    if submission is not None:
        results = load_submission(submission)[0]['results']
    root = Path(image_root) if image_root is not None else default_image_root(annotation_file)
    out = []
    for frame in frames:
        token = frame['timestamp']
        pred = results.get(token)
        title = f'{frame["segment_id"]} / {token}' + (
            '' if submission is None else ' (dashed: predictions)'
        )
        out.append(
            render_bev(
                frame.get('annotation', {}),
                pred,
                Path(out_dir) / f'{token}_bev.png',
                score_thr=score_thr,
                title=title,
            )
        )
        cams = render_cameras(
            frame, root, pred, Path(out_dir) / f'{token}_cameras.png', score_thr=score_thr
        )
        if cams is not None:
            out.append(cams)
    return out
