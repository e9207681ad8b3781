"""Every shipped config builds; the full reference configs run one forward/backward on CPU.

The full configs are run at reduced size through config overrides (10×10 BEV, 80×45 synthetic
images, 2-frame queue); the parameter counts printed are those of the full-size models.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet3d')

from mmengine.config import Config
from mmengine.registry import init_default_scope

import interndrive.occupancy.registration  # noqa: F401
from interndrive.occupancy.models.detector import count_parameters

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'
CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob('*.py'))
FULL_CONFIGS = ['bevformer_intern-s_occ', 'bevformer_base_occ']


def load(name: str) -> Config:
    init_default_scope('mmdet3d')
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


def test_all_configs_are_listed() -> None:
    assert set(FULL_CONFIGS) | {'bevformer_tiny_occ_cpu'} <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name: str) -> None:
    """Model built on the meta device (no memory); every registry type the config names exists."""
    from mmdet3d.registry import DATA_SAMPLERS, DATASETS, METRICS, MODELS, TRANSFORMS

    cfg = load(name)
    assert cfg.task == 'occupancy'
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    counts = count_parameters(model)
    print(f'{name}: {counts}')
    assert counts['total'] > 0
    assert tuple(cfg.model.occ_head.occ_size) == (200, 200, 16)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert DATASETS.get(dataset.type) is not None
        assert DATA_SAMPLERS.get(cfg[loader].sampler.type) is not None
        for step in dataset.pipeline:
            assert TRANSFORMS.get(step['type']) is not None, step['type']
    assert METRICS.get(cfg.val_evaluator.type) is not None
    # Temporal test sets keep whole scenes on one rank, in order, one frame per batch.
    assert cfg.test_dataloader.sampler.type == 'SceneContiguousSampler'
    assert cfg.test_dataloader.batch_size == 1


def test_reference_hyperparameters() -> None:
    """REFERENCE.md Part 1 §3.2 values of bevformer_intern-s_occ."""
    cfg = load('bevformer_intern-s_occ')
    model = cfg.model
    backbone = model.img_backbone
    assert (backbone.channels, list(backbone.depths), list(backbone.groups)) == (
        80, [4, 4, 21, 4], [5, 10, 20, 40],
    )  # fmt: skip
    assert (backbone.drop_path_rate, backbone.layer_scale, backbone.post_norm) == (0.3, 1.0, True)
    assert tuple(backbone.out_indices) == (1, 2, 3) and backbone.with_cp
    assert model.img_neck.in_channels == [160, 320, 640] and model.img_neck.num_outs == 4
    bev = model.bev_constructor
    assert (bev.bev_h, bev.bev_w, bev.embed_dims) == (200, 200, 256)
    assert list(bev.pc_range) == [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
    assert (bev.encoder.num_layers, bev.encoder.num_points_in_pillar) == (4, 8)
    assert bev.encoder.transformerlayers.ffn_cfgs.feedforward_channels == 512
    assert model.occ_head.num_classes == 18 and not model.use_mask and model.use_grid_mask
    assert cfg.train_dataloader.dataset.queue_length == 4
    optim = cfg.optim_wrapper
    assert optim.optimizer.lr == 2e-4 and optim.optimizer.weight_decay == 0.05
    assert optim.constructor == 'CustomLayerDecayOptimizerConstructor'
    assert optim.paramwise_cfg == dict(num_layers=33, layer_decay_rate=1.0, depths=[4, 4, 21, 4])
    assert optim.clip_grad == dict(max_norm=35, norm_type=2)
    assert cfg.train_cfg.max_epochs == 24
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, warmup.start_factor) == (500, 1.0 / 3)
    assert cosine.eta_min_ratio == 1e-3
    base = load('bevformer_base_occ')
    assert (
        base.model.img_backbone.depth == 101 and base.optim_wrapper.optimizer.weight_decay == 0.01
    )
    assert base.model.img_neck.in_channels == [512, 1024, 2048]


@pytest.mark.slow
@pytest.mark.parametrize('name', FULL_CONFIGS)
def test_full_config_forward_backward_on_cpu(name: str, synthetic_occ_root: Path) -> None:
    from mmdet3d.registry import DATASETS, MODELS

    cfg = load(name)
    with torch.device('meta'):
        full = count_parameters(MODELS.build(cfg.model))
    print(f'{name} (full size) parameters: {full}')
    bev = cfg.model.bev_constructor
    bev.bev_h = bev.bev_w = 10  # reduced BEV (the decoder upsamples to 200×200×16)
    cfg.model.img_backbone.pop('init_cfg', None)  # no pretrained download
    dataset_cfg = dict(cfg.train_dataloader.dataset, data_root=str(synthetic_occ_root))
    dataset_cfg['queue_length'] = 2
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    item = DATASETS.build(dataset_cfg)[1]
    data = model.data_preprocessor(
        {'inputs': {'img': [item['inputs']['img']]}, 'data_samples': [item['data_samples']]}, True
    )
    loss = model(**data, mode='loss')['loss_occ']
    assert torch.isfinite(loss)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, no_grad[:8]
    zero = [n for n, p in model.named_parameters() if p.grad is not None and not p.grad.abs().sum()]
    # Zero-initialised projections block the gradient at step 0 exactly: DCNv3's offset/mask
    # linears (so the depthwise branch feeding them gets none) and the deformable attentions'
    # sampling_offsets/attention_weights (the BEV positional encoding only feeds those).
    allowed = ('.dcn.dw_conv', 'bev_constructor.positional_encoding.')
    unexpected = [n for n in zero if not any(a in n for a in allowed)]
    assert not unexpected, unexpected[:8]
