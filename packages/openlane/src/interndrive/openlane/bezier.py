"""Bézier lane parameterisation of the OpenLane-V2 baseline (pure numpy).

Training targets: each GT centerline is fitted with an n-control-point Bézier curve whose first and
last control points are the lane's end points ("bezier_Endpointfixed", 5 control points → the
15-number regression target). The curve parameter of point i of N is t = i / (N - 1); the inner
control points are the least-squares solution after subtracting the end points' contribution.
Predictions are sampled back to 11 points (t = 0, 0.1, …, 1) for the submission.
"""

from __future__ import annotations

from math import comb

import numpy as np


def bernstein_matrix(num_points: int, num_control: int) -> np.ndarray:
    """(num_points, num_control) Bernstein basis at t = i / (num_points - 1)."""
    t = np.linspace(0.0, 1.0, num_points)[:, None]
    k = np.arange(num_control)[None, :]
    n = num_control - 1
    coeff = np.array([comb(n, i) for i in range(num_control)], dtype=np.float64)[None, :]
    return coeff * t**k * (1 - t) ** (n - k)


def fit_bezier_endpoint_fixed(points: np.ndarray, num_control: int = 5) -> np.ndarray:
    """Control points (num_control, D) of the end-point-fixed least-squares Bézier fit.

    Args:
        points: (N, D) lane points in order (N ≥ 2).
        num_control: Control points including the two fixed end points (upstream: 5).

    Raises:
        ValueError: fewer than 2 points or fewer than 2 control points.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < 2:
        raise ValueError(f'points must have shape (N >= 2, D), got {points.shape}')
    if num_control < 2:
        raise ValueError(f'num_control must be >= 2, got {num_control}')
    ctrl = np.empty((num_control, points.shape[1]))
    ctrl[0], ctrl[-1] = points[0], points[-1]
    if num_control == 2:
        return ctrl
    inner_needed = num_control - 2
    if points.shape[0] - 2 < inner_needed:
        # Too few inner points to determine the curve: put the control points on the polyline
        # (densified), which reproduces a straight or polyline lane.
        dense = _resample_polyline(points, num_control)
        ctrl[1:-1] = dense[1:-1]
        return ctrl
    basis = bernstein_matrix(points.shape[0], num_control)
    rhs = points[1:-1] - basis[1:-1, :1] @ points[:1] - basis[1:-1, -1:] @ points[-1:]
    ctrl[1:-1] = np.linalg.lstsq(basis[1:-1, 1:-1], rhs, rcond=None)[0]
    return ctrl


def _resample_polyline(points: np.ndarray, num: int) -> np.ndarray:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] == 0:
        return np.repeat(points[:1], num, axis=0)
    u = np.linspace(0.0, s[-1], num)
    return np.stack([np.interp(u, s, points[:, d]) for d in range(points.shape[1])], axis=1)


def sample_bezier(control: np.ndarray, num_points: int = 11) -> np.ndarray:
    """(num_points, D) points of the curve(s) at t = i / (num_points - 1); `control` may be
    (C, D) or batched (..., C, D)."""
    control = np.asarray(control)
    basis = bernstein_matrix(num_points, control.shape[-2]).astype(
        np.result_type(control, np.float32)
    )
    return basis @ control
