"""Random but road-like map elements in the ego ROI, for the synthetic dataset, tests and benchmarks.

A frame is a few roads (one along the driving direction, sometimes a crossing one); dividers are lane
lines parallel to a road's centreline (cut into pieces like dashes and intersections cut them),
boundaries are the road edges, pedestrian crossings are closed rectangles across a road. Everything is
clipped to the 60 × 30 m ROI and carries (x, y, z, visibility) like the challenge annotations.
"""

from __future__ import annotations

import itertools

import numpy as np
from shapely.geometry import LineString, box

from .constants import CLASSES, ROI_SIZE

_ROI = box(-ROI_SIZE[0] / 2, -ROI_SIZE[1] / 2, ROI_SIZE[0] / 2, ROI_SIZE[1] / 2)


def _curve(
    rng: np.random.Generator, origin: np.ndarray, heading: float, length: float
) -> np.ndarray:
    """A smooth curve (constant curvature) starting at `origin`, vertices every ~2 m."""
    n = max(2, int(length / 2.0) + 1)
    s = np.linspace(0.0, length, n)
    kappa = rng.uniform(-0.01, 0.01)
    theta = heading + kappa * s
    step = np.diff(s, prepend=0.0)
    xy = origin + np.cumsum(np.stack([np.cos(theta) * step, np.sin(theta) * step], 1), axis=0)
    return xy


def _offset(xy: np.ndarray, dist: float) -> np.ndarray:
    """The curve shifted sideways by `dist` metres (left positive)."""
    tangent = np.gradient(xy, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-12
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    return xy + dist * normal


def _clip(xy: np.ndarray) -> list[np.ndarray]:
    """Parts of a polyline inside the ROI (each with >= 2 vertices)."""
    inter = LineString(xy).intersection(_ROI)
    parts = getattr(inter, 'geoms', [inter])
    return [
        np.asarray(p.coords)[:, :2] for p in parts if p.geom_type == 'LineString' and p.length > 0.5
    ]


def _pieces(rng: np.random.Generator, xy: np.ndarray, n_pieces: int) -> list[np.ndarray]:
    """Cuts a polyline into n pieces with small gaps (dashes, intersections)."""
    line = LineString(xy)
    if n_pieces <= 1:
        return [xy]
    cuts = np.sort(rng.uniform(0.1, 0.9, n_pieces - 1)) * line.length
    edges = np.r_[0.0, cuts, line.length]
    out = []
    for a, b in itertools.pairwise(edges):
        a, b = a + 0.5, b - 0.5
        if b - a < 1.0:
            continue
        s = np.linspace(a, b, max(2, int((b - a) / 2.0) + 1))
        out.append(np.array([line.interpolate(d).coords[0] for d in s]))
    return out


def _with_z_vis(rng: np.random.Generator, xy: np.ndarray) -> np.ndarray:
    z = -0.05 + 0.02 * rng.standard_normal(len(xy))
    vis = (rng.random(len(xy)) > 0.1).astype(np.float64)
    return np.concatenate([xy, z[:, None], vis[:, None]], axis=1)


def random_map(
    rng: np.random.Generator, counts: dict[str, int] | None = None
) -> dict[str, list[np.ndarray]]:
    """One frame's map elements in the ego frame.

    Args:
        rng: Random generator.
        counts: Exact number of polylines per class (dense synthetic layouts, for benchmarks); None
            draws a coherent street scene (`_street_scene`).

    Returns:
        class name -> list of (N, 4) float64 polylines (x, y, z, visibility).
    """
    if counts is None:
        return _street_scene(rng)
    want = counts
    roads = [(np.array([-40.0, rng.uniform(-4, 4)]), rng.uniform(-0.15, 0.15), 80.0)]
    if rng.random() < 0.5:
        roads.append(
            (np.array([rng.uniform(-20, 20), -25.0]), np.pi / 2 + rng.uniform(-0.2, 0.2), 50.0)
        )
    out: dict[str, list[np.ndarray]] = {c: [] for c in CLASSES}
    for _ in range(200):  # keeps adding roads' elements until every class has enough
        if all(len(out[c]) >= want[c] for c in CLASSES):
            break
        origin, heading, length = roads[int(rng.integers(len(roads)))]
        centre = _curve(rng, origin, heading, length)
        n_lanes = int(rng.integers(2, 5))
        half = n_lanes * 3.5 / 2 + rng.uniform(-0.3, 0.3)
        for k in range(1, n_lanes):
            for piece in _pieces(rng, _offset(centre, -half + 3.5 * k), int(rng.integers(1, 4))):
                out['divider'] += _clip(piece)
        for side in (-1, 1):
            out['boundary'] += _clip(_offset(centre, side * (half + rng.uniform(0.3, 1.0))))
        for _ in range(int(rng.integers(1, 3))):
            at = int(rng.integers(1, len(centre) - 1))
            width = rng.uniform(3.0, 5.0)
            a, b = _offset(centre[at : at + 2], -half), _offset(centre[at : at + 2], half)
            direction = (centre[at + 1] - centre[at]) / np.linalg.norm(centre[at + 1] - centre[at])
            ring = np.array([a[0], b[0], b[0] + width * direction, a[0] + width * direction, a[0]])
            out['ped_crossing'] += _clip(ring)
        roads.append((np.array([-40.0, rng.uniform(-12, 12)]), rng.uniform(-0.1, 0.1), 80.0))
    result = {}
    for c in CLASSES:
        lines = out[c]
        while len(lines) < want[c]:  # rare: fill with short random curves
            origin = rng.uniform([-28, -13], [28, 13])
            lines += _clip(_curve(rng, origin, rng.uniform(-np.pi, np.pi), rng.uniform(3, 20)))
        picked = rng.permutation(len(lines))[: want[c]]
        result[c] = [_with_z_vis(rng, lines[i]) for i in sorted(picked)]
    return result


def _street_scene(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """A main road along the driving direction (2-4 lanes), sometimes an intersection with a crossing
    road; lane lines stop at the intersection, crossings lie at its edges (or mid-block)."""
    heading = rng.uniform(-0.08, 0.08)
    centre = _curve(rng, np.array([-40.0, rng.uniform(-3.0, 3.0)]), heading, 80.0)
    n_lanes = int(rng.integers(2, 5))
    half = n_lanes * 3.5 / 2
    inter_x = rng.uniform(-15, 20) if rng.random() < 0.5 else None
    out: dict[str, list[np.ndarray]] = {c: [] for c in CLASSES}

    def cut(xy: np.ndarray, gap_half: float) -> list[np.ndarray]:
        if inter_x is None:
            return [xy]
        keep_a, keep_b = xy[:, 0] < inter_x - gap_half, xy[:, 0] > inter_x + gap_half
        return [xy[k] for k in (keep_a, keep_b) if k.sum() >= 2]

    cross_half = 0.0
    if inter_x is not None:
        cross_lanes = int(rng.integers(2, 4))
        cross_half = cross_lanes * 3.5 / 2
        cross = _curve(rng, np.array([inter_x, -25.0]), np.pi / 2 + rng.uniform(-0.1, 0.1), 50.0)
        for k in range(1, cross_lanes):
            for piece in _cut_y(_offset(cross, -cross_half + 3.5 * k), centre, half + 1.5):
                out['divider'] += _clip(piece)
        for side in (-1, 1):
            for piece in _cut_y(_offset(cross, side * (cross_half + 0.5)), centre, half + 0.5):
                out['boundary'] += _clip(piece)
    for k in range(1, n_lanes):
        for piece in cut(_offset(centre, -half + 3.5 * k), cross_half + 5.0):
            out['divider'] += _clip(piece)
    for side in (-1, 1):
        for piece in cut(_offset(centre, side * (half + 0.5)), cross_half + 0.5):
            out['boundary'] += _clip(piece)
    spots = [inter_x - cross_half - 4.5, inter_x + cross_half + 0.5] if inter_x is not None else []
    if rng.random() < 0.4:
        spots.append(rng.uniform(-25, 25))
    for x0 in spots:
        a = _offset(centre, -half)[np.argmin(np.abs(centre[:, 0] - x0))]
        b = _offset(centre, half)[np.argmin(np.abs(centre[:, 0] - x0))]
        step = np.array([4.0, 0.0])
        out['ped_crossing'] += _clip(np.array([a, b, b + step, a + step, a]))
    return {c: [_with_z_vis(rng, line) for line in out[c]] for c in CLASSES}


def _cut_y(xy: np.ndarray, centre: np.ndarray, gap_half: float) -> list[np.ndarray]:
    """Pieces of a crossing-road line outside the main road's band (|y − centre y| > gap_half)."""
    y_main = np.interp(xy[:, 0], centre[:, 0], centre[:, 1])
    below, above = xy[:, 1] < y_main - gap_half, xy[:, 1] > y_main + gap_half
    return [xy[k] for k in (below, above) if k.sum() >= 2]


def noisy_predictions(
    rng: np.random.Generator,
    gt: dict[str, list[np.ndarray]],
    num_preds: int | dict[str, int],
    recall: float = 0.8,
    noise: float = 0.4,
) -> dict[str, list]:
    """Detector-like predictions for one frame: perturbed copies of GT lines plus false positives.

    Args:
        rng: Random generator.
        gt: Output of `random_map`.
        num_preds: Number of predictions per class (int for all classes, or per class name).
        recall: Probability that a GT line gets a (noisy) prediction.
        noise: Scale in metres of the position noise of true detections.

    Returns:
        The challenge's frame prediction: {'vectors': [(N, 2) lists], 'scores': [...], 'labels': [...]}.
    """
    vectors, scores, labels = [], [], []
    for label, cat in enumerate(CLASSES):
        n = num_preds if isinstance(num_preds, int) else num_preds[cat]
        made = 0
        for line in gt[cat]:
            if made >= n:
                break
            if rng.random() > recall:
                continue
            geom = LineString(line[:, :2])
            k = int(rng.integers(5, 30))
            s = np.linspace(rng.uniform(0, 0.1), rng.uniform(0.9, 1.0), k) * geom.length
            pts = np.array([geom.interpolate(d).coords[0] for d in s])
            sigma = noise * rng.uniform(0.2, 2.0)
            pts += rng.normal(0, sigma * 0.3, size=pts.shape) + rng.normal(0, sigma, size=2)
            vectors.append(pts)
            scores.append(
                float(np.clip(0.9 - 0.3 * sigma + 0.1 * rng.standard_normal(), 0.01, 1.0))
            )
            labels.append(label)
            made += 1
        while made < n:
            origin = rng.uniform([-28, -13], [28, 13])
            pts = _curve(rng, origin, rng.uniform(-np.pi, np.pi), rng.uniform(3, 30))
            vectors.append(pts[:: max(1, len(pts) // 20)] if len(pts) > 2 else pts)
            scores.append(float(rng.uniform(0.0, 0.6)))
            labels.append(label)
            made += 1
    return {
        'vectors': [np.round(v, 4).tolist() for v in vectors],
        'scores': scores,
        'labels': labels,
    }
