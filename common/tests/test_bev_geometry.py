"""BEV geometry: reference points, camera projection, rotation and ego-motion shift.

Every fast function is checked against a naive float64 reference written out point by point.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip('mmcv.ops', reason='the BEV layers need mmcv 2.1 built with ops')

from interndrive.common.bev.geometry import (
    bev_reference_points_2d,
    bev_reference_points_3d,
    ego_motion_bev_shift,
    ego_pixel_center,
    project_to_cameras,
    rotate_bev,
)
from interndrive.common.bev.img_metas import (
    can_bus_from_metas,
    image_size_from_metas,
    lidar2img_from_metas,
)

NUSCENES_FRAME = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data' / 'nuscenes-frame'


def pinhole(fx: float, cx: float, cy: float) -> np.ndarray:
    k = np.eye(4)
    k[0, 0] = k[1, 1] = fx
    k[0, 2], k[1, 2] = cx, cy
    return k


def camera_looking_along(yaw: float) -> np.ndarray:
    """ego(x fwd, y left, z up) -> camera(x right, y down, z forward) for a camera yawed by `yaw`."""
    c, s = math.cos(yaw), math.sin(yaw)
    forward = np.array([c, s, 0.0])
    right = np.array([s, -c, 0.0])
    down = np.array([0.0, 0.0, -1.0])
    mat = np.eye(4)
    mat[:3, :3] = np.stack([right, down, forward])
    return mat


def test_reference_points_2d_are_normalised_cell_centres() -> None:
    ref = bev_reference_points_2d(3, 4, batch_size=2)
    assert ref.shape == (2, 12, 1, 2)
    for i in range(3):
        for j in range(4):
            assert ref[1, i * 4 + j, 0].tolist() == pytest.approx([(j + 0.5) / 4, (i + 0.5) / 3])


@pytest.mark.parametrize(
    ('z_range', 'num_points', 'expected'),
    [
        ((-2.3, 1.7), 4, [-1.8, -0.8, 0.2, 1.2]),  # OpenLane-V2 (REFERENCE §5.2)
        ((-1.0, 5.4), 8, [-0.5 + k * 5.4 / 7 for k in range(8)]),  # occupancy (§3.3)
    ],
)
def test_pillar_anchor_heights_match_upstream(z_range, num_points, expected) -> None:
    ref = bev_reference_points_3d(
        2, 3, z_range[1] - z_range[0], num_points, batch_size=1, dtype=torch.float64
    )
    assert ref.shape == (1, num_points, 6, 3)
    metric_z = ref[0, :, 0, 2] * (z_range[1] - z_range[0]) + z_range[0]
    assert metric_z.tolist() == pytest.approx(expected, abs=1e-9)
    # x, y are the same cell centres for every anchor.
    assert torch.equal(ref[0, 0, :, :2], ref[0, -1, :, :2])


def naive_projection(points_m: np.ndarray, lidar2img: np.ndarray, hw: np.ndarray):
    """Loops over cameras and points in float64: (u/w, v/h) and the in-image-and-in-front mask."""
    num_cams = lidar2img.shape[0]
    uv = np.zeros((num_cams, len(points_m), 2))
    mask = np.zeros((num_cams, len(points_m)), dtype=bool)
    for n in range(num_cams):
        for q, p in enumerate(points_m):
            x, y, d, _ = lidar2img[n] @ np.append(p, 1.0)
            u, v = x / max(d, 1e-5) / hw[n, 1], y / max(d, 1e-5) / hw[n, 0]
            uv[n, q] = u, v
            mask[n, q] = d > 1e-5 and 0 < u < 1 and 0 < v < 1
    return uv, mask


def test_projection_matches_naive_loop_with_ego2lidar_and_per_camera_sizes() -> None:
    pc_range = [-10.0, -8.0, -2.0, 10.0, 8.0, 3.0]
    ego2lidar = np.eye(4)
    ego2lidar[:3, 3] = [-0.9, 0.1, -1.8]  # lidar mounted 1.8 m up, slightly forward
    lidar2cam = [
        camera_looking_along(y) @ np.linalg.inv(ego2lidar) for y in (0.0, math.pi / 2, math.pi)
    ]
    sizes = [(90, 160, 3), (100, 200, 3), (64, 64, 3)]
    lidar2img = np.stack(
        [pinhole(80.0, w / 2, h / 2) @ l2c for l2c, (h, w, _) in zip(lidar2cam, sizes)]
    )
    metas = [dict(lidar2img=lidar2img, ego2lidar=ego2lidar, img_shape=sizes)]

    mats = lidar2img_from_metas(metas, num_cams=3)
    hw = image_size_from_metas(metas, num_cams=3, key='img_shape')
    ref = bev_reference_points_3d(5, 6, 5.0, 3, batch_size=1)
    uv, mask = project_to_cameras(ref, pc_range, mats, hw)
    assert uv.shape == (3, 1, 30, 3, 2)
    assert mask.shape == (3, 1, 30, 3) and mask.dtype == torch.bool

    lo, hi = np.array(pc_range[:3]), np.array(pc_range[3:])
    points = ref[0].double().numpy().reshape(-1, 3) * (hi - lo) + lo  # (D*Q, 3), anchor-major
    ref_uv, ref_mask = naive_projection(points, lidar2img @ ego2lidar, np.array(sizes)[:, :2])
    got_uv = uv[:, 0].permute(0, 2, 1, 3).reshape(3, -1, 2).double().numpy()
    got_mask = mask[:, 0].permute(0, 2, 1).reshape(3, -1).numpy()
    np.testing.assert_array_equal(got_mask, ref_mask)
    np.testing.assert_allclose(got_uv[ref_mask], ref_uv[ref_mask], rtol=1e-5, atol=1e-6)
    # Each camera sees something, and the backward camera sees only cells behind the ego.
    assert ref_mask.any(1).all()
    assert (points[ref_mask[2]][:, 0] < 0).all()


def test_points_behind_the_camera_are_masked() -> None:
    lidar2img = torch.as_tensor(
        pinhole(50.0, 32, 32) @ camera_looking_along(0.0), dtype=torch.float32
    )
    ref = bev_reference_points_3d(4, 4, 4.0, 2, batch_size=1)
    # Whole grid behind the camera (x in [-20, -10]); a naive division would fold it into the image.
    _, mask = project_to_cameras(
        ref, [-20, -5, -2, -10, 5, 2], lidar2img[None, None], torch.tensor([[[64.0, 64.0]]])
    )
    assert not mask.any()


def naive_rotate(
    img: np.ndarray, angle_deg: float, center: tuple[float, float], bilinear: bool
) -> np.ndarray:
    """torchvision `rotate` semantics, one output pixel at a time in float64."""
    _, h, w = img.shape
    a = math.radians(angle_deg)
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            x, y = j + 0.5 - center[0], i + 0.5 - center[1]
            sx = math.cos(a) * x - math.sin(a) * y + center[0] - 0.5
            sy = math.sin(a) * x + math.cos(a) * y + center[1] - 0.5
            if not bilinear:
                jj, ii = round(sx), round(sy)
                if 0 <= ii < h and 0 <= jj < w:
                    out[:, i, j] = img[:, ii, jj]
                continue
            j0, i0 = math.floor(sx), math.floor(sy)
            for di in (0, 1):
                for dj in (0, 1):
                    ii, jj = i0 + di, j0 + dj
                    wgt = (1 - abs(sy - ii)) * (1 - abs(sx - jj))
                    if 0 <= ii < h and 0 <= jj < w:
                        out[:, i, j] += wgt * img[:, ii, jj]
    return out


def test_rotate_by_zero_is_identity_and_by_90_degrees_is_rot90() -> None:
    img = torch.randn(2, 3, 6, 6)
    for mode in ('nearest', 'bilinear'):
        torch.testing.assert_close(rotate_bev(img, torch.zeros(2), mode=mode), img)
        # Counter-clockwise in grid axes: out[i, j] = in[j, W - 1 - i].
        rotated = rotate_bev(img, torch.full((2,), 90.0), mode=mode)
        torch.testing.assert_close(rotated, torch.rot90(img, 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotate_matches_naive_reference_per_sample_and_off_centre() -> None:
    torch.manual_seed(0)
    img = torch.randn(2, 2, 7, 9, dtype=torch.float64)
    angles = torch.tensor([23.0, -131.0])
    center = (3.0, 4.5)
    out = rotate_bev(img.float(), angles, center=center, mode='bilinear')
    for b in range(2):
        expected = naive_rotate(img[b].numpy(), float(angles[b]), center, bilinear=True)
        np.testing.assert_allclose(out[b].numpy(), expected, atol=1e-5)
    nearest = rotate_bev(img.float(), angles, center=center, mode='nearest')
    expected = naive_rotate(img[0].numpy(), 23.0, center, bilinear=False)
    np.testing.assert_allclose(nearest[0].numpy(), expected, atol=1e-6)


def test_rotate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        rotate_bev(torch.zeros(3, 4, 4), torch.zeros(3))
    with pytest.raises(ValueError, match='one angle per sample'):
        rotate_bev(torch.zeros(2, 1, 4, 4), torch.zeros(3))


@pytest.mark.parametrize('yaw', [0.0, 0.7, -2.5])
def test_ego_shift_points_along_the_motion_in_grid_axes(yaw: float) -> None:
    pc_range = [-40.0, -20.0, -1.0, 40.0, 20.0, 5.0]
    d = 3.0
    forward = torch.tensor([[d * math.cos(yaw), d * math.sin(yaw)]])
    left = torch.tensor([[-d * math.sin(yaw), d * math.cos(yaw)]])
    yaw_t = torch.tensor([yaw])
    fl = ego_motion_bev_shift(forward, yaw_t, pc_range, 'forward_left')
    torch.testing.assert_close(fl, torch.tensor([[d / 80, 0.0]], dtype=torch.float64))
    fl = ego_motion_bev_shift(left, yaw_t, pc_range, 'forward_left')
    torch.testing.assert_close(fl, torch.tensor([[0.0, d / 40]], dtype=torch.float64))
    rf = ego_motion_bev_shift(forward, yaw_t, pc_range, 'right_forward')
    torch.testing.assert_close(rf, torch.tensor([[0.0, d / 40]], dtype=torch.float64))
    rf = ego_motion_bev_shift(left, yaw_t, pc_range, 'right_forward')
    torch.testing.assert_close(rf, torch.tensor([[-d / 80, 0.0]], dtype=torch.float64))


def test_right_forward_shift_equals_upstream_formula() -> None:
    """REFERENCE §3.3: bev_angle = yaw - atan2(dy, dx); shift = L (sin, cos)(bev_angle) / extent."""
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(5, 2)) * 4
    yaw = rng.uniform(-math.pi, math.pi, size=5)
    length = np.hypot(delta[:, 0], delta[:, 1])
    bev_angle = yaw - np.arctan2(delta[:, 1], delta[:, 0])
    pc_range = [-51.2, -25.6, -2.3, 51.2, 25.6, 1.7]
    upstream = np.stack([length * np.sin(bev_angle) / 102.4, length * np.cos(bev_angle) / 51.2], -1)
    ours = ego_motion_bev_shift(
        torch.from_numpy(delta), torch.from_numpy(yaw), pc_range, 'right_forward'
    )
    np.testing.assert_allclose(ours.numpy(), upstream, atol=1e-12)
    with pytest.raises(ValueError, match='bev_axes'):
        ego_motion_bev_shift(torch.from_numpy(delta), torch.from_numpy(yaw), pc_range, 'lidar')


def test_ego_pixel_centre() -> None:
    assert ego_pixel_center(200, 200, [-40, -40, -1, 40, 40, 5.4]) == (100.0, 100.0)
    assert ego_pixel_center(100, 200, [-51.2, -25.6, -2.3, 51.2, 25.6, 1.7]) == (100.0, 50.0)
    assert ego_pixel_center(10, 10, [0, -5, -1, 10, 5, 1]) == (0.0, 5.0)


def test_metadata_errors_name_the_sample_key_and_expected_shape() -> None:
    good = dict(
        lidar2img=np.tile(np.eye(4), (2, 1, 1)), img_shape=(32, 64, 3), can_bus=np.zeros(18)
    )
    with pytest.raises(
        ValueError,
        match=r"img_metas\[1\]\['lidar2img'\] must have shape \(2, 4, 4\), got \(3, 4, 4\)",
    ):
        lidar2img_from_metas(
            [good, dict(good, lidar2img=np.tile(np.eye(4), (3, 1, 1)))], num_cams=2
        )
    with pytest.raises(ValueError, match=r"img_metas\[0\]\['ego2lidar'\] must have shape \(4, 4\)"):
        lidar2img_from_metas([dict(good, ego2lidar=np.eye(3))], num_cams=2)
    with pytest.raises(KeyError, match=r"img_metas\[0\] has no 'can_bus'"):
        can_bus_from_metas([{k: v for k, v in good.items() if k != 'can_bus'}])
    with pytest.raises(ValueError, match=r"img_metas\[0\]\['can_bus'\] must have 18 values, got 9"):
        can_bus_from_metas([dict(good, can_bus=np.zeros(9))])
    with pytest.raises(
        ValueError,
        match=r"img_metas\[0\]\['img_shape'\] must be \(h, w\[, c\]\) or one such entry per camera \(2\)",
    ):
        image_size_from_metas([dict(good, img_shape=[(1, 2, 3)] * 3)], num_cams=2, key='img_shape')
    with pytest.raises(ValueError, match='image_size_key must be one of'):
        image_size_from_metas([good], num_cams=2, key='ori_shape')
    with pytest.raises(TypeError, match='one dict per sample'):
        can_bus_from_metas(good)


def test_image_size_falls_back_to_img_shape_without_padding() -> None:
    meta = dict(img_shape=[(900, 1600, 3), (900, 1600, 3)])
    torch.testing.assert_close(
        image_size_from_metas([meta], 2), torch.tensor([[[900.0, 1600.0]] * 2])
    )
    padded = dict(meta, pad_shape=(928, 1600))
    torch.testing.assert_close(
        image_size_from_metas([padded], 2), torch.tensor([[[928.0, 1600.0]] * 2])
    )
    torch.testing.assert_close(
        image_size_from_metas([padded], 2, key='img_shape'), torch.tensor([[[900.0, 1600.0]] * 2])
    )


@pytest.mark.realdata
def test_real_nuscenes_cameras_cover_the_occupancy_grid() -> None:
    """Occ3D grid (±40 m, 8 anchors in [-1, 5.4] m) through the 6 real nuScenes calibrations."""
    infos = sorted(NUSCENES_FRAME.glob('*.pkl')) if NUSCENES_FRAME.is_dir() else []
    if not infos:
        pytest.skip(
            f'real sample data not found at {NUSCENES_FRAME.resolve()} (../shared/data is optional)'
        )
    with infos[0].open('rb') as f:
        frame = pickle.load(f)['data_list'][0]
    cams = [
        'CAM_FRONT',
        'CAM_FRONT_RIGHT',
        'CAM_FRONT_LEFT',
        'CAM_BACK',
        'CAM_BACK_LEFT',
        'CAM_BACK_RIGHT',
    ]
    lidar2img, ego2img = [], []
    for name in cams:
        cam = frame['images'][name]
        k = np.eye(4)
        k[:3, :3] = np.asarray(cam['cam2img'])
        lidar2img.append(k @ np.asarray(cam['lidar2cam']))
        ego2img.append(k @ np.linalg.inv(np.asarray(cam['cam2ego'])))
    ego2lidar = np.linalg.inv(np.asarray(frame['lidar_points']['lidar2ego']))
    pc_range = [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
    size = (900, 1600, 3)
    via_lidar = [dict(lidar2img=np.stack(lidar2img), ego2lidar=ego2lidar, img_shape=size)]
    direct = [dict(lidar2img=np.stack(ego2img), img_shape=size)]
    ref = bev_reference_points_3d(50, 50, 6.4, 8, batch_size=1)
    _, mask_a = project_to_cameras(
        ref, pc_range, lidar2img_from_metas(via_lidar, 6), image_size_from_metas(via_lidar, 6)
    )
    _, mask_b = project_to_cameras(
        ref, pc_range, lidar2img_from_metas(direct, 6), image_size_from_metas(direct, 6)
    )
    # The two routes agree except near image borders: nuScenes' lidar2cam also contains the ego
    # motion between the lidar and camera timestamps (up to 0.3 m here).
    assert (mask_a != mask_b).float().mean() < 1e-2
    seen = mask_a.any(-1)[:, 0]  # (6, Q)
    # 360° rig: every pillar of the grid is seen by at least one camera, and neighbours overlap.
    assert seen.any(0).float().mean() > 0.99
    assert (seen.sum(0) >= 2).any()
    # The front camera sees pillars ahead (grid +x = ego forward), the back camera behind.
    x_cells = ref[0, 0, :, 0] * 80 - 40
    assert (x_cells[seen[0]] > 0).all() and (x_cells[seen[3]] < 0).all()
