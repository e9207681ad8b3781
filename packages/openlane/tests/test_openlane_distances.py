"""Batched lane/box distances against the naive per-pair reference and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interndrive.openlane.metric import reference as ref
from interndrive.openlane.metric.distances import (
    chamfer_batched,
    frechet_batched,
    iou_distance_matrix,
    lane_distance_matrices,
    pad_lanes,
)


def _line(x0: float, x1: float, y: float, n: int) -> np.ndarray:
    return np.stack([np.linspace(x0, x1, n), np.full(n, y), np.zeros(n)], 1)


def _batched(fn, gts, preds):
    g, gl = pad_lanes(gts)
    p, pl = pad_lanes(preds)
    return fn(g, gl, p, pl)


def test_frechet_hand_cases():
    a = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    b = np.array([[0.0, 1, 0], [2, 1, 0]])
    # Any coupling must pair a's middle point with an end of b: √2.
    assert ref.frechet_naive(a, b) == pytest.approx(math.sqrt(2))
    forward, backward = _line(0, 10, 0, 11), _line(10, 0, 0, 11)
    got = _batched(frechet_batched, [a, forward, forward], [b, _line(0, 10, 1, 11), backward])
    # Parallel lanes 1 m apart: 1; the same lane walked backwards: its full length (direction counts).
    np.testing.assert_allclose(got, [math.sqrt(2), 1.0, 10.0], atol=1e-12)


def test_chamfer_hand_cases():
    forward = _line(0, 10, 0, 11)
    preds = [_line(0, 10, 1, 11), _line(10, 0, 0, 11), _line(10, 0, 0, 21)]
    got = _batched(chamfer_batched, [forward] * 3, preds)
    # Chamfer ignores direction: the reversed copy is at 0. A reversed copy with points every
    # 0.5 m: 10 of its 21 points are 0.5 m from the nearest GT point, every GT point is on it.
    np.testing.assert_allclose(got, [1.0, 0.0, (10 * 0.5 / 21 + 0) / 2], atol=1e-12)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_batched_match_naive_on_random_lanes(dtype):
    rng = np.random.default_rng(0)
    gts = [(rng.normal(size=(rng.integers(1, 9), 3)) * 3).astype(dtype) for _ in range(40)]
    preds = [(rng.normal(size=(rng.integers(1, 9), 3)) * 3).astype(dtype) for _ in range(40)]
    np.testing.assert_array_equal(
        _batched(frechet_batched, gts, preds),
        [ref.frechet_naive(p, g) for g, p in zip(gts, preds)],
    )
    np.testing.assert_allclose(
        _batched(chamfer_batched, gts, preds),
        [ref.chamfer_naive(g, p) for g, p in zip(gts, preds)],
        rtol=1e-14,
    )


def test_iou_distance_hand_and_naive():
    gt = [np.array([[0.0, 0], [2, 2]]), np.array([[10.0, 10], [11, 12]])]
    pred = [np.array([[1.0, 1], [3, 3]]), np.array([[0.0, 0], [2, 2]])]
    got = iou_distance_matrix(gt, pred)
    np.testing.assert_allclose(got[0], [1 - 1 / 7, 0.0])
    np.testing.assert_allclose(got[1], [1.0, 1.0])
    np.testing.assert_array_equal(got, ref.te_distance_matrix(gt, pred))
    assert iou_distance_matrix([], pred).shape == (0, 2)


@pytest.mark.parametrize('version', ['1.0', '1.1'])
def test_lane_matrices_match_naive(version):
    rng = np.random.default_rng(1)
    frames_g, frames_p = [], []
    for n_g, n_p in [(5, 7), (0, 3), (4, 0), (6, 6)]:
        base = [
            _line(rng.uniform(-60, 40), rng.uniform(-60, 60), rng.uniform(-20, 20), 11)
            for _ in range(n_g)
        ]
        if base:
            base[0][-1] = base[0][0]  # a closed GT lane: v1.1 drops its last point for Fréchet
        frames_g.append([b.astype(np.float32) for b in base])
        preds = [(b + rng.normal(0, 0.8, size=(1, 3))).astype(np.float32) for b in base[:n_p]]
        preds += [
            _line(-30, 30, rng.uniform(-20, 20), 7).astype(np.float32)
            for _ in range(n_p - len(preds))
        ]
        frames_p.append(preds)
    got = lane_distance_matrices(frames_g, frames_p, version)
    for g, p, m in zip(frames_g, frames_p, got):
        np.testing.assert_array_equal(m, ref.lane_distance_matrix(g, p, version))
    assert any((m < 1024).any() and (m == 1024).any() for m in got)  # both branches exercised


def test_relaxation_doubles_the_tolerance_far_away():
    far = _line(200, 210, 0, 11)  # closest point 200 m → factor max(0.5, 1 - 1.0) = 0.5
    pred = far + np.array([0.0, 4.0, 0.0])
    (m,) = lane_distance_matrices([[far]], [[pred]], '1.0')
    assert m[0, 0] == pytest.approx(2.0)  # 4 m Fréchet × 0.5; relaxed Chamfer 2 < 3 passes
