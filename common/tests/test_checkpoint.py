"""Checkpoint loading and conversion: every upstream format round-trips bit-identically.

The upstream files are written here by hand-written helpers that follow REFERENCE.md §1.3–1.4
(key names, wrappers, prefixes), independently of the converter under test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip('dcnv3', reason='the dcnv3 package (dcnv3/src) is not importable')

from interndrive.common.backbones import InternImage, create_internimage
from interndrive.common.checkpoint import (
    CheckpointFormatError,
    CheckpointMismatchError,
    atomic_torch_save,
    detect_format,
    load_internimage_checkpoint,
    read_checkpoint,
)
from interndrive.common.convert_checkpoint import check_against_arch, convert_checkpoint, main


def small(seed: int, **kw) -> InternImage:
    """S-style (post-norm + layer scale -> gamma keys) InternImage small enough for CI."""
    torch.manual_seed(seed)
    args = dict(
        core_op='DCNv3_pytorch', channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8),
        layer_scale=1.0, post_norm=True, drop_path_rate=0.0, num_classes=0,
    )  # fmt: skip
    args.update(kw)
    model = InternImage(**args)
    with torch.no_grad():  # make every tensor distinctive (offsets/mask are zero at init)
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model.eval()


X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def outputs(model: InternImage) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(X)
    return out if isinstance(out, list) else [out]


def assert_bit_identical(a: InternImage, b: InternImage) -> None:
    for x, y in zip(outputs(a), outputs(b)):
        assert torch.equal(x, y)


# ---------------------------------------------------------------- upstream writers (test helpers)
def upstream_classification(model: InternImage, path: Path, ema: InternImage | None = None) -> Path:
    """``CLS/main.py`` training checkpoint: model, EMA, optimizer and a pickled non-tensor config."""
    ckpt = {
        'model': model.state_dict(),
        'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-3}]},
        'epoch': 299,
        'config': argparse.Namespace(arch='internimage_s'),  # not weights_only-loadable, like yacs
    }
    if ema is not None:
        ckpt['model_ema'] = ema.state_dict()
    torch.save(ckpt, path)
    return path


def upstream_mmdet(model: InternImage, path: Path, backbone_prefix: str = 'backbone.') -> Path:
    """mmdet / AD checkpoint: whole detector under ``state_dict`` with the backbone prefixed."""
    sd = {backbone_prefix + k: v for k, v in model.state_dict().items()}
    sd['neck.lateral_convs.0.conv.weight'] = torch.randn(4, 32, 1, 1)
    sd['pts_bbox_head.cls_branches.0.weight'] = torch.randn(3, 4)
    torch.save({'state_dict': sd, 'meta': {'epoch': 36, 'mmdet_version': '2.28.1'}}, path)
    return path


def upstream_ddp(model: InternImage, path: Path) -> Path:
    torch.save({'model': {'module.' + k: v for k, v in model.state_dict().items()}}, path)
    return path


def upstream_huggingface_dir(model: InternImage, folder: Path) -> Path:
    """``CLS/huggingface/convert.py`` + ``save_pretrained``: ``model.`` prefix, gamma -> layer_scale."""
    from safetensors.torch import save_file

    sd = {}
    for k, v in model.state_dict().items():
        k = k.replace('gamma1', 'layer_scale1').replace('gamma2', 'layer_scale2')
        sd['model.' + k] = v.contiguous()
    folder.mkdir()
    save_file(sd, str(folder / 'model.safetensors'))
    (folder / 'config.json').write_text('{"model_type": "intern_image"}')
    return folder


# ---------------------------------------------------------------- loading each format
def test_classification_checkpoint_with_head_loads_bit_identically(tmp_path: Path) -> None:
    src = small(0, num_classes=7)
    path = upstream_classification(src, tmp_path / 'internimage_s_1k_224.pth')
    dst = small(1, num_classes=7)
    with pytest.warns(UserWarning, match='weights_only=True'):
        report = load_internimage_checkpoint(dst, path, strict=True)
    assert report.source_format == 'classification' and report.complete
    assert len(report.loaded) == len(src.state_dict())
    assert_bit_identical(src, dst)


def test_classification_checkpoint_into_backbone_ignores_head(tmp_path: Path) -> None:
    src = small(0, num_classes=7)
    torch.save({'model': src.state_dict()}, tmp_path / 'c.pth')
    dst = small(1)
    report = load_internimage_checkpoint(dst, tmp_path / 'c.pth', strict=True)
    assert report.complete
    assert sorted(report.ignored_head) == sorted(
        k for k in src.state_dict() if k.startswith(('conv_head', 'head'))
    )
    for a, b in zip(src.forward_intermediates(X, intermediates_only=True), outputs(dst)):
        assert torch.equal(a, b)


def test_ema_weights(tmp_path: Path) -> None:
    src, ema = small(0), small(5)
    path = upstream_classification(src, tmp_path / 'c.pth', ema=ema)
    dst = small(1)
    with pytest.warns(UserWarning):
        load_internimage_checkpoint(dst, path, use_ema=True)
    assert_bit_identical(ema, dst)


@pytest.mark.parametrize('prefix', ['backbone.', 'img_backbone.'])
def test_mmdet_and_task_checkpoints(tmp_path: Path, prefix: str) -> None:
    src = small(0)
    path = upstream_mmdet(src, tmp_path / 'mask_rcnn_internimage_s_fpn_3x_coco.pth', prefix)
    dst = small(1)
    report = load_internimage_checkpoint(dst, path, strict=True)
    assert (report.source_format, report.prefix) == ('mmdet', prefix)
    assert_bit_identical(src, dst)


def test_ddp_module_prefix(tmp_path: Path) -> None:
    src = small(0)
    dst = small(1)
    load_internimage_checkpoint(dst, upstream_ddp(src, tmp_path / 'ddp.pth'), strict=True)
    assert_bit_identical(src, dst)


def test_huggingface_directory(tmp_path: Path) -> None:
    src = small(0)
    folder = upstream_huggingface_dir(src, tmp_path / 'internimage_s_1k_224')
    dst = small(1)
    report = load_internimage_checkpoint(dst, folder, strict=True)
    assert report.source_format == 'huggingface' and report.prefix == 'model.'
    assert_bit_identical(src, dst)


def test_init_cfg_pretrained_and_builder_pretrained(tmp_path: Path) -> None:
    src = small(0)
    path = upstream_mmdet(src, tmp_path / 'det.pth')
    args = dict(
        core_op='DCNv3_pytorch', channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8),
        layer_scale=1.0, post_norm=True, drop_path_rate=0.0,
    )  # fmt: skip
    model = InternImage(**args, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.is_init
    assert_bit_identical(src, model.eval())
    with pytest.raises(ValueError, match="type='Pretrained'"):
        InternImage(**args, init_cfg=dict(type='Kaiming')).init_weights()


def test_builder_pretrained_loads(tmp_path: Path) -> None:
    # Real variant shapes would be 120 MB; shrink T's stages via overrides (the loader only cares about keys).
    kw = dict(
        core_op='DCNv3_pytorch',
        channels=16,
        depths=(1, 1, 1, 1),
        groups=(1, 2, 4, 8),
        num_classes=3,
    )
    src = create_internimage('internimage_t', **kw).eval()
    torch.save({'model': src.state_dict()}, tmp_path / 't.pth')
    dst = create_internimage('internimage_t', pretrained=str(tmp_path / 't.pth'), **kw).eval()
    assert_bit_identical(src, dst)


# ---------------------------------------------------------------- reports and errors
def test_strict_mode_lists_missing_unexpected_and_mismatched() -> None:
    src = small(0).state_dict()
    del src['levels.1.blocks.0.gamma1']
    src['levels.1.blocks.0.bogus'] = torch.zeros(1)
    src['levels.0.downsample.conv.weight'] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(CheckpointMismatchError) as err:
        load_internimage_checkpoint(small(1), {'model': src}, strict=True)
    msg = str(err.value)
    assert 'missing in checkpoint (1)' in msg and 'levels.1.blocks.0.gamma1' in msg
    assert 'unexpected in checkpoint (1)' in msg and 'levels.1.blocks.0.bogus' in msg
    assert "('levels.0.downsample.conv.weight', (1, 1, 3, 3), (32, 16, 3, 3))" in msg
    # non-strict: everything else is loaded, the problems are reported
    dst = small(1)
    report = load_internimage_checkpoint(dst, {'model': src})
    assert not report.complete and report.missing == ['levels.1.blocks.0.gamma1']
    assert torch.equal(dst.levels[2].blocks[1].gamma2, src['levels.2.blocks.1.gamma2'])


def test_two_backbones_need_a_prefix() -> None:
    a, b = small(0).state_dict(), small(3).state_dict()
    sd = {
        **{f'img_backbone.{k}': v for k, v in a.items()},
        **{f'pts_backbone.{k}': v for k, v in b.items()},
    }
    with pytest.raises(CheckpointFormatError, match='several InternImage backbones'):
        load_internimage_checkpoint(small(1), sd)
    dst = small(1)
    load_internimage_checkpoint(dst, sd, prefix='pts_backbone.', strict=True)
    assert_bit_identical(small(3), dst)


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r'nope\.pth'):
        load_internimage_checkpoint(small(0), tmp_path / 'nope.pth')
    torch.save(torch.zeros(3), tmp_path / 'tensor.pth')
    with pytest.raises(CheckpointFormatError, match=r'tensor\.pth: expected a dict'):
        read_checkpoint(tmp_path / 'tensor.pth')
    torch.save({'state_dict': {'neck.w': torch.zeros(1)}}, tmp_path / 'neck.pth')
    with pytest.raises(CheckpointFormatError, match=r'neck\.pth: no InternImage weights found'):
        load_internimage_checkpoint(small(0), tmp_path / 'neck.pth')
    with pytest.raises(CheckpointFormatError, match='not a checkpoint'):
        detect_format({'epoch': 3})
    upstream_classification(small(0), tmp_path / 'c.pth')
    with pytest.raises(CheckpointFormatError, match='weights_only=False'):
        read_checkpoint(tmp_path / 'c.pth', weights_only=True)


# ---------------------------------------------------------------- converter
@pytest.mark.parametrize('target', ['interndrive', 'classification', 'mmdet', 'huggingface'])
def test_convert_from_mmdet_to_each_format_and_back(tmp_path: Path, target: str) -> None:
    src = small(0)
    up = upstream_mmdet(src, tmp_path / 'det.pth')
    out = tmp_path / f'out_{target}.pth'
    info = convert_checkpoint(up, out, target)
    assert info['source_format'] == 'mmdet' and info['num_tensors'] == len(src.state_dict())
    raw = torch.load(out, weights_only=True)
    assert detect_format(raw) == target
    if target == 'huggingface':
        assert any(k.startswith('model.') and k.endswith('layer_scale1') for k in raw)
        assert not any('gamma' in k for k in raw)
    if target == 'mmdet':
        assert all(k.startswith('backbone.') for k in raw['state_dict'])
    dst = small(1)
    load_internimage_checkpoint(dst, out, strict=True, weights_only=True)
    assert_bit_identical(src, dst)
    # and back to the upstream classification format
    back = tmp_path / 'back.pth'
    convert_checkpoint(out, back, 'classification')
    assert set(torch.load(back, weights_only=True)['model']) == set(src.state_dict())


def test_convert_to_safetensors_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = small(0)
    up = upstream_ddp(src, tmp_path / 'ddp.pth')
    assert main([str(up), str(tmp_path / 'hf' / 'model.safetensors'), '--to', 'huggingface']) == 0
    assert 'classification' in capsys.readouterr().out
    dst = small(1)
    load_internimage_checkpoint(dst, tmp_path / 'hf', strict=True)
    assert_bit_identical(src, dst)
    assert main([str(up), str(tmp_path / 'x.safetensors'), '--to', 'mmdet']) == 2
    assert '.safetensors output is only supported' in capsys.readouterr().err
    assert main([str(tmp_path / 'missing.pth'), str(tmp_path / 'y.pth'), '--to', 'mmdet']) == 2
    assert (
        main(
            [
                str(up),
                str(tmp_path / 'z.pth'),
                '--to',
                'mmdet',
                '--arch',
                'internimage_t',
                '--strict',
            ]
        )
        == 1
    )
    assert 'does not match internimage_t' in capsys.readouterr().err
    assert not (tmp_path / 'z.pth').exists()


def test_check_against_real_variant_shapes() -> None:
    # Shapes of a full InternImage-T without allocating it: stride-0 views of one scalar.
    with torch.device('meta'):
        ref = create_internimage('internimage_t', core_op='DCNv3_pytorch').state_dict()
    sd = {k: torch.zeros(()).expand(v.shape) for k, v in ref.items()}
    assert check_against_arch(sd, 'internimage_t').complete
    del sd['levels.3.blocks.3.mlp.fc2.bias']
    sd['levels.0.blocks.0.gamma1'] = torch.zeros(64)
    report = check_against_arch(sd, 'internimage_t')
    assert report.missing == ['levels.3.blocks.3.mlp.fc2.bias']
    assert report.unexpected == ['levels.0.blocks.0.gamma1']


def test_atomic_save_keeps_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = tmp_path / 'ckpt.pth'
    atomic_torch_save({'a': torch.ones(1)}, dst)

    def boom(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', boom)
    with pytest.raises(OSError, match='disk full'):
        atomic_torch_save({'a': torch.zeros(1)}, dst)
    assert os.listdir(tmp_path) == ['ckpt.pth']
    monkeypatch.undo()
    assert torch.equal(torch.load(dst, weights_only=True)['a'], torch.ones(1))


def test_module_is_runnable() -> None:
    root = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root / 'dcnv3/src'), str(root / 'common/src')])
    )
    res = subprocess.run(
        [sys.executable, '-m', 'interndrive.common.convert_checkpoint', '--help'],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0 and '--to' in res.stdout
