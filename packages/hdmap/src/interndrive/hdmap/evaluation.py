"""Offline scoring of a submission file against an annotation file (`interndrive evaluate hdmap`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from .annotations import ground_truth, load_annotations
from .constants import CLASSES, THRESHOLDS
from .metric import chamfer_ap
from .submission import load_submission

# Short column names of the seed README's table.
SHORT_NAMES = {'ped_crossing': 'AP_pc', 'divider': 'AP_div', 'boundary': 'AP_bound'}


def evaluate_files(
    submission: str | os.PathLike,
    ground_truth_file: str | os.PathLike,
    *,
    strict_tokens: bool = False,
    warn: bool = True,
    stream: TextIO | None = None,
) -> dict[str, float]:
    """Chamfer AP of a submission file against an annotation file.

    Args:
        submission: Submission .json (or .pkl) in the challenge format.
        ground_truth_file: Annotation .json `{segment: [frame]}`.
        strict_tokens: Fail when ground-truth frames are missing from the submission (by default they
            are scored as empty, like the challenge does, with a warning).
        warn: Print validation warnings.
        stream: Where to print them (default: the current `sys.stderr`).

    Returns:
        The flat mapping of `metric.chamfer_ap` (fractions in [0, 1]).
    """
    gts = ground_truth(load_annotations(ground_truth_file))
    data, report = load_submission(submission, gts.keys(), strict_tokens=strict_tokens)
    if warn:
        for w in report.warnings:
            print(f'interndrive evaluate hdmap: warning: {w}', file=stream or sys.stderr)
    return chamfer_ap(gts, data['results'])


def format_metrics(metrics: Mapping[str, float]) -> str:
    """Renders metrics as the seed README's table (percent), then per-threshold APs and counts."""
    head = ['mAP'] + [SHORT_NAMES[c] for c in CLASSES]
    values = [metrics['mAP']] + [metrics[f'AP_{c}'] for c in CLASSES]
    rows = [
        '| ' + ' | '.join(head) + ' |',
        '|' + '---|' * len(head),
        '| ' + ' | '.join(f'{100 * v:.2f}' for v in values) + ' |',
        '',
        '| class | num_preds | num_gts | ' + ' | '.join(f'AP@{t}' for t in THRESHOLDS) + ' | AP |',
        '|---|---|---|' + '---|' * (len(THRESHOLDS) + 1),
    ]
    for c in CLASSES:
        per_thr = [metrics.get(f'AP_{c}@{t}', float('nan')) for t in THRESHOLDS]
        rows.append(
            f'| {c} | {int(metrics.get(f"num_preds_{c}", 0))} | {int(metrics.get(f"num_gts_{c}", 0))} | '
            + ' | '.join(f'{100 * v:.2f}' for v in per_thr)
            + f' | {100 * metrics[f"AP_{c}"]:.2f} |'
        )
    return '\n'.join(rows)
