"""Occ3D-nuScenes label space and voxel grid (facts of the dataset, shared by every module).

Class ids follow the Occ3D-nuScenes release (17 nuScenes-lidarseg classes + `free`), which is also the
column order of the seed README's result table.
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    'others',
    'barrier',
    'bicycle',
    'bus',
    'car',
    'construction_vehicle',
    'motorcycle',
    'pedestrian',
    'traffic_cone',
    'trailer',
    'truck',
    'driveable_surface',
    'other_flat',
    'sidewalk',
    'terrain',
    'manmade',
    'vegetation',
    'free',
)
NUM_CLASSES = len(CLASS_NAMES)  # 18, the size of the confusion matrix
FREE_LABEL = 17  # in the confusion matrix, excluded from the mean IoU
NUM_SEMANTIC_CLASSES = 17  # classes 0..16 are averaged into mIoU
IGNORE_LABEL = 255  # ground-truth voxels with this label are left out (official `gt < num_classes`)

# Voxel grid: semantics[x, y, z], x and y in [-40, 40) m, z in [-1, 5.4) m, 0.4 m cubes.
GRID_SHAPE: tuple[int, int, int] = (200, 200, 16)
POINT_CLOUD_RANGE: tuple[float, ...] = (-40.0, -40.0, -1.0, 40.0, 40.0, 5.4)
VOXEL_SIZE: tuple[float, float, float] = (0.4, 0.4, 0.4)

# The six nuScenes cameras in the order the BEVFormer-Occ infos and pipelines use.
CAMERA_NAMES: tuple[str, ...] = (
    'CAM_FRONT',
    'CAM_FRONT_RIGHT',
    'CAM_FRONT_LEFT',
    'CAM_BACK',
    'CAM_BACK_LEFT',
    'CAM_BACK_RIGHT',
)

# RGB colours for visualisation (nuScenes-lidarseg-like hues; `free` is never drawn).
CLASS_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),  # others
    (255, 120, 50),  # barrier
    (255, 192, 203),  # bicycle
    (255, 255, 0),  # bus
    (0, 150, 245),  # car
    (0, 255, 255),  # construction_vehicle
    (200, 180, 0),  # motorcycle
    (255, 0, 0),  # pedestrian
    (255, 240, 150),  # traffic_cone
    (135, 60, 0),  # trailer
    (160, 32, 240),  # truck
    (255, 0, 255),  # driveable_surface
    (139, 137, 137),  # other_flat
    (75, 0, 75),  # sidewalk
    (150, 240, 80),  # terrain
    (230, 230, 250),  # manmade
    (0, 175, 0),  # vegetation
    (255, 255, 255),  # free
)

# Published val mIoU (%) of the seed models (OCC/README.md), per class in README column order.
_REFERENCE_ROWS: dict[str, tuple[float, ...]] = {
    # mIoU, then classes 0..16
    'bevformer_intern-s_occ': (
        25.11,
        6.93,
        35.57,
        10.40,
        35.97,
        41.23,
        13.72,
        20.30,
        21.10,
        18.34,
        19.18,
        28.64,
        49.82,
        30.74,
        31.00,
        27.44,
        19.29,
        17.29,
    ),
    'bevformer_base_occ': (
        23.67,
        5.03,
        38.79,
        9.98,
        34.41,
        41.09,
        13.24,
        16.50,
        18.15,
        17.83,
        18.66,
        27.70,
        48.95,
        27.73,
        29.08,
        25.38,
        15.41,
        14.46,
    ),
}
REFERENCE_METRICS: dict[str, dict[str, float]] = {
    model: dict(zip(('mIoU', *CLASS_NAMES[:NUM_SEMANTIC_CLASSES]), row, strict=True))
    for model, row in _REFERENCE_ROWS.items()
}
