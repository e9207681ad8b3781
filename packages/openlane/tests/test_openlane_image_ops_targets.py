"""Front-view resize (correct and upstream), photometric distortion, padding, projection, targets."""

from __future__ import annotations

import numpy as np
import pytest

from interndrive.openlane.image_ops import (
    lidar2img,
    normalize,
    pad_views,
    photometric_distortion,
    resize_front_view,
)
from interndrive.openlane.metric.ols import evaluate_frames
from interndrive.openlane.submission import make_submission, validate_submission
from interndrive.openlane.synthetic import camera_calibration, make_collection
from interndrive.openlane.targets import format_predictions, frame_targets
from interndrive.openlane.visualize import project_to_image


def _front(scale=0.125):
    calib = camera_calibration('ring_front_center', scale)
    k = np.asarray(calib['intrinsic']['K'])
    img = np.zeros((round(2048 * scale), round(1550 * scale), 3), np.uint8)
    return img, k, calib


def test_uniform_front_resize_keeps_projection_consistent():
    img, k, calib = _front()
    point = np.array([[20.0, 2.0, 0.0], [30.0, -3.0, 0.5]])
    uv = project_to_image(point, calib)
    box = np.array([[uv[0, 0] - 5, uv[0, 1] - 5, uv[0, 0] + 5, uv[0, 1] + 5]])
    target_h = round(1550 * 0.125)
    out, k2, box2, (sx, sy) = resize_front_view(img, k, box, target_h)
    assert out.shape[0] == target_h and sx == pytest.approx(sy, rel=0.01)  # aspect ratio kept
    calib2 = {**calib, 'intrinsic': {'K': k2}}
    uv2 = project_to_image(point, calib2)
    np.testing.assert_allclose(uv2, uv * [sx, sy], rtol=1e-9)  # projection follows the resize
    np.testing.assert_allclose((box2[0, :2] + box2[0, 2:]) / 2, uv2[0], atol=1e-3)  # box too


def test_upstream_swap_stretches_to_landscape():
    img, k, _ = _front()
    out, _, _, (sx, sy) = resize_front_view(img, k, None, 999, upstream_swap=True)
    assert out.shape[:2] == (img.shape[1], img.shape[0])  # (H, W) swapped: landscape
    assert sx == pytest.approx(2048 / 1550, rel=0.01) and sy == pytest.approx(1550 / 2048, rel=0.01)


def test_photometric_before_normalisation_and_padding():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(20, 30, 3)).astype(np.uint8)
    out = photometric_distortion(img, rng)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert 0 <= out.min() and out.max() <= 255 and not np.allclose(out, img)
    normed = normalize(out)
    assert abs(float(normed.mean())) < 3
    stack, (h, w) = pad_views([np.ones((20, 30, 3)), np.ones((33, 10, 3))], 32)
    assert (h, w) == (64, 32) and stack.shape == (2, 64, 32, 3)
    assert stack[0, 20:].sum() == 0 and stack[1, :33, :10].min() == 1


def test_lidar2img_matches_projection():
    _, _, calib = _front(1.0)
    m = lidar2img(
        calib['intrinsic']['K'], calib['extrinsic']['rotation'], calib['extrinsic']['translation']
    )
    p = np.array([25.0, 1.0, 0.3, 1.0])
    uvw = m @ p
    np.testing.assert_allclose(
        uvw[:2] / uvw[2],
        project_to_image(np.stack([p[:3], p[:3] + np.array([1.0, 0, 0])]), calib)[0],
    )


def test_targets_round_trip_through_a_submission():
    collection = make_collection(2, seed=0, num_roads=2, segments_per_road=2, num_tes=2)
    gts = {t: f['annotation'] for t, f in collection.items()}
    preds = {}
    for token, ann in gts.items():
        t = frame_targets(ann)
        assert t['gt_lc'].shape == (len(ann['lane_centerline']), 15)
        assert t['gt_te_labels'].tolist() == [x['attribute'] for x in ann['traffic_element']]
        np.testing.assert_array_equal(
            t['gt_lc'][:, :3], np.stack([x['points'][0] for x in ann['lane_centerline']])
        )
        preds[token] = format_predictions(
            t['gt_lc'], np.ones(len(t['gt_lc'])), t['gt_te'] * 0.5, t['gt_te_labels'],
            np.ones(len(t['gt_te'])), t['gt_topology_lclc'], t['gt_topology_lcte'], te_scale=(0.5, 0.5),
        )  # fmt: skip
    assert validate_submission(make_submission(preds), gts.keys()).ok
    metrics = evaluate_frames(gts, preds, '1.1')
    # Smooth synthetic lanes are fitted well by 5 control points: detection is perfect.
    assert metrics['DET_l'] == pytest.approx(1.0) and metrics['DET_t'] == pytest.approx(1.0)
    assert metrics['TOP_ll'] == pytest.approx(1.0) and metrics['TOP_lt'] == pytest.approx(1.0)
