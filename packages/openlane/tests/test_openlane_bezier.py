"""End-point-fixed Bézier lane parameterisation."""

from __future__ import annotations

import numpy as np
import pytest

from interndrive.openlane.bezier import bernstein_matrix, fit_bezier_endpoint_fixed, sample_bezier


def test_bernstein_rows_sum_to_one_and_hand_values():
    b = bernstein_matrix(3, 3)  # t = 0, 0.5, 1; quadratic basis (1-t)², 2t(1-t), t²
    np.testing.assert_allclose(b, [[1, 0, 0], [0.25, 0.5, 0.25], [0, 0, 1]])
    np.testing.assert_allclose(bernstein_matrix(11, 5).sum(1), 1.0)


def test_fit_recovers_an_exact_bezier_and_fixes_end_points():
    rng = np.random.default_rng(0)
    ctrl = rng.normal(size=(5, 3)) * 10
    pts = sample_bezier(ctrl, 201)
    fit = fit_bezier_endpoint_fixed(pts + rng.normal(0, 1e-9, pts.shape))
    np.testing.assert_allclose(fit, ctrl, atol=1e-5)
    noisy = pts + rng.normal(0, 0.3, pts.shape)
    fit = fit_bezier_endpoint_fixed(noisy)
    np.testing.assert_array_equal(fit[[0, -1]], noisy[[0, -1]])
    assert np.abs(sample_bezier(fit, 201) - pts).mean() < 0.3


def test_short_lanes_and_errors():
    line = np.array([[0.0, 0, 0], [10, 0, 0]])
    np.testing.assert_allclose(fit_bezier_endpoint_fixed(line)[:, 0], [0, 2.5, 5, 7.5, 10])
    np.testing.assert_allclose(
        sample_bezier(fit_bezier_endpoint_fixed(line), 11)[:, 0], np.linspace(0, 10, 11)
    )
    with pytest.raises(ValueError, match='N >= 2'):
        fit_bezier_endpoint_fixed(np.zeros((1, 3)))
    assert sample_bezier(np.zeros((4, 5, 3)), 11).shape == (4, 11, 3)
