"""Training/evaluation loops registered into mmengine's LOOPS registry.

- `ResumableEpochBasedTrainLoop`: mmengine's EpochBasedTrainLoop restarts a resumed epoch from its
  first batch while keeping the iteration counter, so a run killed mid-epoch trains some batches twice
  and others never. This loop continues the epoch after the last trained batch (asking a
  `ResumableTrainSampler` to skip, or discarding batches for other samplers) and reseeds the global
  RNGs per iteration (`seeding.py`), which together make a resumed run bit-identical to an
  uninterrupted one.
- `ResumableIterBasedTrainLoop`: mmengine's IterBasedTrainLoop already replays the dataloader up to
  the resumed iteration; this adds the same per-iteration reseeding.
- `SceneOrderedValLoop` / `SceneOrderedTestLoop`: when the dataloader uses `SceneContiguousSampler`,
  results are gathered into dataset order by the ranks' index ranges (`ordered_eval.py`); with any
  other sampler they behave like mmengine's ValLoop/TestLoop. Both draw a progress bar.
"""

from __future__ import annotations

import logging

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop
from mmengine.runner.loops import _parse_losses
from torch.utils.data import BatchSampler

from .ordered_eval import evaluate_in_dataset_order
from .progress import progress_bar, track
from .seeding import seed_everything, step_seed


def _innermost_sampler(dataloader):
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    inner = getattr(batch_sampler, 'sampler', None)
    return inner if inner is not None else getattr(dataloader, 'sampler', None)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """EpochBasedTrainLoop that resumes mid-epoch exactly where the checkpoint was taken.

    Args:
        reseed_every_iter: Reseed Python/NumPy/torch RNGs from (runner seed, iteration, rank) before
            each batch is fetched. Needed for exact resume of models with dropout/DropPath.
        *args, **kwargs: As mmengine's EpochBasedTrainLoop (`dataloader`, `max_epochs`, ...).
    """

    def __init__(self, *args, reseed_every_iter: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reseed_every_iter = reseed_every_iter

    def _reseed(self) -> None:
        if self.reseed_every_iter and self.runner.seed is not None:
            rank, _ = get_dist_info()
            seed_everything(step_seed(self.runner.seed, self._iter, rank))

    def _resume_position(self) -> int:
        """Number of batches of the current epoch that were trained before the checkpoint."""
        per_epoch = len(self.dataloader)
        done = self._iter - self._epoch * per_epoch
        if done < 0 or done > per_epoch:
            print_log(
                f'Resumed iteration {self._iter} does not fall into epoch {self._epoch} with '
                f'{per_epoch} iterations per epoch (different batch size or GPU count?); '
                'restarting the epoch from its first batch.',
                logger='current',
                level=logging.WARNING,
            )
            return 0
        return done

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        start = self._resume_position()
        discard = 0
        if start:
            sampler = _innermost_sampler(self.dataloader)
            batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
            # Skipping samples equals skipping batches only for torch's plain BatchSampler; grouping
            # batch samplers (aspect ratio) reorder samples, so for them replay and discard.
            if hasattr(sampler, 'skip') and type(batch_sampler) is BatchSampler:
                sampler.skip(start * batch_sampler.batch_size)
            else:
                discard = start  # correct but loads the skipped data
            print_log(f'Continuing epoch {self._epoch + 1} after batch {start}', logger='current')
        batches = iter(self.dataloader)
        for _ in range(discard):
            next(batches)
        idx = start
        bar = progress_bar(
            len(self.dataloader), f'epoch {self._epoch + 1}/{self._max_epochs}', initial=start
        )
        try:
            while True:
                # Seed before fetching: main-process augmentation then depends only on the iteration.
                self._reseed()
                try:
                    data_batch = next(batches)
                except StopIteration:
                    break
                self.run_iter(idx, data_batch)
                idx += 1
                bar.update(1)
        finally:
            bar.close()
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


class _ReseedingIterator:
    """Reseeds the global RNGs from the loop's iteration before every batch is fetched."""

    def __init__(self, inner, reseed) -> None:
        self.inner = inner
        self.reseed = reseed

    def __iter__(self):
        return self

    def __next__(self):
        self.reseed()
        return next(self.inner)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """IterBasedTrainLoop with per-iteration reseeding, for exact resume of random models.

    Args:
        reseed_every_iter: As for ResumableEpochBasedTrainLoop.
        *args, **kwargs: As mmengine's IterBasedTrainLoop (`dataloader`, `max_iters`, ...).
    """

    def __init__(self, *args, reseed_every_iter: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reseed_every_iter = reseed_every_iter
        # While mmengine replays the trained batches after a resume, _iter stays at the resumed
        # value; the reseed before the first real batch is the one that matters.
        self.dataloader_iterator = _ReseedingIterator(self.dataloader_iterator, self._reseed)

    def _reseed(self) -> None:
        if self.reseed_every_iter and self.runner.seed is not None:
            rank, _ = get_dist_info()
            seed_everything(step_seed(self.runner.seed, self._iter, rank))


def _run_eval(loop, stage: str) -> dict:
    hook = stage  # 'val' or 'test'
    loop.runner.call_hook(f'before_{hook}')
    loop.runner.call_hook(f'before_{hook}_epoch')
    loop.runner.model.eval()
    if isinstance(getattr(loop, f'{stage}_loss', None), dict):
        getattr(loop, f'{stage}_loss').clear()
    for idx, data_batch in enumerate(track(loop.dataloader, description=stage, unit='batch')):
        loop.run_iter(idx, data_batch)
    sampler = _innermost_sampler(loop.dataloader)
    size = len(loop.dataloader.dataset)
    if hasattr(sampler, 'partition_of'):
        metrics = evaluate_in_dataset_order(loop.evaluator, sampler, size)
    else:
        metrics = loop.evaluator.evaluate(size)
    losses = getattr(loop, f'{stage}_loss', None)  # run_iter rebinds it, so read it afterwards
    if losses:
        metrics.update(_parse_losses(losses, stage))
    loop.runner.call_hook(f'after_{hook}_epoch', metrics=metrics)
    loop.runner.call_hook(f'after_{hook}')
    return metrics


@LOOPS.register_module()
class SceneOrderedValLoop(ValLoop):
    """ValLoop with dataset-ordered result gathering for SceneContiguousSampler and a progress bar."""

    @torch.no_grad()
    def run(self) -> dict:
        return _run_eval(self, 'val')


@LOOPS.register_module()
class SceneOrderedTestLoop(TestLoop):
    """TestLoop with dataset-ordered result gathering for SceneContiguousSampler and a progress bar."""

    @torch.no_grad()
    def run(self) -> dict:
        return _run_eval(self, 'test')
