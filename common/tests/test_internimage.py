"""InternImage backbone: variants, parameter counts, key names, forward/backward, options, errors."""

from __future__ import annotations

import warnings

import pytest
import torch

dcnv3 = pytest.importorskip('dcnv3', reason='the dcnv3 package (dcnv3/src) is not importable')

from interndrive.common.backbones import (  # noqa: E402
    AD_INTERNIMAGE_S,
    DropPath,
    InternImage,
    count_parameters,
    create_internimage,
    internimage_s,
    internimage_t,
    list_internimage_variants,
)
from interndrive.common.backbones import internimage as internimage_module  # noqa: E402

# Exact counts of the upstream classification models (REFERENCE.md §1.1), in millions.
PUBLISHED_PARAMS_M = {
    'internimage_t': 29.92,
    'internimage_s': 50.08,
    'internimage_b': 97.46,
    'internimage_l': 223.33,
    'internimage_xl': 334.82,
    'internimage_h': 1089.64,
}
# The rounded README numbers; we must be within 1 % of these too.
README_PARAMS_M = {
    'internimage_t': 30,
    'internimage_s': 50,
    'internimage_b': 97,
    'internimage_l': 223,
    'internimage_xl': 335,
    'internimage_h': 1080,
}
REF = 'DCNv3_pytorch'  # deterministic reference op for numerics in unit tests


def tiny(**kw) -> InternImage:
    """A 4-stage InternImage small enough for 2-core CI (16 channels per group as in T–XL)."""
    args = dict(
        core_op=REF, channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8), drop_path_rate=0.0
    )
    args.update(kw)
    return InternImage(**args)


# ---------------------------------------------------------------------------- variants on meta
@pytest.mark.parametrize('name', list(PUBLISHED_PARAMS_M))
def test_variant_parameter_count_and_stage_shapes(name: str) -> None:
    with torch.device('meta'):
        model = create_internimage(name, core_op=REF)
        n = sum(p.numel() for p in model.parameters())
        logits = model(torch.empty(2, 3, 64, 96))
        feats = model.forward_intermediates(torch.empty(2, 3, 64, 96), intermediates_only=True)
    assert round(n / 1e6, 2) == PUBLISHED_PARAMS_M[name]
    assert abs(n / 1e6 - README_PARAMS_M[name]) / README_PARAMS_M[name] < 0.01
    assert logits.shape == (2, 1000)
    c = model.channels
    assert [tuple(f.shape) for f in feats] == [
        (2, c, 16, 24),
        (2, 2 * c, 8, 12),
        (2, 4 * c, 4, 6),
        (2, 8 * c, 2, 3),
    ]


def test_count_parameters_helper_matches_and_backbone_is_smaller() -> None:
    assert round(count_parameters('S') / 1e6, 2) == 50.08
    headless = count_parameters('internimage_s', num_classes=0)
    # conv head 640→960 (no bias) + BN(960) + Linear(960→1000)
    assert count_parameters('internimage_s') - headless == 640 * 960 + 2 * 960 + 960 * 1000 + 1000
    assert list_internimage_variants() == list(PUBLISHED_PARAMS_M)


# ---------------------------------------------------------------------------- upstream key names
def upstream_keys(
    channels: int,
    depths: list[int],
    groups: list[int],
    *,
    layer_scale: bool,
    stage_norm: bool,
    num_classes: int,
    dw_kernel: int = 3,
    res_post_norm: bool = False,
    center_feature_scale: bool = False,
    level2_ids: list[int] | None = None,
    clip_head: bool = False,
) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of upstream InternImage (LN variant), written from REFERENCE.md §1.4."""
    keys: dict[str, tuple[int, ...]] = {}
    c = channels
    keys['patch_embed.conv1.weight'] = (c // 2, 3, 3, 3)
    keys['patch_embed.conv1.bias'] = (c // 2,)
    keys['patch_embed.norm1.1.weight'] = keys['patch_embed.norm1.1.bias'] = (c // 2,)
    keys['patch_embed.conv2.weight'] = (c, c // 2, 3, 3)
    keys['patch_embed.conv2.bias'] = (c,)
    keys['patch_embed.norm2.1.weight'] = keys['patch_embed.norm2.1.bias'] = (c,)
    for i, (d, g) in enumerate(zip(depths, groups)):
        ch = c * 2**i
        for j in range(d):
            b = f'levels.{i}.blocks.{j}.'
            for n in ('norm1.0', 'norm2.0', 'dcn.dw_conv.1.1'):
                keys[b + n + '.weight'] = keys[b + n + '.bias'] = (ch,)
            keys[b + 'dcn.dw_conv.0.weight'] = (ch, 1, dw_kernel, dw_kernel)
            keys[b + 'dcn.dw_conv.0.bias'] = (ch,)
            keys[b + 'dcn.offset.weight'], keys[b + 'dcn.offset.bias'] = (g * 18, ch), (g * 18,)
            keys[b + 'dcn.mask.weight'], keys[b + 'dcn.mask.bias'] = (g * 9, ch), (g * 9,)
            for n in ('input_proj', 'output_proj'):
                keys[b + f'dcn.{n}.weight'], keys[b + f'dcn.{n}.bias'] = (ch, ch), (ch,)
            if center_feature_scale:
                keys[b + 'dcn.center_feature_scale_proj_weight'] = (g, ch)
                keys[b + 'dcn.center_feature_scale_proj_bias'] = (g,)
            keys[b + 'mlp.fc1.weight'], keys[b + 'mlp.fc1.bias'] = (4 * ch, ch), (4 * ch,)
            keys[b + 'mlp.fc2.weight'], keys[b + 'mlp.fc2.bias'] = (ch, 4 * ch), (ch,)
            if layer_scale:
                keys[b + 'gamma1'] = keys[b + 'gamma2'] = (ch,)
            if res_post_norm:
                for n in ('res_post_norm1.0', 'res_post_norm2.0'):
                    keys[b + n + '.weight'] = keys[b + n + '.bias'] = (ch,)
        if stage_norm:
            keys[f'levels.{i}.norm.0.weight'] = keys[f'levels.{i}.norm.0.bias'] = (ch,)
        if level2_ids and i == 2:
            for k in range(len(level2_ids)):
                keys[f'levels.2.post_norms.{k}.0.weight'] = keys[
                    f'levels.2.post_norms.{k}.0.bias'
                ] = (ch,)
        if i < len(depths) - 1:
            keys[f'levels.{i}.downsample.conv.weight'] = (2 * ch, ch, 3, 3)
            keys[f'levels.{i}.downsample.norm.1.weight'] = (2 * ch,)
            keys[f'levels.{i}.downsample.norm.1.bias'] = (2 * ch,)
    nf = c * 2 ** (len(depths) - 1)
    if num_classes and not clip_head:
        hd = int(nf * 1.5)
        keys['conv_head.0.weight'] = (hd, nf, 1, 1)
        for n in ('weight', 'bias', 'running_mean', 'running_var'):
            keys[f'conv_head.1.0.{n}'] = (hd,)
        keys['conv_head.1.0.num_batches_tracked'] = ()
        keys['head.weight'], keys['head.bias'] = (num_classes, hd), (num_classes,)
    elif num_classes:
        keys['dcnv3_head_x4.0.weight'], keys['dcnv3_head_x4.0.bias'] = (4096, nf, 1, 1), (4096,)
        keys['dcnv3_head_x3.weight'], keys['dcnv3_head_x3.bias'] = (1024, nf // 2, 1, 1), (1024,)
        for n in ('q', 'k', 'v'):
            keys[f'clip_projector.norm1_{n}.0.weight'] = keys[
                f'clip_projector.norm1_{n}.0.bias'
            ] = (1024,)
            keys[f'clip_projector.cross_dcn.{n}.weight'] = (1024, 1024)
            keys[f'clip_projector.cross_dcn.{n}_bias'] = (1024,)
        keys['clip_projector.cross_dcn.proj.weight'] = (768, 1024)
        keys['clip_projector.cross_dcn.proj.bias'] = (768,)
        keys['fc_norm.0.weight'] = keys['fc_norm.0.bias'] = (768,)
        keys['head.weight'], keys['head.bias'] = (num_classes, 768), (num_classes,)
    return keys


def _meta_keys(name: str, **kw) -> dict[str, tuple[int, ...]]:
    with torch.device('meta'):
        model = create_internimage(name, core_op=REF, **kw)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_state_dict_keys_match_upstream_t_with_head() -> None:
    expected = upstream_keys(
        64, [4, 4, 18, 4], [4, 8, 16, 32], layer_scale=False, stage_norm=True, num_classes=1000
    )
    assert _meta_keys('internimage_t') == expected


def test_state_dict_keys_match_upstream_ad_s_backbone() -> None:
    # The AD configs' S: post-norm + layer scale -> gamma1/2, no stage norms, no head.
    expected = upstream_keys(
        80, [4, 4, 21, 4], [5, 10, 20, 40], layer_scale=True, stage_norm=False, num_classes=0
    )
    assert _meta_keys('internimage_s', **{k: v for k, v in AD_INTERNIMAGE_S.items()}) == expected


def test_state_dict_keys_match_upstream_h_with_clip_head() -> None:
    expected = upstream_keys(
        320, [6, 6, 32, 6], [10, 20, 40, 80], layer_scale=False, stage_norm=True, num_classes=1000,
        dw_kernel=5, res_post_norm=True, center_feature_scale=True, level2_ids=[5, 11, 17, 23, 29],
        clip_head=True,
    )  # fmt: skip
    assert _meta_keys('internimage_h') == expected


# ---------------------------------------------------------------------------- forward / backward
def test_internimage_t_backbone_outputs_and_backward() -> None:
    torch.manual_seed(0)
    model = internimage_t(num_classes=0, core_op=REF, out_indices=(1, 2, 3))
    x = torch.randn(1, 3, 32, 32)
    outs = model(x)
    assert [tuple(o.shape) for o in outs] == [(1, 128, 4, 4), (1, 256, 2, 2), (1, 512, 1, 1)]
    assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)
    sum(o.square().mean() for o in outs).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == []
    # Offsets start at zero but must learn: their gradient has to be non-zero.
    assert model.levels[0].blocks[0].dcn.offset.weight.grad.abs().sum() > 0


def test_internimage_s_classifier_forward_backward() -> None:
    torch.manual_seed(0)
    model = internimage_s(core_op=REF, drop_path_rate=0.0)
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 2])).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.levels[3].blocks[3].gamma2.grad.abs().sum() > 0


def test_forward_intermediates_api() -> None:
    model = tiny().eval()
    x = torch.randn(1, 3, 32, 48)
    final, inter = model.forward_intermediates(x, indices=2, output_fmt='NHWC')
    assert [tuple(t.shape) for t in inter] == [(1, 2, 3, 64), (1, 1, 2, 128)]
    assert torch.equal(final, inter[-1])  # the last stage has no downsample
    nchw = model.forward_intermediates(x, indices=[0, 3], intermediates_only=True)
    assert torch.equal(nchw[1], inter[1].permute(0, 3, 1, 2))
    # forward_features of a headless model is the last stage, NCHW
    assert torch.equal(model.forward_features(x), nchw[1])


def test_clip_projector_head_tiny_h_style() -> None:
    model = tiny(
        channels=32, groups=(1, 2, 4, 8), dw_kernel_size=5, res_post_norm=True, center_feature_scale=True,
        level2_post_norm=True, level2_post_norm_block_ids=(0,), use_clip_projector=True, num_classes=10,
    )  # fmt: skip
    x = torch.randn(2, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (2, 1024, 4, 4)  # stage-3 map ×2 (PixelShuffle) + stage-2 map
    assert model.forward_head(feats, pre_logits=True).shape == (2, 768)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert model.levels[2].post_norms[0][0].weight.grad is not None
    assert model.levels[0].blocks[0].dcn.center_feature_scale_proj_weight.grad is not None


def test_residual_variants_follow_upstream_precedence() -> None:
    torch.manual_seed(0)
    layer = tiny(layer_scale=0.5, post_norm=True).levels[0].blocks[0].eval()
    x = torch.randn(1, 4, 4, 16)
    with torch.no_grad():
        y1 = x + layer.gamma1 * layer.norm1(layer.dcn(x))
        expected = y1 + layer.gamma2 * layer.norm2(layer.mlp(y1))
        torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)
    pre = tiny().levels[0].blocks[0].eval()  # T-style pre-norm, no layer scale
    with torch.no_grad():
        y1 = x + pre.dcn(pre.norm1(x))
        torch.testing.assert_close(pre(x), y1 + pre.mlp(pre.norm2(y1)), rtol=0, atol=0)


def test_with_cp_gives_identical_gradients() -> None:
    torch.manual_seed(0)
    ref = tiny()
    cp = tiny(with_cp=True)
    cp.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 32, 32)
    for m in (ref, cp):
        sum(o.sum() for o in m(x)).backward()
    for (name, p), q in zip(ref.named_parameters(), cp.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_frozen_stages_freeze_stem_and_first_stages() -> None:
    model = tiny(frozen_stages=2, norm_layer='BN').train()
    frozen = [model.patch_embed, model.levels[0], model.levels[1]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.levels[2].parameters())
    assert not model.patch_embed.norm1[0].training  # BN statistics stay fixed
    assert model.levels[2].training
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    assert model.patch_embed.conv1.weight.grad is None


def test_drop_path_schedules() -> None:
    model = tiny(drop_path_rate=0.3)
    rates = [
        b.drop_path.drop_prob if isinstance(b.drop_path, DropPath) else 0.0
        for lv in model.levels
        for b in lv.blocks
    ]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3) and rates == sorted(rates)
    uniform = tiny(drop_path_rate=0.3, drop_path_type='uniform')
    assert all(
        b.drop_path.drop_prob == pytest.approx(0.3) for lv in uniform.levels for b in lv.blocks
    )


def test_drop_path_module() -> None:
    dp = DropPath(0.5)
    x = torch.ones(1000, 3)
    assert torch.equal(dp.eval()(x), x)
    torch.manual_seed(0)
    y = dp.train()(x)
    kept = (y[:, 0] != 0).float().mean().item()
    assert 0.4 < kept < 0.6
    assert set(y.unique().tolist()) <= {0.0, 2.0}  # kept samples rescaled by 1/keep_prob


def test_ad_config_backbone() -> None:
    with torch.device('meta'):
        model = InternImage(**{**AD_INTERNIMAGE_S, 'core_op': REF, 'out_indices': (1, 2, 3)})
    assert model.num_classes == 0 and not hasattr(model, 'head')
    assert model.stage_channels[1:] == [160, 320, 640]  # what the OCC FPN consumes
    assert model.levels[0].blocks[0].gamma1.shape == (80,)


# ---------------------------------------------------------------------------- core_op selection
def test_core_op_fallback_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dcnv3, 'has_compiled_ops', lambda: False)
    monkeypatch.setattr(internimage_module, '_warned_fallback', False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        a = tiny(core_op='DCNv3')
        b = tiny(core_op='DCNv3')
    msgs = [w for w in caught if 'no compiled kernels' in str(w.message)]
    assert len(msgs) == 1 and issubclass(msgs[0].category, RuntimeWarning)
    assert type(a.levels[0].blocks[0].dcn) is dcnv3.DCNv3_pytorch
    assert type(b.levels[0].blocks[0].dcn) is dcnv3.DCNv3_pytorch


def test_core_op_compiled_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dcnv3, 'has_compiled_ops', lambda: True)
    assert type(tiny(core_op='DCNv3').levels[0].blocks[0].dcn) is dcnv3.DCNv3
    assert type(tiny(core_op='DCNv3_pytorch').levels[0].blocks[0].dcn) is dcnv3.DCNv3_pytorch


@pytest.mark.skipif(not dcnv3.has_compiled_ops(), reason='dcnv3 compiled kernels not built')
def test_compiled_op_matches_reference_at_model_level() -> None:
    torch.manual_seed(0)
    ref = tiny().eval()
    fast = tiny(core_op='DCNv3').eval()
    fast.load_state_dict(ref.state_dict())
    with torch.no_grad():
        for p in ref.parameters():  # non-zero offsets so sampling is really deformable
            p.add_(0.05 * torch.randn_like(p))
        fast.load_state_dict(ref.state_dict())
        x = torch.randn(2, 3, 32, 32)
        for a, b in zip(ref(x), fast(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        (dict(groups=(3, 2, 4, 8)), r'stage 0 has 16 channels, not divisible by groups\[0\]=3'),
        (dict(groups=(1, 2, 4)), 'same length'),
        (dict(out_indices=(0, 4)), 'out_indices'),
        (dict(frozen_stages=7), 'frozen_stages'),
        (dict(drop_path_type='cosine'), 'drop_path_type'),
        (dict(core_op='DCNv4'), 'core_op must be one of'),
        (dict(norm_layer='GN'), "norm_layer must be 'LN' or 'BN'"),
        (dict(level2_post_norm=True, level2_post_norm_block_ids=(5,)), 'outside stage 2'),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_bad_variant_and_input() -> None:
    with pytest.raises(ValueError, match="unknown variant 'internimage_g'"):
        create_internimage('internimage_g')
    with pytest.raises(ValueError, match=r'expects images \(N, C, H, W\)'):
        tiny()(torch.randn(3, 32, 32))
    with pytest.raises(RuntimeError, match='num_classes=0'):
        tiny().forward_head(torch.randn(1, 128, 1, 1))


@pytest.mark.slow
@pytest.mark.parametrize('name', ['internimage_b', 'internimage_l'])
def test_large_variants_forward_backward(name: str) -> None:
    """Real (not meta) forward/backward of the bigger variants at a small input (~1-4 GB RAM)."""
    torch.manual_seed(0)
    model = create_internimage(name, num_classes=0, core_op='DCNv3', out_indices=(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [4 * model.channels, 8 * model.channels]
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in model.levels[3].parameters())
