"""Pure data maths: camera matrices through resize/pad, polyline vectorisation and generator targets."""

from __future__ import annotations

import numpy as np
import pytest

from interndrive.hdmap.data.map_targets import (
    STOP_TOKEN,
    denormalize_points,
    line_bbox,
    map_targets,
    normalize_points,
    vectorize_map,
    vertex_weights,
)
from interndrive.hdmap.data.multiview import ego2img, normalize_views, pad_views, resize_views


def _project(m4: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = m4 @ np.r_[p, 1.0]
    return q[:2] / q[2]


def test_resize_then_pad_keeps_projection_consistent_with_pixels():
    k = np.array([[170.0, 0, 77.5], [0, 170.0, 102.4], [0, 0, 1]])
    ext = np.array([[0, -1, 0, 0], [0, 0, -1, 1.4], [1, 0, 0, -1.5], [0, 0, 0, 1.0]])
    img = np.zeros((205, 155, 3), np.uint8)
    p = np.array([12.0, 1.0, 0.0])
    u, v = _project(ego2img(k, ext), p)
    img[int(v) - 2 : int(v) + 3, int(u) - 2 : int(u) + 3] = 255  # a white blob where the point is
    imgs, mats, scales = resize_views([img], (256, 455), [ego2img(k, ext)])
    sx, sy = scales[0]
    np.testing.assert_allclose(_project(mats[0], p), [u * sx, v * sy])
    padded, mats_pad, hw = pad_views(imgs, 32, mats)
    assert hw == (256, 480) and padded[0].shape == (256, 480, 3)
    np.testing.assert_array_equal(mats_pad[0], mats[0])  # padding moves no pixel
    u2, v2 = _project(mats_pad[0], p)
    assert padded[0][round(v2), round(u2)].min() > 100  # the blob is where K says
    # Upstream's behaviour, behind its flag: x stretched by 480 / 455.
    _, mats_up, _ = pad_views(imgs, 32, mats, upstream_pad_rescale=True)
    np.testing.assert_allclose(_project(mats_up[0], p)[0], u2 * 480 / 455)


def test_normalize_views_bgr_to_rgb():
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    out = normalize_views([img], mean=(0, 0, 0), std=(1, 1, 1))[0]
    assert out.dtype == np.float32 and out[0, 0].tolist() == [0.0, 0.0, 255.0]


def test_normalize_points_round_trip_and_range():
    pts = np.array([[-30.0, -15.0], [30.0, 15.0], [0.0, 0.0]])
    n = normalize_points(pts)
    np.testing.assert_allclose(n, [[0, 0], [60 / 62, 30 / 32], [30 / 62, 15 / 32]])
    np.testing.assert_allclose(denormalize_points(n), pts)


def test_vectorize_simplifies_collinear_points():
    line = np.c_[np.linspace(-10, 10, 41), np.zeros(41), np.zeros(41)]
    out = vectorize_map({1: [line]})
    assert out[1][0].shape == (2, 2)  # collinear vertices removed
    np.testing.assert_allclose(out[1][0], normalize_points(line[[0, -1]]))
    with pytest.raises(ValueError, match='at least 2'):
        vectorize_map({0: [np.zeros((1, 3))]})


def test_bbox_grows_thin_lines_to_min_size():
    box = line_bbox(np.array([[0.2, 0.5], [0.6, 0.5]]), 0.02)
    np.testing.assert_allclose(box, [[0.19, 0.49], [0.61, 0.51]], atol=1e-9)
    big = line_bbox(np.array([[0.2, 0.3], [0.6, 0.5]]), 0.02)
    np.testing.assert_allclose(big, [[0.2, 0.3], [0.6, 0.5]])


def test_map_targets_tokens_boxes_weights():
    vectors = {
        1: [np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 0.5]])],
        2: [np.array([[0.1, 0.2], [0.3, 0.2], [0.9, 0.2]])],
    }
    t = map_targets(vectors, canvas_size=(200, 100), min_bbox_size=4 / 200)
    assert t['det_label'].tolist() == [1, 2]
    # Tokens: x cells (×199), y cells (×99), +1, then the stop token.
    assert t['polylines'][0].tolist() == [1, 1, 100, 50, 200, 50, STOP_TOKEN]
    assert t['qkeypoint'][0].tolist() == [0, 0, 199, 49]
    np.testing.assert_allclose(t['keypoint'][0], [0.1, 0.1, 199.9, 50.0], rtol=1e-6)
    np.testing.assert_allclose(t['polyline_weights'][0], np.full(7, 1 / 7))
    w = t['polyline_weights'][
        1
    ]  # boundary: edges 0.2 and 0.6 -> vertex weights 0.2, 0.4, 0.6 (/1.2)
    np.testing.assert_allclose(w[:-1], np.repeat([0.2, 0.4, 0.6], 2) / 1.2 / 2)
    assert w[-1] == pytest.approx(1 / 6)
    assert map_targets({0: [], 1: []}) is None


def test_vertex_weights_zero_length_line():
    w = vertex_weights(np.zeros((2, 2)), arc_length_weighted=True)
    assert np.all(np.isfinite(w)) and w[-1] == pytest.approx(0.25)
