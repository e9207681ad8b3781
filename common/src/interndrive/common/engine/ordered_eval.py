"""Evaluation that gathers per-sample results back into dataset order across ranks.

mmengine's `collect_results` interleaves the ranks' result lists (`zip(*parts)`), which is right only
for its round-robin DefaultSampler with equal shares. With `SceneContiguousSampler` each rank holds a
contiguous, possibly uneven range of the dataset, so the results are placed by the index ranges the
sampler reports (`partition_of(rank)`). This requires metrics to append exactly one entry to
`self.results` per sample in `process` (mmdet/mmdet3d metrics do); otherwise a clear error says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.dist import broadcast_object_list, gather_object, get_dist_info, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.evaluator.metric import _to_cpu

from .checks import ConfigError


def place_in_dataset_order(
    parts: Sequence[Sequence[object]], partitions: Sequence[Sequence[int]], size: int, metric: str
) -> list[object]:
    """Merges per-rank result lists into one list in dataset order.

    Args:
        parts: `parts[r]` = rank r's results, in the order it processed its samples.
        partitions: `partitions[r]` = the dataset indices rank r processed, in the same order.
        size: Dataset length.
        metric: Metric name for error messages.
    """
    ordered: list[object] = [None] * size
    filled = [False] * size
    for rank, (part, indices) in enumerate(zip(parts, partitions)):
        if len(part) != len(indices):
            raise ConfigError(
                f'metric {metric}: rank {rank} produced {len(part)} results for {len(indices)} '
                'samples; ordered evaluation needs process() to append one result per sample'
            )
        for result, index in zip(part, indices):
            ordered[index] = result
            filled[index] = True
    if not all(filled):
        missing = filled.count(False)
        raise ConfigError(f'metric {metric}: {missing} of {size} samples have no result')
    return ordered


def evaluate_in_dataset_order(evaluator: Evaluator, sampler, size: int) -> dict:
    """Like `Evaluator.evaluate(size)`, placing results by `sampler.partition_of(rank)`."""
    _, world_size = get_dist_info()
    partitions = [list(sampler.partition_of(r)) for r in range(world_size)]
    metrics: dict = {}
    for metric in evaluator.metrics:
        name = type(metric).__name__
        parts = gather_object(list(metric.results), dst=0)
        if is_main_process():
            results = _to_cpu(place_in_dataset_order(parts, partitions, size, name))
            computed = metric.compute_metrics(results)
            if metric.prefix:
                computed = {f'{metric.prefix}/{k}': v for k, v in computed.items()}
            payload = [computed]
        else:
            payload = [None]
        broadcast_object_list(payload)
        metric.results.clear()
        for key in payload[0]:
            if key in metrics:
                raise ValueError(
                    f'There are multiple evaluation results with the same metric name {key}'
                )
        metrics.update(payload[0])
    return metrics
