"""Per-frame PNG of occupancy: six camera images, top-down class maps and height maps of GT / prediction.

Matplotlib with the Agg backend only (no display, no Open3D/Mayavi). Top-down maps look down on the
ego car with x (forward) pointing up and y (left) pointing left; each column shows the class of its
highest non-free voxel, and the height map shows that voxel's height.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from interndrive.occupancy.constants import (
    CLASS_NAMES,
    CLASS_PALETTE,
    FREE_LABEL,
    NUM_SEMANTIC_CLASSES,
    POINT_CLOUD_RANGE,
    VOXEL_SIZE,
)
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.io_utils import atomic_write_bytes

# Panel order of the camera grid: front row left→right, back row left→right (as seen from above).
CAMERA_GRID = (
    ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT'),
    ('CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT'),
)
UNOBSERVED_RGB = (40, 40, 40)
EMPTY_RGB = (255, 255, 255)


def top_down(
    semantics: np.ndarray, visible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(class map, height map in m) of the highest non-free voxel per (x, y) column.

    Args:
        semantics: (X, Y, Z) class ids.
        visible: Optional (X, Y, Z) mask; voxels outside it are ignored. Columns without any visible
            voxel get class 255 and height NaN.

    Returns:
        Two (X, Y) arrays: uint8 classes (FREE_LABEL where a column is empty) and float heights (NaN where
        empty), both still indexed [x, y].
    """
    occupied = semantics != FREE_LABEL
    if visible is not None:
        occupied &= visible.astype(bool)
    depth = semantics.shape[2]
    has_any = occupied.any(axis=2)
    top_index = depth - 1 - np.argmax(occupied[:, :, ::-1], axis=2)
    classes = np.take_along_axis(semantics, top_index[..., None], axis=2)[..., 0].copy()
    classes[~has_any] = FREE_LABEL
    heights = POINT_CLOUD_RANGE[2] + (top_index + 0.5) * VOXEL_SIZE[2]
    heights = np.where(has_any, heights, np.nan)
    if visible is not None:
        unobserved = ~visible.astype(bool).any(axis=2)
        classes[unobserved] = 255
    return classes, heights


def _to_display(array: np.ndarray) -> np.ndarray:
    """[x, y] → image rows/cols with x up and y to the left."""
    return array[::-1, ::-1]


def colorize(classes: np.ndarray) -> np.ndarray:
    """(X, Y) class map → (X, Y, 3) uint8 RGB (free = white, 255 = dark grey)."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(CLASS_PALETTE)] = CLASS_PALETTE
    lut[FREE_LABEL] = EMPTY_RGB
    lut[255] = UNOBSERVED_RGB
    return lut[classes]


def load_camera_images(paths: Mapping[str, str | os.PathLike[str]]) -> dict[str, np.ndarray]:
    """Reads camera images (RGB uint8) keyed by camera name; raises naming a missing file."""
    from PIL import Image

    images = {}
    for name, path in paths.items():
        if not Path(path).is_file():
            raise OccupancyDataError(f'camera image {str(path)!r} ({name}) does not exist')
        with Image.open(path) as image:
            images[name] = np.asarray(image.convert('RGB'))
    return images


def render_frame(
    out_path: str | os.PathLike[str],
    gt: np.ndarray | None = None,
    pred: np.ndarray | None = None,
    images: Mapping[str, np.ndarray] | None = None,
    mask_camera: np.ndarray | None = None,
    title: str = '',
    dpi: int = 80,
    view3d: bool = False,
    max_points_3d: int = 40_000,
) -> Path:
    """Writes one PNG with (optional) camera images, top-down class maps and height maps.

    Args:
        out_path: PNG file to write (atomically).
        gt: (200, 200, 16) ground-truth class ids, or None.
        pred: (200, 200, 16) predicted class ids, or None.
        images: Camera name → (H, W, 3) uint8 RGB image (any subset of the six cameras).
        mask_camera: If given, only camera-visible voxels are drawn (what the metric scores); columns the
            cameras never see are dark grey.
        title: Figure title (e.g. the sample token).
        dpi: Output resolution.
        view3d: Add a 3D view of the occupied voxel centres of each volume (a scatter render).
        max_points_3d: Cap on the voxels drawn per 3D view (evenly thinned beyond it).
    """
    import matplotlib

    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    volumes = [
        (name, volume)
        for name, volume in (('ground truth', gt), ('prediction', pred))
        if volume is not None
    ]
    if not volumes:
        raise OccupancyDataError('render_frame: give at least one of gt or pred')
    for name, volume in volumes:
        if volume.ndim != 3:
            raise OccupancyDataError(
                f'render_frame: {name} must be (X, Y, Z), got shape {volume.shape}'
            )
    camera_rows = 2 if images else 0
    rows = camera_rows + 1 + int(view3d)
    figure = plt.figure(
        figsize=(4 * max(3, len(volumes) * 2) * 0.9, 3.2 * camera_rows + 4.6 * (1 + int(view3d)))
    )
    grid = figure.add_gridspec(
        rows, max(3, 2 * len(volumes)), height_ratios=[1] * camera_rows + [1.7] * (1 + int(view3d))
    )
    if images:
        for row, names in enumerate(CAMERA_GRID):
            for col, name in enumerate(names):
                axis = figure.add_subplot(
                    grid[row, col]
                    if len(volumes) * 2 <= 3
                    else grid[row, col * len(volumes) * 2 // 3]
                )
                axis.set_axis_off()
                if name in images:
                    axis.imshow(images[name])
                axis.set_title(name, fontsize=8)
    extent = (
        POINT_CLOUD_RANGE[4],
        POINT_CLOUD_RANGE[1],
        POINT_CLOUD_RANGE[0],
        POINT_CLOUD_RANGE[3],
    )
    for index, (name, volume) in enumerate(volumes):
        classes, heights = top_down(volume, mask_camera)
        class_axis = figure.add_subplot(grid[camera_rows, 2 * index])
        class_axis.imshow(_to_display(colorize(classes)), extent=extent)
        class_axis.set_title(f'{name}: top-down classes', fontsize=9)
        height_axis = figure.add_subplot(grid[camera_rows, 2 * index + 1])
        shown = height_axis.imshow(
            _to_display(heights),
            extent=extent,
            cmap='viridis',
            vmin=POINT_CLOUD_RANGE[2],
            vmax=POINT_CLOUD_RANGE[5],
        )
        height_axis.set_title(f'{name}: height of top voxel (m)', fontsize=9)
        figure.colorbar(shown, ax=height_axis, fraction=0.046, pad=0.02)
        for axis in (class_axis, height_axis):
            axis.add_patch(
                Rectangle((-1.0, -2.0), 2.0, 4.5, fill=False, color='red', linewidth=1.0)
            )  # ego car
            axis.set_xlabel('y (m, left is +)', fontsize=7)
            axis.set_ylabel('x (m, forward)', fontsize=7)
            axis.tick_params(labelsize=6)
    if view3d:
        width = max(3, 2 * len(volumes)) // len(volumes)
        for index, (name, volume) in enumerate(volumes):
            cells = grid[rows - 1, width * index : width * (index + 1)]
            axis = figure.add_subplot(cells, projection='3d')
            _draw_voxels_3d(axis, volume, mask_camera, max_points_3d)
            axis.set_title(f'{name}: 3D view', fontsize=9)
    handles = [
        Patch(color=np.asarray(CLASS_PALETTE[i]) / 255, label=CLASS_NAMES[i])
        for i in range(NUM_SEMANTIC_CLASSES)
    ]
    if mask_camera is not None:
        handles.append(Patch(color=np.asarray(UNOBSERVED_RGB) / 255, label='not camera-visible'))
    figure.legend(handles=handles, loc='lower center', ncol=9, fontsize=7, frameon=False)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.06, 1, 0.97))
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=dpi)
    plt.close(figure)
    return atomic_write_bytes(out_path, buffer.getvalue())


def _draw_voxels_3d(axis, volume: np.ndarray, visible: np.ndarray | None, max_points: int) -> None:
    """Scatter of the occupied voxel centres, coloured by class, seen from behind-left of the ego."""
    occupied = volume != FREE_LABEL
    if visible is not None:
        occupied &= visible.astype(bool)
    # Only the shell: a voxel whose four side neighbours and the one above are all occupied is hidden.
    padded = np.pad(occupied, 1)
    hidden = (
        padded[2:, 1:-1, 1:-1] & padded[:-2, 1:-1, 1:-1] & padded[1:-1, 2:, 1:-1]
        & padded[1:-1, :-2, 1:-1] & padded[1:-1, 1:-1, 2:]
    )  # fmt: skip
    ix, iy, iz = np.nonzero(occupied & ~hidden)
    step = max(1, int(np.ceil(len(ix) / max_points)))
    ix, iy, iz = ix[::step], iy[::step], iz[::step]
    centres = [
        POINT_CLOUD_RANGE[i] + (index + 0.5) * VOXEL_SIZE[i] for i, index in enumerate((ix, iy, iz))
    ]
    colours = np.asarray(CLASS_PALETTE, np.float32)[volume[ix, iy, iz]] / 255
    axis.scatter(*centres, c=colours, s=2.5, marker='s', linewidths=0, depthshade=False)
    axis.set_xlim(POINT_CLOUD_RANGE[0], POINT_CLOUD_RANGE[3])
    axis.set_ylim(POINT_CLOUD_RANGE[1], POINT_CLOUD_RANGE[4])
    axis.set_zlim(POINT_CLOUD_RANGE[2], POINT_CLOUD_RANGE[5])
    axis.set_box_aspect((80, 80, 6.4 * 2))  # z exaggerated 2x so that objects stand out
    axis.view_init(elev=35, azim=-160)
    axis.tick_params(labelsize=6)
