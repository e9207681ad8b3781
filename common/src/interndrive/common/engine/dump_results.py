"""`--out results.pkl`: dumps every sample's prediction, in dataset order, atomically."""

from __future__ import annotations

import pickle
from collections.abc import Sequence

from mmengine.evaluator import BaseMetric
from mmengine.evaluator.metric import _to_cpu
from mmengine.registry import METRICS

from .atomic_io import atomic_write_bytes
from .checks import ConfigError


@METRICS.register_module()
class AtomicDumpResults(BaseMetric):
    """Collects the model's outputs (one entry per sample) and pickles them to `out_file_path`.

    Args:
        out_file_path: Destination `.pkl` file.
        collect_device: As mmengine's BaseMetric.
    """

    def __init__(self, out_file_path: str, collect_device: str = 'cpu') -> None:
        super().__init__(collect_device=collect_device, prefix='dump')
        if not str(out_file_path).endswith(('.pkl', '.pickle')):
            raise ConfigError(f'--out {out_file_path!r}: expected a .pkl or .pickle file')
        self.out_file_path = str(out_file_path)

    def process(self, data_batch: object, predictions: Sequence[object]) -> None:
        self.results.extend(_to_cpu(list(predictions)))

    def compute_metrics(self, results: list) -> dict:
        atomic_write_bytes(self.out_file_path, pickle.dumps(results, protocol=4))
        return {}
