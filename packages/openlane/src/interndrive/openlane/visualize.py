"""PNG rendering of one OpenLane-V2 frame: front view (lanes + traffic elements) and BEV (lanes +
topology arrows), ground truth and optionally predictions. matplotlib's Agg canvas, no display.

Front view: the portrait `ring_front_center` image (a grey canvas of the right size when the image
file is absent) with GT lanes (green) and predicted lanes (red) projected through the camera
calibration, GT traffic-element boxes (solid) and predicted ones (dashed) coloured by attribute, and
lane→TE links as thin lines from each box to the lane's projected midpoint.
BEV: x forward to the right, y left up; lanes with direction arrows at their ends, lane→lane
topology as arrows from the end of a lane to the start of its successor.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.common.engine.atomic_files import atomic_write

from .constants import BEV_RANGE, FRONT_CAMERA, PORTRAIT_IMAGE_SIZE, TRAFFIC_ELEMENT_ATTRIBUTES

GT_COLOUR = '#1a9e3a'
PRED_COLOUR = '#d62728'


def _attribute_colour(attr: int) -> str:
    import matplotlib

    return matplotlib.colormaps['tab20'](int(attr) % 20)


def project_to_image(points: np.ndarray, calib: Mapping[str, Any]) -> np.ndarray | None:
    """Ego-frame (N, 3) points → pixel (M, 2) of the points in front of the camera (None if < 2)."""
    rot = np.asarray(calib['extrinsic']['rotation'], dtype=np.float64)  # camera → ego
    trans = np.asarray(calib['extrinsic']['translation'], dtype=np.float64)
    k = np.asarray(calib['intrinsic']['K'], dtype=np.float64)
    cam = (np.asarray(points, dtype=np.float64) - trans) @ rot
    cam = cam[cam[:, 2] > 0.5]
    if len(cam) < 2:
        return None
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:3]


def _load_image(frame: Mapping[str, Any], root: str | Path | None) -> np.ndarray | None:
    path = frame['sensor'][FRONT_CAMERA].get('image_path')
    if root is None or not path or not (Path(root) / path).is_file():
        return None
    import cv2

    img = cv2.imread(str(Path(root) / path))
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _kept(pred: Mapping[str, Any] | None, kind: str, threshold: float) -> list[int]:
    if pred is None:
        return []
    return [i for i, x in enumerate(pred[kind]) if float(x['confidence']) >= threshold]


def render_frame(
    frame: Mapping[str, Any],
    out_path: str | Path,
    root: str | Path | None = None,
    prediction: Mapping[str, Any] | None = None,
    score_threshold: float = 0.3,
    title: str | None = None,
) -> Path:
    """Renders one frame to a PNG (written atomically).

    Args:
        frame: Frame info (raw JSON dict or collection entry) with `sensor` and, for GT, `annotation`.
        out_path: PNG path.
        root: Dataset root to load the front image from (`frame['sensor'][cam]['image_path']`).
        prediction: The frame's `predictions` dict of a submission (optional).
        score_threshold: Predicted lanes/boxes below this confidence are not drawn (upstream: 0.3).
        title: Figure title (default: the frame's segment and timestamp).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    calib = frame['sensor'][FRONT_CAMERA]
    ann = frame.get('annotation') or {
        'lane_centerline': [],
        'traffic_element': [],
        'topology_lclc': [],
        'topology_lcte': [],
    }
    image = _load_image(frame, root)
    k = np.asarray(calib['intrinsic']['K'], dtype=np.float64)
    if image is None:
        # Canvas of the calibrated image size (K's principal point is at the image centre).
        width, height = (
            round(2 * k[0, 2]) or PORTRAIT_IMAGE_SIZE[0],
            round(2 * k[1, 2]) or PORTRAIT_IMAGE_SIZE[1],
        )
        image = np.full((height, width, 3), 200, np.uint8)
    height, width = image.shape[:2]

    fig = Figure(figsize=(14, 7.5), dpi=100)
    FigureCanvasAgg(fig)
    ax_pv, ax_bev = fig.subplots(1, 2, gridspec_kw={'width_ratios': [1, 1.6]})
    ax_pv.imshow(image)
    ax_pv.set_xlim(0, width)
    ax_pv.set_ylim(height, 0)
    ax_pv.set_title(f'{FRONT_CAMERA} (GT green, prediction red)', fontsize=9)
    ax_pv.axis('off')

    pred_lanes = _kept(prediction, 'lane_centerline', score_threshold)
    pred_tes = _kept(prediction, 'traffic_element', score_threshold)
    lane_mid_uv: dict[int, np.ndarray] = {}
    for i, lane in enumerate(ann['lane_centerline']):
        uv = project_to_image(lane['points'], calib)
        if uv is not None:
            ax_pv.plot(uv[:, 0], uv[:, 1], color=GT_COLOUR, lw=1.5)
            lane_mid_uv[i] = uv[len(uv) // 2]
    for i in pred_lanes:
        uv = project_to_image(prediction['lane_centerline'][i]['points'], calib)
        if uv is not None:
            ax_pv.plot(uv[:, 0], uv[:, 1], color=PRED_COLOUR, lw=1.0, ls='--')
    for j, te in enumerate(ann['traffic_element']):
        (x1, y1), (x2, y2) = np.asarray(te['points'], dtype=np.float64)
        colour = _attribute_colour(te['attribute'])
        ax_pv.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=2))
        ax_pv.text(
            x1, y1 - 3, TRAFFIC_ELEMENT_ATTRIBUTES[int(te['attribute'])], color=colour, fontsize=7
        )
        lcte = np.asarray(ann['topology_lcte'])
        for i in range(lcte.shape[0] if lcte.ndim == 2 and lcte.shape[1] > j else 0):
            if lcte[i, j] and i in lane_mid_uv:
                ax_pv.plot(
                    [(x1 + x2) / 2, lane_mid_uv[i][0]],
                    [y2, lane_mid_uv[i][1]],
                    color=colour,
                    lw=0.8,
                    alpha=0.7,
                )
    for j in pred_tes:
        te = prediction['traffic_element'][j]
        (x1, y1), (x2, y2) = np.asarray(te['points'], dtype=np.float64)
        ax_pv.add_patch(
            Rectangle(
                (x1, y1),
                x2 - x1,
                y2 - y1,
                fill=False,
                ec=_attribute_colour(te['attribute']),
                lw=1,
                ls='--',
            )
        )

    x_min, y_min, x_max, y_max = BEV_RANGE

    def draw_bev(
        lanes: list[np.ndarray], lclc: np.ndarray, colour: str, ls: str, topo: str
    ) -> None:
        for pts in lanes:
            ax_bev.plot(pts[:, 0], pts[:, 1], color=colour, lw=1.2, ls=ls)
            ax_bev.annotate(
                '', xy=pts[-1, :2], xytext=pts[-2, :2],
                arrowprops={'arrowstyle': '->', 'color': colour, 'lw': 1.2},
            )  # fmt: skip
        for a, b in zip(*np.nonzero(lclc > 0.5)) if lclc.size else []:
            if a < len(lanes) and b < len(lanes) and a != b:
                ax_bev.annotate(
                    '', xy=lanes[b][min(2, len(lanes[b]) - 1), :2], xytext=lanes[a][-1, :2],
                    arrowprops={'arrowstyle': '-|>', 'color': topo, 'lw': 0.8, 'alpha': 0.8,
                                'connectionstyle': 'arc3,rad=0.3'},
                )  # fmt: skip

    gt_lanes = [np.asarray(x['points'], dtype=np.float64) for x in ann['lane_centerline']]
    draw_bev(gt_lanes, np.asarray(ann['topology_lclc'], dtype=np.float64), GT_COLOUR, '-', 'orange')
    if prediction is not None:
        lanes = [
            np.asarray(prediction['lane_centerline'][i]['points'], np.float64) for i in pred_lanes
        ]
        lclc = np.asarray(prediction['topology_lclc'], dtype=np.float64)
        lclc = lclc[np.ix_(pred_lanes, pred_lanes)] if lclc.size else lclc
        draw_bev(lanes, lclc, PRED_COLOUR, '--', 'purple')
    ax_bev.plot([0], [0], marker='^', color='black', ms=8)
    ax_bev.set_xlim(x_min, x_max)
    ax_bev.set_ylim(y_min, y_max)
    ax_bev.set_aspect('equal')
    ax_bev.grid(alpha=0.3)
    ax_bev.set_xlabel('x forward (m)')
    ax_bev.set_ylabel('y left (m)')
    ax_bev.set_title(
        'BEV: lanes, lane→lane topology (GT orange, predicted > 0.5 purple)', fontsize=9
    )
    fig.suptitle(
        title or f'segment {frame.get("segment_id", "?")} @ {frame.get("timestamp", "?")}',
        fontsize=10,
    )
    fig.tight_layout()

    atomic_write(out_path, lambda f: fig.savefig(f, format='png'))
    return Path(out_path)
