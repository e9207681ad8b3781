"""The OpenMMLab adapter: registry builds with upstream config keys, init_cfg, import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip('dcnv3', reason='the dcnv3 package (dcnv3/src) is not importable')
pytest.importorskip('mmengine', reason='mmengine is not installed')

from mmengine.model import BaseModule
from mmengine.registry import MODELS, Registry

from interndrive.common import openmmlab
from interndrive.common.backbones import InternImage

ROOT = Path(__file__).resolve().parents[2]


def upstream_backbone_cfg(checkpoint: str | None = None) -> dict:
    """The AD configs' backbone dict (OCC bevformer_intern-s_occ.py), shrunk in width/depth for CI."""
    cfg = dict(
        type='InternImage',
        core_op='DCNv3',
        channels=16,  # upstream: 80
        depths=[1, 1, 2, 1],  # upstream: [4, 4, 21, 4]
        groups=[1, 2, 4, 8],  # upstream: [5, 10, 20, 40]
        mlp_ratio=4.0,
        drop_path_rate=0.3,
        norm_layer='LN',
        layer_scale=1.0,
        offset_scale=1.0,
        post_norm=True,
        with_cp=True,
        out_indices=(1, 2, 3),
    )
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    return cfg


def test_core_modules_do_not_import_openmmlab() -> None:
    code = (
        'import sys, interndrive.common.backbones, interndrive.common.checkpoint, '
        'interndrive.common.optim, interndrive.common.convert_checkpoint\n'
        "bad = [m for m in ('mmcv', 'mmdet', 'mmdet3d', 'mmengine', 'timm', 'torchvision') if m in sys.modules]\n"
        'print(bad)\n'
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / 'dcnv3/src'), str(ROOT / 'common/src')])
    )
    res = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == '[]'


def test_registered_in_mmengine_root_and_available_scopes() -> None:
    assert MODELS.get('InternImage') is InternImage
    assert 'mmengine' in openmmlab.REGISTERED_SCOPES
    assert openmmlab.register_all() == openmmlab.REGISTERED_SCOPES  # idempotent


def test_build_from_upstream_config_with_pretrained_init(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = upstream_backbone_cfg()
    cfg.pop('type')
    cfg['core_op'] = 'DCNv3_pytorch'
    src = InternImage(**cfg).eval()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ckpt = tmp_path / 'mask_rcnn_internimage_s_fpn_3x_coco.pth'
    torch.save(
        {'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()}, 'meta': {}}, ckpt
    )

    class Detector(BaseModule):  # an mmengine model owning the backbone, as BEVFormer does
        def __init__(self) -> None:
            super().__init__()
            with warnings.catch_warnings():
                warnings.simplefilter(
                    'ignore', RuntimeWarning
                )  # compiled-op fallback on CPU-only builds
                self.img_backbone = MODELS.build(upstream_backbone_cfg(str(ckpt)))

    det = Detector()
    assert isinstance(det.img_backbone, InternImage)
    det.init_weights()  # mmengine's recursive init calls InternImage.init_weights -> our loader
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(src(x), det.img_backbone.eval()(x)):
            torch.testing.assert_close(
                b, a, rtol=1e-5, atol=1e-5
            )  # compiled vs reference op may differ slightly
    assert [o.shape[1] for o in det.img_backbone(x)] == [32, 64, 128]


@pytest.mark.parametrize('package', ['mmdet', 'mmdet3d'])
def test_registered_in_openmmlab_scopes(package: str) -> None:
    registry_mod = pytest.importorskip(f'{package}.registry', reason=f'{package} is not installed')
    assert package in openmmlab.REGISTERED_SCOPES
    cfg = upstream_backbone_cfg()
    cfg['core_op'] = 'DCNv3_pytorch'
    with torch.device('meta'):
        model = registry_mod.MODELS.build(cfg)
    assert isinstance(model, InternImage) and model.out_indices == (1, 2, 3)


def test_conflicting_registration_is_reported() -> None:
    registry = Registry('models_conflict_test')

    class OtherInternImage(torch.nn.Module):
        pass

    registry.register_module(name='InternImage', module=OtherInternImage)
    with pytest.raises(KeyError, match=r'already registered .*OtherInternImage'):
        openmmlab._register(registry, 'InternImage', InternImage)


def test_backbone_feeds_mmdet_fpn_in_mmdet3d_scope() -> None:
    """The OCC config pattern: InternImage out_indices (1, 2, 3) -> FPN, built in the mmdet3d scope."""
    registry_mod = pytest.importorskip('mmdet3d.registry', reason='mmdet3d is not installed')
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmdet3d'):
        cfg = upstream_backbone_cfg()
        cfg['core_op'] = 'DCNv3_pytorch'
        backbone = registry_mod.MODELS.build(cfg)
        fpn = dict(
            type='mmdet.FPN', in_channels=[32, 64, 128], out_channels=8, start_level=0,
            add_extra_convs='on_output', num_outs=4, relu_before_extra_convs=True,
        )  # fmt: skip
        neck = registry_mod.MODELS.build(fpn)
    feats = neck(backbone(torch.randn(1, 3, 64, 64)))
    assert [tuple(f.shape) for f in feats] == [
        (1, 8, 8, 8),
        (1, 8, 4, 4),
        (1, 8, 2, 2),
        (1, 8, 1, 1),
    ]
