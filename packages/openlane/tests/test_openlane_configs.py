"""Every shipped config builds; the full reference configs run one forward/backward on CPU with tiny
inputs (BEV and images shrunk through the config), and their parameter counts are printed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip('mmdet3d.models', reason='mmdet3d 1.4 (with mmcv ops) is not installed')

import torch
from mmengine.config import Config
from openlane_model_inputs import make_batch

import interndrive.openlane.registration  # noqa: F401
from interndrive.openlane.models.detector import RoadBEVFormer, count_parameters
from interndrive.openlane.task import TASK

CONFIGS = sorted(p.name for p in Path(TASK.config_dir).glob('*.py'))
# Building the full InternImage-S model (74 M parameters) takes 3–15 s on 2 busy cores.
CONFIG_PARAMS = [
    pytest.param(name, marks=pytest.mark.slow) if name == 'internimage-s.py' else name
    for name in CONFIGS
]


def _build(cfg: Config) -> RoadBEVFormer:
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


def test_all_configs_are_found():
    expected = {
        'internimage-s.py',
        'baseline_large.py',
        'olv2_tiny_cpu.py',
        'olv2_tiny_cpu_real.py',
    }
    assert expected <= set(CONFIGS)


def test_tiny_real_config_scales_full_size_images(tmp_path):
    """olv2_tiny_cpu_real.py on full-size (2048×1550) frames feeds the tiny model 1/16 images."""
    from mmdet3d.registry import DATASETS
    from mmengine.registry import init_default_scope

    from interndrive.openlane.convert import convert
    from interndrive.openlane.synthetic import write_dataset

    split_file = write_dataset(tmp_path, splits={'train': 1}, frames_per_segment=1, image_scale=1.0)
    convert(tmp_path, split_file, backend='builtin')
    cfg = Config.fromfile(TASK.config_dir / 'olv2_tiny_cpu_real.py')
    assert cfg.train_dataloader.dataset.data_root == 'data/OpenLane-V2/'
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    init_default_scope('mmdet3d')
    sample = DATASETS.build(cfg.train_dataloader.dataset)[0]
    meta = sample['data_samples'].metainfo
    assert meta['ori_shape'][1] == (1550, 2048) and meta['ori_shape'][0] == (2048, 1550)
    assert meta['img_shape'][1] == (97, 128) and meta['img_shape'][0] == (97, 74)
    assert tuple(sample['inputs']['img'].shape) == (7, 3, 128, 128)
    assert meta['scale_factor'] == pytest.approx((74 / 1550, 97 / 2048))


@pytest.mark.parametrize('name', CONFIG_PARAMS)
def test_config_builds(name):
    cfg = Config.fromfile(TASK.config_dir / name)
    assert cfg.task == 'openlane'
    model = _build(cfg)
    counts = count_parameters(model)
    print(f'{name}: {counts}')
    assert isinstance(model, RoadBEVFormer)
    assert model.lane_head.code_size == 15  # 5 Bézier control points
    assert model.te_head.num_classes == 13
    if not name.startswith('olv2_tiny_cpu'):
        # Reference hyperparameters (REFERENCE.md §5.2).
        assert model.bev_constructor.bev_h == 100 and model.bev_constructor.bev_w == 200
        assert model.bev_constructor.encoder.num_layers == 3
        assert model.lane_head.num_query == 100 and model.te_head.num_query == 100
        assert model.lane_head.decoder.num_layers == 6 and model.te_head.decoder.num_layers == 6
        assert model.lane_head.loss_cls.loss_weight == 1.5
        assert model.lane_head.loss_reg.loss_weight == 0.0075
        assert model.lclc_head.loss_rel.loss_weight == 5.0
        assert cfg.optim_wrapper.optimizer.lr == 2e-4 and cfg.train_cfg.max_epochs == 24
        # The shared BEV constructor of OpenLane-V2 has 7.67 M parameters (common/docs/bev.md).
        assert counts['bev_constructor'] == 7_667_648
        assert counts['lane_head'] == 5_765_027 and counts['te_head'] == 8_381_032
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].dataset.type == 'OpenLaneV2Dataset'
    steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    # Photometric distortion on 0–255 values, i.e. before normalisation (upstream: after).
    assert steps.index('OLV2PhotoMetricDistortion') < steps.index('OLV2NormalizeMultiViewImage')


def test_reference_backbones():
    s = Config.fromfile(TASK.config_dir / 'internimage-s.py').model
    r50 = Config.fromfile(TASK.config_dir / 'baseline_large.py').model
    assert s.img_backbone.type == 'InternImage' and s.img_backbone.channels == 80
    assert s.img_neck.in_channels == [80, 160, 320, 640]
    assert r50.img_backbone.type == 'mmdet.ResNet' and r50.img_backbone.depth == 50
    assert 'channels' not in r50.img_backbone  # _delete_ replaced the InternImage arguments
    assert r50.img_neck.in_channels == [512, 1024, 2048]
    # mmengine resolves 'torchvision://' by importing torchvision, which is not usable beside the
    # CPU torch wheel: the configs name plain URLs instead.
    for name in CONFIGS:
        text = (Path(TASK.config_dir) / name).read_text()
        assert "checkpoint='torchvision://" not in text.replace('"', "'"), name
    assert r50.img_backbone.init_cfg.checkpoint.startswith('https://download.pytorch.org/models/')


@pytest.mark.slow
@pytest.mark.parametrize('name', ['internimage-s.py', 'baseline_large.py'])
def test_full_config_forward_backward_tiny_inputs(name):
    cfg = Config.fromfile(TASK.config_dir / name)
    # Only the BEV grid is shrunk (10×20 instead of 100×200); every layer and width is the reference.
    for part in (cfg.model.bev_constructor, cfg.model.lane_head):
        part.bev_h, part.bev_w = 10, 20
    torch.manual_seed(0)
    model = _build(cfg)
    print(f'{name} with a 10×20 BEV: {count_parameters(model)}')
    inputs, samples = make_batch(batch=1, height=32, width=64)
    start = time.perf_counter()
    losses = model(inputs, samples, mode='loss')
    total = sum(losses.values())
    total.backward()
    print(f'{name}: forward+backward {time.perf_counter() - start:.1f} s, loss {float(total):.3f}')
    assert torch.isfinite(total)
    assert {'loss_lane_cls', 'loss_lane_reg', 'loss_te_cls', 'loss_te_bbox', 'loss_te_iou',
            'loss_lclc', 'loss_lcte', 'd4.loss_lane_cls', 'd4.loss_te_iou'} <= set(losses)  # fmt: skip
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:10]
    if name == 'baseline_large.py':
        assert any(n.startswith('img_backbone.conv1') for n in frozen)  # frozen_stages=1
