"""mmengine metric for OpenLane-V2: model outputs → submission predictions → OLS (OpenMMLab glue).

Each data sample must carry, besides the dataset metainfo (`token`, `scale_factor`), the head
outputs of one frame (tensors or arrays):

    pred_lc (N, 15) Bézier control points in ego metres, pred_lc_scores (N,),
    pred_te (M, 4) xyxy boxes in network front-image pixels, pred_te_labels (M,), pred_te_scores (M,),
    pred_topology_lclc (N, N), pred_topology_lcte (N, M) scores in [0, 1].

`process` converts them at once to the submission's per-frame `predictions` (11 points per lane,
boxes in original pixels; see `targets.format_predictions`) and appends exactly one entry per
sample. `compute_metrics` scores them against the collection pickle with the vectorised metric, or
with `format_only=True` writes the submission pickle to `submission_path`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmdet3d.registry import METRICS
from mmengine.evaluator import BaseMetric

from interndrive.common.engine.checks import ConfigError, require_file

from .evaluation import (
    MetricVersionError,
    normalize_version,
    warn_if_dense_ground_truth,
    with_version,
)
from .formats import FormatError, load_collection
from .metric.ols import evaluate_frames
from .submission import make_submission, validate_submission, write_submission
from .targets import format_predictions

# Keyword arguments of `submission.make_submission` besides the predictions.
SUBMISSION_META_KEYS = ('method', 'authors', 'email', 'institution', 'country')

PRED_KEYS = (
    'pred_lc',
    'pred_lc_scores',
    'pred_te',
    'pred_te_labels',
    'pred_te_scores',
    'pred_topology_lclc',
    'pred_topology_lcte',
)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@METRICS.register_module()
class OpenLaneV2Metric(BaseMetric):
    """OLS (v1.0 or v1.1) and F-score of a model's predictions.

    Args:
        ann_file: Ground-truth collection pickle (`data_dict_subset_A_val.pkl`).
        version: Metric version '1.0' (seed numbers, default) or '1.1'.
        format_only: Write the submission instead of scoring.
        submission_path: Submission pickle path for `format_only`.
        submission_meta: The challenge's meta fields for the submission, any of `method`,
            `authors` (≤ 10 names), `email`, `institution`, `country` (ISO 3166), e.g.
            `--cfg-options "test_evaluator.submission_meta.authors=['A. Author']"`.
        collect_device, prefix: As mmengine's BaseMetric.
    """

    default_prefix = 'openlane'

    def __init__(
        self,
        ann_file: str,
        version: str = '1.0',
        format_only: bool = False,
        submission_path: str | None = None,
        submission_meta: Mapping[str, Any] | None = None,
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and not submission_path:
            raise ConfigError(
                'OpenLaneV2Metric: format_only=True needs submission_path '
                '(interndrive test ... --format-only --submission PATH)'
            )
        if not format_only:
            # Checked now, not after a whole test epoch (format-only runs need no ground truth).
            require_file(
                ann_file,
                'OpenLaneV2Metric ann_file (ground-truth collection pickle)',
                hint='build it with `interndrive openlane convert`, or set '
                '--cfg-options test_evaluator.ann_file=PATH',
            )
        unknown = sorted(set(submission_meta or {}) - set(SUBMISSION_META_KEYS))
        if unknown:
            raise ConfigError(
                f'OpenLaneV2Metric submission_meta: unknown key(s) {unknown}; '
                f'expected some of {list(SUBMISSION_META_KEYS)}'
            )
        self.submission_meta = dict(submission_meta or {})
        # Bad meta (> 10 authors, a country that is not ISO 3166) fails now, not after inference.
        report = validate_submission(make_submission({}, **self.submission_meta))
        if not report.ok:
            raise ConfigError(f'OpenLaneV2Metric submission_meta: {"; ".join(report.errors)}')
        self.ann_file = ann_file
        try:
            self.version = normalize_version(version)
        except MetricVersionError as err:
            raise ConfigError(f'OpenLaneV2Metric version: {err}') from err
        self.format_only = format_only
        self.submission_path = submission_path

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for sample in data_samples:
            get = (
                sample.get
                if isinstance(sample, dict)
                else (lambda k, s=sample: getattr(s, k, None))
            )
            meta = sample.get('metainfo', sample) if isinstance(sample, dict) else sample.metainfo
            missing = [k for k in PRED_KEYS if get(k) is None]
            if missing:
                raise KeyError(f'OpenLaneV2Metric: data sample {meta.get("token")} lacks {missing}')
            token = tuple(meta['token'])
            pred = format_predictions(
                *(_numpy(get(k)) for k in PRED_KEYS),
                te_scale=tuple(meta.get('scale_factor', (1.0, 1.0))),
            )
            self.results.append({'token': token, 'predictions': pred})

    def compute_metrics(self, results: list) -> dict[str, float]:
        predictions = {tuple(r['token']): r['predictions'] for r in results}
        if self.format_only:
            write_submission(
                self.submission_path, make_submission(predictions, **self.submission_meta)
            )
            return {}
        try:
            collection = load_collection(self.ann_file)
        except FormatError as err:  # e.g. the test split's pickle, which has no annotation
            raise ConfigError(f'OpenLaneV2Metric ann_file: {" ".join(str(err).split())}') from err
        gts = {t: f['annotation'] for t, f in collection.items()}
        warn_if_dense_ground_truth(gts, str(self.ann_file))
        missing = [t for t in gts if t not in predictions]
        if missing:
            raise ConfigError(
                f'OpenLaneV2Metric: {len(missing)} frames of {self.ann_file} were not predicted, '
                f'e.g. {missing[0]} (evaluate on the whole split)'
            )
        scores = evaluate_frames(gts, {t: predictions[t] for t in gts}, self.version)
        return with_version(scores, self.version)
