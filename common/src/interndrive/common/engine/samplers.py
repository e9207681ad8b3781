"""Data samplers: a resumable, seeded train sampler and a scene-contiguous distributed test sampler.

`ResumableTrainSampler`: the order of an epoch is a permutation drawn from a generator seeded with
`seed + epoch` (identical on every rank, independent of the global RNG); rank r takes every
world_size-th index starting at r. `skip(n)` makes the next iteration start after the first n samples of
this rank, which is how `ResumableEpochBasedTrainLoop` continues a killed epoch without loading the
skipped data.

`SceneContiguousSampler`: gives each rank whole scenes (maximal runs of consecutive samples with the
same scene id), contiguous in dataset order and with their frame order kept, balanced by frame count.
A temporal model that carries state from the previous frame of the same scene (BEVFormer's prev_bev)
then sees exactly the same frame sequences on 1 and on N ranks, so predictions and metrics are
identical. BEVFormer's upstream test sampler instead cuts the dataset into equal index ranges and
assumes a fixed GPU count, which splits scenes differently for each rank count.
`partition_of(rank)` tells the evaluation loop which dataset indices a rank produced, so results are
gathered back into dataset order (see `engine/ordered_eval.py`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from .checks import ConfigError


@DATA_SAMPLERS.register_module()
class ResumableTrainSampler(Sampler[int]):
    """Train sampler, deterministic per (seed, epoch), that can resume in the middle of an epoch.

    Args:
        dataset: The dataset (only its length is used).
        shuffle: Draw a new permutation each epoch; otherwise dataset order.
        seed: Base seed; None uses a seed synchronised across ranks (as mmengine's DefaultSampler).
        round_up: Pad the index list by repeating its start so every rank gets the same number of
            samples (DDP needs equal iteration counts). Otherwise ranks get ceil((n - rank) / W)
            samples each, exactly as mmengine's DefaultSampler (which this replaces in train configs).
        rank, world_size: Override the process group's values (for tests and offline planning).
    """

    def __init__(
        self,
        dataset,
        shuffle: bool = True,
        seed: int | None = None,
        round_up: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        group_rank, group_size = get_dist_info()
        rank = group_rank if rank is None else rank
        world_size = group_size if world_size is None else world_size
        self.rank = rank
        self.world_size = world_size
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.round_up = round_up
        self.epoch = 0
        self._skip = 0
        n = len(dataset)
        if round_up:
            self.num_samples = math.ceil(n / world_size)
            self.total_size = self.num_samples * world_size
        else:
            self.num_samples = math.ceil((n - rank) / world_size)
            self.total_size = n

    def epoch_indices(self, epoch: int) -> list[int]:
        """All ranks' indices of `epoch` before splitting by rank (padded or truncated)."""
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + epoch)
            indices = torch.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if self.round_up and self.total_size > n:
            reps = math.ceil(self.total_size / max(n, 1))
            indices = (indices * reps)[: self.total_size]
        return indices[: self.total_size]

    def __iter__(self) -> Iterator[int]:
        mine = self.epoch_indices(self.epoch)[self.rank : self.total_size : self.world_size]
        skip, self._skip = self._skip, 0  # one-shot: only the resumed epoch is shortened
        return iter(mine[skip:])

    def __len__(self) -> int:
        # The full length even while skipping: hooks compare batch_idx with len(dataloader) to
        # detect the end of an epoch, and the resumed loop keeps counting from the skipped position.
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Selects the permutation of `epoch` (called by mmengine's DistSamplerSeedHook)."""
        self.epoch = epoch

    def skip(self, num_samples: int) -> None:
        """Makes the next `__iter__` start after this rank's first `num_samples` samples."""
        if not 0 <= num_samples <= self.num_samples:
            raise ValueError(f'skip({num_samples}): expected 0..{self.num_samples}')
        self._skip = num_samples


def scene_ids_of(dataset, scene_key: str) -> list[Hashable]:
    """The scene id of every sample, from `dataset.get_scene_ids()` or `get_data_info(i)[scene_key]`."""
    if hasattr(dataset, 'get_scene_ids'):
        ids = list(dataset.get_scene_ids())
    elif hasattr(dataset, 'get_data_info'):
        ids = []
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            if scene_key not in info:
                raise ConfigError(
                    f'SceneContiguousSampler: sample {i} of {type(dataset).__name__} has no '
                    f'{scene_key!r} key (set scene_key= to the key holding the scene/sequence id)'
                )
            ids.append(info[scene_key])
    else:
        raise ConfigError(
            f'SceneContiguousSampler: {type(dataset).__name__} has neither get_scene_ids() nor '
            'get_data_info(); cannot tell which samples belong to the same scene'
        )
    if len(ids) != len(dataset):
        raise ConfigError(
            f'SceneContiguousSampler: got {len(ids)} scene ids for {len(dataset)} samples'
        )
    return ids


def scene_runs(scene_ids: Sequence[Hashable]) -> list[tuple[int, int]]:
    """Maximal runs `[start, stop)` of consecutive samples with the same scene id, in order."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(scene_ids) + 1):
        if i == len(scene_ids) or scene_ids[i] != scene_ids[start]:
            runs.append((start, i))
            start = i
    return runs


def partition_runs(runs: Sequence[tuple[int, int]], world_size: int) -> list[tuple[int, int]]:
    """Splits runs into `world_size` contiguous groups of whole runs, balanced by sample count.

    Returns one `[start, stop)` dataset index range per rank (empty ranges when there are more ranks
    than scenes). Rank r gets the runs whose midpoint falls into the r-th equal share of the dataset,
    which keeps every group within one scene length of the ideal size.
    """
    if world_size < 1:
        raise ValueError(f'world_size must be >= 1, got {world_size}')
    total = runs[-1][1] if runs else 0
    bounds = [0] * (world_size + 1)
    owner = (
        [min(world_size - 1, int((s + e) / 2 * world_size / total)) for s, e in runs]
        if total
        else []
    )
    # bounds[r + 1] = end of the last run owned by a rank <= r
    for (_, e), r in zip(runs, owner):
        for k in range(r + 1, world_size + 1):
            bounds[k] = max(bounds[k], e)
    return [(bounds[r], bounds[r + 1]) for r in range(world_size)]


@DATA_SAMPLERS.register_module()
class SceneContiguousSampler(Sampler[int]):
    """Test/val sampler giving each rank whole scenes, contiguous and in dataset order.

    Args:
        dataset: The dataset; needs `get_scene_ids()` or `get_data_info(i)[scene_key]`.
        scene_key: Key of the scene/sequence id in `get_data_info(i)` (e.g. `'scene_token'`,
            `'log_id'`, `'segment_id'`).
        seed: Accepted and ignored (mmengine passes it to every sampler); the order is fixed.
        rank, world_size: Override the process group's values (for tests and offline planning).
    """

    def __init__(
        self,
        dataset,
        scene_key: str = 'scene_token',
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        group_rank, group_size = get_dist_info()
        rank = group_rank if rank is None else rank
        world_size = group_size if world_size is None else world_size
        self.rank = rank
        self.world_size = world_size
        self.dataset = dataset
        self.scene_key = scene_key
        self.runs = scene_runs(scene_ids_of(dataset, scene_key))
        self.partitions = partition_runs(self.runs, world_size)

    def partition_of(self, rank: int) -> range:
        """Dataset indices that `rank` processes, in order."""
        start, stop = self.partitions[rank]
        return range(start, stop)

    def __iter__(self) -> Iterator[int]:
        return iter(self.partition_of(self.rank))

    def __len__(self) -> int:
        return len(self.partition_of(self.rank))
