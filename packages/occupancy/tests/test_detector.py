"""BEVFormerOcc (tiny config) on the synthetic dataset: training queues, test-time BEV history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet3d')

from mmengine.config import Config
from mmengine.registry import init_default_scope

import interndrive.occupancy.registration  # noqa: F401

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'
SOURCES = Path(__file__).resolve().parents[1] / 'src' / 'interndrive' / 'occupancy'


@pytest.fixture(scope='module')
def setup(synthetic_occ_root):
    from mmdet3d.registry import DATASETS, MODELS

    init_default_scope('mmdet3d')
    root = synthetic_occ_root
    cfg = Config.fromfile(str(CONFIGS / 'bevformer_tiny_occ_cpu.py'))
    train_cfg = dict(cfg.train_dataloader.dataset, data_root=str(root))
    train_cfg['pipeline'] = [t for t in train_cfg['pipeline'] if 'PhotoMetric' not in t['type']]
    test_cfg = dict(cfg.val_dataloader.dataset, data_root=str(root))
    test_cfg['ann_file'] = 'occ_infos_temporal_train.pkl'  # 2 scenes: a scene change at test time
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    return model, DATASETS.build(train_cfg), DATASETS.build(test_cfg)


def batch(items):
    return {
        'inputs': {'img': [item['inputs']['img'] for item in items]},
        'data_samples': [item['data_samples'] for item in items],
    }


def record_prev_bev(model, monkeypatch) -> list[bool]:
    """Patches the BEV constructor to record whether each call got a previous BEV."""
    calls: list[bool] = []
    original = model.bev_constructor.forward

    def spy(feats, metas, prev_bev=None, **kwargs):
        calls.append(prev_bev is not None)
        return original(feats, metas, prev_bev=prev_bev, **kwargs)

    monkeypatch.setattr(model.bev_constructor, 'forward', spy)
    return calls


@pytest.mark.slow
def test_train_step_on_a_queue_gives_loss_and_gradients(setup, monkeypatch) -> None:
    model, train_set, _ = setup
    model.train()
    calls = record_prev_bev(model, monkeypatch)
    data = model.data_preprocessor(batch([train_set[1]]), True)
    assert data['inputs']['img'][0].shape[:2] == (2, 6)  # queue of 2 frames, 6 cameras
    model.zero_grad()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_occ'} and torch.isfinite(losses['loss_occ'])
    # Random init predicts ~uniform over 18 classes: CE close to ln(18) = 2.89.
    assert 2.0 < losses['loss_occ'].item() < 4.5
    losses['loss_occ'].backward()
    assert model.training  # the history pass ran in eval mode and switched back
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'parameters without gradient: {missing[:8]}'
    # Frame 0 of the queue starts the history (no prev BEV), frame 1 uses it.
    assert calls == [False, True]


@pytest.mark.slow
def test_history_restarts_at_a_scene_change_in_the_queue(setup, monkeypatch) -> None:
    model, train_set, _ = setup
    model.train()
    item = train_set[2]  # first frame of the second train scene: its queue crosses the boundary
    metas = item['data_samples'].metainfo['queue_metas']
    assert [m['prev_bev_exists'] for m in metas] == [False, False]
    calls = record_prev_bev(model, monkeypatch)
    with torch.no_grad():
        model(**model.data_preprocessor(batch([item]), True), mode='loss')
    assert calls == [False, False]


@pytest.mark.slow
def test_camera_mask_loss_option_differs(setup) -> None:
    model, train_set, _ = setup
    model.eval()  # no GridMask / dropout: both losses see the same logits
    data = model.data_preprocessor(batch([train_set[1]]), True)
    with torch.no_grad():
        plain = model(**data, mode='loss')['loss_occ']
        model.use_mask = True
        try:
            masked = model(**data, mode='loss')['loss_occ']
        finally:
            model.use_mask = False
    assert torch.isfinite(masked) and not torch.isclose(plain, masked)


@pytest.mark.slow
def test_predict_reuses_bev_within_a_scene_and_resets_on_change(setup, monkeypatch) -> None:
    model, _, test_set = setup
    model.eval()
    model.history.reset()
    calls = record_prev_bev(model, monkeypatch)
    scenes = []
    with torch.no_grad():
        for index in range(len(test_set)):
            item = test_set[index]
            scenes.append(item['data_samples'].metainfo['scene_token'])
            (sample,) = model(**model.data_preprocessor(batch([item]), False), mode='predict')
            assert sample.pred_occ.shape == (200, 200, 16)
            assert sample.pred_occ.dtype == torch.uint8 and int(sample.pred_occ.max()) < 18
    expected = [i > 0 and scenes[i] == scenes[i - 1] for i in range(len(scenes))]
    assert len(set(scenes)) == 2 and calls == expected
    # video_test_mode=False never reuses; a training step clears the history.
    model.history.video_test_mode = False
    calls.clear()
    try:
        with torch.no_grad():
            for index in range(2):
                model(**model.data_preprocessor(batch([test_set[index]]), False), mode='predict')
    finally:
        model.history.video_test_mode = True
    assert calls == [False, False]


@pytest.mark.slow
def test_predict_with_batch_of_two(setup) -> None:
    model, _, test_set = setup
    model.eval()
    model.history.reset()
    with torch.no_grad():
        logits = model(**model.data_preprocessor(batch([test_set[0], test_set[2]]), False))
    assert logits.shape == (2, 200, 200, 16, 18)


def test_bad_inputs_are_named(setup) -> None:
    model, train_set, test_set = setup
    data = model.data_preprocessor(batch([train_set[1]]), True)
    with pytest.raises(ValueError, match="mode must be 'loss', 'predict' or 'tensor'"):
        model(**data, mode='bogus')
    with pytest.raises(ValueError, match=r'test img must be \(B, N, 3, H, W\)'):
        model(**data, mode='predict')
    sample = test_set[0]['data_samples']
    del sample.voxel_semantics
    test_item = test_set[0]
    test_item['data_samples'] = sample
    with pytest.raises(KeyError, match='LoadOccupancyGT'):
        model(**model.data_preprocessor(batch([test_item]), True), mode='loss')


def test_model_code_is_device_agnostic() -> None:
    """Upstream's GridMask calls .cuda(); nothing in this package may pin a device."""
    offenders = [
        str(path)
        for path in SOURCES.rglob('*.py')
        if re.search(r"(?<!`)\.cuda\(|device=['\"]cuda", path.read_text(encoding='utf-8'))
    ]
    assert not offenders
