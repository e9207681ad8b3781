"""`HDMapChamferMetric`: mmengine metric over `VectorMapNet` predictions (OpenMMLab adapter).

One result per sample (the ordered distributed evaluation relies on it): the frame's token and its
predictions converted to ego metres. `compute_metrics` writes the challenge submission when asked
(`submission_path`, atomically, validated) and scores it against the annotation file with the
vectorised Chamfer AP (`metric.chamfer_ap`, identical to the challenge's `vector_eval.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmdet3d.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from .annotations import ground_truth, load_annotations
from .constants import ROI_SIZE
from .errors import HDMapInputError
from .metric import chamfer_ap
from .submission import frame_from_normalized, write_submission


def drop_short_lines(frame: dict[str, list]) -> dict[str, list]:
    """Lines with < 2 vertices (a generator that stopped at once) are dropped, as the submission writer
    and the challenge's formatter do, so the scored predictions are the submitted ones."""
    keep = [i for i, v in enumerate(frame['vectors']) if len(v) >= 2]
    return {k: [frame[k][i] for i in keep] for k in ('vectors', 'scores', 'labels')}


@METRICS.register_module()
class HDMapChamferMetric(BaseMetric):
    """Chamfer AP of the Argoverse 2 online HD map challenge.

    Args:
        ann_file: Annotation .json of the evaluated split (ground truth, and the expected tokens).
        roi_size: ROI in metres used to de-normalise the predictions.
        submission_path: Also write the predictions as a challenge submission here.
        format_only: Only write the submission (test split without GT); returns no metrics.
        meta: Overrides of the submission's meta block (method, authors, ...).
        collect_device: mmengine.
        prefix: Metric name prefix (default none: keys are `mAP`, `AP_divider`, ...).
    """

    default_prefix = None

    def __init__(
        self,
        ann_file: str,
        roi_size: Sequence[float] = ROI_SIZE,
        submission_path: str | None = None,
        format_only: bool = False,
        meta: dict | None = None,
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file, self.roi_size = ann_file, tuple(roi_size)
        self.submission_path, self.format_only, self.meta = submission_path, format_only, meta
        if format_only and not submission_path:
            raise HDMapInputError('HDMapChamferMetric: format_only=True needs submission_path')

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for s in data_samples:
            get = s.get if hasattr(s, 'get') else s.__getitem__
            token = s.metainfo['token'] if hasattr(s, 'metainfo') else s['token']
            frame = frame_from_normalized(get('pred_vectors'), get('pred_scores'), get('pred_labels'),
                                          self.roi_size)  # fmt: skip
            self.results.append((str(token), frame))

    def compute_metrics(self, results: list) -> dict[str, float]:
        predictions = dict(results)
        gts = None if self.format_only else ground_truth(load_annotations(self.ann_file))
        if self.submission_path:
            tokens = None if gts is None else list(gts)
            report = write_submission(self.submission_path, predictions, self.meta, tokens)
            for w in report.warnings:
                print_log(f'submission: {w}', logger='current')
            print_log(f'wrote submission {Path(self.submission_path).resolve()}', logger='current')
        if self.format_only:
            return {}
        return chamfer_ap(gts, {t: drop_short_lines(p) for t, p in predictions.items()})
