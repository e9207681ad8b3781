"""Every shipped config builds (model, datasets, evaluator); the full reference configs run one
forward/backward on CPU with tiny inputs (BEV and image size overridden through the config)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet3d.datasets', reason='mmdet3d (built by the lead) is not installed')
pytest.importorskip('mmcv.ops', reason='mmcv with ops (built by the lead) is not installed')

from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from interndrive.hdmap.demo import data_options, make_demo_data
from interndrive.hdmap.registration import register_modules
from interndrive.hdmap.task import CONFIG_DIR

CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob('*.py'))
REFERENCE = ['vectormapnet_intern', 'vectormapnet_base']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('hdmap_cfg_data')
    make_demo_data(root, train_segments=1, val_segments=1, frames=2)
    return root


def _config(name: str, root: Path | None = None, **options) -> Config:
    register_modules()
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(CONFIG_DIR / f'{name}.py')
    cfg.merge_from_dict({**(data_options(root) if root else {}), **options})
    return cfg


def test_reference_configs_are_shipped():
    assert {*REFERENCE, 'vectormapnet_tiny_cpu'} <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_model_datasets_and_evaluator(name, data_root):
    from mmdet3d.registry import DATASETS, METRICS, MODELS

    cfg = _config(name, data_root)
    assert cfg.task == 'hdmap'
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'VectorMapNet'
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(train) == 2 and len(val) == 2
    sample = train[0]
    assert sample['inputs']['img'].shape[0] == 7
    assert (
        sample['inputs']['img'].shape[-2] % 32 == 0 and sample['inputs']['img'].shape[-1] % 32 == 0
    )
    assert sample['data_samples'].gt_polys is not None
    assert 'gt_polys' not in val[0]['data_samples']
    metric = METRICS.build(cfg.test_evaluator)
    assert Path(metric.ann_file).is_file()


def test_reference_hyperparameters():
    cfg = _config('vectormapnet_intern')
    enc, head = cfg.model.backbone_cfg, cfg.model.head_cfg
    assert enc.heights == [-1.1, 0, 0.5, 1.1] and enc.xbound == [-30, 30, 0.3]
    assert enc.img_backbone.channels == 80 and enc.img_backbone.depths == [4, 4, 21, 4]
    assert head.det_net_cfg.num_query == 120 and head.det_net_cfg.max_lines == 35
    assert head.gen_net_cfg.num_layers == 6 and head.top_p_gen_model == 0.9
    assert cfg.train_cfg.max_epochs == 130 and cfg.optim_wrapper.clip_grad.max_norm == 3.5
    assert cfg.train_dataloader.batch_size == 5
    base = _config('vectormapnet_base')
    assert base.model.backbone_cfg.img_neck.in_channels == [256, 512, 1024, 2048]
    assert base.test_dataloader.dataset.pipeline[2].to_rgb is False


@pytest.mark.slow
@pytest.mark.parametrize('name', REFERENCE)
def test_full_config_forward_backward_on_tiny_inputs(name, data_root, capsys):
    from mmdet3d.registry import DATASETS, MODELS

    cfg = _config(name, data_root)
    model = MODELS.build(cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    # tiny inputs through the same config: 64 x 112 images, 2.4 m BEV cells (25 x 12)
    cfg.merge_from_dict(
        {'model.backbone_cfg.xbound': [-30, 30, 2.4], 'model.backbone_cfg.ybound': [-15, 15, 2.4]}
    )
    pipeline = [dict(t, size=(64, 112)) if t.type == 'HDMapResizeMultiViewImages' else t
                for t in cfg.train_dataloader.dataset.pipeline]  # fmt: skip
    cfg.train_dataloader.dataset.pipeline = pipeline
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == n_params  # BEV size changes no weight
    model.train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), True)
    losses = model(**batch, mode='loss')
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    grads = [
        p.grad
        for n, p in model.named_parameters()
        if n.startswith('backbone.img_backbone') and p.grad is not None
    ]
    assert grads and any(g.abs().sum() > 0 for g in grads)  # the loss reaches the image backbone
    with capsys.disabled():
        print(f'\n{name}: {n_params / 1e6:.2f}M parameters, losses '
              + ', '.join(f'{k}={float(v.detach()):.3f}' for k, v in losses.items()))  # fmt: skip
