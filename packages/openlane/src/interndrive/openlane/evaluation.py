"""Offline scoring of a submission file against a ground-truth collection (no model, no torch)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .constants import METRIC_VERSIONS
from .formats import load_collection
from .metric.ols import METRIC_KEYS, evaluate_frames
from .submission import load_submission, validate_submission

# Published seed numbers (OLV2/README.md, subset_A val, metric v1.0).
REFERENCE_METRICS: dict[str, dict[str, float]] = {
    'InternImage-S (internimage-s.py)': {
        'OLS': 0.325, 'DET_l': 0.194, 'DET_t': 0.537, 'TOP_ll': 0.02, 'TOP_lt': 0.17, 'F-Score': 0.224,
    },
    'ResNet-50 (baseline_large.py)': {
        'OLS': 0.292, 'DET_l': 0.183, 'DET_t': 0.457, 'TOP_ll': 0.022, 'TOP_lt': 0.143, 'F-Score': 0.215,
    },
}  # fmt: skip


class MetricVersionError(ValueError):
    """An unknown metric version."""


def normalize_version(version: Any) -> str:
    """'1.0' / '1.1' from '1.0', 'v1.1', 1.1 (a float from `--option version=1.1`), ..."""
    text = str(version).strip().lower().removeprefix('v')
    if text in ('1', '1.0', '0.1', '0.1.0', '1.0.0', '2.0'):
        return '1.0'
    if text in ('1.1', '1.1.0', '2.1', '2.1.0'):
        return '1.1'
    raise MetricVersionError(
        f'metric version must be one of {METRIC_VERSIONS} (v1.0 = seed numbers), got {version!r}'
    )


def evaluate_submission(
    submission: str | Path | Mapping[str, Any],
    ground_truth: str | Path | Mapping[Any, Any],
    version: Any = '1.0',
) -> dict[str, float]:
    """Scores a submission (path or dict) against a collection (path or dict).

    Args:
        submission: Submission pickle path or dict in the official format.
        ground_truth: Collection pickle (`data_dict_subset_A_val.pkl`) or its dict.
        version: Metric version '1.0' (challenge, seed numbers; default) or '1.1'.

    Raises:
        SubmissionError: the submission is malformed or does not cover exactly the GT frames.
    """
    version = normalize_version(version)
    gt = load_collection(ground_truth) if not isinstance(ground_truth, Mapping) else ground_truth
    sub = load_submission(submission) if not isinstance(submission, Mapping) else submission
    validate_submission(sub, gt.keys()).raise_if_invalid(
        str(submission) if not isinstance(submission, Mapping) else 'submission'
    )
    gts = {token: frame['annotation'] for token, frame in gt.items()}
    warn_if_dense_ground_truth(
        gts, str(ground_truth) if not isinstance(ground_truth, Mapping) else 'ground truth'
    )
    preds = {token: sub['results'][token]['predictions'] for token in gts}
    return with_version(evaluate_frames(gts, preds, version), version)


# The official val/test GT keeps every 20th of the 201 annotated points (`convert` default).
OFFICIAL_EVAL_LANE_POINTS = 11


def warn_if_dense_ground_truth(gts: Mapping[Any, Mapping[str, Any]], source: str) -> int:
    """Warns when GT lanes have more points than the official val/test GT (built with
    `point_interval=20`): the discrete Fréchet distance then penalises even perfect 11-point
    predictions, so the scores are lower and not comparable. Returns the largest point count."""
    import warnings

    densest = max(
        (len(lane['points']) for ann in gts.values() for lane in ann['lane_centerline']),
        default=0,
    )
    if densest > OFFICIAL_EVAL_LANE_POINTS:
        warnings.warn(
            f'{source}: ground-truth lanes have up to {densest} points; the official val/test '
            f'ground truth keeps {OFFICIAL_EVAL_LANE_POINTS} (`interndrive openlane convert` with '
            'the default point interval 20 for val/test). Scores against denser ground truth are '
            'lower and not comparable to published numbers.',
            stacklevel=2,
        )
    return densest


def with_version(metrics: Mapping[str, float], version: str) -> dict[str, float]:
    """Adds `metric_version` (1.0 or 1.1) so tables and JSON say which TOP definition scored them:
    v1.0 and v1.1 TOP numbers are not comparable."""
    return {**metrics, 'metric_version': float(version)}


def format_metrics(metrics: Mapping[str, float], name: str = 'this run') -> str:
    """The seed README's table (OLS, DET_l, DET_t, TOP_ll, TOP_lt, F-Score) with the seed rows."""
    header = '| Method | ' + ' | '.join(METRIC_KEYS) + ' |'
    lines = [header, '|---' * (len(METRIC_KEYS) + 1) + '|']
    row = [f'{metrics[k]:.3f}' if k in metrics else '-' for k in METRIC_KEYS]
    version = f', v{metrics["metric_version"]:.1f}' if 'metric_version' in metrics else ''
    if version and not name.endswith(version):
        name += version
    lines.append(f'| {name} | ' + ' | '.join(row) + ' |')
    for ref_name, ref in REFERENCE_METRICS.items():
        lines.append(
            f'| seed {ref_name}, v1.0 | ' + ' | '.join(f'{ref[k]:.3f}' for k in METRIC_KEYS) + ' |'
        )
    return '\n'.join(lines)
