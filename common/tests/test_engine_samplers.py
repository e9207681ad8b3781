"""Samplers and dataset-ordered gathering, on simulated ranks (no processes needed)."""

from __future__ import annotations

import pytest
import torch
from test_engine_toys import ToyDataset, ToyMetric, ToyTemporalModel, toy_input

from interndrive.common.engine.checks import ConfigError
from interndrive.common.engine.ordered_eval import place_in_dataset_order
from interndrive.common.engine.samplers import (
    ResumableTrainSampler,
    SceneContiguousSampler,
    partition_runs,
    scene_runs,
)


def test_scene_runs_split_on_every_change() -> None:
    assert scene_runs(['a', 'a', 'b', 'a', 'a']) == [(0, 2), (2, 3), (3, 5)]
    assert scene_runs([]) == []


@pytest.mark.parametrize('world_size', [1, 2, 3, 4, 7, 20])
def test_partitions_cover_dataset_with_whole_scenes(world_size: int) -> None:
    lengths = (3, 5, 2, 4, 1, 6)
    ds = ToyDataset(lengths)
    parts = [
        list(SceneContiguousSampler(ds, rank=r, world_size=world_size)) for r in range(world_size)
    ]
    assert [i for p in parts for i in p] == list(range(len(ds)))  # contiguous, ordered, complete
    scenes_per_rank = [{ds.scene_of[i] for i in p} for p in parts]
    for a in range(world_size):
        for b in range(a + 1, world_size):
            assert not scenes_per_rank[a] & scenes_per_rank[b], 'a scene was split across ranks'


def test_partition_is_balanced_within_one_scene() -> None:
    runs = scene_runs([k for k in range(10) for _ in range(10)])  # 10 scenes of 10 frames
    sizes = [e - s for s, e in partition_runs(runs, 4)]
    assert sum(sizes) == 100 and max(sizes) - min(sizes) <= 10


def _predict_on_ranks(sampler_of_rank, world_size: int, ds: ToyDataset) -> list[list[dict]]:
    """Runs the temporal toy model on each simulated rank with a fresh model state."""
    torch.manual_seed(0)
    weights = ToyTemporalModel().state_dict()
    parts = []
    for rank in range(world_size):
        model = ToyTemporalModel().eval()
        model.load_state_dict(weights)
        out = []
        for i in sampler_of_rank(rank):
            x = ds[i]
            with torch.no_grad():
                out += model(
                    x['inputs'][None],
                    x['target'][None],
                    torch.tensor([i]),
                    [x['scene_token']],
                    mode='predict',
                )
        parts.append(out)
    return parts


def _metrics(parts, partitions, size) -> dict:
    return ToyMetric().compute_metrics(place_in_dataset_order(parts, partitions, size, 'ToyMetric'))


def test_scene_sampler_metrics_equal_on_1_and_3_ranks() -> None:
    ds = ToyDataset((3, 5, 2, 4))
    one = _metrics(_predict_on_ranks(lambda r: range(len(ds)), 1, ds), [range(len(ds))], len(ds))
    samplers = [SceneContiguousSampler(ds, rank=r, world_size=3) for r in range(3)]
    parts = _predict_on_ranks(lambda r: list(samplers[r]), 3, ds)
    three = _metrics(parts, [s.partition_of(r) for r, s in enumerate(samplers)], len(ds))
    assert three == one
    assert one['in_order'] == 1.0


def test_round_robin_split_changes_temporal_metrics() -> None:
    """Control: mmengine's DefaultSampler-style split breaks scenes, so the metric differs."""
    ds = ToyDataset((3, 5, 2, 4))
    one = _metrics(_predict_on_ranks(lambda r: range(len(ds)), 1, ds), [range(len(ds))], len(ds))
    rr = [list(range(r, len(ds), 2)) for r in range(2)]
    two = _metrics(_predict_on_ranks(lambda r: rr[r], 2, ds), rr, len(ds))
    assert two['checksum'] != pytest.approx(one['checksum'])


def test_place_in_dataset_order_rejects_per_batch_results() -> None:
    with pytest.raises(ConfigError, match='one result per sample'):
        place_in_dataset_order([[1], [2]], [range(0, 2), range(2, 3)], 3, 'M')


def test_scene_sampler_needs_scene_ids() -> None:
    class NoInfo(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

    with pytest.raises(ConfigError, match='get_scene_ids'):
        SceneContiguousSampler(NoInfo(), rank=0, world_size=1)
    with pytest.raises(ConfigError, match="no 'log_id' key"):
        SceneContiguousSampler(ToyDataset((2,)), scene_key='log_id', rank=0, world_size=1)


def test_train_sampler_is_deterministic_per_seed_and_epoch() -> None:
    ds = ToyDataset((7,))
    a = ResumableTrainSampler(ds, seed=3, rank=0, world_size=1)
    b = ResumableTrainSampler(ds, seed=3, rank=0, world_size=1)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b)
    b.set_epoch(2)
    assert list(a) != list(b)
    assert sorted(a) == list(range(7))
    assert list(ResumableTrainSampler(ds, seed=4, rank=0, world_size=1)) != list(
        ResumableTrainSampler(ds, seed=3, rank=0, world_size=1)
    )


def test_train_sampler_ranks_partition_padded_epoch() -> None:
    ds = ToyDataset((7,))
    ranks = [ResumableTrainSampler(ds, seed=1, rank=r, world_size=2) for r in range(2)]
    for s in ranks:
        s.set_epoch(5)
    got = [list(s) for s in ranks]
    assert len(got[0]) == len(got[1]) == 4  # 7 samples padded to 8
    assert set(got[0]) | set(got[1]) == set(range(7))


def test_train_sampler_skip_is_one_shot_and_keeps_length() -> None:
    ds = ToyDataset((6,))
    s = ResumableTrainSampler(ds, seed=0, rank=0, world_size=1)
    full = list(s)
    s.skip(4)
    assert list(s) == full[4:]
    assert len(s) == 6
    assert list(s) == full
    with pytest.raises(ValueError, match=r'expected 0\.\.6'):
        s.skip(7)


def test_toy_inputs_depend_only_on_index() -> None:
    assert torch.equal(toy_input(5), toy_input(5))


def test_place_in_dataset_order_with_an_idle_rank() -> None:
    parts = [['a', 'b'], [], ['c']]
    assert place_in_dataset_order(parts, [range(0, 2), range(2, 2), range(2, 3)], 3, 'M') == [
        'a',
        'b',
        'c',
    ]
    with pytest.raises(ConfigError, match='1 of 3 samples have no result'):
        place_in_dataset_order([['a', 'b'], []], [range(0, 2), range(2, 2)], 3, 'M')


def test_sample_rng_depends_only_on_seed_epoch_index() -> None:
    from interndrive.common.engine.seeding import sample_rng, step_seed

    draw = sample_rng(1, 2, 3).random(4)
    assert (draw == sample_rng(1, 2, 3).random(4)).all()
    assert not (draw == sample_rng(1, 3, 3).random(4)).all()
    assert not (draw == sample_rng(1, 2, 4).random(4)).all()
    assert step_seed(7, 10, 0) == step_seed(7, 10, 0) != step_seed(7, 10, 1)
    assert 0 <= step_seed(2**40, 1, 0) < 2**32


@pytest.mark.parametrize(
    ('n', 'world_size', 'round_up'), [(7, 1, True), (7, 2, True), (10, 3, True), (10, 3, False)]
)
def test_resumable_sampler_matches_mmengine_default_sampler(
    n: int, world_size: int, round_up: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It replaces DefaultSampler in train configs, so it must give the very same order."""
    import mmengine.dataset.sampler as mm_sampler

    ds = ToyDataset((n,))
    for rank in range(world_size):
        monkeypatch.setattr(mm_sampler, 'get_dist_info', lambda r=rank: (r, world_size))
        theirs = mm_sampler.DefaultSampler(ds, shuffle=True, seed=5, round_up=round_up)
        ours = ResumableTrainSampler(
            ds, shuffle=True, seed=5, round_up=round_up, rank=rank, world_size=world_size
        )
        for epoch in (0, 3):
            theirs.set_epoch(epoch)
            ours.set_epoch(epoch)
            assert list(ours) == list(theirs)
            assert len(ours) == len(theirs)
